"""How complete and how fresh a deal's business case is.

Everything here is computed for many deals in one query, and for many as-of
dates at once (:func:`case_scores_many`), since the model uses the score as
a feature of every training snapshot. The case as of a day is the latest
answer per question recorded before the end of that day; a question nobody
answered counts as ``unknown``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import duckdb
import numpy as np
import pandas as pd

from dealcase.case_questions import DIMENSIONS, QuestionSet, current_questions
from dealcase.periods import parse_date, resolve_as_of

logger = logging.getLogger(__name__)

STATUS_CREDIT = {"confirmed": 1.0, "assumed": 0.5, "unknown": 0.0, "risk": 0.0}
STALE_DAYS = 30
STALE_FACTOR = 0.5

# Worst first: the status a dimension takes from its questions.
STATUS_RANK = {"risk": 0, "unknown": 1, "assumed": 2, "confirmed": 3}

SCORE_DEFINITION = (
    "The case score (0 to 100) says how much of the business case the rep has "
    "really established. Every question of the question set has a weight. A "
    "question earns its weight times a credit for its latest answer: confirmed "
    "1.0, assumed 0.5, unknown 0, risk 0. An unanswered question counts as "
    f"unknown. An answer that nobody has recorded again for {STALE_DAYS} days or "
    "more before the as-of date is stale: it earns half its credit and is "
    'counted in "stale answers". The score is 100 x earned weight / total weight '
    "of all questions. Each dimension (pain, budget, economic buyer, ...) gets "
    "the same ratio over its own questions, from 0 (nothing established) to 1 "
    "(all confirmed and fresh)."
)


def _deals_on(con, as_of: dt.date, deal_ids) -> list[str]:
    params: list = [as_of]
    clause = ""
    if deal_ids is not None:
        clause = "AND list_contains(?, deal_id)"
        params.append([str(d) for d in deal_ids])
    rows = con.execute(
        "SELECT deal_id FROM deals "
        f"WHERE (created_on IS NULL OR created_on <= ?) {clause} ORDER BY deal_id",
        params,
    ).fetchall()
    return [r[0] for r in rows]


# The latest answer per snapshot and question, with its staleness and credit.
# Parameters: see _states_params.
_STATES_SQL = """
    WITH snap AS (
        SELECT DISTINCT unnest(?::VARCHAR[]) AS deal_id,
               unnest(?::DATE[]) AS as_of
    ),
    q AS (
        SELECT unnest(?::VARCHAR[]) AS question_id,
               unnest(?::VARCHAR[]) AS dimension,
               unnest(?::DOUBLE[]) AS weight,
               unnest(?::INTEGER[]) AS sort_order
    ),
    latest AS (
        SELECT s.deal_id, s.as_of, a.question_id, a.status, a.evidence,
               a.learned_on, a.answered_by, a.recorded_at
        FROM snap s
        JOIN case_answers a
          ON a.deal_id = s.deal_id
         AND a.recorded_at < CAST(s.as_of AS TIMESTAMP) + INTERVAL 1 DAY
        WHERE a.question_id IN (SELECT question_id FROM q)
        QUALIFY row_number() OVER (
            PARTITION BY s.deal_id, s.as_of, a.question_id
            ORDER BY a.recorded_at DESC, a.answer_id DESC
        ) = 1
    ),
    joined AS (
        SELECT s.deal_id, s.as_of, q.question_id, q.dimension, q.weight,
               q.sort_order,
               coalesce(l.status, 'unknown') AS status,
               l.recorded_at IS NOT NULL AS answered,
               l.evidence, l.learned_on, l.answered_by, l.recorded_at,
               date_diff('day', CAST(l.recorded_at AS DATE), s.as_of) AS age_days
        FROM snap s CROSS JOIN q
        LEFT JOIN latest l
          ON l.deal_id = s.deal_id AND l.as_of = s.as_of
         AND l.question_id = q.question_id
    ),
    flagged AS (
        SELECT *, coalesce(answered AND age_days >= ?, false) AS stale
        FROM joined
    ),
    states AS (
        SELECT *,
               CASE status WHEN 'confirmed' THEN ? WHEN 'assumed' THEN ?
                           ELSE 0.0 END
               * CASE WHEN stale THEN ? ELSE 1.0 END AS credit
        FROM flagged
    )
