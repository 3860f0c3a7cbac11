"""What was known about a deal on a date, as a row of model features.

A training row is a deal as it stood at the end of a past day (weekly
snapshots while it was open), labelled by how it ended (won 1, lost 0). Every
feature is computed from facts recorded before the end of that day:

- the deal's version in ``deal_history`` then (stage, amount, expected close,
  forecast category) and the versions before it (close-date pushes and
  pull-ins, amount changes, the day the current stage began);
- the win rates of its owner and team over deals closed by then, smoothed
  toward the company's rate;
- the business case then: the latest answer per question recorded before the
  end of the day, summarised per dimension, and the stakeholders on the deal;
- the fixed source attributes (``deals.attributes``).

Nothing measured through closing reaches a row: the current ``deals.stage``,
``amount``, ``outcome``, ``closed_on`` and ``amount_estimated`` are never
read as features, and history versions, answers and stakeholder versions
recorded after the day are cut off in SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tomllib
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from dealcase.periods import end_of_day

logger = logging.getLogger(__name__)

QUESTIONS_FILE = Path(__file__).resolve().parent.parent / "data" / "questions.toml"

DIMENSIONS = (
    "pain",
    "impact",
    "budget",
    "economic_buyer",
    "champion",
    "stakeholders",
    "decision_process",
    "paper_process",
    "compelling_event",
    "competition",
    "metrics",
    "decision_criteria",
)
ROLES = ("economic", "user", "technical", "coach")

# Pseudo-count of the smoothing of owner and team win rates toward the
# company's rate: an owner with few closed deals looks like the company.
RATE_SMOOTHING = 5.0

MECHANICS_NUMERIC = [
    "stage_order",
    "stage_probability",
    "age_days",
    "days_in_stage",
    "days_to_close",
    "pushes",
    "push_days",
    "pulls",
    "log_amount",
    "amount_change",
    "amount_changes",
    "owner_win_rate",
    "team_win_rate",
]
MECHANICS_CATEGORICAL = ["stage", "forecast_category", "team", "segment"]
# The business case as model features: per dimension its status (below),
# whether anything was answered yet and how fresh the answers are. Shares
# of the whole case (coverage, the case score) are left out: they restate
# the dimensions' statuses, and a model given both splits a gap's effect
# between the dimension and the total, sometimes with opposite signs.
CASE_NUMERIC = ["days_since_answer", "has_case"]
# Shown in reasons, never a model feature: weighted share of the questions
# answered (not unknown).
CASE_DESCRIPTIVE = ["case_coverage"]
STAKEHOLDER_NUMERIC = [f"has_{role}" for role in ROLES] + [
    "stakeholder_count",
    "stakeholders_in_trouble",
]
STAKEHOLDER_CATEGORICAL = ["economic_attitude"]
CASE_CATEGORICAL = [f"status_{d}" for d in DIMENSIONS]


def question_dimensions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The question set: ``question_id, dimension, weight``.

    Read from the ``questions`` table, or from ``data/questions.toml`` when the
    table is empty.
    """
    frame = con.execute(
        "SELECT question_id, dimension, coalesce(weight, 1.0) AS weight FROM questions"
    ).df()
    if len(frame):
        return frame
    with QUESTIONS_FILE.open("rb") as handle:
        spec = tomllib.load(handle)
    return pd.DataFrame(
        [
            {
                "question_id": q["id"],
                "dimension": q["dimension"],
                "weight": float(q.get("weight", 1.0)),
            }
            for q in spec["question"]
        ]
    )


def snapshot_dates(end: dt.date, start: dt.date, step_days: int = 7) -> list[dt.date]:
    """Every ``step_days``-th day from ``end`` back to ``start`` (oldest first)."""
    days = []
    day = end
    while day >= start:
        days.append(day)
        day -= dt.timedelta(days=step_days)
    return days[::-1]


