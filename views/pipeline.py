"""Pipeline: the quarter's open deals with likelihood, slip risk and case."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui

filters = ui.filters()
ui.header(
    "Pipeline",
    f"Which open deals may close in {filters.quarter}, how likely each is, "
    "and what is wrong with them?",
)

report = ui.deals_report(filters.quarter, filters.as_of)
deals = pd.DataFrame(report.doc, columns=ui.DEAL_FIELDS)
for note in report.notes:
    st.info(note)
if deals.empty:
    ui.stop_with(
        "info",
        f"No open deals may close in {filters.quarter} as of "
        f"{filters.as_of.isoformat()}. Pick another quarter or as-of date in "
        "the sidebar.",
    )

deals = ui.select(deals, filters)
deals["top_reason"] = [ui.top_reason(r) for r in deals["reasons"]]
deals["flag_count"] = [len(f) if isinstance(f, list) else 0 for f in deals["red_flags"]]
deals["red_flags"] = [
    " ".join(f) if isinstance(f, list) else "" for f in deals["red_flags"]
]

with st.expander("Filter deals", expanded=False):
    left, middle, right = st.columns(3)
    stages = left.multiselect(
        "Stage", sorted(deals["stage"].dropna().unique()), key="pipeline_stages"
    )
    min_likelihood = middle.slider(
        "Close likelihood at least", 0, 100, 0, step=5, key="pipeline_min_likelihood"
    )
    flagged_only = right.checkbox("Only deals with red flags", key="pipeline_flagged")
    search = left.text_input("Name or ID contains", key="pipeline_search")

shown = deals
if stages:
    shown = shown[shown["stage"].isin(stages)]
if min_likelihood:
    shown = shown[shown["close_likelihood"].fillna(0) * 100 >= min_likelihood]
if flagged_only:
    shown = shown[shown["flag_count"] > 0]
if search:
    text = search.lower()
    shown = shown[
        shown["name"].astype(str).str.lower().str.contains(text, regex=False)
        | shown["deal_id"].astype(str).str.lower().str.contains(text, regex=False)
    ]

counts = st.columns(4)
counts[0].metric("Open deals", f"{len(shown):,}")
counts[1].metric("Amount", ui.money_short(shown["amount"].sum(), filters.currency))
counts[2].metric(
    "With red flags", f"{int((shown['flag_count'] > 0).sum()):,}", border=False
)
no_case = ui.query("dealcase.store.table_counts").get("case_answers", 0) == 0
counts[3].metric(
    "Median case score",
    "none recorded"
    if no_case
    else "n/a"
    if shown.empty
    else f"{shown['case_score'].median():.0f}",
    help="0 to 100: how much of the business case is confirmed.",
)
if no_case:
    st.info(
        "No business case is recorded in this file yet, so every case score is "
        "0 and the red flags name what is unknown. Record answers on the "
        "Business case page, or import them with `python -m dealcase case import`."
    )

# The judgements first, so they stay in view on a laptop screen.
columns = [
    "deal_id",
    "name",
    "amount",
    "close_likelihood",
    "slip_risk",
    "case_score",
    "flag_count",
    "close_date",
    "stage",
    "owner",
    "team",
    "top_reason",
    "red_flags",
]
if deals["close_date"].isna().all():
    columns.remove("close_date")
    st.caption("The source gives no expected close dates for these open deals.")
st.caption(
    "Close likelihood is the chance a deal is won once it closes, whenever "
    "that is; the forecast multiplies it by the chance it closes this quarter "
    "and scales it by how past quarters turned out (its notes say by how "
    "much). Click a row, or its 'open' link, to see the deal."
)
ui.deal_table(
    shown[columns],
    key="pipeline_deals",
    filters=filters,
    column_config={
        "deal_id": "ID",
        "name": "Deal",
        "amount": ui.money_column("Amount", filters.currency),
        "close_date": st.column_config.DateColumn("Expected close"),
        "close_likelihood": ui.percent_column("Close likelihood"),
        "slip_risk": ui.percent_column("Slip risk"),
        "case_score": st.column_config.NumberColumn("Case score", format="%.0f"),
        "flag_count": st.column_config.NumberColumn("Red flags"),
        "top_reason": "Top reason",
        "red_flags": "Flags",
    },
)