"""


def _states_params(snapshots: pd.DataFrame, questions: QuestionSet) -> list:
    frame = questions.frame()
    return [
        [str(d) for d in snapshots["deal_id"]],
        [parse_date(d) for d in snapshots["as_of"]],
        frame["question_id"].tolist(),
        frame["dimension"].tolist(),
        frame["weight"].tolist(),
        frame["sort_order"].tolist(),
        STALE_DAYS,
        STATUS_CREDIT["confirmed"],
        STATUS_CREDIT["assumed"],
        STALE_FACTOR,
    ]


def question_states(
    con: duckdb.DuckDBPyConnection,
    snapshots: pd.DataFrame,
    questions: QuestionSet | None = None,
) -> pd.DataFrame:
    """Every question of every snapshot with its latest answer then.

    Parameters
    ----------
    snapshots
        Pairs ``deal_id, as_of`` (as_of a date); duplicates are dropped.

    Returns
    -------
    DataFrame
        One row per snapshot and question: ``deal_id, as_of, question_id,
        dimension, weight, sort_order, status`` (``unknown`` when unanswered),
        ``answered`` (bool), ``evidence, learned_on, answered_by,
        recorded_at, age_days`` (days from the answer's recording day to
        as_of), ``stale`` (bool) and ``credit`` (weight share earned, 0..1).
    """
    questions = questions or current_questions(con)
    return con.execute(
        _STATES_SQL + "SELECT * FROM states ORDER BY deal_id, as_of, sort_order",
        _states_params(snapshots, questions),
    ).df()


# Per snapshot: the latest answer to each question recorded before the end of
# its day, then earned weight per dimension, in one pass. The snapshot table
# (``row_id, deal_id, as_of``) and the question table (``question_id,
# dimension, weight``) are registered frames; the dimension filters are
# parameters. Parameters: STALE_DAYS, the credits, STALE_FACTOR, then one
# dimension name per ``{dimension_sums}`` entry.
_SCORES_SQL = """
    WITH snap AS (
        SELECT row_id, deal_id, CAST(as_of AS DATE) AS as_of,
               CAST(CAST(as_of AS DATE) AS TIMESTAMP) + INTERVAL 1 DAY AS cutoff
        FROM {snapshots}
    ), latest AS (
        SELECT s.row_id, any_value(s.as_of) AS as_of, a.question_id,
               arg_max(a.status, (a.recorded_at, a.answer_id)) AS status,
               max(a.recorded_at) AS recorded_at
        FROM snap s JOIN case_answers a
          ON a.deal_id = s.deal_id AND a.recorded_at < s.cutoff
        GROUP BY s.row_id, a.question_id
    ), flagged AS (
        SELECT l.row_id, l.status, q.dimension, q.weight,
               date_diff('day', CAST(l.recorded_at AS DATE), l.as_of) >= ?
                   AS stale
        FROM latest l JOIN {questions} q USING (question_id)
    ), credited AS (
        SELECT row_id, dimension, stale,
               weight * CASE status WHEN 'confirmed' THEN ? WHEN 'assumed' THEN ?
                                    ELSE 0.0 END
                      * CASE WHEN stale THEN ? ELSE 1.0 END AS earned
        FROM flagged
    )
    SELECT row_id, sum(earned) AS earned,
           count(*) FILTER (WHERE stale) AS stale_count,
           count(*) AS answered_count,
           {dimension_sums}
    FROM credited GROUP BY row_id