def labelled_snapshots(
    con: duckdb.DuckDBPyConnection,
    cutoff: dt.date,
    *,
    start: dt.date | None = None,
    closed_from: dt.date | None = None,
    step_days: int = 7,
) -> pd.DataFrame:
    """Weekly snapshots of deals whose outcome was known by ``cutoff``.

    Returns ``deal_id, as_of, won, closed_at``: one row per deal and snapshot
    day on which the deal existed and was still open at the end of the day,
    with ``won`` 1 or 0 from how it closed. Deals still open at the end of
    ``cutoff`` are left out (unlabelled). Snapshot days are ``cutoff``, one
    week before, and so on back to ``start``; ``closed_from`` keeps only deals
    that closed on or after that day (a later test period).
    """
    bounds = con.execute(
        "SELECT min(CAST(valid_from AS DATE)) FROM deal_history"
    ).fetchall()[0]
    if bounds[0] is None:
        return pd.DataFrame(columns=["deal_id", "as_of", "won", "closed_at"])
    first = start or bounds[0]
    days = snapshot_dates(cutoff, first, step_days)
    if not days:  # the cutoff comes before any history
        return pd.DataFrame(columns=["deal_id", "as_of", "won", "closed_at"])
    grid = pd.DataFrame({"as_of": days})
    name = _register(con, grid)
    try:
        frame = con.execute(
            f"""
            WITH closing AS (
                SELECT deal_id, min(valid_from) AS closed_at,
                       arg_min(outcome, valid_from) AS final_outcome
                FROM deal_history WHERE outcome <> 'open' GROUP BY deal_id
            ), firsts AS (
                SELECT deal_id, min(valid_from) AS first_at
                FROM deal_history GROUP BY deal_id
            ), d AS (
                SELECT f.deal_id, f.first_at, d.created_on,
                       coalesce(c.closed_at, CASE WHEN d.outcome <> 'open'
                           THEN CAST(d.closed_on AS TIMESTAMP) END) AS closed_at,
                       coalesce(c.final_outcome, d.outcome) AS outcome
                FROM firsts f JOIN deals d USING (deal_id)
                LEFT JOIN closing c USING (deal_id)
            )
            SELECT d.deal_id, g.as_of, CAST(d.outcome = 'won' AS INTEGER) AS won,
                   d.closed_at
            FROM d JOIN {name} g
              ON CAST(d.first_at AS DATE) <= g.as_of
             AND (d.created_on IS NULL OR d.created_on <= g.as_of)
             AND d.closed_at >= CAST(g.as_of AS TIMESTAMP) + INTERVAL 1 DAY
            WHERE d.outcome IN ('won', 'lost')
              AND d.closed_at < CAST(? AS TIMESTAMP)
              AND (CAST(? AS DATE) IS NULL OR CAST(d.closed_at AS DATE) >= ?)
            ORDER BY g.as_of, d.deal_id
            """,
            [end_of_day(cutoff), closed_from, closed_from],
        ).df()
    finally:
        con.unregister(name)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


def open_probes(
    con: duckdb.DuckDBPyConnection, as_of: dt.date, deal_ids=None
) -> pd.DataFrame:
    """``deal_id, as_of`` of the deals open at the end of ``as_of``."""
    clause, params = "", [end_of_day(as_of), as_of]
    if deal_ids is not None:
        clause = "AND list_contains(?, h.deal_id)"
        params.append([str(d) for d in deal_ids])
    frame = con.execute(
        f"""
        SELECT h.deal_id
        FROM deal_history h JOIN deals d USING (deal_id)
        WHERE h.valid_from < ?
          AND (d.created_on IS NULL OR d.created_on <= ?) {clause}
        GROUP BY h.deal_id
        HAVING arg_max(h.outcome, h.valid_from) = 'open'
        ORDER BY h.deal_id
        """,
        params,
    ).df()
    frame["as_of"] = as_of
    return frame


