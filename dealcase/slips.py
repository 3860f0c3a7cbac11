"""Why deals slip: which deals slipped out of past quarters, which gaps and
signals make a slip more likely, and each open deal's risk of slipping.

A deal *slipped* from a quarter when, as of some day inside the quarter, it
was open and expected to close in it, and it was not won in it: it was pushed
out (its close date moved past the quarter's end), lost, or still open when
the quarter ended. The deal's *entry* into the quarter is the first such day.

Drivers are measured on the pipelines of the closed quarters at fixed
checkpoints (first day, 30 and 60 days in, two weeks before the end), each
deal as it stood then: the business case (each question not confirmed, and
unknown; no answer counts as unknown) and mechanics signals (pushed before,
not in commit, late stage, large amount, one stakeholder or none, no coach,
no next step). The next step is read from the version of ``deal_history``
in force at the checkpoint; when the history carries no next steps at all
(a source that keeps only the current one), "no next step" is left out,
since the value today would tell how the deal ended. A slip there is a deal
still open when its quarter ended. For each signal: the slip rate with and
without it, the lift (rate with / rate without) with a 95% bootstrap interval
(deals resampled), an odds ratio adjusted for the other signals, and the open
amount of the current quarter that carries it.

The pipeline history itself (:func:`pipeline_as_of`, :func:`pipeline_changes`,
:func:`deal_movements`) lives in :mod:`dealcase.changes` and is re-exported
here.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from dealcase.changes import (
    STEP_KINDS,
    changes_report,
    deal_movements,
    next_steps_versioned,
    pipeline_as_of,
    pipeline_changes,
    resolve_quarter,
)
from dealcase.history import deals_as_of
from dealcase.periods import Quarter, fiscal_start_month, quarter_of, resolve_as_of
from dealcase.report import Report
from dealcase.store import Remembered, get_meta

__all__ = [
    "STEP_KINDS",
    "changes_report",
    "closed_quarters",
    "deal_movements",
    "driver_rows",
    "fit_slip_model",
    "pipeline_as_of",
    "pipeline_changes",
    "quarter_slips",
    "slip_cohort",
    "slip_drivers",
    "slip_risk",
    "slip_signals",
    "slip_training_rows",
    "slips_report",
]

logger = logging.getLogger(__name__)

BOOTSTRAP_DRAWS = 1000
# What counts as a slip when measuring drivers (see slip_drivers).
SLIP_OUTCOMES = {"pushed": ("open",), "not_won": ("open", "lost")}
LARGE_AMOUNT_QUANTILE = 0.75
# Fewer training rows than this (or fewer slips or non-slips than
# MIN_CLASS_ROWS) and slip_risk falls back to the base rate.
MIN_TRAINING_ROWS = 40
MIN_CLASS_ROWS = 8
# Checkpoints of a past quarter's pipeline that drivers and slip risk learn
# from: days after the quarter's start, and days before its end.
SNAPSHOT_OFFSETS = (0, 30, 60)
LATE_SNAPSHOT_DAYS = 14
# Reasons listed per deal: at most MAX_REASONS, each at least
# MIN_REASON_EFFECT (in probability); the rest are summed as "other signals".
MAX_REASONS = 6
MIN_REASON_EFFECT = 0.01
# Regularisation (inverse strength) of the slip-risk model.
RISK_C = 1.0
# Regularisation of the model behind the adjusted odds ratios of the drivers.
ADJUSTED_C = 10.0


@dataclass(frozen=True)
class Signal:
    """A yes/no fact about a deal at a date, with the words for both answers."""

    key: str
    present: str
    absent: str
    kind: str  # "case" or "mechanics"


MECHANICS_SIGNALS = (
    Signal("pushed_before", "pushed before", "never pushed", "mechanics"),
    Signal("not_commit", "not in commit", "in commit", "mechanics"),
    Signal("late_stage", "late stage", "early stage", "mechanics"),
    Signal("large_amount", "large amount", "not a large amount", "mechanics"),
    Signal(
        "single_stakeholder",
        "one stakeholder or none",
        "several stakeholders",
        "mechanics",
    ),
    Signal("no_coach", "no coach", "has a coach", "mechanics"),
    Signal("no_next_step", "no next step", "has a next step", "mechanics"),
)


def _case_signals(question_id: str) -> list[Signal]:
    """A question not confirmed (assumed, risk, unknown or never answered),
    and the narrower gap of a question nobody has an answer to."""
    label = question_id.replace("_", " ")
    return [
        Signal(
            f"case:{question_id}",
            f"{label} not confirmed",
            f"{label} confirmed",
            "case",
        ),
        Signal(f"unknown:{question_id}", f"{label} unknown", f"{label} known", "case"),
    ]


# --------------------------------------------------------------------------
# Which deals slipped


def slip_cohort(
    con: duckdb.DuckDBPyConnection,
    quarters: list[Quarter],
    *,
    as_of: dt.date | None = None,
    team: str | None = None,
) -> pd.DataFrame:
    """Every deal expected to close in each quarter, and what became of it.

    A deal belongs to a quarter when, at the end of some day inside it, it was
    open with an expected close date inside it. Outcomes are judged at the
    quarter's end, or at ``as_of`` when that comes first (a quarter still
    running).

    Returns
    -------
    DataFrame
        One row per (quarter, deal): ``quarter, deal_id, name, owner, team,
        entered_on`` (first day in the quarter's pipeline), ``expected_close``
        (close date then), ``amount`` (amount then), ``outcome`` (``won``,
        ``lost``, ``pushed_out``, ``open_at_end``, ``open`` for a quarter
        still running), ``slipped`` (bool), ``first_push_on`` (day of the first
        close-date move out of the quarter), ``days_moved`` (days that push
        added), ``new_close_date`` (close date after it), ``pushes`` (close
        date moves later during the quarter), ``current_outcome`` and
        ``current_close_date`` (the deal today).
    """
    as_of = resolve_as_of(con, as_of)
    if not quarters:
        return pd.DataFrame(columns=_COHORT_COLUMNS)
    names = [q.name for q in quarters]
    starts = [q.start for q in quarters]
    ends = [min(q.end, as_of) for q in quarters]
    frame = con.execute(
        """
        WITH q AS (
            SELECT unnest(?) AS quarter,
                   CAST(unnest(?) AS DATE) AS q_start,
                   CAST(unnest(?) AS DATE) AS q_end,
                   CAST(unnest(?) AS DATE) AS judged_on
        ),
        v AS (
            SELECT deal_id, valid_from, close_date, outcome, amount,
                   lead(valid_from) OVER w AS next_from,
                   lag(close_date) OVER w AS prev_close
            FROM deal_history
            WINDOW w AS (PARTITION BY deal_id ORDER BY valid_from)
        ),
        -- A version is the state "as of" day D when it became true before
        -- midnight ending D and was replaced at or after it.
        spans AS (
            SELECT q.quarter, q.q_start, q.q_end, q.judged_on, v.*,
                   greatest(date_trunc('day', v.valid_from) + INTERVAL 1 DAY,
                            q.q_start + INTERVAL 1 DAY) AS first_midnight
            FROM v JOIN q ON v.close_date BETWEEN q.q_start AND q.q_end
            WHERE v.outcome = 'open'
        ),
        entries AS (
            SELECT quarter, q_start, q_end, judged_on, deal_id,
                   arg_min(close_date, first_midnight) AS expected_close,
                   arg_min_null(amount, first_midnight) AS amount,
                   min(first_midnight) AS entry_midnight
            FROM spans
            WHERE first_midnight <= least(
                    coalesce(next_from, TIMESTAMP '9999-12-31'),
                    judged_on + INTERVAL 1 DAY)
            GROUP BY ALL
        ),
        probe AS (
            SELECT *, judged_on + INTERVAL 1 DAY AS cutoff FROM entries
        ),
        judged AS (
            SELECT p.*, h.outcome AS state_outcome, h.close_date AS state_close
            FROM probe p
            ASOF JOIN deal_history h
              ON p.deal_id = h.deal_id AND p.cutoff > h.valid_from
        ),
        pushes AS (
            SELECT e.quarter, e.deal_id,
                   min(v.valid_from) FILTER (WHERE v.prev_close <= e.q_end
                       AND v.prev_close >= e.q_start AND v.close_date > e.q_end)
                       AS first_push_at,
                   arg_min(v.close_date, v.valid_from) FILTER (
                       WHERE v.prev_close <= e.q_end AND v.prev_close >= e.q_start
                       AND v.close_date > e.q_end) AS new_close_date,
                   arg_min(date_diff('day', v.prev_close, v.close_date),
                           v.valid_from) FILTER (
                       WHERE v.prev_close <= e.q_end AND v.prev_close >= e.q_start
                       AND v.close_date > e.q_end) AS days_moved,
                   count(*) FILTER (WHERE v.close_date > v.prev_close
                       AND v.valid_from < e.judged_on + INTERVAL 1 DAY) AS pushes
            FROM entries e
            JOIN v ON v.deal_id = e.deal_id
                  AND v.valid_from >= CAST(e.q_start AS TIMESTAMP)
            GROUP BY e.quarter, e.deal_id
        )
        SELECT j.quarter, j.deal_id, d.name, d.owner, d.team,
               CAST(j.entry_midnight - INTERVAL 1 DAY AS DATE) AS entered_on,
               j.expected_close, j.amount,
               CASE
                   WHEN j.state_outcome IN ('won', 'lost') THEN j.state_outcome
                   WHEN j.state_close > j.q_end THEN 'pushed_out'
                   WHEN j.judged_on < j.q_end THEN 'open'
                   ELSE 'open_at_end'
               END AS outcome,
               CAST(p.first_push_at AS DATE) AS first_push_on,
               p.days_moved, p.new_close_date,
               coalesce(p.pushes, 0) AS pushes,
               d.outcome AS current_outcome,
               d.close_date AS current_close_date
        FROM judged j
        JOIN deals d ON d.deal_id = j.deal_id
        LEFT JOIN pushes p ON p.quarter = j.quarter AND p.deal_id = j.deal_id
        WHERE (CAST(? AS VARCHAR) IS NULL OR d.team = ?)
        ORDER BY j.quarter, j.deal_id
        """,
        [names, starts, [q.end for q in quarters], ends, team, team],
    ).df()
    frame["slipped"] = frame["outcome"].isin(["lost", "pushed_out", "open_at_end"])
    for column in _DATE_COLUMNS:
        frame[column] = [None if pd.isna(v) else v.date() for v in frame[column]]
    return frame[_COHORT_COLUMNS]


_DATE_COLUMNS = [
    "entered_on",
    "expected_close",
    "first_push_on",
    "new_close_date",
    "current_close_date",
]


_COHORT_COLUMNS = [
    "quarter",
    "deal_id",
    "name",
    "owner",
    "team",
    "entered_on",
    "expected_close",
    "amount",
    "outcome",
    "slipped",
    "first_push_on",
    "days_moved",
    "new_close_date",
    "pushes",
    "current_outcome",
    "current_close_date",
]


def quarter_slips(
    con: duckdb.DuckDBPyConnection,
    quarter: str | Quarter,
    *,
    team: str | None = None,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """The deals that slipped from ``quarter`` (see :func:`slip_cohort`).

    For a quarter still running, only the slips known by ``as_of`` (pushed
    out or lost so far) are listed.
    """
    as_of = resolve_as_of(con, as_of)
    period = resolve_quarter(con, quarter, as_of)
    cohort = slip_cohort(con, [period], as_of=as_of, team=team)
    return cohort[cohort["slipped"]].reset_index(drop=True)


# --------------------------------------------------------------------------
# Signals of a deal at a date


def _question_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        """
        SELECT question_id FROM (
            SELECT question_id, sort_order FROM questions
            UNION
            SELECT DISTINCT question_id, NULL FROM case_answers
        )
        GROUP BY question_id
        ORDER BY min(sort_order) NULLS LAST, question_id
        """
    ).fetchall()
    return [r[0] for r in rows]


def slip_signals(
    con: duckdb.DuckDBPyConnection,
    deal_ids: list[str],
    as_of_dates: list[dt.date],
    *,
    large_amount: float | None = None,
) -> tuple[pd.DataFrame, list[Signal]]:
    """Yes/no signals of each deal as it stood at the end of its date.

    ``deal_ids[i]`` is looked at as of ``as_of_dates[i]``; only versions,
    answers and stakeholders recorded before the end of that day are used.
    ``large_amount`` is the threshold of the large-amount signal (in the
    reporting currency); by default the 75th percentile of these amounts.
    ``no_next_step`` is the next step of the version in force at the end of
    the date (blank or missing); it is False everywhere when no version in
    ``deal_history`` carries a next step (:func:`next_steps_versioned`).

    Returns
    -------
    (DataFrame, list of Signal)
        The frame has one row per input position (index ``0..n-1``): a bool
        column per signal key, plus ``amount`` at that date.
    """
    n = len(deal_ids)
    questions = _question_ids(con)
    signals = list(MECHANICS_SIGNALS) + [s for q in questions for s in _case_signals(q)]
    if n == 0:
        columns = ["amount"] + [s.key for s in signals]
        return pd.DataFrame(columns=columns), signals
    params = [list(range(n)), [str(d) for d in deal_ids], list(as_of_dates)]
    probe_sql = """
        probe AS (
            SELECT unnest(?) AS row_key, unnest(?) AS deal_id,
                   CAST(unnest(?) AS DATE) + INTERVAL 1 DAY AS cutoff
        )
    """
    state = con.execute(
        f"""
        WITH {probe_sql},
        v AS (
            SELECT *,
                   lag(close_date) OVER (PARTITION BY deal_id ORDER BY valid_from)
                       AS prev_close
            FROM deal_history
        ),
        -- the state at the cutoff and the pushes before it (a join and
        -- arg_max: much faster here than an ASOF join on a probe of values)
        state_at AS (
            SELECT p.row_key,
                   arg_max_null(v.stage, v.valid_from) AS stage,
                   arg_max_null(v.amount, v.valid_from) AS amount,
                   arg_max_null(v.forecast_category, v.valid_from)
                       AS forecast_category,
                   arg_max_null(nullif(trim(v.next_step), ''), v.valid_from)
                       AS next_step,
                   count(*) FILTER (WHERE v.close_date > v.prev_close) AS pushes
            FROM probe p JOIN v ON v.deal_id = p.deal_id AND v.valid_from < p.cutoff
            GROUP BY p.row_key
        ),
        open_stages AS (
            SELECT stage,
                   percent_rank() OVER (ORDER BY sort_order) AS stage_rank
            FROM stages WHERE NOT coalesce(is_closed, false)
        ),
        people AS (
            SELECT row_key,
                   count(*) FILTER (WHERE NOT coalesce(removed, false)) AS people,
                   count(*) FILTER (WHERE NOT coalesce(removed, false)
                       AND role = 'coach') AS coaches
            FROM (
                SELECT p.row_key, s.removed, s.role,
                       row_number() OVER (
                           PARTITION BY p.row_key, s.stakeholder_id
                           ORDER BY s.recorded_at DESC, s.version_id DESC) AS k
                FROM probe p JOIN stakeholders s
                  ON s.deal_id = p.deal_id AND s.recorded_at < p.cutoff
            )
            WHERE k = 1
            GROUP BY row_key
        )
        SELECT p.row_key, h.amount, h.forecast_category, h.next_step,
               os.stage_rank,
               coalesce(h.pushes, 0) AS pushes,
               coalesce(pe.people, 0) AS people,
               coalesce(pe.coaches, 0) AS coaches
        FROM probe p
        LEFT JOIN state_at h ON h.row_key = p.row_key
        LEFT JOIN open_stages os ON os.stage = h.stage
        LEFT JOIN people pe ON pe.row_key = p.row_key
        ORDER BY p.row_key
        """,
        params,
    ).df()
    answers = con.execute(
        f"""
        WITH {probe_sql},
        latest AS (
            SELECT p.row_key, a.question_id, a.status,
                   row_number() OVER (
                       PARTITION BY p.row_key, a.question_id
                       ORDER BY a.recorded_at DESC, a.answer_id DESC) AS k
            FROM probe p JOIN case_answers a
              ON a.deal_id = p.deal_id AND a.recorded_at < p.cutoff
        )
        SELECT row_key, question_id, status FROM latest WHERE k = 1
        """,
        params,
    ).df()

    amount = state["amount"].astype(float)
    if large_amount is None:
        large_amount = _large_amount_threshold(amount)
    frame = pd.DataFrame(index=pd.RangeIndex(n))
    frame["amount"] = amount.to_numpy()
    frame["pushed_before"] = (state["pushes"] > 0).to_numpy()
    frame["not_commit"] = (state["forecast_category"] != "commit").to_numpy()
    frame["late_stage"] = (state["stage_rank"] >= 0.5).fillna(False).to_numpy()
    frame["large_amount"] = (amount >= large_amount).fillna(False).to_numpy()
    frame["single_stakeholder"] = (state["people"] <= 1).to_numpy()
    frame["no_coach"] = (state["coaches"] == 0).to_numpy()
    # The next step of the version in force then; never the deal's current
    # one, which a source without versioned next steps would leave here.
    frame["no_next_step"] = state["next_step"].isna().to_numpy() & next_steps_versioned(
        con
    )
    for question in questions:
        latest = answers[answers["question_id"] == question]
        status = np.full(n, "unknown", dtype=object)
        status[latest["row_key"].to_numpy(dtype=int)] = latest["status"].to_numpy()
        frame[f"case:{question}"] = status != "confirmed"
        frame[f"unknown:{question}"] = status == "unknown"
    frame.attrs["large_amount"] = large_amount
    return frame, signals


def _large_amount_threshold(amount: pd.Series) -> float:
    known = amount.dropna()
    if known.empty:
        return float("inf")
    return float(known.quantile(LARGE_AMOUNT_QUANTILE))


# --------------------------------------------------------------------------
# Drivers


def closed_quarters(
    con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None
) -> list[Quarter]:
    """Quarters that ended on or before ``as_of`` and hold expected closes,
    oldest first."""
    as_of = resolve_as_of(con, as_of)
    start_month = fiscal_start_month(con)
    row = con.execute(
        "SELECT min(close_date) FROM deal_history WHERE close_date IS NOT NULL"
    ).fetchone()
    if row[0] is None:
        return []
    quarter = quarter_of(row[0], start_month)
    quarters = []
    while quarter.end <= as_of:
        quarters.append(quarter)
        quarter = quarter.next()
    return quarters


def _informative(frame: pd.DataFrame, signals: list[Signal]) -> list[Signal]:
    """The signals that vary over ``frame``'s rows, without one that repeats an
    earlier signal row for row (e.g. "unknown" where no answer is "assumed")."""
    kept, seen = [], set()
    for signal in signals:
        column = frame[signal.key].to_numpy(dtype=bool)
        if column.all() or not column.any():
            continue
        pattern = column.tobytes()
        if pattern in seen:
            continue
        seen.add(pattern)
        kept.append(signal)
    return kept


def _wilson(successes: np.ndarray, trials: np.ndarray, z: float = 1.959964):
    """Wilson score interval of a proportion, element-wise."""
    trials = np.asarray(trials, dtype=float)
    safe = np.where(trials > 0, trials, 1.0)
    p = np.asarray(successes, dtype=float) / safe
    denominator = 1 + z**2 / safe
    centre = (p + z**2 / (2 * safe)) / denominator
    half = z * np.sqrt(p * (1 - p) / safe + z**2 / (4 * safe**2)) / denominator
    low = np.where(trials > 0, centre - half, np.nan)
    high = np.where(trials > 0, centre + half, np.nan)
    return low, high


def _bootstrap_lift(
    present: np.ndarray,
    slipped: np.ndarray,
    clusters: np.ndarray,
    rng: np.random.Generator,
    draws: int = BOOTSTRAP_DRAWS,
) -> tuple[np.ndarray, np.ndarray]:
    """2.5% and 97.5% percentiles of each signal's lift over Poisson(1)
    bootstrap resamples. ``present`` is (rows, signals); rows of the same
    ``clusters`` code (0..k-1, one per deal) are resampled together, since a
    deal seen at several checkpoints is one observation, not several."""
    x = present.astype(np.float32)
    y = slipped.astype(np.float32)
    xy = x * y[:, None]
    nx = 1.0 - x
    nxy = nx * y[:, None]
    lifts = []
    for chunk in np.array_split(np.arange(draws), max(1, draws // 200)):
        per_deal = rng.poisson(1.0, size=(len(chunk), clusters.max() + 1))
        weights = per_deal[:, clusters].astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate_with = (weights @ xy) / (weights @ x)
            rate_without = (weights @ nxy) / (weights @ nx)
            lifts.append(rate_with / rate_without)
    lift = np.concatenate(lifts)
    lift[~np.isfinite(lift)] = np.nan
    with warnings.catch_warnings():
        # a signal never present in a resample gives an all-NaN column
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanpercentile(lift, 2.5, axis=0)
        high = np.nanpercentile(lift, 97.5, axis=0)
    return low, high


def _adjusted_odds_ratios(
    present: np.ndarray,
    slipped: np.ndarray,
    clusters: np.ndarray,
    columns: list[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Odds ratio of each of ``columns`` adjusted for the others: one logistic
    regression over them (lightly L2-regularised, C = 10), with a 95% interval
    from cluster-robust (sandwich) standard errors, deals being the clusters.
    Returns (odds ratio, low, high), one value per column."""
    from sklearn.linear_model import LogisticRegression

    x = present[:, columns].astype(float)
    if not columns or len(np.unique(slipped)) < 2:
        nan = np.full(len(columns), np.nan)
        return nan, nan, nan
    model = LogisticRegression(C=ADJUSTED_C, max_iter=2000)
    model.fit(x, slipped)
    design = np.column_stack([np.ones(len(x)), x])
    coef = np.concatenate([model.intercept_, model.coef_[0]])
    p = 1.0 / (1.0 + np.exp(-(design @ coef)))
    penalty = np.eye(design.shape[1]) / ADJUSTED_C
    penalty[0, 0] = 0.0
    hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
    scores = design * (slipped - p)[:, None]
    per_deal = np.zeros((clusters.max() + 1, design.shape[1]))
    np.add.at(per_deal, clusters, scores)
    inverse = np.linalg.pinv(hessian)
    covariance = inverse @ (per_deal.T @ per_deal) @ inverse
    error = np.sqrt(np.clip(np.diag(covariance)[1:], 0, None))
    beta = coef[1:]
    return (
        np.exp(beta),
        np.exp(beta - 1.959964 * error),
        np.exp(beta + 1.959964 * error),
    )


def driver_rows(con, as_of, team=None):
    """The pipelines of the closed quarters at their checkpoints
    (:func:`slip_training_rows`) with each deal's signals then."""
    quarters = closed_quarters(con, as_of)
    rows = slip_training_rows(con, quarters, team=team)
    signals_frame, signals = slip_signals(
        con, rows["deal_id"].tolist(), rows["snapshot"].tolist()
    )
    return rows, signals_frame, signals


def slip_drivers(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: dt.date | None = None,
    team: str | None = None,
    seed: int = 0,
    outcome: str = "pushed",
) -> tuple[pd.DataFrame, dict]:
    """Slip rate with and without each signal over the closed quarters.

    Parameters
    ----------
    as_of
        The present (default meta ``today``): quarters that ended by then are
        measured, and the value at stake is the pipeline of its quarter.
    seed
        Seed of the bootstrap.
    outcome
        What counts as a slip. ``"pushed"`` (default): the deal was still open
        when the quarter ended (pushed out, or overdue); a loss is not a slip
        here, because what makes deals lose is the close-likelihood model's
        question and losses would hide the timing drivers. ``"not_won"``: any
        deal not won in the quarter, losses included (the slipped list of
        :func:`quarter_slips`).

    Returns
    -------
    (DataFrame, dict)
        One row per signal that varies (and does not repeat another row for
        row), measured on the rows of :func:`driver_rows`: ``factor, key,
        kind``, ``deals_with, deals_without`` (distinct deals), ``rows_with,
        rows_without`` (deal-checkpoints), ``slip_rate_with,
        slip_rate_without`` (share of rows that slipped), ``lift``, ``ci_low,
        ci_high`` (95% bootstrap interval of the lift: 1,000 Poisson(1)
        resamples of deals, a deal's checkpoints together), ``rate_with_low,
        rate_with_high`` (Wilson 95% interval of the rate with, the distinct
        deals as sample size), ``adjusted_odds_ratio, adjusted_ci_low,
        adjusted_ci_high`` (from one logistic regression over the other
        signals, cluster-robust interval), ``value_at_stake`` (open amount of
        the current quarter's pipeline carrying the signal, in the reporting
        currency) and ``significant`` (the lift interval excludes 1). Sorted
        so the first row is most worth fixing: significant drivers that raise
        the slip rate first, each group by (rate with - rate without) x value
        at stake, then by the rate difference. The dict says what was
        measured (quarters, rows, deals, slip rate, large-amount threshold).
    """
    if outcome not in SLIP_OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(SLIP_OUTCOMES)}")
    inputs = _driver_inputs(con, resolve_as_of(con, as_of), team)
    return _driver_table(inputs, outcome, seed)


