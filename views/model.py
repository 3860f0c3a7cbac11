"""Model: how good the close likelihoods and the forecast ranges have been."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui

filters = ui.filters()
currency = filters.currency
ui.header(
    "Model",
    "How far can the close likelihoods and the forecast ranges be trusted, "
    "measured on deals and quarters the model had not seen?",
)

# The stored model -----------------------------------------------------------------

stored = ui.query("dealcase.model.load_model", filters.today)
if stored is None:
    st.info(
        "No model is stored in this database, so the app fits one in memory the "
        "first time a page needs it (a while on large data, again after every "
        "restart). Store one to make pages open at once."
    )
else:
    st.caption(
        f"Stored model: {stored.kind}, fitted on what was known at the end of "
        f"{stored.as_of}, {stored.closed_deals:,} closed deals."
    )
if st.button(
    f"Train and store the model as of {filters.today.isoformat()}",
    key="model_train",
    help="The same as 'python -m dealcase train'.",
):
    from dealcase.model import train_model

    with st.spinner("Training the close-likelihood model..."):
        trained = ui.guarded(ui.write, train_model, as_of=filters.today)
    st.toast(f"Stored a {trained.doc['kind']} model as of {trained.doc['as_of']}.")
    st.rerun()

# Close likelihood ---------------------------------------------------------------

st.subheader("Close likelihood")
with st.spinner("Evaluating the model on past deals..."):
    evaluation = ui.query("dealcase.model.evaluate_model")
for note in evaluation.notes:
    st.info(note)
doc = evaluation.doc

cols = st.columns(5)
cols[0].metric("Deals evaluated", f"{doc.get('rows') or 0:,}")
cols[1].metric(
    "AUC",
    ui.number(doc.get("auc")),
    help="Chance a won deal scores above a lost one (1 is perfect, 0.5 is chance).",
)
cols[2].metric(
    "Brier score",
    ui.number(doc.get("brier")),
    help="Mean squared error of the probabilities (lower is better).",
)
cols[3].metric("Log loss", ui.number(doc.get("log_loss")), help="Lower is better.")
cols[4].metric(
    "Calibration error (ECE)",
    ui.number(doc.get("ece")),
    help="Average gap between predicted and observed win rates (lower is better).",
)

model_info = doc.get("model") or {}
st.caption(
    f"Method: {doc.get('method', 'holdout')} on {doc.get('rows') or 0:,} deal "
    f"snapshots the model had not seen; model: {model_info.get('kind', 'n/a')}."
)

baselines = doc.get("baselines") or {}
if baselines:
    rows = [
        {
            "model": "DealCase",
            **{k: doc.get(k) for k in ("auc", "brier", "log_loss", "ece")},
        }
    ]
    rows += [
        {"model": f"Baseline: {ui.label(name).lower()}", **metrics}
        for name, metrics in baselines.items()
    ]
    st.markdown("**Against simple baselines**")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="model_baselines",
        column_config={
            "model": st.column_config.TextColumn("Model"),
            "rows": None,  # every baseline is scored on the same deals as DealCase
            **{
                c: st.column_config.NumberColumn(name, format="%.3f")
                for c, name in (
                    ("auc", "AUC"),
                    ("brier", "Brier score"),
                    ("log_loss", "Log loss"),
                    ("ece", "Calibration error"),
                )
            },
        },
    )
    st.caption("Each baseline is scored on the same deal snapshots as DealCase.")

reliability = pd.DataFrame(doc.get("reliability") or [])
if not reliability.empty:
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect",
            line_dash="dash",
            line_color="#999",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=reliability["predicted"],
            y=reliability["observed"],
            mode="lines+markers",
            name="DealCase",
            marker_size=[
                max(6, min(24, n**0.5))
                for n in reliability.get("count", [36] * len(reliability))
            ],
        )
    )
    figure.update_layout(
        title="Reliability: predicted likelihood against the share actually won",
        xaxis_title="Predicted close likelihood",
        yaxis_title="Share won",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".0%",
        height=380,
        margin=dict(t=60, b=40, l=40, r=20),
    )
    st.plotly_chart(figure, key="model_reliability")

# Forecast backtest ----------------------------------------------------------------

st.subheader("Forecast backtest")
st.markdown(
    "Each past quarter forecast as the data stood then, against what was "
    "actually booked."
)
available = ui.query("dealcase.backtest.past_quarters")[0]
names = [q.name for q in available]
if not names:
    ui.stop_with(
        "info",
        "There are no finished quarters with closed history before them to "
        "backtest yet. Import more history on the Data page.",
    )
chosen = st.multiselect(
    "Quarters to replay",
    names,
    default=names[-1:],
    key="model_backtest_quarters",
    help="Each quarter is forecast as of its first day and of weeks 4 and 8, "
    "with the model refitted on what was known then (some seconds per date).",
)
if st.button("Run the backtest", key="model_backtest_run", type="primary"):
    st.session_state["model_backtest_requested"] = True
if not chosen or not st.session_state.get("model_backtest_requested"):
    ui.stop_with(
        "info",
        "Choose quarters and press 'Run the backtest'; results are kept until "
        "the data changes.",
    )
with st.spinner("Replaying past quarters as they stood..."):
    backtest = ui.query("dealcase.backtest.backtest_report", quarters=sorted(chosen))
for note in backtest.notes:
    st.info(note)
quarters = pd.DataFrame(backtest.doc["quarters"])
summary = backtest.doc["summary"]

cols = st.columns(3)
cols[0].metric(
    "Forecasts replayed",
    f"{len(quarters)}",
    help="Each quarter is forecast as of its first day and of weeks 4 and 8.",
)
cols[1].metric(
    "Mean absolute % error (P50)",
    ui.error_percent(summary.get("mape")),
)
cols[2].metric(
    "Coverage of P10-P90",
    ui.percent(summary.get("coverage")),
    help="Share of quarters whose actual fell inside the P10 to P90 range; "
    "about 80% is right.",
)

figure = go.Figure()
figure.add_trace(
    go.Scatter(
        x=quarters["quarter"],
        y=quarters["p50"],
        mode="markers",
        name="P50 with P10-P90",
        error_y=dict(
            type="data",
            symmetric=False,
            array=quarters["p90"] - quarters["p50"],
            arrayminus=quarters["p50"] - quarters["p10"],
        ),
    )
)
figure.add_trace(
    go.Scatter(
        x=quarters["quarter"],
        y=quarters["actual"],
        mode="markers",
        name="actual",
        marker=dict(symbol="diamond", size=11, color="#c0392b"),
    )
)
figure.update_layout(
    title="Actual against the forecast range, per quarter",
    yaxis_title=f"Quarter total ({currency})",
    yaxis_tickprefix=ui.CURRENCY_SYMBOLS.get(currency, ""),
    yaxis_tickformat="~s",
    height=380,
    margin=dict(t=60, b=40, l=40, r=20),
)
st.plotly_chart(figure, key="model_backtest_chart")
BASELINE_NAMES = {
    "weighted_pipeline": "weighted pipeline",
    "commit": "commit roll-up",
    "win_rate": "trailing win rate x pipeline",
    "last_quarter": "last quarter carried forward",
}
st.dataframe(
    quarters.assign(abs_pct_error=quarters["abs_pct_error"] * 100),
    hide_index=True,
    key="model_backtest",
    column_config={
        "quarter": "Quarter",
        "as_of": st.column_config.DateColumn("As of"),
        **{
            c: ui.money_column(c.upper() if c[0] == "p" else "Actual", currency)
            for c in ("actual", "p10", "p50", "p90")
        },
        "abs_pct_error": ui.error_column("Error of the P50"),
        "covered": st.column_config.CheckboxColumn("Inside P10-P90"),
        **{
            name: ui.money_column(f"Baseline: {text}", currency)
            for name, text in BASELINE_NAMES.items()
        },
    },
)

baselines = summary.get("baselines") or {}
if baselines:
    st.markdown("**Against simple baselines (mean absolute % error of the P50)**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "forecast": "DealCase",
                    "mape": summary["mape"] * 100,
                    "rows": len(quarters),
                }
            ]
            + [
                {
                    "forecast": f"Baseline: {BASELINE_NAMES.get(name, name)}",
                    "mape": None if value["mape"] is None else value["mape"] * 100,
                    "rows": value["rows"],
                }
                for name, value in baselines.items()
            ]
        ),
        hide_index=True,
        key="model_backtest_baselines",
        column_config={
            "forecast": "Forecast",
            "mape": ui.error_column("Mean absolute % error"),
            "rows": "Forecasts scored",
        },
    )
