"""The pipeline of a quarter as it stood on any date, and what changed it.

The pipeline of a quarter on a date is every deal that was open at the end of
that day with an expected close date inside the quarter (see
:func:`dealcase.history.deals_as_of`). Between two dates its value moves
because deals are created (``new``), move into the quarter (``pulled_in``) or
out of it (``pushed_out``), are ``won`` or ``lost``, or change amount
(``increased``, ``decreased``). :func:`pipeline_changes` splits the move into
those steps so that the start value plus the signed steps is the end value.

:func:`deal_movements` counts what happened to each deal across its versions:
pushes and pull-ins of the close date, stage moves and amount changes. Rows
of ``deal_history`` are versions, not changes: a version that repeats the
previous close date is not a push.
"""

from __future__ import annotations

import datetime as dt
import logging

import duckdb
import numpy as np
import pandas as pd

from dealcase.errors import DealCaseError
from dealcase.history import deals_as_of
from dealcase.periods import (
    Quarter,
    end_of_day,
    fiscal_start_month,
    parse_date,
    parse_quarter,
    quarter_of,
    resolve_as_of,
)
from dealcase.report import Report
from dealcase.store import get_meta

logger = logging.getLogger(__name__)

# The steps of the waterfall in order; pushed_out, won, lost and decreased
# carry negative amounts.
STEP_KINDS = ("new", "pulled_in", "pushed_out", "won", "lost", "increased", "decreased")


def resolve_quarter(
    con: duckdb.DuckDBPyConnection, quarter: str | Quarter | None, day: dt.date
) -> Quarter:
    """``quarter`` read under the configured fiscal year, or the quarter of
    ``day`` when it is None."""
    start_month = fiscal_start_month(con)
    if quarter is None:
        return quarter_of(day, start_month)
    if isinstance(quarter, Quarter):
        return quarter
    return parse_quarter(quarter, start_month)