def snapshot_features(
    con: duckdb.DuckDBPyConnection,
    probes: pd.DataFrame,
    *,
    case_features: bool = True,
) -> pd.DataFrame:
    """Features of each ``(deal_id, as_of)`` in ``probes`` as known then.

    Returns one row per probe, in the order given, with ``deal_id, as_of``,
    the mechanics (:data:`MECHANICS_NUMERIC`, :data:`MECHANICS_CATEGORICAL`),
    the business case (:data:`CASE_NUMERIC`, :data:`CASE_CATEGORICAL`,
    :data:`CASE_DESCRIPTIVE`, stakeholders) unless ``case_features`` is
    false, and one ``attr:<key>`` column of strings per source attribute.
    Days are calendar days; an unanswered dimension has status ``unknown``.
    """
    probes = probes[["deal_id", "as_of"]].reset_index(drop=True).copy()
    probes["probe_id"] = np.arange(len(probes))
    probes["as_of"] = pd.to_datetime(probes["as_of"])
    probes["deal_id"] = probes["deal_id"].astype(str)
    name = _register(con, probes)
    try:
        frame = _mechanics(con, name)
        frame = frame.sort_values("probe_id").reset_index(drop=True)
        if len(frame) != len(probes):
            raise ValueError("a probe has no deal history on its date")
        frame = _derive_mechanics(frame)
        if case_features:
            frame = frame.merge(_case(con, name), on="probe_id", how="left")
            frame = frame.merge(_stakeholders(con, name), on="probe_id", how="left")
    finally:
        con.unregister(name)
    frame["as_of"] = frame["as_of"].dt.date
    if case_features:
        frame = _derive_case(con, frame)
    frame = pd.concat([frame, _attributes(frame.pop("attributes"))], axis=1)
    return frame.drop(columns=["probe_id"])


