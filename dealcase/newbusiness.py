"""Business not yet in the pipeline: deals created after the as-of date and
won before the quarter ends.

For each group (team, owner or segment) the expected number of such deals is
its recent creation rate (deals created per day over the trailing
:data:`RATE_WINDOW_DAYS`) times, for each day left in the quarter, the chance
that a deal created that day is won by the quarter's last day (from the age
hazards of :mod:`dealcase.timing`). The count is drawn as Poisson with that
rate (mixed with the forecast's shared uncertainty factor, which makes it
negative binomial), the amounts from the group's won amounts of the trailing
year (the company's when the group won fewer than :data:`MIN_GROUP_WINS`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from dealcase.errors import InputError
from dealcase.timing import AgeHazards

logger = logging.getLogger(__name__)

RATE_WINDOW_DAYS = 28
AMOUNT_WINDOW_DAYS = 365
MIN_GROUP_WINS = 30
NO_GROUP = "(none)"


@dataclass
class NewBusinessPart:
    """New business of one group: expected count and the amounts to draw."""

    name: str
    expected_count: float
    amounts: np.ndarray

    @property
    def mean_amount(self) -> float:
        return float(self.amounts.mean()) if len(self.amounts) else 0.0

    @property
    def expected_value(self) -> float:
        """Expected won value (reporting currency)."""
        return self.expected_count * self.mean_amount

    @property
    def variance(self) -> float:
        """Variance of the compound Poisson value (currency squared)."""
        if not len(self.amounts):
            return 0.0
        return self.expected_count * float(np.mean(self.amounts**2))


def estimate_new_business(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    quarter_end: dt.date,
    hazards: AgeHazards,
    *,
    by: str = "team",
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
    window_start = as_of - dt.timedelta(days=window - 1)
    created = con.execute(
        f"""
        SELECT coalesce({by}, ?) AS name, count(*) AS created
        FROM deals WHERE created_on BETWEEN ? AND ?
        GROUP BY 1
        """,
        [NO_GROUP, window_start, as_of],
    ).df()
    won = con.execute(
        f"""
        SELECT coalesce({by}, ?) AS name, amount
        FROM deals
        WHERE outcome = 'won' AND closed_on BETWEEN ? AND ? AND amount IS NOT NULL
        """,
        [NO_GROUP, as_of - dt.timedelta(days=AMOUNT_WINDOW_DAYS - 1), as_of],
    ).df()

    # A deal created on day as_of + s can be won through the quarter's end.
    days_to_end = np.arange(days_left, 0, -1)
    wins_per_created = float(hazards.new_deal_won_within(days_to_end).sum())
    company_amounts = won["amount"].to_numpy(dtype=float)
    if window < RATE_WINDOW_DAYS:
        notes.append(
            f"deals were created over only {window} days before the as-of "
            "date: new business rate is uncertain"
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


def new_business_summary(parts: list[NewBusinessPart]) -> pd.DataFrame:
    """One row per group: name, expected_count, expected_value."""
    return pd.DataFrame(
        {
            "name": [p.name for p in parts],
            "expected_count": [p.expected_count for p in parts],
            "expected_value": [p.expected_value for p in parts],
        }
    )
