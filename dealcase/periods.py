"""Fiscal quarters and as-of dates.

Quarters are named by fiscal year and number (``2017Q3``). The fiscal year
starts in the month stored as ``fiscal_year_start_month`` in ``meta``
(January when unset) and is named by the calendar year in which it starts:
with a February start, ``2017Q1`` is February to April 2017.

"As of" a date means as the data stood at the end of that day, so history
rows with ``valid_from < as_of + 1 day`` are in effect.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dealcase.errors import DealCaseError

_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]([1-4])\s*$")


class PeriodError(DealCaseError, ValueError):
    """A quarter name or date that cannot be read."""


@dataclass(frozen=True, order=True)
class Quarter:
    """A fiscal quarter: ``year`` and ``number`` (1..4) under a fiscal year
    that starts in ``start_month``."""

    year: int
    number: int
    start_month: int = 1

    @property
    def name(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> dt.date:
        """First day of the quarter."""
        months = self.start_month - 1 + 3 * (self.number - 1)
        return dt.date(self.year + months // 12, months % 12 + 1, 1)

    @property
    def end(self) -> dt.date:
        """Last day of the quarter (inclusive)."""
        return self.next().start - dt.timedelta(days=1)

    def next(self) -> Quarter:
        if self.number == 4:
            return Quarter(self.year + 1, 1, self.start_month)
        return Quarter(self.year, self.number + 1, self.start_month)

    def previous(self) -> Quarter:
        if self.number == 1:
            return Quarter(self.year - 1, 4, self.start_month)
        return Quarter(self.year, self.number - 1, self.start_month)

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def __str__(self) -> str:
        return self.name


def parse_quarter(text: str, start_month: int = 1) -> Quarter:
    """Read ``2017Q3`` (also ``2017-Q3``, ``2017q3``)."""
    match = _QUARTER.match(str(text))
    if not match:
        raise PeriodError(f"'{text}' is not a quarter; write it like 2017Q3")
    return Quarter(int(match.group(1)), int(match.group(2)), start_month)


def quarter_of(day: dt.date, start_month: int = 1) -> Quarter:
    """The fiscal quarter that contains ``day``."""
    offset = (day.month - start_month) % 12
    year = day.year if day.month >= start_month else day.year - 1
    return Quarter(year, offset // 3 + 1, start_month)


def parse_date(text: str | dt.date) -> dt.date:
    """Read an ISO date (``2017-07-01``)."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError as error:
        raise PeriodError(
            f"'{text}' is not a date; write it like 2017-07-01"
        ) from error


def end_of_day(day: dt.date) -> dt.datetime:
    """The first moment after ``day``: history before it is in effect."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def fiscal_start_month(con) -> int:
    """The configured first month of the fiscal year (1 when unset)."""
    row = con.execute(
        "SELECT value FROM meta WHERE key = 'fiscal_year_start_month'"
    ).fetchone()
    return int(row[0]) if row else 1


def resolve_as_of(con, as_of: dt.date | str | None) -> dt.date:
    """``as_of`` as a date; when None, the data's present (meta ``today``), else
    the calendar's today."""
    if as_of is not None:
        return parse_date(as_of)
    row = con.execute("SELECT value FROM meta WHERE key = 'today'").fetchone()
    return parse_date(row[0]) if row and row[0] else dt.date.today()
