"""Why deals slip: what moved the pipeline, which deals slipped, and why."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui

filters = ui.filters()
currency = filters.currency
ui.header(
    "Why deals slip",
    f"What changed in the {filters.quarter} pipeline between two dates, which "
    "deals of a past quarter slipped, and which gaps in the case make deals slip?",
)

STEP_LABELS = {
    "new": "New",
    "pulled_in": "Pulled in",
    "pushed_out": "Pushed out",
    "won": "Won",
    "lost": "Lost",
    "increased": "Increased",
    "decreased": "Decreased",
}

# What changed between two dates ------------------------------------------------

st.subheader("What changed")
left, right = st.columns(2)
start = left.date_input(
    "From", value=filters.as_of - dt.timedelta(days=7), key="slips_start"
)
end = right.date_input("To", value=filters.as_of, key="slips_end")
if start > end:
    ui.stop_with("error", "The 'From' date is after the 'To' date; swap them.")

changes = ui.query(
    "dealcase.slips.pipeline_changes",
    start,
    end,
    quarter=filters.quarter,
    team=filters.team,
)
steps = changes["steps"]
labels = ["Start", *[STEP_LABELS.get(s["kind"], s["kind"]) for s in steps], "End"]
empty = not changes["start"] and not changes["end"]
empty = empty and not any(s["count"] for s in steps)
event = None
if empty:
    st.info(
        f"The {changes['quarter']} pipeline held no open deals between "
        f"{changes['start_date']} and {changes['end_date']} (the data may carry "
        "no expected close dates for open deals). Pick other dates or a quarter."
    )
else:
    figure = go.Figure(
        go.Waterfall(
            x=labels,
            measure=["absolute", *["relative"] * len(steps), "total"],
            y=[changes["start"], *[s["amount"] for s in steps], changes["end"]],
            text=[
                ui.money_short(changes["start"], currency),
                *[
                    f"{ui.count(s['count'], 'deal')}, "
                    f"{ui.money_short(s['amount'], currency)}"
                    for s in steps
                ],
                ui.money_short(changes["end"], currency),
            ],
            textposition="outside",
            connector={"line": {"color": "#999"}},
            increasing={"marker": {"color": "#2e8b57"}},
            decreasing={"marker": {"color": "#c0392b"}},
            totals={"marker": {"color": "#1f5fa8"}},
        )
    )
    figure.update_layout(
        title=(
            f"Pipeline of {changes['quarter']} from {changes['start_date']} to "
            f"{changes['end_date']}"
        ),
        yaxis_title=f"Pipeline ({currency})",
        yaxis_tickprefix=ui.CURRENCY_SYMBOLS.get(currency, ""),
        yaxis_tickformat="~s",
        height=400,
        margin=dict(t=60, b=40, l=40, r=20),
        showlegend=False,
    )
    event = st.plotly_chart(
        figure, key="slips_waterfall", on_select="rerun", selection_mode="points"
    )
    st.caption(
        f"Start {ui.money(changes['start'], currency)}, end "
        f"{ui.money(changes['end'], currency)}. Click a bar, or pick a step below, "
        "to see its deals."
    )

kinds = [s["kind"] for s in steps if s["count"]]
clicked = None
points = (event or {}).get("selection", {}).get("points", []) if event else []
if points:
    label = points[0].get("x")
    clicked = next((k for k, v in STEP_LABELS.items() if v == label), None)
if kinds:
    if clicked in kinds:
        st.session_state["slips_step"] = clicked
    step_kind = st.selectbox(
        "Deals of step", kinds, format_func=STEP_LABELS.get, key="slips_step"
    )
    step = next(s for s in steps if s["kind"] == step_kind)
    states = ui.query("dealcase.history.deals_as_of", end)
    step_deals = states[states["deal_id"].isin(step["deal_ids"])][
        ["deal_id", "name", "owner", "team", "stage", "amount", "close_date", "outcome"]
    ]
    st.markdown(
        f"**{STEP_LABELS[step_kind]}**: {ui.count(step['count'], 'deal')}, "
        f"{ui.money(step['amount'], currency)}"
    )
    ui.deal_table(
        step_deals,
        key="slips_step_deals",
        filters=filters,
        column_config={"amount": ui.money_column("Amount", currency)},
    )
elif not empty:
    st.info("Nothing moved in this pipeline between these dates.")

# Slipped deals of a past quarter ---------------------------------------------

st.subheader("Slipped deals")
current = filters.period
past = []
quarter = current.previous()
for _ in range(8):
    past.append(quarter.name)
    quarter = quarter.previous()
past_quarter = st.selectbox("Quarter", past, key="slips_quarter")
slips = ui.query("dealcase.slips.slips_report", quarter=past_quarter, team=filters.team)
slipped = pd.DataFrame(slips.doc.get("slipped", []))
for note in slips.notes:
    st.info(note)
if slipped.empty:
    st.info(f"No deal expected to close in {past_quarter} slipped.")
else:
    st.caption(
        f"{ui.count(len(slipped), 'deal')} expected to close in {past_quarter} did not."
    )
    ui.deal_table(
        ui.select(slipped, filters),
        key="slips_slipped",
        filters=filters,
        column_config={"amount": ui.money_column("Amount", currency)},
    )

# Drivers ----------------------------------------------------------------------

st.subheader("What makes deals slip")
st.caption(
    "The list above counts every deal that was expected in the quarter and "
    "not won in it: lost, pushed out or still open. The drivers measure "
    "pushes only (a deal still open when its quarter ended): why deals are "
    "lost is the close-likelihood model's subject, on the Deal and Model pages."
)
drivers = pd.DataFrame(slips.doc.get("drivers", []))
if drivers.empty:
    st.info("Too few closed deals to tell what drives slips.")
else:
    drivers = drivers.sort_values("lift", ascending=True)
    figure = go.Figure(
        go.Bar(
            x=drivers["lift"],
            y=drivers["factor"],
            orientation="h",
            error_x=dict(
                type="data",
                symmetric=False,
                array=drivers["ci_high"] - drivers["lift"],
                arrayminus=drivers["lift"] - drivers["ci_low"],
            ),
            marker_color="#c0392b",
        )
    )
    figure.add_vline(x=1.0, line_dash="dash", line_color="#555")
    figure.update_layout(
        title="Slip rate with the factor divided by the rate without (1 = no effect)",
        xaxis_title="Lift (with 95% interval)",
        height=max(300, 40 * len(drivers)),
        margin=dict(t=60, b=40, l=40, r=20),
    )
    st.plotly_chart(figure, key="slips_drivers_chart")
    st.dataframe(
        drivers.sort_values("lift", ascending=False)[
            [
                "factor",
                "deals_with",
                "slip_rate_with",
                "slip_rate_without",
                "lift",
                "ci_low",
                "ci_high",
                "value_at_stake",
            ]
        ],
        hide_index=True,
        key="slips_drivers",
        column_config={
            "factor": "Factor",
            "deals_with": "Deals with it",
            "slip_rate_with": st.column_config.NumberColumn(
                "Slip rate with", format="percent"
            ),
            "slip_rate_without": st.column_config.NumberColumn(
                "Slip rate without", format="percent"
            ),
            "lift": st.column_config.NumberColumn("Lift", format="%.2f"),
            "ci_low": st.column_config.NumberColumn("Low", format="%.2f"),
            "ci_high": st.column_config.NumberColumn("High", format="%.2f"),
            "value_at_stake": ui.money_column("Value at stake", currency),
        },
    )