"""


def _snapshot_days(values: pd.Series) -> np.ndarray:
    """The as-of dates of snapshots as ``datetime64[D]`` (dates, timestamps
    or ISO text)."""
    try:
        days = pd.to_datetime(values.reset_index(drop=True))
    except (ValueError, TypeError):
        days = pd.to_datetime(pd.Series([parse_date(d) for d in values]))
    return days.dt.normalize().to_numpy(dtype="datetime64[D]")


def case_scores_many(
    con: duckdb.DuckDBPyConnection,
    snapshots: pd.DataFrame,
    questions: QuestionSet | None = None,
) -> pd.DataFrame:
    """Case scores of many deals at many as-of dates, in one query.

    Parameters
    ----------
    snapshots
        Columns ``deal_id`` and ``as_of`` (dates); any number of rows, a deal
        may appear at several dates.

    Returns
    -------
    DataFrame
        The rows of ``snapshots`` in their order with ``as_of`` (dates),
        ``case_score`` (0..100), one column per dimension of the question set
        (0..1), ``stale_count`` and ``answered_count``. See
        :data:`SCORE_DEFINITION`.
    """
    questions = questions or current_questions(con)
    dims = questions.dimensions
    count = len(snapshots)
    days = _snapshot_days(snapshots["as_of"]) if count else np.array([], "M8[D]")
    keys = pd.DataFrame(
        {
            "row_id": np.arange(count, dtype=np.int64),
            "deal_id": snapshots["deal_id"].astype("str").to_numpy(),
            "as_of": days.astype("datetime64[s]"),
        }
    )
    frame = questions.frame()[["question_id", "dimension", "weight"]]
    possible = frame.groupby("dimension")["weight"].sum()
    total_weight = float(frame["weight"].sum())

    earned = np.zeros(count)
    by_dim = np.zeros((count, len(dims)))
    stale = np.zeros(count, dtype=np.int64)
    answered = np.zeros(count, dtype=np.int64)
    if count:
        sums = ",\n".join(
            f"coalesce(sum(earned) FILTER (WHERE dimension = ?), 0.0) AS d{k}"
            for k in range(len(dims))
        )
        snap_name = f"case_snap_{uuid.uuid4().hex}"
        question_name = f"case_q_{uuid.uuid4().hex}"
        # DuckDB refuses to register while a caller's result is pending
        con.execute("SELECT 1").fetchall()
        con.register(snap_name, keys)
        con.register(question_name, frame)
        try:
            found = con.execute(
                _SCORES_SQL.format(
                    snapshots=snap_name, questions=question_name, dimension_sums=sums
                ),
                [
                    STALE_DAYS,
                    STATUS_CREDIT["confirmed"],
                    STATUS_CREDIT["assumed"],
                    STALE_FACTOR,
                    *dims,
                ],
            ).fetchnumpy()
        finally:
            con.unregister(snap_name)
            con.unregister(question_name)
        rows = np.asarray(found["row_id"], dtype=np.int64)
        earned[rows] = np.asarray(found["earned"], dtype=float)
        stale[rows] = np.asarray(found["stale_count"], dtype=np.int64)
        answered[rows] = np.asarray(found["answered_count"], dtype=np.int64)
        for k in range(len(dims)):
            by_dim[rows, k] = np.asarray(found[f"d{k}"], dtype=float)

    result = pd.DataFrame(
        {
            "deal_id": keys["deal_id"],
            "as_of": pd.Series(days.astype("datetime64[s]")).dt.date,
            "case_score": 100.0 * earned / total_weight,
        }
    )
    for k, dimension in enumerate(dims):
        result[dimension] = by_dim[:, k] / float(possible[dimension])
    result["stale_count"] = stale
    result["answered_count"] = answered
    return result


def case_scores(
    con: duckdb.DuckDBPyConnection,
    as_of=None,
    deal_ids=None,
    questions: QuestionSet | None = None,
) -> pd.DataFrame:
    """The case score of every deal as its case stood at the end of ``as_of``.

    Parameters
    ----------
    as_of
        A date; None means meta ``today``.
    deal_ids
        Only these deals; default every deal created on or before ``as_of``.

    Returns
    -------
    DataFrame
        ``deal_id, case_score`` (0..100), one column per dimension (0..1),
        ``stale_count`` (answers not re-recorded for 30 days or more) and
        ``answered_count``; one row per deal, ordered by deal_id. See
        :data:`SCORE_DEFINITION`.
    """
    day = resolve_as_of(con, as_of)
    deals = _deals_on(con, day, deal_ids)
    snapshots = pd.DataFrame({"deal_id": deals, "as_of": [day] * len(deals)})
    scores = case_scores_many(con, snapshots, questions)
    return scores.drop(columns="as_of").reset_index(drop=True)


def case_dimensions_as_of(
    con: duckdb.DuckDBPyConnection,
    as_of=None,
    deal_ids=None,
    questions: QuestionSet | None = None,
) -> pd.DataFrame:
    """The status of each dimension of each deal at the end of ``as_of``.

    A dimension takes the worst status among its questions (risk, then
    unknown, then assumed, then confirmed), so "paper process" is confirmed
    only when both the paper process and the security review are.

    Returns
    -------
    DataFrame
        ``deal_id, dimension, status, recorded_at`` (latest answer among the
        dimension's questions, NaT when none) and ``stale`` (any of its
        answers stale); one row per deal and dimension of the question set.
    """
    day = resolve_as_of(con, as_of)
    deals = _deals_on(con, day, deal_ids)
    columns = ["deal_id", "dimension", "status", "recorded_at", "stale"]
    if not deals:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    states = question_states(
        con, pd.DataFrame({"deal_id": deals, "as_of": [day] * len(deals)}), questions
    )
    states["rank"] = states["status"].map(STATUS_RANK)
    grouped = states.groupby(["deal_id", "dimension"], sort=False)
    result = grouped.agg(
        rank=("rank", "min"),
        recorded_at=("recorded_at", "max"),
        stale=("stale", "any"),
    ).reset_index()
    names = {rank: status for status, rank in STATUS_RANK.items()}
    result["status"] = result["rank"].map(names).astype("str")
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    result["_order"] = result["dimension"].map(order)
    result = result.sort_values(["deal_id", "_order"]).reset_index(drop=True)
    return result[columns]