_DRIVER_COLUMNS = [
    "factor",
    "key",
    "kind",
    "deals_with",
    "deals_without",
    "rows_with",
    "rows_without",
    "slip_rate_with",
    "slip_rate_without",
    "lift",
    "ci_low",
    "ci_high",
    "rate_with_low",
    "rate_with_high",
    "adjusted_odds_ratio",
    "adjusted_ci_low",
    "adjusted_ci_high",
    "value_at_stake",
    "significant",
]


@dataclass
class _DriverInputs:
    cohort: pd.DataFrame  # (quarter, deal) rows of the closed quarters
    frame: pd.DataFrame  # their signals at entry
    signals: list[Signal]  # the informative ones
    stake: np.ndarray  # open amount of the current quarter per signal


def _driver_inputs(con, as_of: dt.date, team: str | None) -> _DriverInputs:
    cohort, frame, signals = driver_rows(con, as_of, team)
    signals = _informative(frame, signals) if len(cohort) else []
    keys = [s.key for s in signals]

    # Value at stake: today's pipeline of the current quarter, signals as of
    # today, with the large-amount threshold learned on the closed quarters.
    current = pipeline_as_of(
        con, quarter_of(as_of, fiscal_start_month(con)), as_of, team
    )
    now, _ = slip_signals(
        con,
        current["deal_id"].tolist(),
        [as_of] * len(current),
        large_amount=frame.attrs.get("large_amount"),
    )
    stake = np.zeros(len(keys))
    if len(current) and keys:
        amounts = now["amount"].fillna(0.0).to_numpy()
        stake = (now[keys].to_numpy(dtype=bool) * amounts[:, None]).sum(axis=0)
    return _DriverInputs(cohort, frame, signals, stake)


