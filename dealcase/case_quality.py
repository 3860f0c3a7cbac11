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

import duckdb
import pandas as pd

from dealcase.case_questions import DIMENSIONS, QuestionSet, current_questions
from dealcase.periods import parse_date
from dealcase.store import get_meta

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


def resolve_as_of(con: duckdb.DuckDBPyConnection, as_of) -> dt.date:
    """``as_of`` as a date; None means the data's present (meta ``today``),
    else today's date."""
    if as_of is not None:
        return parse_date(as_of)
    today = get_meta(con, "today")
    return parse_date(today) if today else dt.date.today()


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


def _dimension_totals(con, snapshots: pd.DataFrame, questions: QuestionSet):
    """Earned and possible weight per snapshot and dimension."""
    return con.execute(
        _STATES_SQL
        + """
        SELECT deal_id, as_of, dimension,
               sum(weight * credit) AS earned, sum(weight) AS possible,
               count(*) FILTER (WHERE stale) AS stale_count,
               count(*) FILTER (WHERE answered) AS answered_count
        FROM states
        GROUP BY deal_id, as_of, dimension
        """,
        _states_params(snapshots, questions),
    ).df()


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
        The rows of ``snapshots`` in their order with ``case_score``
        (0..100), one column per dimension of the question set (0..1),
        ``stale_count`` and ``answered_count``. See :data:`SCORE_DEFINITION`.
    """
    questions = questions or current_questions(con)
    dims = questions.dimensions
    keys = pd.DataFrame(
        {
            "deal_id": snapshots["deal_id"].astype("str").to_numpy(),
            "as_of": [parse_date(d) for d in snapshots["as_of"]],
        }
    )
    columns = ["deal_id", "as_of", "case_score", *dims, "stale_count"]
    if keys.empty:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        empty["deal_id"] = empty["deal_id"].astype("str")
        empty["answered_count"] = pd.Series(dtype="int64")
        return empty

    by_dim = _dimension_totals(con, keys.drop_duplicates(), questions)
    group = ["deal_id", "as_of"]
    totals = by_dim.groupby(group, sort=False)[
        ["earned", "possible", "stale_count", "answered_count"]
    ].sum()
    totals["case_score"] = 100.0 * totals["earned"] / totals["possible"]
    by_dim["ratio"] = by_dim["earned"] / by_dim["possible"]
    ratio = by_dim.pivot(index=group, columns="dimension", values="ratio")
    ratio = ratio.reindex(columns=dims)
    scores = totals.join(ratio).reset_index()
    scores["as_of"] = pd.to_datetime(scores["as_of"]).dt.date

    result = keys.merge(scores, on=group, how="left")
    result["stale_count"] = result["stale_count"].astype("int64")
    result["answered_count"] = result["answered_count"].astype("int64")
    return result[[*columns, "answered_count"]]


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
