"""Business case: what reps have really learned about their deals, recorded and
scored, and where coaching pays most."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui

filters = ui.filters()
currency = filters.currency
ui.header(
    "Business case",
    "What has the rep really established about each deal (pain, budget, "
    "economic buyer, compelling event, ...), and which gaps should the next "
    "conversation close?",
)

today = ui.facts()["today"]
states = ui.query("dealcase.history.deals_as_of", today)
open_deals = ui.select(states[states["outcome"] == "open"], filters).sort_values(
    ["owner", "name"]
)
if open_deals.empty:
    ui.stop_with(
        "info",
        "There are no open deals for this team and owner. Change the team or "
        "owner in the sidebar.",
    )

labels = {
    row.deal_id: f"{row.name} ({row.deal_id}, {row.owner})"
    for row in open_deals.itertuples()
}
wanted = st.query_params.get("deal")
deal_id = st.selectbox(
    "Deal",
    list(labels),
    index=list(labels).index(wanted) if wanted in labels else 0,
    format_func=labels.get,
    key="business_case_deal",
)
if st.query_params.get("deal") != deal_id:
    st.query_params["deal"] = deal_id
deal = open_deals[open_deals["deal_id"] == deal_id].iloc[0]
st.page_link(
    ui.DEAL_PAGE,
    label=f"Open the deal page of {deal['name']}",
    query_params=ui.view_params(filters, deal=deal_id),
)

# Score, stale answers and red flags, as of the data's present ---------------------

score = ui.query("dealcase.case.case_scores", today, [deal_id])
flags = ui.query("dealcase.case.red_flags", today, [deal_id])
row = score.iloc[0]
cols = st.columns(4)
cols[0].metric("Case score", f"{row['case_score']:.0f}", border=True)
cols[1].metric("Answered questions", f"{int(row['answered_count'])}", border=True)
cols[2].metric("Stale answers", f"{int(row['stale_count'])}", border=True)
cols[3].metric("Red flags", f"{len(flags)}", border=True)
with st.expander("How the case score is computed"):
    st.markdown(ui.score_definition())
for text in flags["text"]:
    st.warning(text)

record_tab, people_tab, past_tab, history_tab, coaching_tab = st.tabs(
    ["Record answers", "Buying influences", "Case on a date", "Changes", "Coaching"]
)

with record_tab:
    ui.case_editor(deal_id, key="business_case_editor", owner=deal["owner"])

with people_tab:
    people = ui.query("dealcase.case.stakeholders_as_of", deal_id, today)
    if people.empty:
        st.info("No buying influences recorded yet; add the first one below.")
    else:
        st.dataframe(
            people.drop(columns=["deal_id", "stakeholder_id"]),
            hide_index=True,
            key="business_case_people",
            column_config={
                "last_contact": st.column_config.DateColumn("Last contact"),
                "recorded_at": st.column_config.DatetimeColumn("Recorded"),
            },
        )
    ui.stakeholder_editor(deal_id, key="business_case_people", owner=deal["owner"])

with past_tab:
    day = st.date_input(
        "The case as it stood at the end of",
        value=today,
        max_value=max(today, filters.as_of),
        key="business_case_day",
    )
    past_score = ui.query("dealcase.case.case_scores", day, [deal_id])
    if past_score.empty:
        st.info(f"{deal_id} did not exist on {day.isoformat()}.")
    else:
        st.metric(
            f"Case score on {day.isoformat()}",
            f"{past_score.iloc[0]['case_score']:.0f}",
        )
        ui.case_view(deal_id, day, key="business_case_past")

with history_tab:
    changes = ui.query("dealcase.case.case_history", deal_id)
    if changes.empty:
        st.info("Nothing has been recorded for this deal yet.")
    else:
        st.dataframe(
            changes[["recorded_at", "author", "change", "evidence"]],
            hide_index=True,
            key="business_case_changes",
            column_config={
                "recorded_at": st.column_config.DatetimeColumn("Recorded"),
                "author": "By",
                "change": st.column_config.TextColumn("Change", width="large"),
                "evidence": st.column_config.TextColumn("Evidence", width="large"),
            },
        )

# Coaching ---------------------------------------------------------------------

with coaching_tab:
    by = st.segmented_control(
        "Gaps per", ["owner", "team"], default="owner", key="business_case_by"
    )
    coaching = ui.query(
        "dealcase.coaching.coaching",
        today,
        owner=filters.owner,
        team=filters.team,
        quarter=filters.quarter,
        by=by or "owner",
    )
    st.caption(coaching["definition"].replace("\n", " "))
    gaps = pd.DataFrame(coaching["gaps"])
    if gaps.empty:
        st.info(f"No open deals expected to close in {filters.quarter} to coach on.")
    else:
        top = gaps.sort_values("value_at_stake", ascending=False).head(15)
        figure = go.Figure(
            go.Bar(
                x=top["value_at_stake"],
                y=[f"{g}: {label}" for g, label in zip(top["group"], top["label"])],
                orientation="h",
                marker_color="#c0392b",
            )
        )
        figure.update_layout(
            title="Where gaps put the most money at stake",
            xaxis_title=f"Value at stake ({currency})",
            yaxis=dict(autorange="reversed"),
            height=max(300, 28 * len(top)),
            margin=dict(t=50, b=40, l=10, r=10),
        )
        st.plotly_chart(figure, key="business_case_gaps_chart")
        st.dataframe(
            gaps[["group", "label", "deals_lacking", "open_deals", "value_at_stake"]],
            hide_index=True,
            key="business_case_gaps",
            column_config={
                "group": by.capitalize() if by else "Owner",
                "label": "Dimension",
                "deals_lacking": "Deals lacking it",
                "open_deals": "Open deals",
                "value_at_stake": ui.money_column("Value at stake", currency),
            },
        )
        st.markdown("**Next questions per deal**")
        coached = pd.DataFrame(coaching["deals"])
        coached["next_questions"] = [
            " · ".join(q["text"] for q in questions)
            for questions in coached["next_questions"]
        ]
        coached["weakest_dimension"] = coached["weakest_dimension"].map(
            lambda code: ui.dimension_labels().get(code, code)
        )
        ui.deal_table(
            coached[
                [
                    "deal_id",
                    "name",
                    "owner",
                    "amount",
                    "case_score",
                    "weakest_dimension",
                    "next_questions",
                ]
            ],
            key="business_case_coaching",
            filters=filters,
            column_config={
                "amount": ui.money_column("Amount", currency),
                "case_score": st.column_config.NumberColumn(
                    "Case score", format="%.0f"
                ),
                "weakest_dimension": "Weakest dimension",
                "next_questions": st.column_config.TextColumn(
                    "Ask next", width="large"
                ),
            },
        )