def next_steps_versioned(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``deal_history`` carries next steps: some version holds a
    non-blank one.

    The demo writes the next step into every version; an import whose source
    keeps only the current next step leaves the history's column empty, and
    then a past deal's next step as it stood then is not known.
    """
    row = con.execute(
        "SELECT EXISTS (SELECT 1 FROM deal_history "
        "WHERE nullif(trim(next_step), '') IS NOT NULL)"
    ).fetchone()
    return bool(row[0])


def pipeline_as_of(
    con: duckdb.DuckDBPyConnection,
    quarter: str | Quarter,
    as_of: dt.date | str,
    team: str | None = None,
) -> pd.DataFrame:
    """The pipeline of ``quarter`` as it stood at the end of ``as_of``.

    Returns the open deals (in their state on that date, columns of
    :data:`dealcase.history.STATE_COLUMNS`) whose expected close date then fell
    inside the quarter, optionally only those of ``team``. The quarter and the
    date are independent: the pipeline of 2025Q3 as of 2025-05-01 is what was
    expected then to close in Q3. ``next_step`` is the next step of that
    version too (empty when the source does not version it, see
    :func:`next_steps_versioned`).
    """
    as_of = parse_date(as_of)
    quarter = resolve_quarter(con, quarter, as_of)
    state = deals_as_of(con, as_of, include_closed=False)
    close = pd.to_datetime(state["close_date"])
    inside = (close >= pd.Timestamp(quarter.start)) & (
        close <= pd.Timestamp(quarter.end)
    )
    if team is not None:
        inside &= state["team"] == team
    return state[inside.fillna(False)].reset_index(drop=True)


def deal_movements(
    con: duckdb.DuckDBPyConnection,
    deal_ids: list[str] | None = None,
    as_of: dt.date | str | None = None,
) -> pd.DataFrame:
    """How each deal's close date, stage and amount moved across its versions.

    Consecutive versions of ``deal_history`` are compared (a window over each
    deal's versions in time order); only versions known at the end of
    ``as_of`` are used when it is given.

    Returns
    -------
    DataFrame
        One row per deal with versions: ``deal_id``, ``versions``, ``pushes``
        (close date moved later), ``pull_ins`` (moved earlier), ``push_days``
        (days added by all pushes), ``stage_moves``, ``amount_changes``,
        ``first_close_date`` and ``close_date`` (first and latest expected
        close), ``last_push_on`` (time of the latest push, NaT when none).
    """
    clauses, params = [], []
    if deal_ids is not None:
        clauses.append("list_contains(?, deal_id)")
        params.append([str(d) for d in deal_ids])
    if as_of is not None:
        clauses.append("valid_from < ?")
        params.append(end_of_day(parse_date(as_of)))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return con.execute(
        f"""
        WITH versions AS (
            SELECT deal_id, valid_from, stage, amount, close_date,
                   lag(stage) OVER w AS prev_stage,
                   lag(amount) OVER w AS prev_amount,
                   lag(close_date) OVER w AS prev_close,
                   row_number() OVER w AS version
            FROM deal_history
            {where}
            WINDOW w AS (PARTITION BY deal_id ORDER BY valid_from)
        )
        SELECT deal_id,
               count(*) AS versions,
               count(*) FILTER (WHERE close_date > prev_close) AS pushes,
               count(*) FILTER (WHERE close_date < prev_close) AS pull_ins,
               coalesce(sum(date_diff('day', prev_close, close_date))
                   FILTER (WHERE close_date > prev_close), 0) AS push_days,
               count(*) FILTER (WHERE version > 1
                   AND stage IS DISTINCT FROM prev_stage) AS stage_moves,
               count(*) FILTER (WHERE version > 1
                   AND amount IS DISTINCT FROM prev_amount) AS amount_changes,
               arg_min_null(close_date, valid_from) AS first_close_date,
               arg_max_null(close_date, valid_from) AS close_date,
               max(valid_from) FILTER (WHERE close_date > prev_close)
                   AS last_push_on
        FROM versions
        GROUP BY deal_id
        ORDER BY deal_id
        """,
        params,
    ).df()


def pipeline_changes(
    con: duckdb.DuckDBPyConnection,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    quarter: str | Quarter | None = None,
    team: str | None = None,
) -> dict:
    """What moved the pipeline of a quarter between two dates.

    Parameters
    ----------
    start, end
        As-of dates (end of day). Default: a week before meta ``today``, and
        ``today``.
    quarter
        The quarter whose pipeline is followed; default the quarter of ``end``.
    team
        Only deals of this team.

    Returns
    -------
    dict
        ``quarter, start_date, end_date, currency``, ``start`` and ``end`` (the
        pipeline value in the reporting currency) and ``steps``: for each kind
        of :data:`STEP_KINDS` in that order, ``kind, count, amount, deal_ids``.
        ``amount`` is signed (outflows negative) so ``start + sum(amount) ==
        end``. A deal that leaves (won, lost, moved out) leaves with its
        amount at ``start``; a deal that enters brings its amount at ``end``;
        a deal in both pipelines contributes its amount change. ``pulled_in``
        and ``pushed_out`` count every close-date move into or out of the
        quarter, including the rare move in from an earlier quarter or out to
        one.
    """
    end = resolve_as_of(con, end)
    start = parse_date(start) if start is not None else end - dt.timedelta(days=7)
    if start > end:
        raise DealCaseError(
            f"the start date {start} is after the end date {end}; swap them"
        )
    quarter = resolve_quarter(con, quarter, end)

    before = pipeline_as_of(con, quarter, start, team)
    after = pipeline_as_of(con, quarter, end, team)
    state_at_end = deals_as_of(con, end)[["deal_id", "outcome", "close_date"]]
    state_at_start = deals_as_of(con, start)[["deal_id", "outcome", "close_date"]]

    merged = pd.merge(
        before[["deal_id", "amount"]].rename(columns={"amount": "amount_start"}),
        after[["deal_id", "amount"]].rename(columns={"amount": "amount_end"}),
        on="deal_id",
        how="outer",
        indicator=True,
    )
    merged["amount_start"] = merged["amount_start"].astype(float).fillna(0.0)
    merged["amount_end"] = merged["amount_end"].astype(float).fillna(0.0)
    leaving = merged[merged["_merge"] == "left_only"].merge(
        state_at_end, on="deal_id", how="left"
    )
    entering = merged[merged["_merge"] == "right_only"].merge(
        state_at_start, on="deal_id", how="left"
    )
    staying = merged[merged["_merge"] == "both"]

    # Deals that left: closed, or open with a close date outside the quarter.
    leaving_kind = np.select(
        [leaving["outcome"] == "won", leaving["outcome"] == "lost"],
        ["won", "lost"],
        default="pushed_out",
    )
    # Deals that entered: open at start (so they moved in) or not yet there.
    entering_kind = np.where(entering["outcome"] == "open", "pulled_in", "new")
    delta = staying["amount_end"] - staying["amount_start"]
    staying_kind = np.select([delta > 0, delta < 0], ["increased", "decreased"], "")

    moves = pd.concat(
        [
            pd.DataFrame(
                {
                    "deal_id": leaving["deal_id"],
                    "kind": leaving_kind,
                    "amount": -leaving["amount_start"],
                }
            ),
            pd.DataFrame(
                {
                    "deal_id": entering["deal_id"],
                    "kind": entering_kind,
                    "amount": entering["amount_end"],
                }
            ),
            pd.DataFrame(
                {"deal_id": staying["deal_id"], "kind": staying_kind, "amount": delta}
            ),
        ],
        ignore_index=True,
    )
    steps = []
    for kind in STEP_KINDS:
        rows = moves[moves["kind"] == kind].sort_values("deal_id")
        steps.append(
            {
                "kind": kind,
                "count": int(len(rows)),
                "amount": float(rows["amount"].sum()),
                "deal_ids": [str(d) for d in rows["deal_id"]],
            }
        )
    start_value = float(before["amount"].astype(float).fillna(0.0).sum())
    end_value = float(after["amount"].astype(float).fillna(0.0).sum())
    return {
        "quarter": quarter.name,
        "start_date": start,
        "end_date": end,
        "team": team,
        "currency": get_meta(con, "currency", "USD"),
        "start": start_value,
        "end": end_value,
        "steps": steps,
    }


def changes_report(
    con: duckdb.DuckDBPyConnection,
    *,
    start: dt.date | str,
    end: dt.date | str,
    quarter: str | None = None,
    team: str | None = None,
) -> Report:
    """``python -m dealcase changes``: the pipeline waterfall between two dates.

    ``doc`` is :func:`pipeline_changes`; ``table`` has one row per step with
    its running total.
    """
    doc = pipeline_changes(con, start, end, quarter=quarter, team=team)
    table = pd.DataFrame(
        {
            "step": [s["kind"] for s in doc["steps"]],
            "count": [s["count"] for s in doc["steps"]],
            "amount": [round(s["amount"], 2) for s in doc["steps"]],
        }
    )
    table["running_total"] = (doc["start"] + table["amount"].cumsum()).round(2)
    table = pd.concat(
        [
            pd.DataFrame(
                [
                    {
                        "step": "start",
                        "count": None,
                        "amount": None,
                        "running_total": round(doc["start"], 2),
                    }
                ]
            ),
            table,
            pd.DataFrame(
                [
                    {
                        "step": "end",
                        "count": None,
                        "amount": None,
                        "running_total": round(doc["end"], 2),
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    title = (
        f"Pipeline of {doc['quarter']} from {doc['start_date']} to "
        f"{doc['end_date']} ({doc['currency']})"
    )
    notes = ["Outflows are negative; start plus the steps is the end."]
    if not any(s["count"] for s in doc["steps"]) and not doc["start"]:
        dated = con.execute(
            "SELECT count(*) FILTER (WHERE close_date IS NOT NULL), count(*) "
            "FROM deal_history WHERE outcome = 'open'"
        ).fetchone()
        if dated[1] and not dated[0]:
            notes.append(
                "The data gives no expected close date for open deals, so no "
                "deal is in any quarter's pipeline and nothing can move in or "
                "out of one; the Forecast page times such deals by their age."
            )
    return Report(doc=doc, table=table, title=title, notes=notes)
