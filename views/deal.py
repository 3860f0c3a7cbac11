"""Deal: one deal's mechanics, history, business case, likelihood and risks."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui

filters = ui.filters()
currency = filters.currency
ui.header(
    "Deal",
    "What do we know about this deal, how likely is it to close on time, and "
    "what is missing from its case?",
)

states = ui.query("dealcase.history.deals_as_of", filters.as_of)
if states.empty:
    ui.stop_with(
        "info",
        f"No deals existed at the end of {filters.as_of.isoformat()}. Pick a "
        "later as-of date in the sidebar.",
    )

deal_id = st.query_params.get("deal")
if not deal_id:
    choices = ui.select(states, filters).sort_values("name")
    labels = {
        row.deal_id: f"{row.name} ({row.deal_id})" for row in choices.itertuples()
    }
    deal_id = st.selectbox(
        "Deal",
        list(labels),
        index=None,
        format_func=labels.get,
        placeholder="Pick a deal",
        key="deal_pick",
    )
    if deal_id is None:
        ui.stop_with(
            "info",
            "Pick a deal above, or open one from the Pipeline or Forecast page.",
        )
    st.query_params["deal"] = deal_id

match = states[states["deal_id"] == deal_id]
if match.empty:
    ui.stop_with(
        "warning",
        f"Deal {deal_id} did not exist at the end of {filters.as_of.isoformat()}. "
        "Pick a later as-of date in the sidebar, or another deal on the Pipeline "
        "page.",
    )
deal = match.iloc[0]

st.subheader(f"{deal['name']}")
created = pd.to_datetime(deal["created_on"])
st.caption(
    " · ".join(
        [
            deal_id,
            str(deal["account"]) if pd.notna(deal["account"]) else "no account",
            f"owner {deal['owner']}",
            f"team {deal['team']}",
            *([f"segment {deal['segment']}"] if pd.notna(deal["segment"]) else []),
            *([f"created {created.date().isoformat()}"] if pd.notna(created) else []),
            f"as of {filters.as_of.isoformat()}",
        ]
    )
)

cols = st.columns(5)
cols[0].metric("Amount", ui.money(deal["amount"], currency))
cols[1].metric("Stage", str(deal["stage"]))
close_date = pd.to_datetime(deal["close_date"])
cols[2].metric(
    "Expected close", "none" if pd.isna(close_date) else close_date.date().isoformat()
)
cols[3].metric(
    "Forecast category",
    str(deal["forecast_category"]).replace("_", " ").capitalize()
    if pd.notna(deal["forecast_category"])
    else "none",
)
case_score = ui.query("dealcase.case.case_scores", filters.as_of, [deal_id])
cols[4].metric(
    "Case score",
    "n/a" if case_score.empty else f"{case_score.iloc[0]['case_score']:.0f}",
    help="0-100: how much of the business case is confirmed (the Business "
    "case page shows how it is computed).",
)

is_open = deal["outcome"] == "open"
likelihood_tab, case_tab, editor_tab, history_tab = st.tabs(
    ["Likelihood and risks", "Business case", "Edit the case", "History"]
)

# Likelihood, slip risk, red flags -------------------------------------------------

with likelihood_tab:
    if not is_open:
        st.info(
            f"This deal was {deal['outcome']} by {filters.as_of.isoformat()}; "
            "likelihood and slip risk are for open deals."
        )
    else:
        score = ui.scores(filters.as_of, [deal_id])
        score = score[score["deal_id"] == deal_id]
        left, right = st.columns(2)
        if score.empty:
            left.info("The model gave no likelihood for this deal.")
        else:
            row = score.iloc[0]
            left.metric(
                "Close likelihood",
                ui.percent(row["close_likelihood"]),
                help=f"Base rate {ui.percent(row['base_rate'])} plus the effects "
                "below: the chance the deal is won once it closes, whenever that "
                "is. The forecast multiplies it by the chance it closes this "
                "quarter and scales it by how past quarters turned out (see the "
                "notes on the Forecast page).",
            )
            reasons = pd.DataFrame(row["reasons"] or [])
            if not reasons.empty:
                reasons = reasons.sort_values("effect")
                figure = go.Figure(
                    go.Bar(
                        x=reasons["effect"],
                        y=reasons["text"],
                        orientation="h",
                        marker_color=[
                            "#2e8b57" if e > 0 else "#c0392b" for e in reasons["effect"]
                        ],
                    )
                )
                figure.update_layout(
                    title="What moves the likelihood (points)",
                    xaxis_title="Effect in points of probability",
                    height=max(260, 32 * len(reasons)),
                    margin=dict(t=50, b=40, l=10, r=10),
                )
                left.plotly_chart(figure, key="deal_reasons_chart")

        risk = ui.query("dealcase.slips.slip_risk", filters.as_of, [deal_id])
        risk = risk[risk["deal_id"] == deal_id]
        if risk.empty:
            right.info("No slip risk for this deal.")
        else:
            row = risk.iloc[0]
            right.metric(
                "Slip risk",
                ui.percent(row["slip_risk"]),
                help="Chance the deal does not close by its expected close date.",
            )
            slip_reasons = row["slip_reasons"]
            if isinstance(slip_reasons, list) and slip_reasons:
                right.markdown(
                    "\n".join(
                        f"- {r['text']} ({ui.points(r['effect'] * 100)})"
                        for r in slip_reasons
                    )
                )

    if is_open:
        flags = ui.query(
            "dealcase.case.red_flags", filters.as_of, [deal_id], quarter=filters.quarter
        )
        flags = flags[flags["deal_id"] == deal_id]
        st.markdown("**Red flags**")
        if flags.empty:
            st.success("No red flags.")
        else:
            for text in flags["text"]:
                st.warning(text)

# Business case as of the date -------------------------------------------------

with case_tab:
    ui.case_view(deal_id, filters.as_of, key="deal_case")

with editor_tab:
    if is_open:
        ui.case_editor(deal_id, key="deal_editor", owner=deal["owner"])
        st.markdown("**Buying influences**")
        ui.stakeholder_editor(deal_id, key="deal_people", owner=deal["owner"])
    else:
        st.info("The deal is closed; its case is kept as it was.")

# Versions ---------------------------------------------------------------------

with history_tab:
    versions = ui.query("dealcase.history.deal_versions", [deal_id], filters.as_of)
    if versions.empty:
        st.info("No recorded versions.")
    else:
        st.dataframe(
            versions.drop(columns=["deal_id"]),
            hide_index=True,
            key="deal_versions",
            column_config={
                "valid_from": st.column_config.DatetimeColumn("From"),
                "amount": ui.money_column("Amount", currency),
                "close_date": st.column_config.DateColumn("Expected close"),
                "probability": st.column_config.NumberColumn(
                    "CRM probability", format="percent"
                ),
                "stage": "Stage",
                "forecast_category": "Forecast category",
                "outcome": "Outcome",
                "next_step": "Next step",
                "source": "Recorded from",
            },
        )
