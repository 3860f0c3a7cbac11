"""Where the quarter will land: a distribution, not a number.

The quarter's result is what is booked already (deals won in the quarter up
to the end of the as-of date), plus each open deal won before the quarter
ends (a Bernoulli draw with its in-quarter probability: close likelihood
times timing, see :mod:`dealcase.timing`), plus new business that is not in
the pipeline yet (:mod:`dealcase.newbusiness`). Two checks against history
correct the model's level: likelihoods follow the recent win rate, and the
open deals' probabilities are scaled by how the same method did at the
same point of the last quarters (:func:`_recent_check`).

All parts are drawn together with one seeded ``numpy.random.Generator``; the
roll-ups by team, owner or segment are sums over the same draws, so parts
and whole agree.

Estimated probabilities share an uncertainty factor per draw (lognormal,
mean 1): the quarter-to-quarter drift the replayed quarters showed (shrunk
towards a prior when few could be replayed), widened when few deals had
closed before the as-of date: a forecast made from little history should
not look precise. Probabilities given
directly (``scores`` with a ``p_in_quarter`` column) are taken as exact.

:func:`quarter_distribution` is the fast path for the app: it takes
per-deal in-quarter probabilities and amounts and returns the distribution.
Many small deals are summed by their normal limit (Lyapunov), the deals
that carry most of the variance are drawn one by one, so 100,000 open deals
take well under a second and memory stays small.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from dealcase.errors import DealCaseError, InputError
from dealcase.newbusiness import (
    NO_GROUP,
    NewBusinessPart,
    estimate_new_business,
)
from dealcase.periods import (
    Quarter,
    fiscal_start_month,
    parse_quarter,
    resolve_as_of,
)
from dealcase.report import Report
from dealcase.store import Remembered, get_meta
from dealcase.timing import TimingModel, fit_timing, open_deal_state

logger = logging.getLogger(__name__)

GROUPINGS = ("team", "owner", "segment")
OVERRIDES = ("drop", "next_quarter", "won")
# Deals drawn one by one in the fast path; the rest are summed by their
# normal limit.
EXACT_DEALS = 256
# Above this many deal-draws the forecast switches to the fast path.
FULL_SIMULATION_LIMIT = 60_000_000
# Chunk of deal-draws simulated at once (bounds memory).
CHUNK_CELLS = 2_000_000
# Exact enumeration is used for at most this many open deals.
EXACT_ENUMERATION_DEALS = 14
SWING_DEALS = 10
HISTOGRAM_BINS = 60
# New deals are drawn one by one up to this many in all draws; beyond, the
# sum of a draw's new deals is drawn from its normal limit given their count.
NEW_BUSINESS_EXACT_PICKS = 500_000
# Uncertainty of estimated probabilities: a floor, plus a part that
# shrinks with the number of deals closed before the as-of date.
SIGMA_FLOOR = 0.06
SIGMA_PER_CLOSED = 3.0
FEW_CLOSED = 1000
# Likelihoods follow the win rate of the closes of the last this many days.
RECENT_WIN_RATE_DAYS = 91
MIN_RECENT_CLOSES = 100
# A past quarter is replayed while this many days of it are left after the
# same point: late in a quarter the forecast is as short as its replays, and
# dropping them there would drop their correction all at once. Systematic
# errors of about CHECK_SYSTEMATIC are expected a priori.
MIN_CHECK_DAYS = 1
CHECK_SYSTEMATIC = 0.15
# The check replays up to this many past quarters; their spread, shrunk
# towards CHECK_SYSTEMATIC with this many pseudo-quarters, is the drift.
CHECK_QUARTERS = 4
DRIFT_PRIOR_QUARTERS = 2


@dataclass
class Distribution:
    """Draws of the quarter's result for the company and each group.

    ``company`` has shape ``(draws,)``; ``groups`` has shape
    ``(n_groups, draws)`` and sums to ``company`` draw by draw.
    """

    company: np.ndarray
    groups: np.ndarray
    names: list[str] = field(default_factory=list)


def quarter_distribution(
    amounts,
    probabilities,
    *,
    booked: float = 0.0,
    group_index=None,
    group_names: list[str] | None = None,
    booked_by_group=None,
    new_business: list[NewBusinessPart] | None = None,
    sigma: float = 0.0,
    draws: int = 10_000,
    seed: int | np.random.Generator = 0,
    exact_deals: int | None = EXACT_DEALS,
) -> Distribution:
    """Draw the quarter's result from per-deal in-quarter probabilities.

    Parameters
    ----------
    amounts, probabilities
        One value per open deal: amount (reporting currency) and chance to
        be won before the quarter ends (0..1).
    booked
        Value already won in the quarter; added to every draw. With groups,
        pass ``booked_by_group`` instead (it sums to the company's).
    group_index
        Integer group of each deal (0..n_groups-1); ``group_names`` names
        them. New business parts are matched to groups by name.
    sigma
        Standard deviation of the log of the shared factor that scales all
        probabilities and the new-business rate in a draw (0: independent
        deals).
    exact_deals
        How many deals, those with the largest variance, are drawn one by
        one; the rest are summed by their normal limit. ``None`` draws every
        deal (the reference Monte Carlo; memory is chunked).

    Returns
    -------
    Distribution
        Draws for the company and per group, in the reporting currency.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    amounts = np.asarray(amounts, dtype=float)
    probabilities = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    if group_index is None:
        group_index = np.zeros(len(amounts), dtype=int)
        group_names = group_names or ["company"]
    group_index = np.asarray(group_index, dtype=int)
    n_groups = len(group_names) if group_names else int(group_index.max(initial=0)) + 1
    names = list(group_names) if group_names else [str(i) for i in range(n_groups)]

    factor = np.ones(draws)
    if sigma > 0:
        factor = np.exp(rng.normal(-0.5 * sigma**2, sigma, size=draws))

    totals = np.zeros((n_groups, draws))
    if booked_by_group is not None:
        totals += np.asarray(booked_by_group, dtype=float)[:, None]
    else:
        totals[0] += booked

    variance = amounts**2 * probabilities * (1.0 - probabilities)
    if exact_deals is None or len(amounts) <= exact_deals:
        one_by_one = np.arange(len(amounts))
        summed = np.zeros(0, dtype=int)
    else:
        order = np.argsort(-variance, kind="stable")
        one_by_one, summed = order[:exact_deals], order[exact_deals:]

    _draw_deals(
        totals,
        amounts[one_by_one],
        probabilities[one_by_one],
        group_index[one_by_one],
        factor,
        rng,
    )
    if len(summed):
        _draw_normal_sum(
            totals,
            amounts[summed],
            probabilities[summed],
            group_index[summed],
            factor,
            rng,
        )
    # Groups in name order, so the draws do not depend on the order the
    # parts were listed in (a query's row order is not guaranteed).
    for part in sorted(new_business or [], key=lambda part: part.name):
        if part.name not in names or part.expected_count <= 0:
            continue
        totals[names.index(part.name)] += _draw_new_business(part, factor, rng)
    return Distribution(company=totals.sum(axis=0), groups=totals, names=names)


def _draw_deals(totals, amounts, probabilities, group_index, factor, rng) -> None:
    n_groups, draws = totals.shape
    chunk = max(1, CHUNK_CELLS // draws)
    for start in range(0, len(amounts), chunk):
        stop = start + chunk
        p = np.minimum(probabilities[start:stop, None] * factor[None, :], 1.0)
        won = rng.random(p.shape) < p
        values = won * amounts[start:stop, None]
        membership = np.zeros((n_groups, len(p)))
        membership[group_index[start:stop], np.arange(len(p))] = 1.0
        totals += membership @ values


def _draw_normal_sum(totals, amounts, probabilities, group_index, factor, rng):
    n_groups, draws = totals.shape
    mean = np.bincount(group_index, amounts * probabilities, minlength=n_groups)
    second = np.bincount(group_index, amounts**2 * probabilities, minlength=n_groups)
    second_p = np.bincount(
        group_index, (amounts * probabilities) ** 2, minlength=n_groups
    )
    scaled_mean = mean[:, None] * factor[None, :]
    variance = second[:, None] * factor[None, :] - second_p[:, None] * factor**2
    noise = rng.standard_normal((n_groups, draws))
    totals += scaled_mean + np.sqrt(np.maximum(variance, 0.0)) * noise


def _draw_new_business(part: NewBusinessPart, factor, rng) -> np.ndarray:
    counts = rng.poisson(part.expected_count * factor)
    if counts.sum() <= NEW_BUSINESS_EXACT_PICKS:
        picks = rng.choice(part.amounts, size=int(counts.sum()), p=part.weights)
        owner = np.repeat(np.arange(len(counts)), counts)
        return np.bincount(owner, weights=picks, minlength=len(counts))
    mean = part.mean_amount
    spread = part.amount_spread
    noise = rng.standard_normal(len(counts))
    return counts * mean + np.sqrt(counts) * spread * noise


def exact_distribution(amounts, probabilities, booked: float = 0.0) -> pd.Series:
    """The exact distribution of booked plus independent Bernoulli deals.

    Returns a Series: probability indexed by total value, ascending. Meant
    for a handful of deals (2^n outcomes are merged by value as they go).
    """
    outcomes = {float(booked): 1.0}
    for amount, p in zip(amounts, probabilities, strict=True):
        merged: dict[float, float] = {}
        for value, chance in outcomes.items():
            merged[value] = merged.get(value, 0.0) + chance * (1.0 - p)
            won = value + float(amount)
            merged[won] = merged.get(won, 0.0) + chance * p
        outcomes = {v: c for v, c in merged.items() if c > 0}
    return pd.Series(outcomes).sort_index()


def exact_quantile(distribution: pd.Series, q: float) -> float:
    """Smallest value whose cumulative probability reaches ``q``."""
    cumulative = distribution.cumsum().to_numpy()
    position = int(np.searchsorted(cumulative, q - 1e-12, side="left"))
    return float(distribution.index[min(position, len(cumulative) - 1)])


def _draw_quantiles(draws: np.ndarray, percents) -> np.ndarray:
    """Quantiles of the draws at ``percents`` (0..100): the smallest draw
    with at least that share of draws at or below it (inverted CDF, with
    ``n * percent / 100`` rounded so 7% of 100 draws is the 7th)."""
    ordered = np.sort(np.asarray(draws, dtype=float))
    n = len(ordered)
    rank = np.ceil(np.round(n * np.asarray(percents, dtype=float) / 100, 6))
    return ordered[np.clip(rank.astype(int) - 1, 0, n - 1)]


def _percentiles(draws: np.ndarray) -> list[float]:
    """The 1st to 99th percentiles of the draws (99 values, ascending)."""
    return [float(v) for v in _draw_quantiles(draws, np.arange(1, 100))]


def _histogram(draws: np.ndarray) -> dict:
    """Counts of the draws in :data:`HISTOGRAM_BINS` equal bins between the
    smallest and largest draw: ``edges`` (bins + 1 values), ``counts``."""
    low, high = float(draws.min()), float(draws.max())
    if high <= low:
        high = low + 1.0
    counts, edges = np.histogram(draws, bins=HISTOGRAM_BINS, range=(low, high))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _quantiles(draws: np.ndarray) -> tuple[float, float, float]:
    p10, p50, p90 = _draw_quantiles(draws, [10, 50, 90])
    return float(p10), float(p50), float(p90)


# ---------------------------------------------------------------------------
# The forecast of a quarter from the database


def forecast_quarter(
    con: duckdb.DuckDBPyConnection,
    quarter,
    as_of=None,
    *,
    by: str | None = None,
    seed: int = 0,
    draws: int = 10_000,
    overrides: Mapping[str, str] | None = None,
    scores: pd.DataFrame | Callable | None = None,
    model=None,
) -> dict:
    """Forecast a quarter's won value as it stood at the end of ``as_of``.

    Parameters
    ----------
    quarter
        A :class:`~dealcase.periods.Quarter` or its name (``2017Q3``).
    as_of
        The date the forecast is made (end of that day); default meta
        ``today``.
    by
        ``team``, ``owner`` or ``segment``: also report each group.
    overrides
        What-if, never written: deal_id -> ``drop`` (leave it out),
        ``next_quarter`` (it closes after this quarter) or ``won`` (count it
        as won in the quarter).
    scores
        Close likelihoods to use instead of the model: a frame with
        ``deal_id, close_likelihood`` (optionally ``p_in_quarter``, taken as
        the in-quarter probability as is), or a callable
        ``(con, as_of, deal_ids) -> frame``. Default:
        :func:`dealcase.model.score_deals`.
    model
        A fitted model passed to :func:`dealcase.model.score_deals` (the
        backtest passes one fitted on what was known at ``as_of`` or
        earlier).

    Returns
    -------
    dict
        The forecast document (money in the reporting currency): ``quarter,
        as_of, currency, booked, expected, p10, p50, p90, target,
        p_reach_target, open_deals, new_business, groups, swing_deals,
        reps_call, fallback``, plus ``quantiles`` (the 1st..99th
        percentiles of the company's result, 99 values) and ``histogram``
        (``edges``, ``counts``: the company's draws in equal bins; each
        group carries its own) to draw the distribution from.
    """
    inputs = forecast_inputs(
        con, quarter, as_of, by=by, overrides=overrides, scores=scores, model=model
    )
    return forecast_from_inputs(inputs, seed=seed, draws=draws)


@dataclass
class ForecastInputs:
    """Everything a forecast draws from, computed once per as-of date."""

    quarter: Quarter
    as_of: dt.date
    currency: str
    by: str | None
    open_deals: pd.DataFrame  # with amount, p_in_quarter, group
    booked_deals: pd.DataFrame  # deal_id, amount, group
    new_business: list[NewBusinessPart]
    group_names: list[str]
    targets: pd.DataFrame
    sigma: float
    notes: list[str]


def forecast_inputs(
    con: duckdb.DuckDBPyConnection,
    quarter,
    as_of=None,
    *,
    by: str | None = None,
    overrides: Mapping[str, str] | None = None,
    scores=None,
    model=None,
) -> ForecastInputs:
    """Per-deal in-quarter probabilities, booked deals and new business.

    Returns :class:`ForecastInputs`; :func:`forecast_from_inputs` turns them
    into the forecast document. The app computes these once and redraws
    cheaply when a filter changes.
    """
    quarter = _as_quarter(con, quarter)
    as_of = resolve_as_of(con, as_of)
    if by is not None and by not in GROUPINGS:
        raise InputError(f"cannot group by '{by}'; use one of {', '.join(GROUPINGS)}")
    notes: list[str] = []
    if as_of < quarter.start - dt.timedelta(days=1):
        raise DealCaseError(
            f"as-of date {as_of} is before {quarter.name} starts; "
            "forecast a quarter that has begun or starts the next day"
        )
    first_created = con.execute("SELECT min(created_on) FROM deals").fetchone()[0]
    if first_created is None:
        raise DealCaseError(
            "the database holds no deals: import your deals or build the demo"
        )
    if quarter.end < first_created:
        raise DealCaseError(
            f"{quarter.name} ends before the data begins (its first deal was "
            f"created on {first_created}): there is nothing to forecast; choose "
            "a later quarter"
        )
    currency = get_meta(con, "currency", "USD")
    cutoff = min(as_of, quarter.end)
    group_column = by or "team"

    booked_deals = con.execute(
        f"""
        SELECT deal_id, name, owner, team, segment, amount,
               coalesce({group_column}, ?) AS "group"
        FROM deals
        WHERE outcome = 'won' AND closed_on BETWEEN ? AND ?
        """,
        [NO_GROUP, quarter.start, cutoff],
    ).df()
    booked_deals["amount"] = booked_deals["amount"].fillna(0.0)

    deals = _remembered_open_deals(con, quarter, as_of, scores, model)
    notes.extend(deals.notes)
    open_deals = deals.open_deals.copy()
    open_deals["group"] = open_deals[group_column].fillna(NO_GROUP).astype(str)
    closed_before, drift = deals.closed_before, deals.drift
    new_business: list[NewBusinessPart] = []
    if as_of < quarter.end:
        new_business, nb_notes = estimate_new_business(
            con, as_of, quarter.end, deals.timing.age, by=group_column, quarter=quarter
        )
        notes.extend(nb_notes)

    open_deals = _apply_overrides(open_deals, overrides)
    sigma = 0.0
    if not (open_deals.get("given", pd.Series(dtype=bool)).all()):
        # Quarter-level drift measured on past quarters (shrunk towards
        # CHECK_SYSTEMATIC when few were seen), and the estimation error of
        # a model fitted on few closed deals.
        short = SIGMA_PER_CLOSED / np.sqrt(max(closed_before, 1))
        sigma = float(np.sqrt(max(drift, SIGMA_FLOOR) ** 2 + short**2))
        if closed_before < FEW_CLOSED:
            notes.append(
                f"only {closed_before} closed deals before as-of: range widened"
            )

    group_names = sorted(
        set(open_deals["group"])
        | set(booked_deals["group"])
        | {part.name for part in new_business}
    ) or [NO_GROUP]
    targets = con.execute(
        "SELECT team, owner, amount FROM targets WHERE quarter = ?", [quarter.name]
    ).df()
    return ForecastInputs(
        quarter=quarter,
        as_of=as_of,
        currency=currency,
        by=by,
        open_deals=open_deals,
        booked_deals=booked_deals,
        new_business=new_business,
        group_names=group_names,
        targets=targets,
        sigma=float(sigma),
        notes=notes,
    )


@dataclass
class _OpenDeals:
    """The part of a forecast's inputs that no grouping changes: the open
    deals with their likelihood, timing and in-quarter probability."""

    open_deals: pd.DataFrame
    timing: TimingModel
    drift: float
    closed_before: int
    notes: list[str]
    model: object  # held so that its id, part of the cache key, is not reused


_OPEN_DEALS = Remembered(size=8)


def _remembered_open_deals(con, quarter: Quarter, as_of, scores, model) -> _OpenDeals:
    """:func:`_open_deals`, remembered per data, quarter, date and model, so
    that a forecast by owner after one by team (the Forecast page when a team
    is chosen) reuses the scoring and timing. Scores given by the caller are
    not remembered (a frame or a callable is not a key)."""
    if scores is not None:
        return _open_deals(con, quarter, as_of, scores, model)
    return _OPEN_DEALS.get(
        con,
        (quarter.name, quarter.start, as_of, id(model)),
        lambda: _open_deals(con, quarter, as_of, None, model),
    )


def _open_deals(con, quarter: Quarter, as_of, scores, model) -> _OpenDeals:
    notes: list[str] = []
    open_deals = open_deal_state(con, as_of)
    open_deals["amount"] = open_deals["amount"].fillna(0.0)
    closed_before = con.execute(
        "SELECT count(*) FROM deals WHERE outcome IN ('won','lost') AND closed_on <= ?",
        [as_of],
    ).fetchone()[0]

    timing = fit_timing(con, as_of)
    notes.extend(timing.notes)
    drift = CHECK_SYSTEMATIC
    kept_model = model
    if as_of >= quarter.end:
        open_deals["p_in_quarter"] = 0.0
        open_deals["close_likelihood"] = np.nan
        notes.append("the quarter has ended: the result is what was booked")
    else:
        if scores is None and model is None:
            model = _resolve_model(con, as_of, notes)
        likelihood, given = _close_likelihood(
            con, as_of, open_deals, scores, model, timing, notes
        )
        open_deals["close_likelihood"] = likelihood
        deal_timing = timing.deal_timing(open_deals, quarter.end)
        open_deals["p_timing"] = deal_timing["p_timing"]
        open_deals["timing_basis"] = deal_timing["timing_basis"]
        estimated = likelihood * open_deals["p_timing"]
        if scores is None and given.isna().all():
            ratio, drift = _recent_check(con, as_of, quarter, model, notes)
            estimated = estimated * ratio
        open_deals["p_in_quarter"] = np.where(
            given.notna(), given, estimated.clip(0.0, 1.0)
        )
    return _OpenDeals(open_deals, timing, drift, int(closed_before), notes, kept_model)


def _close_likelihood(con, as_of, open_deals, scores, model, timing, notes):
    """Close likelihood per open deal, and in-quarter probabilities given
    directly (NaN where not given)."""
    given = pd.Series(np.nan, index=open_deals.index)
    open_deals["given"] = False
    if open_deals.empty:
        return pd.Series(dtype=float, index=open_deals.index), given
    deal_ids = open_deals["deal_id"].tolist()
    frame = None
    if callable(scores):
        frame = scores(con, as_of, deal_ids)
    elif scores is not None:
        frame = scores
    else:
        frame = _model_scores(con, as_of, deal_ids, model, notes)
        if frame is not None:
            frame = _shift_to_recent_win_rate(con, as_of, frame, notes)

    if frame is None:
        # History alone: the chance a deal of this age is won at all.
        ages = open_deals["age_days"].fillna(0).to_numpy()
        likelihood = timing.age.won_share(ages)
        notes.append("no close-likelihood model: likelihood from win rates by age")
        return pd.Series(likelihood, index=open_deals.index), given

    frame = frame.drop_duplicates("deal_id").set_index("deal_id")
    likelihood = open_deals["deal_id"].map(frame["close_likelihood"])
    missing = int(likelihood.isna().sum())
    if missing:
        fallback = timing.age.won_share(open_deals["age_days"].fillna(0))
        likelihood = likelihood.fillna(pd.Series(fallback, index=open_deals.index))
        notes.append(f"{missing} open deals had no score: win rate by age used")
    if "p_in_quarter" in frame.columns:
        given = open_deals["deal_id"].map(frame["p_in_quarter"]).astype(float)
        open_deals["given"] = given.notna()
    return likelihood.astype(float).clip(0.0, 1.0), given


def _shift_to_recent_win_rate(con, as_of, frame, notes) -> pd.DataFrame:
    """Move the model's likelihoods by the change in win rate.

    The model learns the win rate of all closed history; when the most recent
    closes win more or less often, every likelihood moves by the same step
    in log-odds (the change from the long-run to the recent win rate).
    """
    shares = con.execute(
        """
        SELECT avg(CASE WHEN outcome = 'won' THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN outcome = 'won' THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE closed_on > ?),
               count(*) FILTER (WHERE closed_on > ?)
        FROM deals WHERE outcome IN ('won', 'lost') AND closed_on <= ?
        """,
        [as_of - dt.timedelta(days=RECENT_WIN_RATE_DAYS)] * 2 + [as_of],
    ).fetchone()
    long_run, recent, recent_closes = shares
    if long_run is None or recent is None or recent_closes < MIN_RECENT_CLOSES:
        return frame
    long_run = min(max(long_run, 0.01), 0.99)
    recent = min(max(recent, 0.01), 0.99)
    step = np.log(recent / (1 - recent)) - np.log(long_run / (1 - long_run))
    if abs(step) < 0.05:
        return frame
    frame = frame.copy()
    likelihood = frame["close_likelihood"].astype(float).clip(1e-6, 1 - 1e-6)
    logit = np.log(likelihood / (1 - likelihood)) + step
    frame["close_likelihood"] = 1 / (1 + np.exp(-logit))
    notes.append(
        f"recent win rate {recent:.0%} vs {long_run:.0%} over all history: "
        "likelihoods moved accordingly"
    )
    return frame


def _recent_check(con, as_of, quarter: Quarter, model, notes) -> tuple[float, float]:
    """How the same method did at the same point of the last
    :data:`CHECK_QUARTERS` quarters: the ratio of what was won to what it
    expected, and the quarter-to-quarter spread of that ratio.

    In each past quarter the deals open on the same day (same offset from
    its start) are scored with the same model and timed with timing learned
    from what was known that day; the value they won by that quarter's end
    over the value expected is that quarter's ratio. The pooled ratio
    (summed won over summed expected) scales the open deals' probabilities,
    shrunk towards 1 in log terms by ``S / (S + V)`` with ``S =
    CHECK_SYSTEMATIC^2`` (the systematic error expected a priori) and ``V``
    the pooled ratio's own variance (independent deals' chance variation
    plus the drift below over the number of quarters), within 0.5..2.
    Comparing the same point of the quarter keeps a quarter-end rush from
    reading as a change in level.

    The drift is the spread (standard deviation of the log ratio) between
    quarters beyond what chance variation explains, shrunk towards
    ``CHECK_SYSTEMATIC`` with :data:`DRIFT_PRIOR_QUARTERS` pseudo-quarters:
    it is the sigma of the forecast's shared factor, so the range reflects
    how far quarters have actually strayed from the method.

    Returns ``(ratio, drift)``; ``(1, CHECK_SYSTEMATIC)`` when no quarter
    could be replayed (too few closes by then or nothing expected).
    """
    offset = dt.timedelta(days=max((as_of - quarter.start).days, 0))
    replays = []
    past_quarter = quarter
    for _ in range(CHECK_QUARTERS):
        past_quarter = past_quarter.previous()
        replay = _replay_quarter(con, past_quarter, offset, as_of, model, notes)
        if replay is None:
            break
        replays.append(replay)
    if not replays:
        return 1.0, CHECK_SYSTEMATIC
    won = np.array([r[0] for r in replays])
    expected = np.array([r[1] for r in replays])
    noise = np.array([r[2] for r in replays])
    logs = np.log(np.maximum(won, 1e-9 * expected) / expected)
    chance = noise / expected**2
    spread = float(np.var(logs, ddof=1)) if len(logs) > 1 else 0.0
    excess = max(spread - float(chance.mean()), 0.0)
    freedom = len(logs) - 1
    drift2 = (DRIFT_PRIOR_QUARTERS * CHECK_SYSTEMATIC**2 + freedom * excess) / (
        DRIFT_PRIOR_QUARTERS + freedom
    )
    pooled = float(won.sum() / expected.sum())
    variance = float(noise.sum() / expected.sum() ** 2) + drift2 / len(logs)
    weight = CHECK_SYSTEMATIC**2 / (CHECK_SYSTEMATIC**2 + variance)
    ratio = float(np.exp(weight * np.log(max(pooled, 1e-9))))
    ratio = float(min(max(ratio, 0.5), 2.0))
    detail = ", ".join(f"{w / e:.2f}" for w, e in zip(won, expected, strict=True))
    notes.append(
        f"replayed on {len(replays)} past quarter(s) at the same point "
        f"(won / expected: {detail}): open-deal probabilities scaled by "
        f"{ratio:.2f}; quarter-to-quarter drift {np.sqrt(drift2):.0%}"
    )
    return ratio, float(np.sqrt(drift2))


def _replay_quarter(con, past: Quarter, offset, as_of, model, notes):
    """``(won, expected, chance variance)`` of the deals open at ``offset``
    into ``past``, or None when it cannot be replayed."""
    start = min(past.start + offset, past.end)
    end = past.end
    if end > as_of or (end - start).days < MIN_CHECK_DAYS:
        return None
    frame_past = open_deal_state(con, start)
    if frame_past.empty:
        return None
    frame_past["amount"] = frame_past["amount"].fillna(0.0)
    # Timing as it would have been learned then: the method replayed.
    past_timing = fit_timing(con, start)
    if past_timing.age.won + past_timing.age.lost < MIN_RECENT_CLOSES:
        notes.append(
            f"too few deals had closed by {start} to check the forecast "
            f"against {past.name}"
        )
        return None
    frame = _model_scores(con, as_of, frame_past["deal_id"].tolist(), model, [], start)
    if frame is None:
        return None
    frame = _shift_to_recent_win_rate(con, start, frame, [])
    likelihood = frame_past["deal_id"].map(
        frame.drop_duplicates("deal_id").set_index("deal_id")["close_likelihood"]
    )
    likelihood = likelihood.fillna(likelihood.mean()).fillna(0.5)
    p_timing = past_timing.deal_timing(frame_past, end)["p_timing"]
    p = likelihood * p_timing
    expected = float((frame_past["amount"] * p).sum())
    if expected <= 0:
        return None
    won = con.execute(
        """
        SELECT coalesce(sum(amount), 0) FROM deals
        WHERE outcome = 'won' AND closed_on > ? AND closed_on <= ?
          AND list_contains(?, deal_id)
        """,
        [start, end, frame_past["deal_id"].tolist()],
    ).fetchone()[0]
    noise = float((frame_past["amount"] ** 2 * p * (1 - p)).sum())
    return float(won), expected, noise


def _resolve_model(con, as_of, notes, fitted_on=None):
    """The stored model valid at ``as_of``, else one fitted on what was
    known then (at ``fitted_on`` when given: an earlier date, see
    :func:`fitted_model`); None without a usable model."""
    try:
        from dealcase import model as model_module
    except ImportError:
        return None
    try:
        if fitted_on is None:
            return model_module.model_for_date(con, as_of)
        stored = model_module.load_model(con, as_of)
        if stored is not None and (
            fitted_on is None
            or getattr(stored, "as_of", None) is None
            or stored.as_of >= fitted_on
        ):
            return stored
        return fitted_model(con, fitted_on or as_of)
    except DealCaseError as error:
        notes.append(f"model unavailable ({error}): likelihood from win rates by age")
        return None


def fitted_model(con: duckdb.DuckDBPyConnection, as_of: dt.date):
    """The close-likelihood model fitted on what was known at the end of
    ``as_of`` (:func:`dealcase.model.cached_fit`: each date is fitted once
    while the data is unchanged). A model fitted at an earlier date than the
    forecast's is still leak-free (it knows less), which the trend and the
    backtest use to fit once per quarter. Raises :class:`DealCaseError` when
    no model can be fitted."""
    from dealcase import model as model_module

    return model_module.cached_fit(con, as_of)


def _model_scores(con, as_of, deal_ids, model, notes, state_on=None):
    try:
        from dealcase import model as model_module
    except ImportError:
        return None
    try:
        if model is None:
            return None
        return model_module.score_deals(
            con, state_on or as_of, deal_ids, model=model, reasons=False
        )
    except DealCaseError as error:
        notes.append(f"model unavailable ({error}): likelihood from win rates by age")
        return None


def _apply_overrides(open_deals: pd.DataFrame, overrides) -> pd.DataFrame:
    open_deals = open_deals.copy()
    open_deals["override"] = None
    for deal_id, action in (overrides or {}).items():
        if action not in OVERRIDES:
            raise InputError(
                f"override '{action}' for deal {deal_id} is not one of "
                f"{', '.join(OVERRIDES)}"
            )
        chosen = open_deals["deal_id"] == deal_id
        if not chosen.any():
            raise InputError(f"deal {deal_id} is not open at the as-of date")
        open_deals.loc[chosen, "p_in_quarter"] = 1.0 if action == "won" else 0.0
        open_deals.loc[chosen, "given"] = True
        open_deals.loc[chosen, "override"] = action
    return open_deals


def forecast_from_inputs(
    inputs: ForecastInputs, *, seed: int = 0, draws: int = 10_000
) -> dict:
    """Draw the forecast document from :class:`ForecastInputs`."""
    open_deals = inputs.open_deals
    names = inputs.group_names
    index = {name: i for i, name in enumerate(names)}
    group_index = open_deals["group"].map(index).to_numpy(dtype=int)
    booked_by_group = (
        inputs.booked_deals.groupby("group")["amount"].sum().reindex(names).fillna(0.0)
    ).to_numpy()
    amounts = open_deals["amount"].to_numpy(dtype=float)
    probabilities = open_deals["p_in_quarter"].to_numpy(dtype=float)
    # Overridden deals have p 0 or 1, which the shared factor leaves as is.
    exact = None if len(amounts) * draws <= FULL_SIMULATION_LIMIT else EXACT_DEALS
    distribution = quarter_distribution(
        amounts,
        probabilities,
        group_index=group_index,
        group_names=names,
        booked_by_group=booked_by_group,
        new_business=inputs.new_business,
        sigma=inputs.sigma,
        draws=draws,
        seed=seed,
        exact_deals=exact,
    )

    new_value = {p.name: p.expected_value for p in inputs.new_business}
    new_var = {p.name: p.variance for p in inputs.new_business}
    company_target = _target(inputs.targets, None, None)
    doc = {
        "quarter": inputs.quarter.name,
        "as_of": inputs.as_of.isoformat(),
        "currency": inputs.currency,
    }
    doc.update(
        _summary(
            draws=distribution.company,
            booked=float(booked_by_group.sum()),
            open_frame=open_deals,
            new_value=sum(new_value.values()),
            new_variance=sum(new_var.values()),
            target=company_target,
        )
    )
    if (
        len(open_deals) <= EXACT_ENUMERATION_DEALS
        and not inputs.new_business
        and (inputs.sigma == 0 or open_deals["given"].all())
    ):
        exact_doc = _exact_summary(
            amounts, probabilities, float(booked_by_group.sum()), company_target
        )
        doc.update(exact_doc)
        doc["method"] = "exact"
        distribution_exact = exact_distribution(
            amounts, probabilities, float(booked_by_group.sum())
        )
        doc["quantiles"] = [
            exact_quantile(distribution_exact, q / 100) for q in range(1, 100)
        ]
    else:
        doc["method"] = "simulation"
        doc["quantiles"] = _percentiles(distribution.company)
    doc["histogram"] = _histogram(distribution.company)

    doc["groups"] = []
    if inputs.by is not None:
        for name, i in index.items():
            members = open_deals[open_deals["group"] == name]
            target = _group_target(inputs.targets, inputs.by, name)
            group_doc = {"name": name}
            group_doc.update(
                _summary(
                    draws=distribution.groups[i],
                    booked=float(booked_by_group[i]),
                    open_frame=members,
                    new_value=new_value.get(name, 0.0),
                    new_variance=new_var.get(name, 0.0),
                    target=target,
                )
            )
            group_doc["histogram"] = _histogram(distribution.groups[i])
            # The deals that swing this group's result, as shares of its own
            # spread (the company's list holds its own top deals).
            group_doc["swing_deals"] = _swing_deals(members, new_var.get(name, 0.0))
            doc["groups"].append(group_doc)

    doc["swing_deals"] = _swing_deals(open_deals, sum(new_var.values()))
    doc["reps_call"] = _reps_call(
        open_deals, float(booked_by_group.sum()), inputs.quarter, inputs.as_of
    )
    doc["timing"] = _timing_summary(open_deals)
    doc["fallback"] = list(dict.fromkeys(inputs.notes))
    doc["draws"] = draws
    doc["seed"] = seed
    return doc


def _summary(*, draws, booked, open_frame, new_value, new_variance, target):
    p10, p50, p90 = _quantiles(draws)
    open_expected = float((open_frame["amount"] * open_frame["p_in_quarter"]).sum())
    expected = booked + open_expected + new_value
    return {
        "booked": booked,
        "expected": expected,
        "p10": p10,
        "p50": p50,
        "p90": p90,
        "target": target,
        "p_reach_target": None if target is None else float(np.mean(draws >= target)),
        "open_deals": {
            "count": int(len(open_frame)),
            "amount": float(open_frame["amount"].sum()),
            "expected": open_expected,
        },
        "new_business": _new_business_doc(new_value, new_variance),
    }


def _new_business_doc(value: float, variance: float) -> dict:
    spread = float(np.sqrt(variance))
    # A normal range is close for the tens of deals new business usually is.
    return {
        "expected": value,
        "p10": max(0.0, value - 1.2816 * spread),
        "p90": value + 1.2816 * spread,
    }


def _exact_summary(amounts, probabilities, booked, target) -> dict:
    distribution = exact_distribution(amounts, probabilities, booked)
    values = distribution.index.to_numpy()
    return {
        "p10": exact_quantile(distribution, 0.1),
        "p50": exact_quantile(distribution, 0.5),
        "p90": exact_quantile(distribution, 0.9),
        "p_reach_target": None
        if target is None
        else float(distribution[values >= target].sum()),
    }


def _target(targets: pd.DataFrame, team, owner) -> float | None:
    rows = targets[
        (targets["team"].isna() if team is None else targets["team"] == team)
        & (targets["owner"].isna() if owner is None else targets["owner"] == owner)
    ]
    return float(rows["amount"].sum()) if len(rows) else None


def _group_target(targets: pd.DataFrame, by: str, name: str) -> float | None:
    if by == "team":
        return _target(targets, name, None)
    if by == "owner":
        rows = targets[targets["owner"] == name]
        return float(rows["amount"].sum()) if len(rows) else None
    return None


def _swing_deals(open_deals: pd.DataFrame, new_variance: float) -> list[dict]:
    if open_deals.empty:
        return []
    p = open_deals["p_in_quarter"]
    variance = open_deals["amount"] ** 2 * p * (1 - p)
    total = float(variance.sum()) + new_variance
    if total <= 0:
        return []
    top = variance.sort_values(ascending=False, kind="stable").head(SWING_DEALS)
    rows = []
    for position, share in top.items():
        if share <= 0:
            continue
        deal = open_deals.loc[position]
        rows.append(
            {
                "deal_id": deal["deal_id"],
                "name": deal["name"],
                "owner": deal["owner"],
                "team": deal["team"],
                "amount": float(deal["amount"]),
                "p_in_quarter": float(deal["p_in_quarter"]),
                "share_of_spread": float(share / total),
            }
        )
    return rows


def _reps_call(
    open_deals: pd.DataFrame, booked: float, quarter: Quarter, as_of: dt.date
) -> dict:
    """Booked plus the reps' own categories as of the as-of date, over the
    open deals expected to close in the quarter (a deal the rep dates next
    quarter is not in this quarter's call); None where the source has no
    forecast categories. Once the quarter has ended the call is what was
    booked."""
    category = open_deals["forecast_category"]
    if category.isna().all():
        return {"commit": None, "best_case": None, "pipeline": None}
    if as_of >= quarter.end:
        return {"commit": booked, "best_case": booked, "pipeline": booked}
    expected = pd.to_datetime(open_deals["close_date"]).dt.date
    in_quarter = (expected >= quarter.start) & (expected <= quarter.end)
    category = category.where(in_quarter.to_numpy())
    amount = open_deals["amount"]
    commit = booked + float(amount[category == "commit"].sum())
    best_case = commit + float(amount[category == "best_case"].sum())
    pipeline = best_case + float(amount[category == "pipeline"].sum())
    return {"commit": commit, "best_case": best_case, "pipeline": pipeline}


def _timing_summary(open_deals: pd.DataFrame) -> dict:
    if "timing_basis" not in open_deals or open_deals.empty:
        return {}
    counts = open_deals["timing_basis"].value_counts()
    return {
        "by_close_date": int(counts.get("close_date", 0)),
        "by_age": int(counts.get("age", 0)),
        "mean_p_timing": float(open_deals["p_timing"].mean()),
        "mean_close_likelihood": float(open_deals["close_likelihood"].mean()),
    }


def _as_quarter(con, quarter) -> Quarter:
    if isinstance(quarter, Quarter):
        return quarter
    return parse_quarter(str(quarter), fiscal_start_month(con))


def forecast_report(
    con: duckdb.DuckDBPyConnection,
    *,
    quarter,
    as_of=None,
    by: str | None = None,
    seed: int = 0,
    draws: int = 10_000,
) -> Report:
    """The forecast as a :class:`~dealcase.report.Report`.

    ``doc`` is :func:`forecast_quarter`'s document; the table has one row
    per group (or one for the company) with booked, expected, P10, P50,
    P90, target and chance to reach it.
    """
    doc = forecast_quarter(con, quarter, as_of, by=by, seed=seed, draws=draws)
    rows = doc["groups"] if by else [dict(doc, name="company")]
    columns = ["booked", "expected", "p10", "p50", "p90", "target", "p_reach_target"]
    table = pd.DataFrame(
        [
            {
                "name": row["name"],
                **{c: row[c] for c in columns},
                "new_business": row["new_business"]["expected"],
                "open_deals": row["open_deals"]["count"],
            }
            for row in rows
        ]
    )
    if by:
        total = {
            "name": "company",
            **{c: doc[c] for c in columns},
            "new_business": doc["new_business"]["expected"],
            "open_deals": doc["open_deals"]["count"],
        }
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return Report(
        doc=doc,
        table=table,
        title=f"Forecast {doc['quarter']} as of {doc['as_of']} ({doc['currency']})",
        notes=doc["fallback"],
    )


def forecast_trend(
    con: duckdb.DuckDBPyConnection,
    quarter,
    *,
    seed: int = 0,
    draws: int = 4000,
) -> pd.DataFrame:
    """The forecast as it would have been made on each week of the quarter.

    Returns one row per weekly as-of date from the quarter's first day to
    the earlier of its end and meta ``today``: ``as_of, booked, expected,
    p10, p50, p90, target, p_reach_target`` and ``actual`` (the quarter's
    won value, only once the quarter has ended). Each week uses only what
    was known then: the stored model valid that week, else one model fitted
    at the quarter's first day and reused for every week (fitted on less,
    so still leak-free; one fit per quarter, remembered by
    :func:`fitted_model`).
    """
    quarter = _as_quarter(con, quarter)
    today = resolve_as_of(con, None)
    last = min(today, quarter.end)
    if last < quarter.start:
        raise DealCaseError(f"{quarter.name} has not started by {today}")
    rows = []
    day = quarter.start
    notes: list[str] = []
    while day <= last:
        # One fit per quarter: each week uses the stored model valid then,
        # else the model fitted at the quarter's first day (it knows less
        # than the week does, so it leaks nothing).
        model = _resolve_model(con, day, notes, fitted_on=quarter.start)
        doc = forecast_quarter(con, quarter, day, seed=seed, draws=draws, model=model)
        rows.append(
            {
                "as_of": day,
                **{
                    k: doc[k]
                    for k in ("booked", "expected", "p10", "p50", "p90", "target")
                },
                "p_reach_target": doc["p_reach_target"],
            }
        )
        day += dt.timedelta(days=7)
    trend = pd.DataFrame(rows)
    actual = None
    if quarter.end <= today:
        actual = con.execute(
            "SELECT coalesce(sum(amount), 0) FROM deals WHERE outcome = 'won' "
            "AND closed_on BETWEEN ? AND ?",
            [quarter.start, quarter.end],
        ).fetchone()[0]
    trend["actual"] = actual
    return trend