def _driver_table(inputs: _DriverInputs, outcome: str, seed: int):
    cohort, frame, signals = inputs.cohort, inputs.frame, inputs.signals
    rows = len(cohort)
    slipped = cohort["outcome_at_end"].isin(SLIP_OUTCOMES[outcome]).to_numpy(bool)
    info = {
        "quarters": sorted(cohort["quarter"].unique().tolist()),
        "rows": rows,
        "deals": int(cohort["deal_id"].nunique()),
        "outcome": outcome,
        "slip_rate": float(slipped.mean()) if rows else None,
        "large_amount": frame.attrs.get("large_amount"),
        "interval": "95% bootstrap interval of the lift (deals resampled)",
    }
    if rows == 0 or not signals:
        return pd.DataFrame(columns=_DRIVER_COLUMNS), info

    keys = [s.key for s in signals]
    present = frame[keys].to_numpy(dtype=bool)
    deal_codes = pd.factorize(cohort["deal_id"])[0]
    n_with = present.sum(axis=0)
    n_without = rows - n_with
    slips_with = (present & slipped[:, None]).sum(axis=0)
    slips_without = slipped.sum() - slips_with
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_with = slips_with / n_with
        rate_without = slips_without / n_without
        lift = rate_with / rate_without
    ci_low, ci_high = _bootstrap_lift(
        present, slipped, deal_codes, np.random.default_rng(seed)
    )
    # Wilson interval with the distinct deals as the sample size (a deal seen
    # at several checkpoints is not several independent trials)
    deals_with = np.array(
        [cohort["deal_id"][present[:, j]].nunique() for j in range(len(keys))]
    )
    deals_without = np.array(
        [cohort["deal_id"][~present[:, j]].nunique() for j in range(len(keys))]
    )
    wilson_low, wilson_high = _wilson(rate_with * deals_with, deals_with)

    # Adjusted for the other signals: "not confirmed" gaps with the mechanics
    # in one model, "unknown" gaps with the mechanics in another (one gap
    # nests in the other, so they do not share a model).
    adjusted = np.full((3, len(keys)), np.nan)
    for family in ("case:", "unknown:"):
        columns = [
            j for j, k in enumerate(keys) if k.startswith(family) or ":" not in k
        ]
        ratios = np.array(_adjusted_odds_ratios(present, slipped, deal_codes, columns))
        for position, j in enumerate(columns):
            if family == "case:" or keys[j].startswith(family):
                adjusted[:, j] = ratios[:, position]

    table = pd.DataFrame(
        {
            "factor": [s.present for s in signals],
            "key": keys,
            "kind": [s.kind for s in signals],
            "deals_with": deals_with,
            "deals_without": deals_without,
            "rows_with": n_with,
            "rows_without": n_without,
            "slip_rate_with": rate_with,
            "slip_rate_without": rate_without,
            "lift": lift,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "rate_with_low": wilson_low,
            "rate_with_high": wilson_high,
            "adjusted_odds_ratio": adjusted[0],
            "adjusted_ci_low": adjusted[1],
            "adjusted_ci_high": adjusted[2],
            "value_at_stake": inputs.stake,
        }
    )
    table["significant"] = (table["ci_low"] > 1) | (table["ci_high"] < 1)
    difference = table["slip_rate_with"] - table["slip_rate_without"]
    table = table.assign(
        _harmful=table["significant"] & (difference > 0),
        _score=difference * table["value_at_stake"],
        _difference=difference,
    ).sort_values(
        ["_harmful", "_score", "_difference", "key"],
        ascending=[False, False, False, True],
    )
    return table[_DRIVER_COLUMNS].reset_index(drop=True), info


