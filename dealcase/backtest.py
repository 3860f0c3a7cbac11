"""Forecast past quarters as they stood on past dates, and score the result.

Each past quarter is forecast as of its first day and as of the first days of
its weeks 4 and 8, with a close-likelihood model fitted
(:func:`dealcase.model.fit_model`) on what was known at the end of the
quarter's first day only and reused for the later dates (a model that knows
less than the as-of date leaks nothing; one fit per quarter, remembered by
:func:`dealcase.forecast.fitted_model`). The
P50 is compared with what was actually won, and the P10-P90 range is checked
for covering it. Four simple baselines are scored beside it:

- ``weighted_pipeline``: booked plus each open deal's amount times its own
  probability where the source has one, else its stage's default;
- ``commit``: booked plus the commit category (only where categories exist);
- ``win_rate``: booked plus the trailing year's win rate (by value) times
  the open pipeline;
- ``last_quarter``: the previous quarter's bookings carried forward.
"""

from __future__ import annotations

import datetime as dt
import logging

import duckdb
import numpy as np
import pandas as pd

from dealcase.errors import DealCaseError, NotEnoughDataError
from dealcase.forecast import fitted_model, forecast_quarter
from dealcase.periods import (
    Quarter,
    fiscal_start_month,
    parse_date,
    parse_quarter,
    quarter_of,
)
from dealcase.report import Report
from dealcase.store import get_meta
from dealcase.timing import open_deal_state

logger = logging.getLogger(__name__)

WEEK_OFFSETS_DAYS = (0, 21, 49)  # first day, week 4, week 8
BACKTEST_DRAWS = 4000


def past_quarters(con: duckdb.DuckDBPyConnection) -> tuple[list[Quarter], list[dict]]:
    """Quarters that ended on or before meta ``today`` and have closed deals
    before they start; and the skipped ones with the reason."""
    start_month = fiscal_start_month(con)
    today = get_meta(con, "today")
    bounds = con.execute("SELECT min(created_on), max(closed_on) FROM deals").fetchone()
    if bounds[0] is None:
        return [], []
    today = parse_date(today) if today else bounds[1]
    first_close = con.execute(
        "SELECT min(closed_on) FROM deals WHERE outcome IN ('won', 'lost')"
    ).fetchone()[0]
    quarter = quarter_of(bounds[0], start_month)
    chosen, skipped = [], []
    while quarter.end <= today:
        if first_close is None or first_close >= quarter.start:
            skipped.append(
                {"quarter": quarter.name, "reason": "no closed history before it"}
            )
        else:
            chosen.append(quarter)
        quarter = quarter.next()
    return chosen, skipped


