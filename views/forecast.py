"""Forecast (home): where the quarter will land and how sure that is."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui

filters = ui.filters()
currency = filters.currency
ui.header(
    "Forecast",
    f"Where will {filters.quarter} land as of {filters.as_of.isoformat()}, how "
    "sure is that, and which deals decide it?",
)

if filters.period.start > filters.as_of + dt.timedelta(days=1):
    ui.stop_with(
        "info",
        f"{filters.quarter} starts on {filters.period.start.isoformat()}, after "
        f"the as-of date {filters.as_of.isoformat()}: a forecast is made for a "
        "quarter that has begun. Pick an earlier quarter in the sidebar; its "
        "open deals are on the Pipeline page.",
    )
company, histogram = ui.forecast(filters.quarter, filters.as_of, by="team")


def team_part(doc: dict, histogram: dict) -> tuple[dict, dict | None]:
    """The part of a forecast the sidebar asks for: the team, or the company."""
    if not filters.team:
        return doc, histogram
    match = [g for g in doc["groups"] if g["name"] == filters.team]
    if not match:
        return None, None
    counts, edges = histogram["groups"].get(filters.team, (None, None))
    part = None if counts is None else {"counts": list(counts), "edges": list(edges)}
    return match[0], part


headline, headline_histogram = team_part(company, histogram)
if headline is None:
    ui.stop_with(
        "info",
        f"Team {filters.team} has no deals in {filters.quarter}. Pick another "
        "team or quarter in the sidebar.",
    )
scope = f"team {filters.team}" if filters.team else "the company"
if filters.owner:
    st.info(
        "The forecast is for teams and the company; the owner filter applies "
        "to the deal lists below."
    )
for note in company.get("fallback", []):
    st.info(f"Note: {note}.")

# Headline metrics ---------------------------------------------------------------

st.subheader(f"{filters.quarter} for {scope}")
cols = st.columns(4)
cols[0].metric("Booked", ui.money_short(headline["booked"], currency), border=True)
cols[1].metric("Expected", ui.money_short(headline["expected"], currency), border=True)
no_target = headline["target"] is None
cols[2].metric(
    "Target",
    "not set" if no_target else ui.money_short(headline["target"], currency),
    border=True,
    help=(
        "No target is stored for this quarter, so there is no chance to reach it."
        if no_target
        else f"{ui.money(headline['target'], currency)} for {scope}."
    ),
)
cols[3].metric(
    "Chance to reach target",
    "no target" if no_target else ui.percent(headline["p_reach_target"]),
    border=True,
    help="Share of simulated quarters that end at or above the target.",
)
cols = st.columns(4)
cols[0].metric("P10", ui.money_short(headline["p10"], currency), border=True)
cols[1].metric("P50", ui.money_short(headline["p50"], currency), border=True)
cols[2].metric("P90", ui.money_short(headline["p90"], currency), border=True)
new_business = headline["new_business"]
cols[3].metric(
    "New business",
    ui.money_short(new_business["expected"], currency),
    border=True,
    help=(
        "Expected value of deals not created yet that will be created and won "
        f"inside the quarter (P10 {ui.money(new_business['p10'], currency)}, "
        f"P90 {ui.money(new_business['p90'], currency)})."
    ),
)
open_part = headline["open_deals"]
st.caption(
    f"P10 {ui.money(headline['p10'], currency)} · P50 "
    f"{ui.money(headline['p50'], currency)} · P90 "
    f"{ui.money(headline['p90'], currency)}: eight in ten simulated quarters end "
    f"between P10 and P90. All {open_part['count']:,} open deals worth "
    f"{ui.money(open_part['amount'], currency)} carry an expected "
    f"{ui.money(open_part['expected'], currency)} this quarter: those expected "
    "to close in it (the Pipeline page lists them), and with a small chance "
    "each, those dated later that may be pulled in."
)


def distribution_chart(doc: dict, histogram: dict | None, title: str) -> go.Figure:
    """The simulated outcomes of the quarter with P10, P50, P90 and target."""
    figure = go.Figure()
    if histogram and histogram.get("counts"):
        edges = histogram["edges"]
        centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        figure.add_trace(
            go.Bar(
                x=centres,
                y=histogram["counts"],
                width=[b - a for a, b in zip(edges[:-1], edges[1:])],
                marker_color="#9bb7d9",
                name="simulated quarters",
            )
        )
    for name, colour in (("p10", "#555"), ("p50", "#1f5fa8"), ("p90", "#555")):
        if doc.get(name) is not None:
            figure.add_vline(
                x=doc[name],
                line_dash="dash",
                line_color=colour,
                annotation_text=name.upper(),
                annotation_position="top",
            )
    if doc.get("target"):
        figure.add_vline(
            x=doc["target"],
            line_color="#c0392b",
            line_width=3,
            annotation_text="target",
            annotation_position="top right",
        )
    figure.update_layout(
        title=title,
        xaxis_title=f"Quarter total ({currency})",
        xaxis_tickprefix=ui.CURRENCY_SYMBOLS.get(currency, ""),
        xaxis_tickformat="~s",
        yaxis_title="Simulated quarters",
        showlegend=False,
        height=360,
        bargap=0,
        margin=dict(t=70, b=40, l=40, r=20),
    )
    return figure


if filters.as_of >= filters.period.end:
    target_part = (
        ""
        if no_target
        else f" against a target of {ui.money(headline['target'], currency)}"
    )
    st.info(
        f"{filters.quarter} ended on {filters.period.end.isoformat()}: "
        f"{ui.money(headline['booked'], currency)} was won{target_part}. Pick an "
        "as-of date inside the quarter to see the forecast as it stood then; "
        "the Model page shows how past forecasts compared with the result."
    )
else:
    st.plotly_chart(
        distribution_chart(
            headline,
            headline_histogram,
            f"Where {filters.quarter} can land ({scope})",
        ),
        key="forecast_distribution",
    )

# Teams and owners ---------------------------------------------------------------


def group_table(doc: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "name": g["name"],
                "booked": g["booked"],
                "expected": g["expected"],
                "p10": g["p10"],
                "p50": g["p50"],
                "p90": g["p90"],
                "target": g["target"],
                "p_reach_target": g["p_reach_target"],
                "open_deals": g["open_deals"]["count"],
                "new_business": g["new_business"]["expected"],
            }
            for g in doc["groups"]
        ]
    )


if filters.team:
    by_owner, _ = ui.forecast(filters.quarter, filters.as_of, by="owner")
    groups = group_table(by_owner)
    team_owners = set(ui.facts()["owners_by_team"].get(filters.team, []))
    groups = groups[groups["name"].isin(team_owners)]
    st.subheader(f"Owners of team {filters.team}")
else:
    groups = group_table(company)
    st.subheader("By team")
if groups["target"].isna().all():
    groups = groups.drop(columns=["target", "p_reach_target"])
    st.caption("No targets are stored for these groups in this quarter.")
st.dataframe(
    groups,
    hide_index=True,
    key="forecast_groups",
    column_config={
        "name": "Owner" if filters.team else "Team",
        **{
            c: ui.money_column(c.upper() if c[0] == "p" else c.capitalize(), currency)
            for c in ("booked", "expected", "p10", "p50", "p90", "target")
        },
        "new_business": ui.money_column("New business", currency),
        "p_reach_target": ui.percent_column("Chance to reach target"),
        "open_deals": st.column_config.NumberColumn(
            "Open deals",
            format="localized",
            help="Every open deal, whatever its expected close date: any of "
            "them may still be won this quarter. The Pipeline page lists the "
            "ones dated in the quarter.",
        ),
    },
)

# The reps' own call ---------------------------------------------------------

st.subheader("The reps' own call")
call = company["reps_call"]
if all(v is None for v in call.values()):
    st.info("The source has no forecast categories, so there is no reps' call.")
else:
    st.caption(
        "Company total: booked plus the deals the reps put in each forecast "
        "category, beside the model's range."
    )
    cols = st.columns(3)
    for column, name in zip(cols, ("commit", "best_case", "pipeline")):
        column.metric(
            name.replace("_", " ").capitalize(), ui.money_short(call[name], currency)
        )

# The deals that swing it most -------------------------------------------------

st.subheader("The deals that swing it most")
swing = pd.DataFrame(headline.get("swing_deals", company["swing_deals"]))
if filters.owner and "owner" in swing:
    swing = swing[swing["owner"] == filters.owner].reset_index(drop=True)
ui.deal_table(
    swing,
    key="forecast_swing",
    filters=filters,
    column_config={
        "amount": ui.money_column("Amount", currency),
        "p_in_quarter": ui.percent_column("Chance won this quarter"),
        "share_of_spread": st.column_config.NumberColumn(
            "Share of the range",
            format="percent",
            step=0.001,
            help="This deal's part of the spread between P10 and P90.",
        ),
    },
)

# What-if ----------------------------------------------------------------------

st.subheader("What if")
st.caption(
    "Drop deals, move them to next quarter or mark them won: the range is "
    "recomputed at once. Nothing is saved."
)
open_now = ui.select(
    ui.query("dealcase.history.deals_as_of", filters.as_of, include_closed=False),
    filters,
).sort_values(["amount", "deal_id"], ascending=[False, True])
labels = {
    row.deal_id: f"{row.name} ({row.deal_id}, {ui.money(row.amount, currency)})"
    for row in open_now.itertuples()
}
options = list(labels)
left, middle, right = st.columns(3)
dropped = left.multiselect(
    "Drop", options, format_func=labels.get, key="forecast_whatif_drop"
)
moved = middle.multiselect(
    "Move to next quarter",
    [d for d in options if d not in dropped],
    format_func=labels.get,
    key="forecast_whatif_next",
)
won = right.multiselect(
    "Mark won",
    [d for d in options if d not in dropped and d not in moved],
    format_func=labels.get,
    key="forecast_whatif_won",
)
overrides = {
    **{d: "drop" for d in dropped},
    **{d: "next_quarter" for d in moved},
    **{d: "won" for d in won},
}
if overrides:
    scenario, scenario_histogram = ui.forecast(
        filters.quarter, filters.as_of, by="team", overrides=overrides
    )
    scenario_head, scenario_part = team_part(scenario, scenario_histogram)
    cols = st.columns(4)
    for column, name in zip(cols, ("p10", "p50", "p90")):
        new, old = scenario_head[name], headline[name]
        column.metric(
            f"{name.upper()} (what-if)",
            ui.money_short(new, currency),
            delta=ui.money(new - old, currency),
        )
    new, old = scenario_head["p_reach_target"], headline["p_reach_target"]
    cols[3].metric(
        "Chance to reach target (what-if)",
        ui.percent(new),
        delta=None if new is None or old is None else f"{(new - old) * 100:+.0f} pts",
    )
    st.plotly_chart(
        distribution_chart(
            scenario_head, scenario_part, "What-if: where the quarter can land"
        ),
        key="forecast_whatif_distribution",
    )

# Trend ------------------------------------------------------------------------

st.subheader("Forecast week by week")
st.caption(
    "The forecast as it would have been made on each week of the quarter, "
    "each week with only what was known then, against the target; for a past "
    "quarter also what was actually won. The model is refitted per week, so "
    "the first view takes a while."
)
if not st.toggle("Show the weekly trend", key="forecast_trend_show"):
    st.stop()
with st.spinner("Replaying the quarter week by week..."):
    trend = ui.query("dealcase.forecast.forecast_trend", filters.quarter)
if trend.empty:
    st.info("No weekly forecasts for this quarter yet.")
else:
    # plain lists: the chart carries the exact numbers of the trend
    weeks = [str(day) for day in trend["as_of"]]
    figure = go.Figure()
    if {"p10", "p90"} <= set(trend.columns):
        figure.add_trace(
            go.Scatter(
                x=weeks + weeks[::-1],
                y=trend["p90"].tolist() + trend["p10"].tolist()[::-1],
                fill="toself",
                fillcolor="rgba(31,95,168,0.15)",
                line=dict(width=0),
                name="P10 to P90",
                hoverinfo="skip",
            )
        )
    figure.add_trace(
        go.Scatter(x=weeks, y=trend["p50"].tolist(), name="P50", mode="lines+markers")
    )
    if "target" in trend and trend["target"].notna().any():
        figure.add_trace(
            go.Scatter(
                x=weeks, y=trend["target"].tolist(), name="target", line_dash="dash"
            )
        )
    if "actual" in trend and trend["actual"].notna().any():
        figure.add_trace(
            go.Scatter(x=weeks, y=trend["actual"].tolist(), name="actual (final)")
        )
    figure.update_layout(
        xaxis_title="As of",
        yaxis_title=f"Quarter total ({currency})",
        yaxis_tickprefix=ui.CURRENCY_SYMBOLS.get(currency, ""),
        yaxis_tickformat="~s",
        height=340,
        margin=dict(t=30, b=40, l=40, r=20),
    )
    st.plotly_chart(figure, key="forecast_trend")
