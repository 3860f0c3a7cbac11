"""Business not yet in the pipeline: deals created after the as-of date and
won before the quarter ends.

For each group (team, owner or segment) the expected number of such deals is
its recent creation rate (deals created per day over the trailing
:data:`RATE_WINDOW_DAYS`) times the wins per unit of creation rate seen when
the same point of the last :data:`REPLAY_QUARTERS` quarters is replayed:
deals created after that day and won by that quarter's end, over the
creation rate then. The amounts are drawn from those wins, which keeps the
calendar (a quarter-end rush pulls deals created early in a quarter to its
end) and the size of quick wins (often smaller than the average win).
Without a replayable quarter, a cohort of deals created at least the days
left before the as-of date gives it; without enough of those, the age
hazards of :mod:`dealcase.timing` and the trailing year's won amounts. The
count is drawn as Poisson with that rate (mixed with the forecast's shared
uncertainty factor, which makes it negative binomial); a group's own wins
are used once it has :data:`MIN_GROUP_WINS` of them, else the company's.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from dealcase.errors import InputError
from dealcase.periods import Quarter
from dealcase.timing import AgeHazards

logger = logging.getLogger(__name__)

RATE_WINDOW_DAYS = 28
# Creations seen over fewer days than this give no rate at all.
MIN_RATE_WINDOW_DAYS = 7
AMOUNT_WINDOW_DAYS = 365
MIN_GROUP_WINS = 30
# Deals created at least the horizon before the as-of date, over this many
# days, say how much a new deal brings within the horizon; at least this
# many are needed, else the age hazards are used.
COHORT_DAYS = 365
MIN_COHORT_DEALS = 200
# New business is replayed on up to this many past quarters at the same
# point of the quarter; one of them must hold this many wins.
REPLAY_QUARTERS = 4
MIN_REPLAY_WINS = 30
NO_GROUP = "(none)"


@dataclass
class NewBusinessPart:
    """New business of one group: expected count and the amounts to draw
    (with optional ``weights``, the chance of drawing each amount, summing
    to 1; default equal)."""

    name: str
    expected_count: float
    amounts: np.ndarray
    weights: np.ndarray | None = None

    def _weights(self) -> np.ndarray:
        if self.weights is None:
            return np.full(len(self.amounts), 1.0 / max(len(self.amounts), 1))
        return self.weights

    @property
    def mean_amount(self) -> float:
        if not len(self.amounts):
            return 0.0
        return float(self._weights() @ self.amounts)

    @property
    def amount_spread(self) -> float:
        """Standard deviation of a drawn amount."""
        if not len(self.amounts):
            return 0.0
        second = float(self._weights() @ self.amounts**2)
        return float(np.sqrt(max(second - self.mean_amount**2, 0.0)))

    @property
    def expected_value(self) -> float:
        """Expected won value (reporting currency)."""
        return self.expected_count * self.mean_amount

    @property
    def variance(self) -> float:
        """Variance of the compound Poisson value (currency squared)."""
        if not len(self.amounts):
            return 0.0
        return self.expected_count * float(self._weights() @ self.amounts**2)


def estimate_new_business(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    quarter_end: dt.date,
    hazards: AgeHazards,
    *,
    by: str = "team",
    quarter: Quarter | None = None,
) -> tuple[list[NewBusinessPart], list[str]]:
    """New business per value of ``by`` for the days after ``as_of``.

    Returns the parts (one per group that created or won deals recently) and
    notes on fallbacks taken. Uses only deals created and won on or before
    ``as_of``.
    """
    if by not in ("team", "owner", "segment"):
        raise InputError(f"cannot group new business by '{by}'")
    notes: list[str] = []
    days_left = (quarter_end - as_of).days
    if days_left <= 0:
        return [], notes
    if hazards.won == 0:
        notes.append("no won deal before the as-of date: new business left out")
        return [], notes

    first_created = con.execute(
        "SELECT min(created_on) FROM deals WHERE created_on <= ?", [as_of]
    ).fetchone()[0]
    window = min(RATE_WINDOW_DAYS, (as_of - first_created).days + 1)
    if window < MIN_RATE_WINDOW_DAYS:
        notes.append(
            f"deals were created over only {window} day(s) before the as-of "
            "date (as when every deal carries the day the data was loaded): "
            "too short to tell how many new deals come, new business left out"
        )
        return [], notes
    window_start = as_of - dt.timedelta(days=window - 1)
    created = con.execute(
        f"""
        SELECT coalesce({by}, ?) AS name, count(*) AS created
        FROM deals WHERE created_on BETWEEN ? AND ?
        GROUP BY 1 ORDER BY 1
        """,
        [NO_GROUP, window_start, as_of],
    ).df()
    won = con.execute(
        f"""
        SELECT coalesce({by}, ?) AS name, amount
        FROM deals
        WHERE outcome = 'won' AND closed_on BETWEEN ? AND ? AND amount IS NOT NULL
        ORDER BY deal_id
        """,
        [NO_GROUP, as_of - dt.timedelta(days=AMOUNT_WINDOW_DAYS - 1), as_of],
    ).df()

    if window < RATE_WINDOW_DAYS:
        notes.append(
            f"deals were created over only {window} days before the as-of "
            "date: new business rate is uncertain"
        )
    if quarter is not None:
        replay = _past_quarters_replay(con, as_of, quarter, by)
        if replay is not None:
            return _parts_from_replay(created, window, *replay), notes
    cohort = _fast_wins(con, as_of, days_left, by)
    if cohort is not None:
        return _parts_from_cohort(created, window, cohort), notes

    # Too short a history for a cohort: the age hazards.
    # A deal created on day as_of + s can be won through the quarter's end.
    days_to_end = np.arange(days_left, 0, -1)
    wins_per_created = float(hazards.new_deal_won_within(days_to_end).sum())
    company_amounts = won["amount"].to_numpy(dtype=float)
    notes.append(
        "new business from age hazards and all won amounts (too few deals "
        f"created at least {days_left} days before the as-of date)"
    )

    parts = []
    for row in created.itertuples(index=False):
        amounts = won.loc[won["name"] == row.name, "amount"].to_numpy(dtype=float)
        if len(amounts) < MIN_GROUP_WINS:
            amounts = company_amounts
        rate = row.created / window
        parts.append(
            NewBusinessPart(
                name=str(row.name),
                expected_count=rate * wins_per_created,
                amounts=amounts,
            )
        )
    logger.debug(
        "new business: %.1f deals expected",
        sum(part.expected_count for part in parts),
    )
    return parts, notes


def _first_close(con, as_of: dt.date) -> dt.date | None:
    """The first day a deal was recorded closed, up to ``as_of``."""
    return con.execute(
        "SELECT min(closed_on) FROM deals WHERE outcome IN ('won', 'lost') "
        "AND closed_on <= ?",
        [as_of],
    ).fetchone()[0]


def _past_quarters_replay(con, as_of: dt.date, quarter: Quarter, by: str):
    """What deals created after the same day of the last
    :data:`REPLAY_QUARTERS` quarters won by those quarters' ends, against
    the creation rate then; None when no such quarter holds
    :data:`MIN_REPLAY_WINS` wins.

    Returns ``(rates, wins)``: per group the summed creation rate (deals a
    day over the :data:`RATE_WINDOW_DAYS` before each replay day) and the
    won deals (``name, amount``). Replaying the same point of the quarter
    keeps the calendar: deals created early in a quarter are pulled to its
    end by the quarter-end rush, which a cycle length alone does not show.
    Only quarters that began on or after the first recorded close count.
    """
    first_close = _first_close(con, as_of)
    if first_close is None:
        return None
    offset = dt.timedelta(days=max((as_of - quarter.start).days, 0))
    rates, wins = [], []
    past = quarter
    for _ in range(REPLAY_QUARTERS):
        past = past.previous()
        if past.start < first_close or past.end > as_of:
            break
        day = min(past.start + offset, past.end)
        rate = con.execute(
            f"""
            SELECT coalesce({by}, ?) AS name, count(*) / ? AS rate
            FROM deals WHERE created_on BETWEEN ? AND ? GROUP BY 1 ORDER BY 1
            """,
            [
                NO_GROUP,
                float(RATE_WINDOW_DAYS),
                day - dt.timedelta(days=RATE_WINDOW_DAYS - 1),
                day,
            ],
        ).df()
        won = con.execute(
            f"""
            SELECT coalesce({by}, ?) AS name, coalesce(amount, 0) AS amount
            FROM deals
            WHERE outcome = 'won' AND created_on > ? AND closed_on <= ?
            ORDER BY deal_id
            """,
            [NO_GROUP, day, past.end],
        ).df()
        rates.append(rate)
        wins.append(won)
    if not wins or max(len(w) for w in wins) < MIN_REPLAY_WINS:
        return None
    rate = pd.concat(rates).groupby("name")["rate"].sum()
    return rate, pd.concat(wins, ignore_index=True)


def _parts_from_replay(created, window: int, rates: pd.Series, wins: pd.DataFrame):
    company_rate = float(rates.sum())
    company_amounts = wins["amount"].to_numpy(dtype=float)
    parts = []
    for row in created.itertuples(index=False):
        own = wins.loc[wins["name"] == row.name, "amount"].to_numpy(dtype=float)
        own_rate = float(rates.get(row.name, 0.0))
        # A group's own replay once it won enough, else the company's.
        if len(own) >= MIN_GROUP_WINS and own_rate > 0:
            per_rate, amounts = len(own) / own_rate, own
        else:
            per_rate, amounts = len(company_amounts) / company_rate, company_amounts
        parts.append(
            NewBusinessPart(
                name=str(row.name),
                expected_count=row.created / window * per_rate,
                amounts=amounts,
            )
        )
    return parts


def _fast_wins(con, as_of: dt.date, days_left: int, by: str):
    """The cohort that says how much a newly created deal brings in
    ``days_left`` days, or None when it is too small.

    Cohort: deals created over the trailing :data:`COHORT_DAYS` (never
    before the first recorded close), at least ``days_left`` days before
    the as-of date, so each was followed for the whole horizon (no
    censoring). A deal created on day ``s`` of the ``days_left`` remaining
    is won in time when its cycle ``c`` (creation to win) is at most
    ``days_left - s``, which holds for ``max(0, days_left - c)`` of the
    days: that is each cohort deal's weight. Per deal created, the expected
    number of wins in time is the mean weight, and the amounts of new
    business are the cohort's won amounts drawn in proportion to it, so
    that fast (often small) wins count as much as they occur.
    """
    first_close = _first_close(con, as_of)
    if first_close is None:
        return None
    start = max(as_of - dt.timedelta(days=COHORT_DAYS), first_close)
    last = as_of - dt.timedelta(days=days_left)
    if last < start:
        return None
    cohort = con.execute(
        f"""
        SELECT coalesce({by}, ?) AS name, coalesce(amount, 0) AS amount,
               CASE WHEN outcome = 'won' AND closed_on <= ?
                    THEN greatest(? - datediff('day', created_on, closed_on), 0)
                    ELSE 0 END AS weight
        FROM deals WHERE created_on BETWEEN ? AND ?
        ORDER BY deal_id
        """,
        [NO_GROUP, as_of, days_left, start, last],
    ).df()
    if len(cohort) < MIN_COHORT_DEALS:
        return None
    return cohort


def _parts_from_cohort(created: pd.DataFrame, window: int, cohort: pd.DataFrame):
    company = cohort
    parts = []
    for row in created.itertuples(index=False):
        own = cohort[cohort["name"] == row.name]
        # A group's own cohort once it holds enough fast wins, else the
        # company's (a group's share of quick wins is not known from few).
        chosen = own if int((own["weight"] > 0).sum()) >= MIN_GROUP_WINS else company
        weight = chosen["weight"].to_numpy(dtype=float)
        rate = row.created / window
        won = weight > 0
        if not won.any():
            parts.append(NewBusinessPart(str(row.name), 0.0, np.zeros(0)))
            continue
        parts.append(
            NewBusinessPart(
                name=str(row.name),
                expected_count=rate * float(weight.mean()),
                amounts=chosen["amount"].to_numpy(dtype=float)[won],
                weights=weight[won] / weight[won].sum(),
            )
        )
    return parts


def new_business_summary(parts: list[NewBusinessPart]) -> pd.DataFrame:
    """One row per group: name, expected_count, expected_value."""
    return pd.DataFrame(
        {
            "name": [p.name for p in parts],
            "expected_count": [p.expected_count for p in parts],
            "expected_value": [p.expected_value for p in parts],
        }
    )