def backtest_report(
    con: duckdb.DuckDBPyConnection, *, quarters=None, seed: int = 0
) -> Report:
    """Backtest the forecast on past quarters.

    Parameters
    ----------
    quarters
        Quarter names (``["2017Q2", "2017Q3"]``); default every past quarter
        with closed history before it (see :func:`past_quarters`).

    Returns
    -------
    Report
        ``doc``: ``quarters`` (rows of ``quarter, as_of, actual, p10, p50,
        p90, abs_pct_error, covered`` plus each baseline's value),
        ``summary`` (``mape``, ``coverage``, ``baselines``: name ->
        ``{"mape", "rows"}``, and ``probability_source``), ``skipped``.
        Percentages are fractions (0.05 = 5%).
    """
    start_month = fiscal_start_month(con)
    available, skipped = past_quarters(con)
    if quarters:
        asked = [parse_quarter(q, start_month) for q in quarters]
        names = {q.name for q in available}
        chosen = [q for q in asked if q.name in names]
        known = {s["quarter"] for s in skipped}
        skipped = [s for s in skipped if s["quarter"] in {q.name for q in asked}] + [
            {
                "quarter": q.name,
                "reason": "not a finished quarter of the data (it ends after "
                "the data's present or before its first deal)",
            }
            for q in asked
            if q.name not in names and q.name not in known
        ]
        if not chosen:
            raise NotEnoughDataError(
                "none of the quarters asked can be backtested: "
                + "; ".join(f"{s['quarter']}: {s['reason']}" for s in skipped)
            )
    else:
        chosen = available
    if not chosen:
        raise NotEnoughDataError(
            "no past quarter has closed history before it; import more history"
        )

    rows = []
    for quarter in chosen:
        actual = _won_in(con, quarter.start, quarter.end)
        previous = _won_in(con, quarter.previous().start, quarter.previous().end)
        # One fit per quarter, on what was known at the end of its first
        # day, reused for its later as-of dates (fitted on less: leak-free).
        try:
            fitted = fitted_model(con, quarter.start)
        except DealCaseError as error:
            logger.info("%s as of %s: %s", quarter.name, quarter.start, error)
            fitted = None
        for offset in WEEK_OFFSETS_DAYS:
            as_of = quarter.start + dt.timedelta(days=offset)
            doc = forecast_quarter(
                con, quarter, as_of, seed=seed, draws=BACKTEST_DRAWS, model=fitted
            )
            baselines = _baselines(con, quarter, as_of, doc, previous)
            rows.append(
                {
                    "quarter": quarter.name,
                    "as_of": as_of.isoformat(),
                    "actual": actual,
                    "p10": doc["p10"],
                    "p50": doc["p50"],
                    "p90": doc["p90"],
                    "abs_pct_error": _pct_error(doc["p50"], actual),
                    "covered": bool(doc["p10"] <= actual <= doc["p90"]),
                    **{name: value for name, value in baselines.items()},
                }
            )
            logger.info(
                "%s as of %s: actual %.0f, P50 %.0f",
                quarter.name,
                as_of,
                actual,
                doc["p50"],
            )

    table = pd.DataFrame(rows)
    summary = {
        "mape": float(table["abs_pct_error"].mean()),
        "coverage": float(table["covered"].mean()),
        "baselines": {},
        "probability_source": _probability_source(con),
    }
    for name in ("weighted_pipeline", "commit", "win_rate", "last_quarter"):
        errors = [
            _pct_error(value, actual)
            for value, actual in zip(table[name], table["actual"], strict=True)
            if value is not None and not pd.isna(value)
        ]
        errors = [e for e in errors if e is not None]
        summary["baselines"][name] = {
            "mape": float(np.mean(errors)) if errors else None,
            "rows": len(errors),
        }
    doc = {"quarters": rows, "summary": summary, "skipped": skipped}
    return Report(
        doc=doc,
        table=table[
            [
                "quarter",
                "as_of",
                "actual",
                "p10",
                "p50",
                "p90",
                "abs_pct_error",
                "covered",
                "weighted_pipeline",
                "win_rate",
                "last_quarter",
            ]
        ],
        title="Backtest: forecast as it stood vs what was won",
        notes=[
            f"MAPE {summary['mape']:.1%}, P10-P90 coverage {summary['coverage']:.0%}"
        ]
        + [
            f"baseline {name}: MAPE "
            + ("n/a" if b["mape"] is None else f"{b['mape']:.1%}")
            for name, b in summary["baselines"].items()
        ],
    )


def _pct_error(value, actual) -> float | None:
    if value is None or not actual:
        return None
    return float(abs(value - actual) / actual)


def _won_in(con, start: dt.date, end: dt.date) -> float:
    value = con.execute(
        "SELECT sum(amount) FROM deals WHERE outcome = 'won' "
        "AND closed_on BETWEEN ? AND ?",
        [start, end],
    ).fetchone()[0]
    return float(value or 0.0)


def _baselines(con, quarter: Quarter, as_of: dt.date, doc: dict, previous: float):
    booked = doc["booked"]
    open_deals = open_deal_state(con, as_of)
    in_quarter = open_deals["close_date"].isna() | (
        pd.to_datetime(open_deals["close_date"]) <= pd.Timestamp(quarter.end)
    )
    candidates = open_deals[in_quarter]
    defaults = dict(
        con.execute("SELECT stage, default_probability FROM stages").fetchall()
    )
    probability = candidates["probability"].astype(float)
    probability = probability.fillna(candidates["stage"].map(defaults).astype(float))
    weighted = booked + float((candidates["amount"] * probability.fillna(0)).sum())

    closed = con.execute(
        """
        SELECT sum(CASE WHEN outcome = 'won' THEN amount END),
               sum(amount)
        FROM deals WHERE outcome IN ('won', 'lost') AND closed_on BETWEEN ? AND ?
        """,
        [as_of - dt.timedelta(days=364), as_of],
    ).fetchone()
    win_rate = (closed[0] or 0.0) / closed[1] if closed[1] else None
    by_rate = (
        None
        if win_rate is None
        else booked + win_rate * float(candidates["amount"].sum())
    )
    return {
        "weighted_pipeline": weighted,
        "commit": doc["reps_call"]["commit"],
        "win_rate": by_rate,
        "last_quarter": previous if previous > 0 else None,
    }


def _probability_source(con) -> str:
    has_own = con.execute(
        "SELECT count(*) FROM deal_history WHERE probability IS NOT NULL"
    ).fetchone()[0]
    return (
        "each deal's own probability, else its stage's default"
        if has_own
        else "each stage's default probability (the source has none per deal)"
    )