# --------------------------------------------------------------------------
# The report


def slips_report(
    con: duckdb.DuckDBPyConnection, *, quarter: str, team: str | None = None
) -> Report:
    """``python -m dealcase slips``: the deals that slipped from ``quarter``
    and what drives slips over all closed quarters.

    ``doc``: ``quarter, team, currency, as_of, slipped`` (list of deals not
    won in the quarter: pushed out, lost or open at its end; see
    :func:`slip_cohort`), ``drivers`` (list of ``factor, slip_rate_with,
    slip_rate_without, lift, ci_low, ci_high, value_at_stake`` and the other
    columns of :func:`slip_drivers`, a slip being a deal still open at the
    quarter's end; ``ci_low``/``ci_high`` bound the lift),
    ``drivers_not_won`` (the same with losses counted as slips) and
    ``measured`` (quarters and rows behind the drivers). ``table``: the
    drivers.
    """
    as_of = resolve_as_of(con, None)
    period = resolve_quarter(con, quarter, as_of)
    slipped = quarter_slips(con, period, team=team, as_of=as_of)
    inputs = _driver_inputs(con, as_of, team)
    drivers, info = _driver_table(inputs, "pushed", seed=0)
    drivers_not_won, _ = _driver_table(inputs, "not_won", seed=0)
    current = quarter_of(as_of, fiscal_start_month(con))

    doc = {
        "quarter": period.name,
        "team": team,
        "currency": get_meta(con, "currency", "USD"),
        "as_of": as_of,
        "slipped": slipped.drop(columns=["slipped"]).to_dict(orient="records"),
        "drivers": drivers.to_dict(orient="records"),
        "drivers_not_won": drivers_not_won.to_dict(orient="records"),
        "measured": {**info, "value_at_stake_quarter": current.name},
    }
    outcomes = slipped["outcome"].value_counts()
    running = " (quarter still running)" if period.end > as_of else ""
    if slipped.empty:
        notes = [f"No deal expected to close in {period.name} slipped{running}."]
    else:
        counts = ", ".join(
            f"{count} {kind.replace('_', ' ')}" for kind, count in outcomes.items()
        )
        notes = [
            f"{len(slipped):,} deals slipped from {period.name}{running}: {counts}."
        ]
    if info["rows"] == 0:
        notes.append(
            "No closed quarter had open deals expected to close in it (the data "
            "may carry no expected close dates for open deals), so what drives "
            "slips cannot be measured."
        )
    else:
        notes.append(
            f"Drivers over {len(info['quarters'])} closed quarters: their "
            "pipelines on the first day, after 30 and 60 days and two weeks "
            f"before the end ({info['deals']:,} deals, {info['rows']:,} "
            "deal-checkpoints), each deal as it stood then. A slip here is a "
            "deal still open when its quarter ended (losses are the "
            "close-likelihood model's subject); the low and high bounds are "
            f"a {info['interval']}; value at stake is the open {current.name} "
            "pipeline carrying the factor."
        )
    table = drivers[
        [
            "factor",
            "deals_with",
            "slip_rate_with",
            "slip_rate_without",
            "lift",
            "ci_low",
            "ci_high",
            "adjusted_odds_ratio",
            "value_at_stake",
        ]
    ].round(
        {
            "slip_rate_with": 3,
            "slip_rate_without": 3,
            "lift": 2,
            "ci_low": 2,
            "ci_high": 2,
            "adjusted_odds_ratio": 2,
            "value_at_stake": 0,
        }
    )
    return Report(
        doc=doc,
        table=table,
        title=f"Why deals slip ({doc['currency']}); slipped from {period.name}",
        notes=notes,
    )


