"""Deals as they stood on a past date, rebuilt from ``deal_history``.

Every importer and every edit writes a full version of a deal's moving fields
(stage, amount, close date, forecast category, probability, outcome) with the
moment it became true. The state on a date is the last version that became
true before the end of that day (an ASOF join), so nothing learned later is
seen.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from dealcase.periods import end_of_day

STATE_COLUMNS = [
    "deal_id",
    "name",
    "account",
    "owner",
    "team",
    "segment",
    "created_on",
    "source",
    "attributes",
    "valid_from",
    "stage",
    "amount",
    "close_date",
    "forecast_category",
    "probability",
    "outcome",
    "next_step",
]


def deals_as_of(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    *,
    include_closed: bool = True,
) -> pd.DataFrame:
    """Every deal that existed at the end of ``as_of``, in its state then.

    Returns one row per deal with :data:`STATE_COLUMNS`. ``outcome`` is the
    outcome known on that date (``open`` for a deal won later). Fixed fields
    (owner, team, account, attributes) come from the deal itself; they are
    not versioned. Deals created after ``as_of`` are left out.
    """
    cutoff = end_of_day(as_of)
    closed_filter = "" if include_closed else "AND h.outcome = 'open'"
    return con.execute(
        f"""
        WITH probe AS (
            SELECT d.*, CAST(? AS TIMESTAMP) AS cutoff
            FROM deals d
            WHERE d.created_on IS NULL OR d.created_on <= CAST(? AS DATE)
        )
        SELECT p.deal_id, p.name, p.account, p.owner, p.team, p.segment,
               p.created_on, p.source, p.attributes,
               h.valid_from, h.stage, h.amount, h.close_date,
               h.forecast_category, h.probability, h.outcome,
               h.next_step
        FROM probe p
        ASOF JOIN deal_history h
          ON p.deal_id = h.deal_id AND p.cutoff > h.valid_from
        WHERE true {closed_filter}
        ORDER BY p.deal_id
        """,
        [cutoff, as_of],
    ).df()


def deal_versions(
    con: duckdb.DuckDBPyConnection,
    deal_ids: list[str] | None = None,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """The versions of deals in time order, optionally only those known at the
    end of ``as_of``."""
    clauses, params = [], []
    if deal_ids is not None:
        clauses.append("list_contains(?, deal_id)")
        params.append(list(deal_ids))
    if as_of is not None:
        clauses.append("valid_from < ?")
        params.append(end_of_day(as_of))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return con.execute(
        f"SELECT * FROM deal_history {where} ORDER BY deal_id, valid_from", params
    ).df()
