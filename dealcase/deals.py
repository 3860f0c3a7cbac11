"""The open deals of a quarter with everything a deal review needs: close
likelihood and its reasons, slip risk, case score and red flags.

This is the table behind the Pipeline page and ``python -m dealcase deals``.
"""

from __future__ import annotations

import datetime as dt
import logging

import duckdb
import numpy as np
import pandas as pd

from dealcase.errors import NotEnoughDataError
from dealcase.history import deals_as_of
from dealcase.periods import fiscal_start_month, parse_quarter, resolve_as_of
from dealcase.report import Report

logger = logging.getLogger(__name__)

DEAL_FIELDS = [
    "deal_id",
    "name",
    "owner",
    "team",
    "stage",
    "amount",
    "close_date",
    "close_likelihood",
    "slip_risk",
    "case_score",
    "red_flags",
    "reasons",
]


def quarter_pipeline(
    con: duckdb.DuckDBPyConnection, quarter: str, as_of: dt.date
) -> pd.DataFrame:
    """Deals open at the end of ``as_of`` that may still close in ``quarter``.

    That is every open deal expected to close by the quarter's end: those
    dated inside it, overdue ones (expected before it, still open) and those
    with no expected close date at all, which the forecast times from
    history. Columns are those of :func:`dealcase.history.deals_as_of`.
    """
    period = parse_quarter(quarter, fiscal_start_month(con))
    states = deals_as_of(con, as_of, include_closed=False)
    close = pd.to_datetime(states["close_date"])
    in_reach = close.isna() | (close <= pd.Timestamp(period.end))
    return states.loc[in_reach].reset_index(drop=True)


def deal_table(
    con: duckdb.DuckDBPyConnection,
    quarter: str,
    as_of: dt.date | None = None,
    *,
    model=None,
) -> tuple[pd.DataFrame, list[str]]:
    """One row per open deal of the quarter with :data:`DEAL_FIELDS`.

    Returns the table, sorted by amount at stake (amount times likelihood),
    and notes on parts that could not be computed (for instance a model that
    has too little history), so a caller can say so rather than hide it.

    ``amount`` is in the reporting currency; ``close_likelihood`` and
    ``slip_risk`` are probabilities (0..1); ``case_score`` is 0..100;
    ``reasons`` is a list of ``{"text", "effect"}`` with effects in points of
    probability; ``red_flags`` a list of plain sentences.
    """
    from dealcase import case, slips
    from dealcase.model import score_deals

    as_of = resolve_as_of(con, as_of)
    pipeline = quarter_pipeline(con, quarter, as_of)
    notes: list[str] = []
    if pipeline.empty:
        return pd.DataFrame(columns=DEAL_FIELDS), notes
    deal_ids = pipeline["deal_id"].tolist()

    try:
        scores = score_deals(con, as_of, deal_ids, model=model)
    except NotEnoughDataError as error:
        notes.append(f"no close likelihood: {error}")
        scores = pd.DataFrame(
            {
                "deal_id": deal_ids,
                "close_likelihood": np.nan,
                "reasons": [[] for _ in deal_ids],
            }
        )
    table = pipeline.merge(
        scores[["deal_id", "close_likelihood", "reasons"]], on="deal_id", how="left"
    )

    risk = slips.slip_risk(con, as_of, deal_ids)
    table = table.merge(risk[["deal_id", "slip_risk"]], on="deal_id", how="left")

    quality = case.case_scores(con, as_of, deal_ids)
    table = table.merge(quality[["deal_id", "case_score"]], on="deal_id", how="left")

    flags = case.red_flags(con, as_of, deal_ids, quarter=quarter)
    flag_texts = flags.groupby("deal_id")["text"].agg(list)
    table["red_flags"] = [flag_texts.get(d, []) for d in table["deal_id"]]
    table["reasons"] = [r if isinstance(r, list) else [] for r in table["reasons"]]

    table["close_date"] = pd.to_datetime(table["close_date"]).dt.date
    at_stake = table["amount"].fillna(0) * table["close_likelihood"].fillna(0)
    table = table.assign(_at_stake=at_stake).sort_values(
        ["_at_stake", "deal_id"], ascending=[False, True]
    )
    return table[DEAL_FIELDS].reset_index(drop=True), notes


def deals_report(
    con: duckdb.DuckDBPyConnection,
    *,
    quarter: str,
    as_of: dt.date | None = None,
    model=None,
) -> Report:
    """``python -m dealcase deals``: the deal table as a report.

    ``model``: a fitted close-likelihood model to score with (the app passes
    the one it keeps in memory); default as :func:`dealcase.model.score_deals`.
    """
    table, notes = deal_table(con, quarter, as_of, model=model)
    printable = table.assign(
        red_flags=[len(f) for f in table["red_flags"]],
        top_reason=[_top_reason(r) for r in table["reasons"]],
    ).drop(columns=["reasons"])
    return Report(
        doc=table.to_dict(orient="records"),
        table=printable,
        title=f"Open deals that may close in {quarter}",
        notes=notes,
    )


def _top_reason(reasons: list[dict]) -> str:
    if not reasons:
        return ""
    top = max(reasons, key=lambda r: abs(r.get("effect", 0.0)))
    return f"{top['text']} ({top['effect']:+.0f} pts)"