# --------------------------------------------------------------------------
# Slip risk of open deals


def slip_training_rows(
    con: duckdb.DuckDBPyConnection,
    quarters: list[Quarter],
    *,
    team: str | None = None,
) -> pd.DataFrame:
    """The pipelines of past quarters at fixed checkpoints, and which of their
    deals were still open when the quarter ended.

    Checkpoints are the quarter's first day, 30 and 60 days in, and 14 days
    before its end (see ``SNAPSHOT_OFFSETS``). Returns ``quarter, snapshot,
    deal_id, days_left`` (days from the snapshot to the quarter's end),
    ``outcome_at_end`` (won, lost or open at the end of the quarter) and
    ``pushed`` (still open then).
    """
    names, starts, ends, snapshots = [], [], [], []
    for quarter in quarters:
        days = {quarter.start + dt.timedelta(days=d) for d in SNAPSHOT_OFFSETS}
        days.add(quarter.end - dt.timedelta(days=LATE_SNAPSHOT_DAYS))
        for day in sorted(d for d in days if quarter.start <= d <= quarter.end):
            names.append(quarter.name)
            starts.append(quarter.start)
            ends.append(quarter.end)
            snapshots.append(day)
    if not names:
        return pd.DataFrame(
            columns=[
                "quarter",
                "snapshot",
                "deal_id",
                "days_left",
                "outcome_at_end",
                "pushed",
            ]
        )
    frame = con.execute(
        """
        WITH snaps AS (
            SELECT unnest(?) AS quarter,
                   CAST(unnest(?) AS DATE) AS q_start,
                   CAST(unnest(?) AS DATE) AS q_end,
                   CAST(unnest(?) AS DATE) AS snapshot
        ),
        probe AS (
            SELECT s.*, d.deal_id,
                   s.snapshot + INTERVAL 1 DAY AS cutoff,
                   s.q_end + INTERVAL 1 DAY AS end_cutoff
            FROM snaps s CROSS JOIN deals d
            WHERE (d.created_on IS NULL OR d.created_on <= s.snapshot)
              AND (CAST(? AS VARCHAR) IS NULL OR d.team = ?)
        ),
        at_snapshot AS (
            SELECT p.*, h.close_date, h.outcome
            FROM probe p
            ASOF JOIN deal_history h
              ON p.deal_id = h.deal_id AND p.cutoff > h.valid_from
        ),
        in_pipeline AS (
            SELECT * FROM at_snapshot
            WHERE outcome = 'open' AND close_date BETWEEN q_start AND q_end
        )
        SELECT i.quarter, i.snapshot, i.deal_id,
               date_diff('day', i.snapshot, i.q_end) AS days_left,
               h.outcome AS outcome_at_end,
               h.outcome = 'open' AS pushed
        FROM in_pipeline i
        ASOF JOIN deal_history h
          ON i.deal_id = h.deal_id AND i.end_cutoff > h.valid_from
        ORDER BY i.quarter, i.snapshot, i.deal_id
        """,
        [names, starts, ends, snapshots, team, team],
    ).df()
    frame["snapshot"] = [d.date() for d in pd.to_datetime(frame["snapshot"])]
    return frame


