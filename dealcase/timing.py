"""When open deals close: the chance an open deal closes before the quarter
ends.

A deal's chance to be won before the quarter ends is its close likelihood
times its timing. The close-likelihood model learns from deals that had
closed, so its likelihood is the chance a deal is won once it closes; timing
by expected close date is the chance a deal that will be won is won by the
quarter's last day, timing by age the chance that it closes (won or lost)
by then. Deals
that sit open and never close are thereby handled by timing: a deal much
older than any deal that ever closed gets little chance. Timing is learned
only from what was known at the end of the as-of date, in two ways:

- **By expected close date.** On weekly snapshots of the past two years,
  every deal then open is filed under how far away its expected close date
  was and how often it had been pushed. A deal open today may close up to
  its slack (days left in the quarter minus days to its expected date)
  after its expected date and still count; it is timed by the share of its
  cell's snapshots later won that were won by their own expected date plus
  that slack (among snapshots followed at least that long), shrunk towards
  the coarser cells when the cell holds few deals. This is the chance a
  deal that will be won is won in time: losses, which keep to no close
  date, do not count, and a deal due after the quarter needs a pull-in.
- **By age.** Deals without an expected close date, or with one the source
  marks unreliable (attribute ``close_date_reliable`` = ``"false"``, as
  HubSpot fills month ends), are timed by their age: daily hazards of being
  won and of being lost at each age since creation, estimated over the most
  recent window that holds enough closes, and never before the first
  recorded close (so a source whose closes start late is not read as
  "nothing closed"). The same hazards give the chance that a deal created on
  a future day is won within a given number of days, which
  :mod:`dealcase.newbusiness` uses for business not yet in the pipeline.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from dealcase.periods import end_of_day

logger = logging.getLogger(__name__)

# Days from snapshot to expected close date: lower edges of the buckets.
DAYS_TO_CLOSE_EDGES = (-10_000, 0, 8, 31, 61, 91, 181)
DAYS_TO_CLOSE_LABELS = (
    "overdue",
    "0-7d",
    "8-30d",
    "31-60d",
    "61-90d",
    "91-180d",
    "181d+",
)
PUSH_LABELS = ("no push", "pushed once", "pushed 2+")
# Pseudo-count: how many observations a cell needs before it outweighs its
# parent cell.
SMOOTHING = 20.0
# Snapshots are taken weekly over at most this many days before the as-of;
# the last one at least MIN_FOLLOW_UP_DAYS before it.
SNAPSHOT_SPAN_DAYS = 730
MIN_FOLLOW_UP_DAYS = 28
# Age hazards come from the shortest recent window (days) holding at least
# MIN_WINDOW_CLOSES closes: recent behaviour, enough of it.
HAZARD_WINDOWS_DAYS = (91, 182, 365, 730)
MIN_WINDOW_CLOSES = 400
# Age hazards are pooled over bins of this many days.
AGE_BIN_DAYS = 7
MAX_AGE_DAYS = 3 * 365
# Ages beyond the last bin with this much exposure (deal-days) use the tail.
MIN_BIN_EXPOSURE = 200.0


@dataclass
class AgeHazards:
    """Daily win and loss hazards by age in days since creation."""

    win: np.ndarray
    loss: np.ndarray
    window_start: dt.date | None
    won: int
    lost: int

    def __post_init__(self) -> None:
        survive = np.clip(1.0 - self.win - self.loss, 0.0, 1.0)
        # open_at[a]: chance a new deal is still open at the start of age a.
        self._open_at = np.concatenate([[1.0], np.cumprod(survive)])
        won_on = self._open_at[:-1] * self.win
        self._won_by = np.concatenate([[0.0], np.cumsum(won_on)])

    @property
    def horizon(self) -> int:
        return len(self.win)

    def won_within(self, ages, days) -> np.ndarray:
        """Chance a deal open at ``ages`` (days) is won within ``days`` more.

        ``days`` of ``None`` means eventually (to the end of the age grid).
        """
        ages = np.clip(np.asarray(ages, dtype=float), 0, self.horizon - 1)
        ages = ages.astype(int)
        if days is None:
            until = np.full_like(ages, self.horizon)
        else:
            days = np.maximum(np.asarray(days, dtype=float), 0).astype(int)
            until = np.minimum(ages + days, self.horizon)
        still_open = np.maximum(self._open_at[ages], 1e-12)
        return (self._won_by[until] - self._won_by[ages]) / still_open

    def closed_within(self, ages, days) -> np.ndarray:
        """Chance a deal open at ``ages`` closes (won or lost) within
        ``days`` more days."""
        ages = np.clip(np.asarray(ages, dtype=float), 0, self.horizon - 1)
        ages = ages.astype(int)
        days = np.maximum(np.asarray(days, dtype=float), 0).astype(int)
        until = np.minimum(ages + days, self.horizon)
        still_open = np.maximum(self._open_at[ages], 1e-12)
        return np.clip(1.0 - self._open_at[until] / still_open, 0.0, 1.0)

    def timing(self, ages, days) -> np.ndarray:
        """Chance a deal open at ``ages`` that will be won is won within
        ``days``; 1 where the hazards give no chance of a win at all."""
        within = self.won_within(ages, days)
        eventually = self.won_within(ages, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(eventually > 1e-9, within / eventually, 1.0)
        return np.clip(share, 0.0, 1.0)

    def won_share(self, ages) -> np.ndarray:
        """Chance a deal open at ``ages`` is won once it closes."""
        won = self.won_within(ages, None)
        closed = self.closed_within(ages, np.full(np.shape(ages), self.horizon))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(closed > 1e-9, won / closed, 0.5)
        return np.clip(share, 0.0, 1.0)

    def new_deal_won_within(self, days) -> np.ndarray:
        """Chance a deal created today is won within ``days`` (vector)."""
        return self.won_within(np.zeros(np.shape(days)), days)


@dataclass
class CloseDateTiming:
    """Past snapshots of open deals with a reliable expected close date,
    filed by expected-close and push cell: days from the snapshot to the
    close, won or lost (inf while still open at the as-of date), and days of
    follow-up (snapshot to as-of date)."""

    # (days-to-close bucket, push bucket) -> (days to close, follow-up days,
    # days to the expected close date then, won by the as-of date); the
    # last two may be left out (timing by days left, of any close).
    cells: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    observations: int

    def timing(
        self, close_bucket, push_bucket, days_left: float, days_to_close=None
    ) -> np.ndarray:
        """Smoothed share of a cell's deals that closed in time, among the
        snapshots followed for long enough.

        Without ``days_to_close`` "in time" is within ``days_left`` days.
        With it (each open deal's days to its expected close date, and
        cells that hold the snapshots' own days to their expected dates),
        a deal's slack ``days_left - days_to_close`` is how many days after
        its expected date it may close and still count (negative: it must
        be pulled in), and each snapshot is asked the same: did it close by
        its own expected date plus that slack? So the quarter's end is
        respected: a deal due after it is timed by how often deals were
        pulled in, one due well before it by how often deals slipped by
        more than the slack.
        """
        close_bucket = np.asarray(close_bucket, dtype=int)
        push_bucket = np.asarray(push_bucket, dtype=int)
        if days_to_close is None:
            slacks = np.full(len(close_bucket), np.nan)
        else:
            slacks = days_left - np.asarray(days_to_close, dtype=float)
        # Every cell is counted once for all the slacks asked (NaN: within
        # days_left of any close); a deal then reads its slack's share.
        unique = np.unique(slacks)
        slack_index = np.searchsorted(unique, slacks)
        counts = {
            key: _closed_counts(cell, days_left, unique)
            for key, cell in self.cells.items()
        }
        zero = np.zeros(len(unique))
        hits = sum((h for h, _ in counts.values()), zero)
        seen = sum((n for _, n in counts.values()), zero)
        with np.errstate(divide="ignore", invalid="ignore"):
            pooled = np.where(seen > 0, hits / np.maximum(seen, 1), 0.5)
        result = np.empty(len(close_bucket))
        for cb in np.unique(close_bucket):
            in_close = close_bucket == cb
            row = [v for (c, _), v in counts.items() if c == cb]
            coarse = _smoothed(
                sum((h for h, _ in row), zero), sum((n for _, n in row), zero), pooled
            )
            for pb in np.unique(push_bucket[in_close]):
                chosen = in_close & (push_bucket == pb)
                cell_hits, cell_seen = counts.get((int(cb), int(pb)), (zero, zero))
                share = _smoothed(cell_hits, cell_seen, coarse)
                result[chosen] = share[slack_index[chosen]]
        return result


def _smoothed(hits: np.ndarray, seen: np.ndarray, prior: np.ndarray) -> np.ndarray:
    return (hits + SMOOTHING * prior) / (seen + SMOOTHING)


def _closed_counts(cell, days_left: float, slacks: np.ndarray):
    """``(hits, seen)`` of one cell for each of ``slacks``: how many of its
    snapshots were followed long enough to tell, and how many of those
    closed in time.

    With a slack ``s`` (and the snapshots' own days to their expected date
    ``e``), a snapshot is seen when its follow-up reaches ``max(e + s, 0)``
    and it was later won, and a hit when it also closed by then. A NaN slack
    (or a cell without expected dates) asks for any close within
    ``days_left``. Counted for all slacks at once by sorting: a snapshot is
    seen for every ``s <= follow - e`` and a hit for every ``s`` in
    ``[close - e, follow - e]`` (all of them when it closed at once).
    """
    hits = np.zeros(len(slacks))
    seen = np.zeros(len(slacks))
    closed, follow_up = cell[0], cell[1]
    plain = np.isnan(slacks) | (len(cell) < 3)
    if plain.any():
        eligible = follow_up >= days_left
        seen[plain] = eligible.sum()
        hits[plain] = (eligible & (closed <= days_left)).sum()
    asked = slacks[~plain]
    if len(asked):
        keep = follow_up >= 0
        if len(cell) >= 4:
            keep = keep & cell[3]
        last = (follow_up - cell[2])[keep]  # the largest slack it can tell
        first = (closed - cell[2])[keep]  # the smallest slack it closed within
        at_once = closed[keep] <= 0
        seen[~plain] = _at_least(last, asked)
        inside = ~at_once & (first <= last)
        hits[~plain] = (
            _at_least(last[at_once], asked)
            + np.searchsorted(np.sort(first[inside]), asked, side="right")
            - np.searchsorted(np.sort(last[inside]), asked, side="left")
        )
    return hits, seen


def _at_least(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many ``values`` are at least each threshold."""
    return len(values) - np.searchsorted(np.sort(values), thresholds, side="left")


@dataclass
class TimingModel:
    """What history known at ``as_of`` says about when won deals close."""

    as_of: dt.date
    age: AgeHazards
    close_date: CloseDateTiming
    notes: list[str] = field(default_factory=list)

    def deal_timing(
        self,
        open_deals: pd.DataFrame,
        quarter_end: dt.date,
        start: dt.date | None = None,
    ):
        """Timing of each open deal for a quarter ending ``quarter_end``.

        ``open_deals`` needs ``age_days``, ``days_to_close`` (NaN where the
        deal has no reliable expected close date) and ``pushes``, as of
        ``start`` (default the as-of date). Returns a frame with
        ``p_timing`` (0..1) and ``timing_basis`` (``close_date`` or
        ``age``), indexed like ``open_deals``.
        """
        days_left = max((quarter_end - (start or self.as_of)).days, 0)
        result = pd.DataFrame(index=open_deals.index)
        result["p_timing"] = 0.0
        result["timing_basis"] = "age"
        if days_left == 0 or open_deals.empty:
            return result

        has_date = open_deals["days_to_close"].notna().to_numpy()
        use_date = has_date & (self.close_date.observations > 0)
        ages = open_deals["age_days"].fillna(0).to_numpy()
        timing = self.age.closed_within(ages, np.full(len(ages), days_left))
        if use_date.any():
            dated = open_deals.loc[use_date]
            days_to_close = dated["days_to_close"].to_numpy(dtype=float)
            timing[use_date] = self.close_date.timing(
                close_bucket(days_to_close),
                push_bucket(dated["pushes"].fillna(0).to_numpy()),
                days_left,
                days_to_close=days_to_close,
            )
        result["p_timing"] = timing
        result.loc[use_date, "timing_basis"] = "close_date"
        return result


def close_bucket(days_to_close) -> np.ndarray:
    """Index into :data:`DAYS_TO_CLOSE_LABELS` for days to expected close."""
    values = np.asarray(days_to_close, dtype=float)
    return np.searchsorted(DAYS_TO_CLOSE_EDGES, values, side="right") - 1


def push_bucket(pushes) -> np.ndarray:
    """Index into :data:`PUSH_LABELS` for a count of close-date pushes."""
    return np.minimum(np.asarray(pushes, dtype=float), 2).astype(int)


def open_deal_state(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    """Open deals at the end of ``as_of`` with the timing inputs.

    Returns one row per open deal: ``deal_id, name, owner, team, segment,
    stage, amount, close_date, forecast_category, probability, created_on,
    age_days, days_to_close`` (NaN when no reliable expected close date),
    ``pushes`` (times the expected close date moved later) and
    ``push_days`` (total days it moved later).
    """
    return con.execute(
        _STATE_SQL + " WHERE s.outcome = 'open' ORDER BY s.deal_id",
        [end_of_day(as_of), as_of, as_of, as_of],
    ).df()


# State of every deal at a cutoff, with pushes counted over its history so
# far. Parameters: cutoff timestamp, as_of (created filter), as_of (age),
# as_of (days to close).
_STATE_SQL = """
    WITH versions AS (
        SELECT h.*,
               CASE WHEN h.close_date > lag(h.close_date) OVER w
                    THEN 1 ELSE 0 END AS pushed,
               CASE WHEN h.close_date > lag(h.close_date) OVER w
                    THEN datediff('day', lag(h.close_date) OVER w, h.close_date)
                    ELSE 0 END AS pushed_days,
               min(h.valid_from) OVER (PARTITION BY h.deal_id) AS first_seen
        FROM deal_history h
        WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.valid_from)
    ),
    counted AS (
        SELECT *,
               sum(pushed) OVER c AS pushes,
               sum(pushed_days) OVER c AS push_days
        FROM versions
        WINDOW c AS (PARTITION BY deal_id ORDER BY valid_from
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ),
    probe AS (
        SELECT d.deal_id, d.name, d.owner, d.team, d.segment, d.created_on,
               d.attributes, CAST(? AS TIMESTAMP) AS cutoff
        FROM deals d
        WHERE d.created_on IS NULL OR d.created_on <= CAST(? AS DATE)
    ),
    s AS (
        SELECT p.deal_id, p.name, p.owner, p.team, p.segment, p.created_on,
               h.stage, h.amount, h.close_date, h.forecast_category,
               h.probability, h.outcome, h.pushes, h.push_days, h.first_seen,
               coalesce(try_cast(json_extract_string(p.attributes,
                   '$.close_date_reliable') AS VARCHAR), 'true')
                   AS close_date_reliable
        FROM probe p
        ASOF JOIN counted h
          ON p.deal_id = h.deal_id AND p.cutoff > h.valid_from
    )
    SELECT s.deal_id, s.name, s.owner, s.team, s.segment, s.stage, s.amount,
           s.close_date, s.forecast_category, s.probability, s.created_on,
           datediff('day', coalesce(s.created_on, CAST(s.first_seen AS DATE)),
                    CAST(? AS DATE)) AS age_days,
           CASE WHEN s.close_date IS NULL
                  OR lower(s.close_date_reliable) = 'false' THEN NULL
                ELSE datediff('day', CAST(? AS DATE), s.close_date)
           END AS days_to_close,
           s.pushes, s.push_days
    FROM s
"""


def fit_timing(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> TimingModel:
    """Learn timing from what was known at the end of ``as_of``.

    Returns a :class:`TimingModel`. Uses no fact dated after ``as_of``: wins
    and losses count only when closed on or before it.
    """
    hazards = _fit_age_hazards(con, as_of)
    close_date = _fit_close_date_timing(con, as_of)
    notes = []
    if hazards.won + hazards.lost == 0:
        notes.append("no deal closed before the as-of date: timing is a guess")
    logger.debug(
        "timing: %s snapshot rows by close date; %s wins, %s losses by age since %s",
        close_date.observations,
        hazards.won,
        hazards.lost,
        hazards.window_start,
    )
    return TimingModel(as_of=as_of, age=hazards, close_date=close_date, notes=notes)


def _fit_age_hazards(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> AgeHazards:
    frame = con.execute(
        """
        SELECT d.created_on,
               CASE WHEN d.outcome IN ('won', 'lost') AND d.closed_on <= ?
                    THEN d.outcome ELSE 'open' END AS outcome_then,
               CASE WHEN d.outcome IN ('won', 'lost') AND d.closed_on <= ?
                    THEN d.closed_on ELSE NULL END AS closed_then
        FROM deals d
        WHERE d.created_on IS NOT NULL AND d.created_on <= ?
        """,
        [as_of, as_of, as_of],
    ).df()
    closed = frame[frame["outcome_then"] != "open"]
    grid = MAX_AGE_DAYS + 1
    if closed.empty:
        flat = np.full(grid, 1e-4)
        return AgeHazards(win=flat, loss=flat.copy(), window_start=None, won=0, lost=0)

    # Observe the most recent window that holds enough closes, and never
    # before the first recorded close (before it, closes were not recorded).
    closed_on = pd.to_datetime(closed["closed_then"])
    first_close = closed_on.min()
    window_start = first_close
    for days in HAZARD_WINDOWS_DAYS:
        start = pd.Timestamp(as_of) - pd.Timedelta(days=days - 1)
        window_start = max(first_close, start)
        if (closed_on >= window_start).sum() >= MIN_WINDOW_CLOSES:
            break
    else:
        window_start = first_close

    created = pd.to_datetime(frame["created_on"])
    end = pd.to_datetime(frame["closed_then"]).fillna(pd.Timestamp(as_of))
    exit_age = (end - created).dt.days.clip(lower=0).to_numpy()
    entry_age = (window_start - created).dt.days.clip(lower=0).to_numpy()
    # Deals created before the first recorded close are left out: their
    # closes were not recorded while they were open, so their durations are
    # those of the recording, not of the deals.
    observed = exit_age >= entry_age
    entry_age, exit_age = entry_age[observed], exit_age[observed]
    outcome = frame["outcome_then"].to_numpy()[observed]

    exposure = np.zeros(grid + 1)
    np.add.at(exposure, np.minimum(entry_age, grid), 1.0)
    np.add.at(exposure, np.minimum(exit_age + 1, grid), -1.0)
    exposure = np.cumsum(exposure)[:grid]
    wins = np.bincount(
        np.minimum(exit_age[outcome == "won"], grid - 1), minlength=grid
    ).astype(float)
    losses = np.bincount(
        np.minimum(exit_age[outcome == "lost"], grid - 1), minlength=grid
    ).astype(float)

    return AgeHazards(
        win=_smoothed_hazard(wins, exposure),
        loss=_smoothed_hazard(losses, exposure),
        window_start=window_start.date(),
        won=int(wins.sum()),
        lost=int(losses.sum()),
    )


def _smoothed_hazard(events: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Daily hazard pooled over age bins and shrunk towards its neighbours;
    ages past the last well-observed bin take the rate of the oldest
    well-observed bins."""
    grid = len(events)
    bins = np.arange(grid) // AGE_BIN_DAYS
    bin_events = np.bincount(bins, weights=events)
    bin_exposure = np.bincount(bins, weights=exposure)
    overall = events.sum() / max(exposure.sum(), 1.0)

    well_observed = np.nonzero(bin_exposure >= MIN_BIN_EXPOSURE)[0]
    if not len(well_observed):
        return np.full(grid, min(overall, 0.5))
    last = int(well_observed.max())

    # Shrink each bin towards a local average of the three bins around it.
    prior_weight = AGE_BIN_DAYS * 10.0
    kernel = np.ones(3)
    local_events = np.convolve(bin_events, kernel, mode="same")
    local_exposure = np.convolve(bin_exposure, kernel, mode="same")
    local = (local_events + prior_weight * overall) / (local_exposure + prior_weight)
    rate = (bin_events + prior_weight * local) / (bin_exposure + prior_weight)

    # Past the oldest well-observed bins, the rate of the last three of them.
    tail = well_observed[-3:]
    tail_rate = bin_events[tail].sum() / max(bin_exposure[tail].sum(), 1.0)
    rate[last + 1 :] = tail_rate
    return np.clip(rate[bins], 0.0, 0.5)


def _fit_close_date_timing(
    con: duckdb.DuckDBPyConnection, as_of: dt.date
) -> CloseDateTiming:
    first = con.execute(
        "SELECT min(valid_from) FROM deal_history WHERE close_date IS NOT NULL "
        "AND outcome = 'open' AND valid_from < ?",
        [end_of_day(as_of)],
    ).fetchone()[0]
    if first is None:
        return CloseDateTiming(cells={}, observations=0)
    start = max(
        pd.Timestamp(first).date(), as_of - dt.timedelta(days=SNAPSHOT_SPAN_DAYS)
    )
    last_snapshot = as_of - dt.timedelta(days=MIN_FOLLOW_UP_DAYS)
    if last_snapshot <= start:
        return CloseDateTiming(cells={}, observations=0)

    snapshots = pd.date_range(start, last_snapshot, freq="7D").date.tolist()
    rows = con.execute(
        """
        WITH snaps AS (
            SELECT unnest(CAST(? AS DATE[])) AS snap
        ),
        versions AS (
            SELECT h.deal_id, h.valid_from, h.close_date, h.outcome,
                   CASE WHEN h.close_date > lag(h.close_date) OVER w
                        THEN 1 ELSE 0 END AS pushed
            FROM deal_history h
            WHERE h.valid_from < ?
            WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.valid_from)
        ),
        counted AS (
            SELECT *, sum(pushed) OVER (
                PARTITION BY deal_id ORDER BY valid_from
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS pushes
            FROM versions
        ),
        probe AS (
            SELECT d.deal_id, d.attributes, s.snap,
                   CASE WHEN d.outcome IN ('won', 'lost') AND d.closed_on <= ?
                        THEN d.closed_on END AS closed_then,
                   coalesce(d.outcome = 'won' AND d.closed_on <= ?, false)
                       AS won_then,
                   s.snap + INTERVAL 1 DAY AS cutoff
            FROM deals d, snaps s
            WHERE (d.created_on IS NULL OR d.created_on <= s.snap)
              AND (d.closed_on IS NULL OR d.closed_on > s.snap)
        )
        SELECT datediff('day', p.snap, h.close_date) AS days_to_close,
               h.pushes,
               datediff('day', p.snap, p.closed_then) AS days_to_close_event,
               p.won_then,
               datediff('day', p.snap, CAST(? AS DATE)) AS follow_up
        FROM probe p
        ASOF JOIN counted h
          ON p.deal_id = h.deal_id AND p.cutoff > h.valid_from
        WHERE h.outcome = 'open' AND h.close_date IS NOT NULL
          AND lower(coalesce(json_extract_string(p.attributes,
                '$.close_date_reliable'), 'true')) <> 'false'
        """,
        [snapshots, end_of_day(as_of), as_of, as_of, as_of],
    ).df()
    if rows.empty:
        return CloseDateTiming(cells={}, observations=0)
    rows["days_to_close_event"] = (
        rows["days_to_close_event"].astype(float).fillna(np.inf)
    )
    rows["close_bucket"] = close_bucket(rows["days_to_close"].to_numpy())
    rows["push_bucket"] = push_bucket(rows["pushes"].fillna(0).to_numpy())
    cells = {
        (int(cb), int(pb)): (
            group["days_to_close_event"].to_numpy(dtype=float),
            group["follow_up"].to_numpy(dtype=float),
            group["days_to_close"].to_numpy(dtype=float),
            group["won_then"].to_numpy(dtype=bool),
        )
        for (cb, pb), group in rows.groupby(["close_bucket", "push_bucket"])
    }
    return CloseDateTiming(cells=cells, observations=len(rows))