def _register(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> str:
    name = f"probe_{uuid.uuid4().hex}"
    # DuckDB refuses to register while a caller's result is still pending
    # (e.g. after fetchone); a new statement closes that result.
    con.execute("SELECT 1").fetchall()
    con.register(name, frame)
    return name


def _mechanics(con: duckdb.DuckDBPyConnection, probes: str) -> pd.DataFrame:
    return con.execute(
        f"""
        WITH p AS (
            SELECT probe_id, deal_id, CAST(as_of AS DATE) AS as_of,
                   CAST(as_of AS TIMESTAMP) + INTERVAL 1 DAY AS cutoff
            FROM {probes}
        ), v AS (
            SELECT deal_id, valid_from, stage, amount, close_date,
                   forecast_category,
                   lag(close_date) OVER w AS prev_close,
                   lag(stage) OVER w AS prev_stage,
                   lag(amount) OVER w AS prev_amount,
                   row_number() OVER w AS version
            FROM deal_history
            WINDOW w AS (PARTITION BY deal_id ORDER BY valid_from)
        ), agg AS (
            SELECT p.probe_id,
                arg_max_null(v.stage, v.valid_from) AS stage,
                arg_max_null(v.amount, v.valid_from) AS amount,
                arg_max_null(v.close_date, v.valid_from) AS close_date,
                arg_max_null(v.forecast_category, v.valid_from)
                    AS forecast_category,
                arg_min_null(v.amount, v.valid_from) AS first_amount,
                min(v.valid_from) AS first_at,
                max(v.valid_from) FILTER (
                    WHERE v.version = 1 OR v.stage IS DISTINCT FROM v.prev_stage
                ) AS stage_since,
                count(*) FILTER (WHERE v.close_date > v.prev_close) AS pushes,
                coalesce(sum(date_diff('day', v.prev_close, v.close_date))
                    FILTER (WHERE v.close_date > v.prev_close), 0) AS push_days,
                count(*) FILTER (WHERE v.close_date < v.prev_close) AS pulls,
                count(*) FILTER (
                    WHERE v.version > 1 AND v.amount IS DISTINCT FROM v.prev_amount
                ) AS amount_changes
            FROM p JOIN v ON v.deal_id = p.deal_id AND v.valid_from < p.cutoff
            GROUP BY p.probe_id
        ), closings AS (
            -- when each deal's outcome became known, from history or deals
            SELECT d.deal_id, d.owner, d.team,
                   CAST(coalesce(c.closed_at, CAST(d.closed_on AS TIMESTAMP))
                        AS DATE) AS closed_day,
                   CAST(coalesce(c.outcome, d.outcome) = 'won' AS INTEGER) AS won
            FROM deals d LEFT JOIN (
                SELECT deal_id, min(valid_from) AS closed_at,
                       arg_min(outcome, valid_from) AS outcome
                FROM deal_history WHERE outcome <> 'open' GROUP BY deal_id
            ) c USING (deal_id)
            WHERE coalesce(c.outcome, d.outcome) IN ('won', 'lost')
              AND coalesce(c.closed_at, CAST(d.closed_on AS TIMESTAMP)) IS NOT NULL
        ), company AS (
            SELECT closed_day,
                   sum(sum(won)) OVER (ORDER BY closed_day) AS won,
                   sum(count(*)) OVER (ORDER BY closed_day) AS closed
            FROM closings GROUP BY closed_day
        ), by_owner AS (
            SELECT owner, closed_day,
                   sum(sum(won)) OVER (PARTITION BY owner ORDER BY closed_day)
                       AS won,
                   sum(count(*)) OVER (PARTITION BY owner ORDER BY closed_day)
                       AS closed
            FROM closings WHERE owner IS NOT NULL GROUP BY owner, closed_day
        ), by_team AS (
            SELECT team, closed_day,
                   sum(sum(won)) OVER (PARTITION BY team ORDER BY closed_day)
                       AS won,
                   sum(count(*)) OVER (PARTITION BY team ORDER BY closed_day)
                       AS closed
            FROM closings WHERE team IS NOT NULL GROUP BY team, closed_day
        ), base AS (
            SELECT p.probe_id, p.deal_id, p.as_of, d.owner, d.team, d.segment,
                   d.created_on, d.attributes
            FROM p JOIN deals d USING (deal_id)
        ), rated AS (
            SELECT b.*, cw.won AS company_won, cw.closed AS company_closed
            FROM base b ASOF LEFT JOIN company cw ON b.as_of >= cw.closed_day
        ), owner_rated AS (
            SELECT r.*, o.won AS owner_won, o.closed AS owner_closed
            FROM rated r ASOF LEFT JOIN by_owner o
              ON r.owner = o.owner AND r.as_of >= o.closed_day
        ), team_rated AS (
            SELECT r.*, t.won AS team_won, t.closed AS team_closed
            FROM owner_rated r ASOF LEFT JOIN by_team t
              ON r.team = t.team AND r.as_of >= t.closed_day
        )
        SELECT r.*, a.* EXCLUDE (probe_id),
               s.sort_order AS stage_order,
               s.default_probability AS stage_probability
        FROM team_rated r JOIN agg a USING (probe_id)
        LEFT JOIN stages s ON s.stage = a.stage
        """
    ).df()


def _derive_mechanics(frame: pd.DataFrame) -> pd.DataFrame:
    as_of = pd.to_datetime(frame["as_of"])
    created = pd.to_datetime(frame["created_on"]).fillna(frame["first_at"])
    created = created.dt.normalize()
    out = frame[["probe_id", "deal_id", "as_of", "attributes"]].copy()
    out["stage"] = frame["stage"].fillna("none").astype(str)
    out["stage_order"] = frame["stage_order"].astype(float).fillna(-1.0)
    out["stage_probability"] = frame["stage_probability"].astype(float)
    out["age_days"] = (as_of - created).dt.days.astype(float).clip(lower=0)
    since = pd.to_datetime(frame["stage_since"]).dt.normalize()
    out["days_in_stage"] = (as_of - since).dt.days.astype(float).clip(lower=0)
    close = pd.to_datetime(frame["close_date"])
    out["days_to_close"] = (close - as_of).dt.days.astype(float).fillna(0.0)
    out["pushes"] = frame["pushes"].astype(float)
    out["push_days"] = frame["push_days"].astype(float)
    out["pulls"] = frame["pulls"].astype(float)
    amount = frame["amount"].astype(float)
    out["log_amount"] = np.log1p(amount.clip(lower=0)).fillna(0.0)
    first = frame["first_amount"].astype(float)
    change = (amount / first.where(first > 0)) - 1.0
    out["amount_change"] = change.replace([np.inf, -np.inf], np.nan).fillna(0.0)
    out["amount_changes"] = frame["amount_changes"].astype(float)
    out["forecast_category"] = frame["forecast_category"].fillna("none").astype(str)
    out["team"] = frame["team"].fillna("none").astype(str)
    out["segment"] = frame["segment"].fillna("none").astype(str)

    company_won = frame["company_won"].astype(float).fillna(0.0)
    company_closed = frame["company_closed"].astype(float).fillna(0.0)
    prior = (company_won + 1.0) / (company_closed + 2.0)
    out["stage_probability"] = out["stage_probability"].fillna(prior)
    for who in ("owner", "team"):
        won = frame[f"{who}_won"].astype(float).fillna(0.0)
        closed = frame[f"{who}_closed"].astype(float).fillna(0.0)
        out[f"{who}_win_rate"] = (won + RATE_SMOOTHING * prior) / (
            closed + RATE_SMOOTHING
        )
    return out


def _case(con: duckdb.DuckDBPyConnection, probes: str) -> pd.DataFrame:
    """Per probe with any answer: answered weight, latest answer and the
    status of each dimension (worst of its questions; a question without
    answer is unknown)."""
    questions = question_dimensions(con)
    # three counts per fixed dimension; the dimension names are parameters
    counts = ",\n".join(
        f"count(*) FILTER (WHERE dimension = ? AND status = 'risk') AS r{k}, "
        f"count(*) FILTER (WHERE dimension = ? "
        f"AND status IN ('confirmed', 'assumed')) AS a{k}, "
        f"count(*) FILTER (WHERE dimension = ? AND status = 'confirmed') AS c{k}"
        for k in range(len(DIMENSIONS))
    )
    name = _register(con, questions)
    try:
        found = con.execute(
            f"""
            WITH p AS (
                SELECT probe_id, deal_id,
                       CAST(as_of AS TIMESTAMP) + INTERVAL 1 DAY AS cutoff
                FROM {probes}
            ), latest AS (
                SELECT p.probe_id, a.question_id,
                       arg_max(a.status, (a.recorded_at, a.answer_id)) AS status,
                       max(a.recorded_at) AS recorded_at
                FROM p JOIN case_answers a
                  ON a.deal_id = p.deal_id AND a.recorded_at < p.cutoff
                GROUP BY p.probe_id, a.question_id
            ), known AS (
                SELECT l.*, q.dimension, q.weight
                FROM latest l JOIN {name} q USING (question_id)
            )
            SELECT probe_id,
                   sum(weight) FILTER (WHERE status <> 'unknown') AS known_weight,
                   max(recorded_at) AS latest_answer,
                   {counts}
            FROM known GROUP BY probe_id
            """,
            [d for d in DIMENSIONS for _ in range(3)],
        ).df()
    finally:
        con.unregister(name)
    per_dimension = questions.groupby("dimension")["question_id"].count()
    out = found[["probe_id", "known_weight", "latest_answer"]].copy()
    for k, dimension in enumerate(DIMENSIONS):
        n = int(per_dimension.get(dimension, 0))
        risks, answered = found[f"r{k}"].to_numpy(), found[f"a{k}"].to_numpy()
        confirmed = found[f"c{k}"].to_numpy()
        status = np.where(
            risks > 0,
            "risk",
            np.where(
                (answered < n) | (n == 0),
                "unknown",
                np.where(confirmed < n, "assumed", "confirmed"),
            ),
        )
        out[f"status_{dimension}"] = pd.Series(status, index=out.index, dtype="str")
    return out


def _stakeholders(con: duckdb.DuckDBPyConnection, probes: str) -> pd.DataFrame:
    return con.execute(
        f"""
        WITH p AS (
            SELECT probe_id, deal_id,
                   CAST(as_of AS TIMESTAMP) + INTERVAL 1 DAY AS cutoff
            FROM {probes}
        ), latest AS (
            SELECT p.probe_id, s.stakeholder_id,
                   arg_max(s.role, (s.recorded_at, s.version_id)) AS role,
                   arg_max(s.attitude, (s.recorded_at, s.version_id)) AS attitude,
                   arg_max(s.influence, (s.recorded_at, s.version_id)) AS influence,
                   arg_max(s.removed, (s.recorded_at, s.version_id)) AS removed
            FROM p JOIN stakeholders s
              ON s.deal_id = p.deal_id AND s.recorded_at < p.cutoff
            GROUP BY p.probe_id, s.stakeholder_id
        )
        SELECT probe_id,
               count(*) AS stakeholder_count,
               bool_or(role = 'economic') AS has_economic,
               bool_or(role = 'user') AS has_user,
               bool_or(role = 'technical') AS has_technical,
               bool_or(role = 'coach') AS has_coach,
               count(*) FILTER (WHERE attitude = 'trouble')
                   AS stakeholders_in_trouble,
               arg_max(attitude, CASE influence WHEN 'high' THEN 3
                   WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)
                   FILTER (WHERE role = 'economic') AS economic_attitude
        FROM latest WHERE NOT coalesce(removed, false)
        GROUP BY probe_id
        """
    ).df()


def _derive_case(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> pd.DataFrame:
    total_weight = float(question_dimensions(con)["weight"].sum())
    frame = frame.copy()
    frame["case_coverage"] = frame.pop("known_weight").astype(float).fillna(0.0)
    frame["case_coverage"] /= total_weight
    latest = pd.to_datetime(frame.pop("latest_answer")).dt.normalize()
    days = (pd.to_datetime(frame["as_of"]) - latest).dt.days.astype(float)
    frame["has_case"] = days.notna().astype(float)
    # never answered: as stale as the deal is old
    frame["days_since_answer"] = days.fillna(frame["age_days"])

    for dimension in DIMENSIONS:
        status = frame[f"status_{dimension}"].astype("str")
        frame[f"status_{dimension}"] = status.fillna("unknown")

    for role in ROLES:
        column = frame[f"has_{role}"]
        frame[f"has_{role}"] = column.astype("boolean").fillna(False).astype(float)
    frame["stakeholder_count"] = frame["stakeholder_count"].astype(float).fillna(0)
    frame["stakeholders_in_trouble"] = (
        frame["stakeholders_in_trouble"].astype(float).fillna(0.0)
    )
    frame["economic_attitude"] = frame["economic_attitude"].fillna("none").astype(str)
    return frame


def _attributes(column: pd.Series) -> pd.DataFrame:
    """One ``attr:<key>`` column of strings (missing values None) per key."""
    unique = column.fillna("{}").astype(str)
    parsed = {}
    for text in unique.unique():
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = {}
        parsed[text] = value if isinstance(value, dict) else {}
    keys: dict[str, None] = {}
    for value in parsed.values():
        keys.update(dict.fromkeys(value))
    table = {}
    for key in keys:
        lookup = {
            text: (None if v.get(key) in (None, "") else str(v.get(key)))
            for text, v in parsed.items()
        }
        table[f"attr:{key}"] = unique.map(lookup).astype(object)
    return pd.DataFrame(table, index=column.index)


def deal_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per closed deal from its fixed fields, for data without dates.

    Returns ``deal_id, won, log_amount, team, segment`` and the ``attr:``
    columns. Used for cross-validation where there is no history (every deal
    is known only as it ended, so stage and durations are left out; the
    amount is the recorded one).
    """
    frame = con.execute(
        """
        SELECT deal_id, CAST(outcome = 'won' AS INTEGER) AS won, amount,
               team, segment, attributes
        FROM deals WHERE outcome IN ('won', 'lost') ORDER BY deal_id
        """
    ).df()
    out = frame[["deal_id", "won"]].copy()
    out["log_amount"] = np.log1p(frame["amount"].astype(float).clip(lower=0))
    out["log_amount"] = out["log_amount"].fillna(0.0)
    out["team"] = frame["team"].fillna("none").astype(str)
    out["segment"] = frame["segment"].fillna("none").astype(str)
    return pd.concat([out, _attributes(frame["attributes"])], axis=1)