@dataclass
class SlipModel:
    """What :func:`slip_risk` learned from the quarters ended by ``as_of``.

    ``coef`` is None when there was too little history; every deal then gets
    ``base_rate``. Otherwise ``coef``, ``intercept`` and ``mean`` (of the
    training columns) belong to the columns of ``signals`` plus the share of
    the quarter left, last.
    """

    as_of: dt.date
    rows: int
    slipped: int
    base_rate: float
    signals: list[Signal]
    large_amount: float | None
    coef: np.ndarray | None = None
    intercept: float = 0.0
    mean: np.ndarray | None = None


# Fitted models by data and as_of: the deal pages ask for one deal at a
# time, and the fit does not change between them.
_MODEL_CACHE = Remembered(size=8)


def fit_slip_model(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> SlipModel:
    """Fit the slip-risk model on the pipelines of the quarters that had ended
    by ``as_of`` (see :func:`slip_risk`); reused while the data is unchanged."""
    return _MODEL_CACHE.get(con, (as_of,), lambda: _fit_slip_model(con, as_of))


def _fit_slip_model(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> SlipModel:
    from sklearn.linear_model import LogisticRegression

    training = slip_training_rows(con, closed_quarters(con, as_of))
    train, signals = slip_signals(
        con, training["deal_id"].tolist(), training["snapshot"].tolist()
    )
    signals = _informative(train, signals)
    pushed = training["pushed"].to_numpy(dtype=bool)
    rows, positives = len(pushed), int(pushed.sum())
    fitted = SlipModel(
        as_of=as_of,
        rows=rows,
        slipped=positives,
        base_rate=(positives + 1) / (rows + 2),
        signals=signals,
        large_amount=train.attrs.get("large_amount"),
    )
    enough = (
        rows >= MIN_TRAINING_ROWS
        and positives >= MIN_CLASS_ROWS
        and rows - positives >= MIN_CLASS_ROWS
    )
    if not enough:
        logger.info(
            "slip risk: %s past pipeline rows (%s slipped); using the base rate",
            rows,
            positives,
        )
    else:
        x_train = np.column_stack(
            [
                train[[s.key for s in signals]].to_numpy(dtype=float),
                training["days_left"].to_numpy(dtype=float) / 91.0,
            ]
        )
        model = LogisticRegression(C=RISK_C, max_iter=1000)
        model.fit(x_train, pushed)
        fitted.coef = model.coef_[0]
        fitted.intercept = float(model.intercept_[0])
        fitted.mean = x_train.mean(axis=0)
    return fitted


def slip_risk(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date | str | None,
    deal_ids: list[str] | None = None,
) -> pd.DataFrame:
    """Each open deal's chance to be pushed out of its quarter.

    "Pushed out" means still open when the quarter of its expected close date
    ends (moved to a later quarter or left overdue); a loss is not a push. The
    chance comes from an L2-regularised logistic regression over the slip
    signals (:func:`slip_signals`) and the share of the quarter still ahead,
    fitted on the pipelines of quarters that had ended by ``as_of`` at fixed
    checkpoints (:func:`slip_training_rows`), each deal as it stood then, so
    nothing after ``as_of`` is used. With
    fewer than ``MIN_TRAINING_ROWS`` rows, or too few of either outcome, every
    deal gets the past base rate (smoothed: (pushed + 1) / (rows + 2)).

    A deal expected in a quarter that has already ended and still open has
    slipped: its risk is 1. A deal without a close date is taken to be
    expected in the quarter of ``as_of``.

    Returns
    -------
    DataFrame
        ``deal_id, slip_risk`` (0..1), ``slip_reasons`` (list of ``{"text",
        "effect"}``, effect in probability (0.05 = 5 points); the effects sum
        with ``slip_base`` to ``slip_risk``) and ``slip_base`` (the risk of a
        deal with average signals, or the base rate). Deals not open at
        ``as_of`` are left out.
    """
    as_of = resolve_as_of(con, as_of)
    start_month = fiscal_start_month(con)
    open_deals = deals_as_of(con, as_of, include_closed=False)
    if deal_ids is not None:
        wanted = {str(d) for d in deal_ids}
        open_deals = open_deals[open_deals["deal_id"].isin(wanted)]
    open_deals = open_deals.reset_index(drop=True)
    quarter_ends = [
        quarter_of(
            as_of if pd.isna(close) else pd.Timestamp(close).date(), start_month
        ).end
        for close in open_deals["close_date"]
    ]
    days_left = np.array([(end - as_of).days for end in quarter_ends], dtype=float)
    ended = days_left < 0

    fitted = fit_slip_model(con, as_of)
    n = len(open_deals)
    if fitted.coef is None or n == 0:
        base = np.full(n, fitted.base_rate)
        risk, reasons = base.copy(), [[] for _ in range(n)]
    else:
        now, _ = slip_signals(
            con,
            open_deals["deal_id"].tolist(),
            [as_of] * n,
            large_amount=fitted.large_amount,
        )
        # the share of the quarter still ahead, 0..1 (a quarter is ~91 days)
        x_now = np.column_stack(
            [
                now[[s.key for s in fitted.signals]].to_numpy(dtype=float),
                np.clip(days_left, 0, None) / 91.0,
            ]
        )
        contributions = (x_now - fitted.mean) * fitted.coef
        base_logit = float(fitted.intercept + fitted.coef @ fitted.mean)
        effects = _sequential_effects(base_logit, contributions)
        risk = 1.0 / (1.0 + np.exp(-(base_logit + contributions.sum(axis=1))))
        base = np.full(n, 1.0 / (1.0 + np.exp(-base_logit)))
        reasons = [
            _reason_list(effects[i], x_now[i], fitted.signals, days_left[i])
            for i in range(n)
        ]

    for i in np.flatnonzero(ended):
        risk[i] = 1.0
        reasons[i] = [
            {
                "text": "its quarter has ended with the deal still open",
                "effect": float(1.0 - base[i]),
            }
        ]
    return pd.DataFrame(
        {
            "deal_id": open_deals["deal_id"].astype(str),
            "slip_risk": risk,
            "slip_reasons": reasons,
            "slip_base": base,
        }
    )


def _reason_list(effects, values, signals, days_left) -> list[dict]:
    """Readable reasons of one deal, largest first. The two gaps of a question
    (not confirmed, unknown) make one reason saying where the answer stands;
    the last column is the share of the quarter left. Beyond
    ``MAX_REASONS`` (or below ``MIN_REASON_EFFECT``) effects are summed into
    one "other signals" reason, so the effects still add up."""
    topics: dict[str, list] = {}
    for j, signal in enumerate(signals):
        if signal.kind == "case":
            question = signal.key.split(":", 1)[1]
            topic = topics.setdefault(f"case:{question}", [0.0, question, {}])
            topic[2][signal.key.split(":", 1)[0]] = bool(values[j])
        else:
            text = signal.present if values[j] else signal.absent
            topic = topics.setdefault(signal.key, [0.0, text, None])
        topic[0] += effects[j]
    time_text = f"{int(max(days_left, 0))} days left in its quarter"
    topics["days_left"] = [effects[len(signals)], time_text, None]

    reasons = []
    for effect, text, flags in topics.values():
        if flags is not None:
            label = text.replace("_", " ")
            if flags.get("unknown"):
                text = f"{label} unknown"
            elif flags.get("case"):
                text = f"{label} not confirmed"
            else:
                text = f"{label} confirmed"
        reasons.append({"text": text, "effect": float(effect)})
    reasons.sort(key=lambda r: -abs(r["effect"]))
    shown = [r for r in reasons[:MAX_REASONS] if abs(r["effect"]) >= MIN_REASON_EFFECT]
    rest = sum(r["effect"] for r in reasons) - sum(r["effect"] for r in shown)
    if abs(rest) >= 0.001:
        shown.append({"text": "other signals", "effect": float(rest)})
    return shown


def _sequential_effects(base_logit: float, contributions: np.ndarray) -> np.ndarray:
    """Split ``sigmoid(base + sum(c)) - sigmoid(base)`` into one effect per
    contribution: add them largest first, each effect being the change in
    probability it makes. Effects keep the sign of their contribution and sum
    exactly to the total change."""
    order = np.argsort(-np.abs(contributions), axis=1)
    ordered = np.take_along_axis(contributions, order, axis=1)
    logits = base_logit + np.cumsum(ordered, axis=1)
    before = np.concatenate(
        [np.full((len(contributions), 1), base_logit), logits[:, :-1]], axis=1
    )
    steps = 1 / (1 + np.exp(-logits)) - 1 / (1 + np.exp(-before))
    effects = np.empty_like(steps)
    np.put_along_axis(effects, order, steps, axis=1)
    return effects
