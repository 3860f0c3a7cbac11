"""Turn the text cells of an export into dates, money, probabilities and flags.

Each parser takes a column of strings (a pandas Series or any sequence), with
the file, the column name and the line number of every row so that a value it
cannot read is reported where the user will find it. Decisions that depend on
the whole column (day-first or month-first dates, decimal comma or point,
percent or fraction) are made once per column from the values that prove one
reading, never guessed from a single value.

The parsers work on the distinct values of a column and map the results back,
so a million-row column with a few thousand dates costs a few thousand parses.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dealcase.errors import InputError

logger = logging.getLogger(__name__)

PLACEHOLDER_IDS = frozenset({"000000000000000AAA", "000000000000000"})
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
FORECAST_CATEGORIES = {
    "pipeline": "pipeline",
    "bestcase": "best_case",
    "upside": "best_case",
    "commit": "commit",
    "forecast": "commit",
    "closed": "closed",
    "closedwon": "closed",
    "omitted": "omitted",
    "omit": "omitted",
    "notforecasted": "omitted",
    "closedlost": "omitted",
}
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n"})

_ISO = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"\s*(?P<tz>Z|UTC|[+-]\d{2}:?\d{2})?$"
)
_LOCALE = re.compile(
    r"^(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4}|\d{2})"
    r"(?:,?\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?\s*(?P<p>[AaPp][Mm])?)?$"
)
_MONEY = re.compile(
    r"""^(?P<s1>[-+])?\s*
    (?P<o1>\()?\s*
    (?P<pre>[A-Z]{3}|[$€£¥])?\s*
    (?P<o2>\()?\s*
    (?P<s2>[-+])?\s*
    (?P<num>\d(?:[\d,.'\u00a0\u202f ]*\d)?|[.,]\d+|\d+[.,])\s*
    (?P<c1>\))?\s*
    (?P<post>[A-Z]{3}|[$€£¥])?\s*
    (?P<c2>\))?\s*
    (?P<s3>-)?$""",
    re.VERBOSE,
)
# Shapes Arrow's own ISO parser reads exactly (RE2 syntax).
_FAST_DATE = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?$"
)
_FAST_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?Z?$"
_PLAIN_NUMBER = r"^-?\d+(?:\.\d+)?$"
_SCIENTIFIC = re.compile(r"^[-+]?\d+(?:\.\d+)?[eE][-+]?\d+$")


# ---------------------------------------------------------------------------
# helpers


def _as_text(values) -> pd.Series:
    """Return the values as a stripped ``str`` Series ("" for missing)."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values))
    series = series.astype("str").fillna("") if len(series) else series.astype("str")
    return series.reset_index(drop=True).str.strip()


def _distinct(text: pd.Series) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Codes, distinct values, and the row of each value's first occurrence."""
    codes, uniques = pd.factorize(text, sort=False)
    first = np.full(len(uniques), -1, dtype=np.int64)
    if len(uniques):
        order = np.arange(len(codes))[::-1]
        first[codes[::-1]] = order
    return codes, pd.Index(uniques), first


def _line(line_numbers, row: int) -> int | None:
    if row is None or row < 0:
        return None
    if line_numbers is None:
        return row + 2  # header on line 1, one line per row
    return int(line_numbers[row])


def _note(warnings: list | None, message: str) -> None:
    logger.info(message)
    if warnings is not None:
        warnings.append(message)


def _place(file, column) -> str:
    where = f"column {column}" if column is not None else "the column"
    return f"{where} of {Path(file).name}" if file is not None else where


# ---------------------------------------------------------------------------
# dates


def _resolve_date_order(
    parts: pd.DataFrame, rows: np.ndarray, *, file, column, line_numbers, date_order
) -> str:
    """Decide dmy or mdy for the locale-formatted values of one column."""
    a = parts["a"].astype(int).to_numpy()
    b = parts["b"].astype(int).to_numpy()
    dmy_proof = (a > 12) & (b <= 12)
    mdy_proof = (b > 12) & (a <= 12)
    if date_order is not None:
        order = date_order.lower()
        if order not in ("dmy", "mdy"):
            raise InputError(f"unknown date order {date_order!r}: use dmy or mdy")
        return order
    if dmy_proof.any() and mdy_proof.any():
        dmy_line = _line(line_numbers, rows[np.argmax(dmy_proof)])
        mdy_line = _line(line_numbers, rows[np.argmax(mdy_proof)])
        raise InputError(
            f"dates disagree on day/month order: line {dmy_line} is day-first "
            f"and line {mdy_line} is month-first; fix the file or pass "
            "--date-order dmy|mdy",
            file=file,
            line=min(dmy_line, mdy_line),
            column=column,
        )
    if dmy_proof.any():
        return "dmy"
    if mdy_proof.any():
        return "mdy"
    ambiguous = (a != b) & (a <= 12) & (b <= 12)
    if ambiguous.any():
        first = rows[np.argmax(ambiguous)]
        value = parts["text"].iloc[int(np.argmax(ambiguous))]
        raise InputError(
            f"the date {value!r} could be day-first or month-first and no value "
            "in the column decides it: pass --date-order dmy|mdy",
            file=file,
            line=_line(line_numbers, first),
            column=column,
        )
    return "dmy"


def _parse_datetime_values(
    values, *, file, column, line_numbers, date_order, keep_time, warnings=None
):
    text = _as_text(values)
    codes, uniques, first = _distinct(text)
    distinct = pd.Series(uniques, dtype="str")
    blank = (distinct == "").to_numpy()

    stamps = _fast_iso(distinct, blank, keep_time)
    if stamps is None:
        stamps = _parse_distinct_datetimes(
            distinct,
            blank,
            first,
            file=file,
            column=column,
            line_numbers=line_numbers,
            date_order=date_order,
            keep_time=keep_time,
        )
    if keep_time:
        values = np.asarray(stamps, dtype="datetime64[us]")
        values = values.take(codes) if len(codes) else values[:0]
        return pd.Series(values, dtype="datetime64[us]")
    days = pd.Series(np.asarray(stamps, dtype="datetime64[us]")).dt.date.to_numpy()
    objects = np.array(days, dtype=object)
    objects[blank] = None
    return pd.Series(objects.take(codes) if len(codes) else objects[:0], dtype=object)


def _fast_iso(distinct: pd.Series, blank: np.ndarray, keep_time: bool):
    """Parse a column of plain ISO values with Arrow; None if it is not one.

    Any value that Arrow refuses (an impossible date, a time zone offset, a
    locale date) sends the whole column to the general parser, which names
    the offending value.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = distinct.where(~blank, "2000-01-01")
    array = pa.array(filled.to_numpy(dtype=object), type=pa.string())
    pattern = _FAST_TIMESTAMP if keep_time else _FAST_DATE
    if not pc.all(pc.match_substring_regex(array, pattern)).as_py():
        return None
    try:
        if keep_time:
            # "Z" is UTC, which is what a naive result means here.
            array = pc.replace_substring_regex(array, "Z$", "")
            parsed = pc.cast(array, pa.timestamp("us"))
        else:
            parsed = pc.cast(pc.utf8_slice_codeunits(array, 0, 10), pa.date32())
            parsed = pc.cast(parsed, pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    result = parsed.to_numpy(zero_copy_only=False).astype("datetime64[us]")
    result[blank] = np.datetime64("NaT")
    return result


def _parse_distinct_datetimes(
    distinct, blank, first, *, file, column, line_numbers, date_order, keep_time
):
    """Every accepted format, with the checks that name a bad value."""
    iso = distinct.str.extract(_ISO)
    iso_ok = iso["y"].notna().to_numpy()
    local = distinct.str.extract(_LOCALE)
    local_ok = local["a"].notna().to_numpy() & ~iso_ok

    bad = ~(blank | iso_ok | local_ok)
    if bad.any():
        index = int(np.flatnonzero(bad)[np.argmin(first[bad])])
        raise InputError(
            f"cannot read {distinct.iloc[index]!r} as a date: expected ISO "
            "(2025-04-01), a timestamp, or a day/month/year date",
            file=file,
            line=_line(line_numbers, first[index]),
            column=column,
        )

    n = len(distinct)
    year = np.zeros(n, dtype=np.int64)
    month = np.zeros(n, dtype=np.int64)
    day = np.zeros(n, dtype=np.int64)
    hour = np.zeros(n, dtype=np.int64)
    minute = np.zeros(n, dtype=np.int64)
    second = np.zeros(n, dtype=np.int64)
    micro = np.zeros(n, dtype=np.int64)
    offset_minutes = np.zeros(n, dtype=np.int64)

    if iso_ok.any():
        part = iso[iso_ok]
        year[iso_ok] = part["y"].astype(int)
        month[iso_ok] = part["m"].astype(int)
        day[iso_ok] = part["d"].astype(int)
        hour[iso_ok] = part["H"].fillna("0").astype(int)
        minute[iso_ok] = part["M"].fillna("0").astype(int)
        second[iso_ok] = part["S"].fillna("0").astype(int)
        fraction = part["f"].fillna("0").str.ljust(6, "0").str[:6]
        micro[iso_ok] = fraction.astype(int)
        offset_minutes[iso_ok] = [_offset_minutes(tz) for tz in part["tz"]]

    if local_ok.any():
        part = local[local_ok].copy()
        part["text"] = distinct[local_ok]
        rows = first[local_ok]
        order = _resolve_date_order(
            part,
            rows,
            file=file,
            column=column,
            line_numbers=line_numbers,
            date_order=date_order,
        )
        a = part["a"].astype(int).to_numpy()
        b = part["b"].astype(int).to_numpy()
        day[local_ok], month[local_ok] = (a, b) if order == "dmy" else (b, a)
        years = part["y"].astype(int).to_numpy()
        short = part["y"].str.len().to_numpy() == 2
        years = np.where(short & (years < 70), years + 2000, years)
        years = np.where(short & (years >= 70) & (years < 100), years + 1900, years)
        year[local_ok] = years
        hours = part["H"].fillna("0").astype(int).to_numpy()
        meridiem = part["p"].fillna("").str.lower().to_numpy()
        hours = np.where((meridiem == "pm") & (hours < 12), hours + 12, hours)
        hours = np.where((meridiem == "am") & (hours == 12), 0, hours)
        hour[local_ok] = hours
        minute[local_ok] = part["M"].fillna("0").astype(int)
        second[local_ok] = part["S"].fillna("0").astype(int)

    valid = ~blank
    stamps = pd.to_datetime(
        pd.DataFrame(
            {
                "year": np.where(valid, year, 2000),
                "month": np.where(valid, month, 1),
                "day": np.where(valid, day, 1),
                "hour": hour,
                "minute": minute,
                "second": second,
                "microsecond": micro,
            }
        ),
        errors="coerce",
    )
    impossible = valid & (
        stamps.isna().to_numpy() | (hour > 23) | (minute > 59) | (second > 59)
    )
    if impossible.any():
        index = int(np.flatnonzero(impossible)[np.argmin(first[impossible])])
        raise InputError(
            f"{distinct.iloc[index]!r} is not a real date (read as year "
            f"{year[index]}, month {month[index]}, day {day[index]})",
            file=file,
            line=_line(line_numbers, first[index]),
            column=column,
        )

    if keep_time:
        stamps = stamps - pd.to_timedelta(offset_minutes, unit="m")
    result = np.asarray(stamps, dtype="datetime64[us]").copy()
    result[blank] = np.datetime64("NaT")
    return result


def _offset_minutes(tz) -> int:
    if not isinstance(tz, str) or tz in ("Z", "UTC"):
        return 0
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:4]))


def parse_dates(
    values,
    *,
    file=None,
    column=None,
    line_numbers: Sequence[int] | None = None,
    date_order: str | None = None,
    warnings: list | None = None,
) -> pd.Series:
    """Read calendar dates.

    Accepts ISO dates (``2025-04-01``), ISO timestamps
    (``2025-04-01T00:00:00.000Z``, ``2018-10-13 17:16:45``) whose calendar
    date is taken as written, never shifted by a time zone, and day/month/year
    dates separated by ``/ . -`` (``03/01/2024``, ``29/01/2025``,
    ``3.1.2024``; two-digit years are 2000-2069 or 1970-1999).

    Parameters
    ----------
    values : Series or sequence of str
    file, column : optional
        Where the values come from, for error messages.
    line_numbers : sequence of int, optional
        The file line of each value; by default row ``i`` is line ``i + 2``.
    date_order : {"dmy", "mdy"}, optional
        Day/month order of locale dates. By default it is decided from the
        column: a first part above 12 proves day-first, a second part above
        12 proves month-first.
    warnings : list, optional
        Receives a sentence for anything worth telling the user.

    Returns
    -------
    pandas.Series
        ``datetime.date`` objects, ``None`` for blank cells.

    Raises
    ------
    InputError
        A value that is not a date, an impossible date (``13/23/2025``, never
        rolled over), a column whose locale dates are all ambiguous and no
        ``date_order``, or a column with evidence for both orders.
    """
    return _parse_datetime_values(
        values,
        file=file,
        column=column,
        line_numbers=line_numbers,
        date_order=date_order,
        keep_time=False,
        warnings=warnings,
    )


def parse_timestamps(
    values,
    *,
    file=None,
    column=None,
    line_numbers: Sequence[int] | None = None,
    date_order: str | None = None,
    warnings: list | None = None,
) -> pd.Series:
    """Read timestamps, in the formats :func:`parse_dates` accepts.

    Returns
    -------
    pandas.Series
        ``datetime64[us]``, naive (``NaT`` for blank): a value with a time
        zone (``Z``, ``+02:00``) is converted to UTC, one without is kept as
        written; a date alone is midnight.
    """
    return _parse_datetime_values(
        values,
        file=file,
        column=column,
        line_numbers=line_numbers,
        date_order=date_order,
        keep_time=True,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------
# money


def _decimal_comma(
    numbers: pd.Series, rows: np.ndarray, *, file, column, line_numbers, warnings
) -> bool:
    """Decide whether the column writes decimals with a comma."""
    has_comma = numbers.str.contains(",", regex=False).to_numpy()
    has_dot = numbers.str.contains(".", regex=False).to_numpy()
    both = has_comma & has_dot
    comma_after_dot = numbers.str.contains(r"\.[^,]*,[^.]*$").to_numpy()
    only_comma = has_comma & ~has_dot
    only_dot = has_dot & ~has_comma
    many_commas = numbers.str.count(",").to_numpy() > 1
    many_dots = numbers.str.count(r"\.").to_numpy() > 1
    grouped_comma = numbers.str.fullmatch(r"[1-9]\d{0,2},\d{3}").to_numpy()
    grouped_dot = numbers.str.fullmatch(r"[1-9]\d{0,2}\.\d{3}").to_numpy()

    comma_proof = (
        (both & comma_after_dot)
        | (only_comma & ~many_commas & ~grouped_comma)
        | (only_dot & many_dots)
    )
    dot_proof = (
        (both & ~comma_after_dot)
        | (only_dot & ~many_dots & ~grouped_dot)
        | (only_comma & many_commas)
    )
    if comma_proof.any() and dot_proof.any():
        comma_row = rows[comma_proof].min()
        dot_row = rows[dot_proof].min()
        comma_line = _line(line_numbers, comma_row)
        dot_line = _line(line_numbers, dot_row)
        raise InputError(
            f"amounts mix decimal commas (line {comma_line}) and decimal points "
            f"(line {dot_line}); use one convention per column",
            file=file,
            line=max(comma_line, dot_line),
            column=column,
        )
    if comma_proof.any():
        return True
    if (only_dot & grouped_dot).any() and not dot_proof.any():
        _note(
            warnings,
            f"{_place(file, column)}: values like "
            f"{numbers[only_dot & grouped_dot].iloc[0]!r} were read with a "
            "decimal point; no value in the column shows a decimal comma",
        )
    return False


def _check_grouping(
    numbers: pd.Series, rows: np.ndarray, comma: bool, *, file, column, line_numbers
) -> None:
    """Refuse digit groups that are not thousands (``12,34,5``).

    With group marks, the whole part must be one to three digits and then
    groups of exactly three (``1,234,567``); the fraction holds no mark.
    Indian lakh grouping (``12,34,567``) is not accepted: it is refused like
    any other irregular grouping rather than guessed.
    """
    group, decimal = (".", ",") if comma else (",", ".")
    parts = numbers.str.partition(decimal)
    whole, fraction = parts[0], parts[2]
    grouped = whole.str.contains(group, regex=False).to_numpy()
    regular = whole.str.fullmatch(r"\d{1,3}(?:" + re.escape(group) + r"\d{3})+")
    bad = (grouped & ~regular.fillna(False).to_numpy()) | fraction.str.contains(
        r"[.,]"
    ).to_numpy()
    if not bad.any():
        return
    index = int(np.flatnonzero(bad)[np.argmin(rows[bad])])
    raise InputError(
        f"cannot read {numbers.iloc[index]!r} as an amount: expected digits "
        f"grouped in threes with '{group}' (like 1{group}234{group}567"
        f"{decimal}89) or no grouping at all",
        file=file,
        line=_line(line_numbers, rows[index]),
        column=column,
    )


def _arrow_match(values: pd.Series, pattern: str) -> np.ndarray:
    """RE2 full-column match, much faster than Python's re per value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values.to_numpy(dtype=object), type=pa.string())
    return pc.match_substring_regex(array, pattern).to_numpy(zero_copy_only=False)


def _arrow_floats(values: pd.Series) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values.to_numpy(dtype=object), type=pa.string())
    return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)


def _plain_amounts(text: pd.Series) -> np.ndarray | None:
    """Amounts of a column holding only plain numbers (``1250.5``, ``-3``)
    and blanks, read in one pass without looking at distinct values; None
    when any value needs the general parser.

    ``text`` is stripped, with ``""`` for missing values.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(text.array, type=pa.large_string())
    blank = pc.equal(array, "")
    plain = pc.match_substring_regex(array, _PLAIN_NUMBER)
    if not pc.all(pc.or_(plain, blank)).as_py():
        return None
    numbers = pc.cast(pc.if_else(blank, "0", array), pa.float64())
    amounts = np.round(numbers.to_numpy(zero_copy_only=False), 2)
    amounts[blank.to_numpy(zero_copy_only=False)] = np.nan
    return amounts


def _parse_money_distinct(
    distinct: pd.Series, first, *, file, column, line_numbers, warnings
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Amounts, currencies and the decimal-comma decision for distinct,
    non-blank values."""
    blank = np.zeros(len(distinct), dtype=bool)
    parts = distinct.str.extract(_MONEY)
    scientific = distinct.str.fullmatch(_SCIENTIFIC).fillna(False).to_numpy()
    matched = parts["num"].notna().to_numpy()
    opened = parts["o1"].notna().to_numpy() | parts["o2"].notna().to_numpy()
    closed = parts["c1"].notna().to_numpy() | parts["c2"].notna().to_numpy()
    both_codes = parts["pre"].notna().to_numpy() & parts["post"].notna().to_numpy()
    ok = blank | scientific | (matched & (opened == closed) & ~both_codes)
    if not ok.all():
        index = int(np.flatnonzero(~ok)[np.argmin(first[~ok])])
        raise InputError(
            f"cannot read {distinct.iloc[index]!r} as an amount",
            file=file,
            line=_line(line_numbers, first[index]),
            column=column,
        )

    numeric = matched & ~scientific & ~blank
    numbers = parts["num"].where(numeric, "").astype("str")
    numbers = numbers.str.replace(r"['\u00a0\u202f ]", "", regex=True)
    comma = _decimal_comma(
        numbers[numeric],
        first[numeric],
        file=file,
        column=column,
        line_numbers=line_numbers,
        warnings=warnings,
    )
    _check_grouping(
        numbers[numeric],
        first[numeric],
        comma,
        file=file,
        column=column,
        line_numbers=line_numbers,
    )
    if comma:
        plain = numbers.str.replace(".", "", regex=False).str.replace(
            ",", ".", regex=False
        )
    else:
        plain = numbers.str.replace(",", "", regex=False)
    amounts = np.array(
        pd.to_numeric(plain.where(numeric, None), errors="coerce"),
        dtype=float,
        copy=True,
    )
    if scientific.any():
        amounts[scientific] = pd.to_numeric(distinct[scientific]).to_numpy(float)
    negative = (
        opened
        | parts["s1"].eq("-").fillna(False).to_numpy()
        | parts["s2"].eq("-").fillna(False).to_numpy()
        | parts["s3"].notna().to_numpy()
    )
    amounts = np.where(negative & numeric, -amounts, amounts)
    amounts = np.round(amounts, 2)
    amounts[blank] = np.nan

    code = parts["pre"].fillna(parts["post"])
    currency = np.array(
        [CURRENCY_SYMBOLS.get(c, c) if isinstance(c, str) else None for c in code],
        dtype=object,
    )
    return amounts, currency, comma


def parse_money(
    values,
    *,
    file=None,
    column=None,
    line_numbers: Sequence[int] | None = None,
    warnings: list | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Read amounts of money with optional currency codes or symbols.

    Accepts ``1,250.50``, ``$1,250``, ``€1.250,50``, ``JPY 1,000,000``,
    ``USD 10,000.00``, ``USD (500.00)`` (parentheses mean negative),
    ``-500``, ``1.5E+06`` and float noise (``16120999.999999998`` is
    16,121,000.00). Whether the column uses a decimal comma is decided once
    for the column from values that prove it (``1.250,50``, ``12,5``);
    without proof the decimal mark is a point.

    Returns
    -------
    amounts : pandas.Series of float
        Rounded to cents; NaN for blank cells.
    currencies : pandas.Series
        ISO code (``$`` is USD, ``€`` EUR, ``£`` GBP, ``¥`` JPY) or None
        where the value names none.

    Raises
    ------
    InputError
        A value that is not an amount, or a column mixing decimal commas and
        decimal points, with its line.
    """
    text = _as_text(values)
    simple = _plain_amounts(text)
    if simple is not None:
        return (
            pd.Series(simple, dtype=float),
            pd.Series(np.full(len(simple), None, dtype=object), dtype=object),
        )
    codes, uniques, first = _distinct(text)
    distinct = pd.Series(uniques, dtype="str")
    blank = (distinct == "").to_numpy()

    plain = _arrow_match(distinct, _PLAIN_NUMBER) & ~blank
    amounts = np.full(len(distinct), np.nan)
    currency = np.full(len(distinct), None, dtype=object)
    if plain.any():
        amounts[plain] = np.round(_arrow_floats(distinct[plain]), 2)
    rest = ~plain & ~blank
    if rest.any():
        # Unadorned numbers read the same with either decimal mark unless
        # they have a point; only then must the whole column be read together.
        subset = rest
        sub_amounts, sub_currency, comma = _parse_money_distinct(
            distinct[subset].reset_index(drop=True),
            first[subset],
            file=file,
            column=column,
            line_numbers=line_numbers,
            warnings=warnings,
        )
        if comma and distinct[plain].str.contains(".", regex=False).any():
            subset = ~blank
            sub_amounts, sub_currency, comma = _parse_money_distinct(
                distinct[subset].reset_index(drop=True),
                first[subset],
                file=file,
                column=column,
                line_numbers=line_numbers,
                warnings=warnings,
            )
        amounts[subset] = sub_amounts
        currency[subset] = sub_currency

    if len(codes):
        out_amounts = amounts.take(codes)
        out_currency = currency.take(codes)
    else:
        out_amounts, out_currency = amounts[:0], currency[:0]
    return pd.Series(out_amounts, dtype=float), pd.Series(out_currency, dtype=object)


def read_rates(path) -> dict[str, float]:
    """Read exchange rates from a CSV.

    Either a Salesforce CurrencyType export (``IsoCode``, ``ConversionRate``)
    or two columns ``currency,rate``. A rate is the number of units of that
    currency per one unit of the reporting currency (Salesforce's
    convention): JPY 150 means 1 USD = 150 JPY.

    Returns
    -------
    dict
        ISO code -> rate.
    """
    from dealcase.importing.readers import read_table

    table = read_table(path)
    lowered = {name.lower(): name for name in table.columns}
    code_column = lowered.get("isocode") or lowered.get("currency")
    rate_column = lowered.get("conversionrate") or lowered.get("rate")
    if code_column is None or rate_column is None:
        if len(table.columns) < 2:
            raise InputError(
                "a rates file needs two columns: currency and rate", file=path
            )
        code_column, rate_column = table.columns[:2]
    rates_text = table.frame[rate_column]
    rates, _ = parse_money(
        rates_text, file=path, column=rate_column, line_numbers=table.line_numbers
    )
    raw = pd.to_numeric(rates_text.str.strip(), errors="coerce")
    rates = raw.where(raw.notna(), rates)
    result = {}
    for row, (code, rate) in enumerate(zip(table.frame[code_column], rates)):
        code = code.strip().upper()
        if not code:
            continue
        if not rate or math.isnan(rate) or rate <= 0:
            raise InputError(
                f"the rate for {code} must be a positive number",
                file=path,
                line=table.line_numbers[row],
                column=rate_column,
            )
        result[code] = float(rate)
    return result


def convert_currency(
    amounts,
    currencies,
    *,
    rates=None,
    reporting: str = "USD",
    converted=None,
    file=None,
    column=None,
    line_numbers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Express amounts in the reporting currency.

    Parameters
    ----------
    amounts : Series of float
        Amounts as written, in their own currency.
    currencies : Series
        ISO code per amount; None means the reporting currency.
    rates : dict, str or Path, optional
        ISO code -> units of that currency per unit of the reporting currency,
        or a rates file for :func:`read_rates`.
    reporting : str
        The reporting currency code.
    converted : Series of float, or (amounts, currencies), optional
        The source's own converted amounts (Salesforce ``Amount (Converted)``),
        preferred wherever present.

    Returns
    -------
    pandas.DataFrame
        Columns ``amount`` (reporting currency, not rounded), ``amount_original`` and
        ``currency`` (the original code, the reporting code where none was
        written).

    Raises
    ------
    InputError
        Amounts in a currency other than the reporting one with neither a
        converted amount nor a rate; the message gives the total per currency.
    """
    original = pd.Series(amounts, dtype=float).reset_index(drop=True)
    codes = pd.Series(currencies, dtype=object).reset_index(drop=True)
    codes = codes.where(codes.notna(), reporting).astype(object)
    codes = codes.map(lambda c: str(c).strip().upper() or reporting)
    result = pd.DataFrame(
        {"amount": original.copy(), "amount_original": original, "currency": codes}
    )

    foreign = (codes != reporting).to_numpy() & original.notna().to_numpy()
    if converted is not None:
        if isinstance(converted, tuple):
            converted_amounts, converted_codes = converted
            converted_codes = pd.Series(converted_codes, dtype=object)
            other = converted_codes.notna() & (
                converted_codes.astype(str).str.upper() != reporting
            )
            if other.any():
                row = int(np.flatnonzero(other.to_numpy())[0])
                raise InputError(
                    f"the converted amount is in {converted_codes.iloc[row]}, not "
                    f"the reporting currency {reporting}",
                    file=file,
                    line=_line(line_numbers, row),
                    column=column,
                )
        else:
            converted_amounts = converted
        converted_amounts = pd.Series(converted_amounts, dtype=float).reset_index(
            drop=True
        )
        have = converted_amounts.notna().to_numpy()
        result.loc[have, "amount"] = converted_amounts[have]
        foreign &= ~have

    if foreign.any() and rates is not None:
        if isinstance(rates, (str, Path)):
            rates = read_rates(rates)
        rate_table = {str(k).upper(): float(v) for k, v in rates.items()}
        base = rate_table.get(reporting, 1.0)
        rate = codes.map(lambda c: rate_table.get(c)).astype(float).to_numpy()
        known = foreign & ~np.isnan(rate)
        # Not rounded: callers also use this to get conversion factors.
        result.loc[known, "amount"] = original.to_numpy()[known] / rate[known] * base
        foreign &= ~known
        if foreign.any():
            row = int(np.flatnonzero(foreign)[0])
            raise InputError(
                f"no exchange rate for {codes.iloc[row]}: add it to the rates file",
                file=file,
                line=_line(line_numbers, row),
                column=column,
            )

    if foreign.any():
        totals = (
            result.loc[original.notna()]
            .groupby("currency")["amount_original"]
            .sum()
            .sort_index()
        )
        listed = "; ".join(f"{code} {total:,.2f}" for code, total in totals.items())
        row = int(np.flatnonzero(foreign)[0])
        raise InputError(
            f"amounts are in several currencies ({listed}) and adding them "
            f"would be wrong: pass --rates FILE or include a converted amount "
            f"column in {reporting}",
            file=file,
            line=_line(line_numbers, row),
            column=column,
        )
    return result


# ---------------------------------------------------------------------------
# probabilities, categories, flags, ids


def parse_probability(
    values,
    *,
    file=None,
    column=None,
    line_numbers: Sequence[int] | None = None,
) -> pd.Series:
    """Read probabilities as fractions 0..1.

    ``50%``, ``50`` and ``0.5`` are all one half: a column where any value
    has a ``%`` sign or exceeds 1 is in percent. Blank cells are NaN.

    Raises
    ------
    InputError
        A value that is not a number, or outside 0..100 %.
    """
    text = _as_text(values)
    codes, uniques, first = _distinct(text)
    distinct = pd.Series(uniques, dtype="str")
    percent_sign = distinct.str.endswith("%").to_numpy()
    numbers = distinct.str.rstrip("%").str.strip().str.replace(",", ".", regex=False)
    parsed = pd.to_numeric(numbers.where(numbers != "", None), errors="coerce")
    parsed = np.array(parsed, dtype=float, copy=True)
    bad = np.isnan(parsed) & (numbers != "").to_numpy()
    if bad.any():
        index = int(np.flatnonzero(bad)[np.argmin(first[bad])])
        raise InputError(
            f"cannot read {distinct.iloc[index]!r} as a probability",
            file=file,
            line=_line(line_numbers, first[index]),
            column=column,
        )
    percent = percent_sign.any() or bool(np.nanmax(parsed, initial=0) > 1)
    fractions = parsed / 100 if percent else parsed
    outside = (fractions < 0) | (fractions > 1)
    if outside.any():
        index = int(np.flatnonzero(outside)[np.argmin(first[outside])])
        raise InputError(
            f"the probability {distinct.iloc[index]!r} is outside 0-100%",
            file=file,
            line=_line(line_numbers, first[index]),
            column=column,
        )
    return pd.Series(
        fractions.take(codes) if len(codes) else fractions[:0], dtype=float
    )


def normalise_forecast_category(
    values, *, file=None, column=None, warnings: list | None = None
) -> pd.Series:
    """Map forecast categories to pipeline, best_case, commit, closed, omitted.

    Spelling, case and spaces do not matter (``BestCase``, ``Best Case``);
    ``Forecast`` is Salesforce's old name for commit. Blank cells and unknown
    values give None; unknown values are reported in ``warnings``.

    Returns
    -------
    pandas.Series of str or None
    """
    text = _as_text(values)
    codes, uniques, _ = _distinct(text)
    keys = [re.sub(r"[\s_\-]+", "", str(u)).lower() for u in uniques]
    mapped = np.array([FORECAST_CATEGORIES.get(k) for k in keys], dtype=object)
    unknown = [u for u, k in zip(uniques, keys) if k and k not in FORECAST_CATEGORIES]
    if unknown:
        _note(
            warnings,
            f"{_place(file, column)}: unknown forecast categories left empty: "
            + ", ".join(repr(u) for u in unknown[:5]),
        )
    return pd.Series(mapped.take(codes) if len(codes) else mapped[:0], dtype=object)


def parse_bool(
    values, *, file=None, column=None, line_numbers: Sequence[int] | None = None
) -> pd.Series:
    """Read flags written ``1/0``, ``true/false``, ``yes/no`` (any case).

    Returns
    -------
    pandas.Series of bool or None (blank)

    Raises
    ------
    InputError
        Any other value.
    """
    text = _as_text(values).str.lower()
    codes, uniques, first = _distinct(text)
    mapped = []
    for index, word in enumerate(uniques):
        if word in TRUE_WORDS:
            mapped.append(True)
        elif word in FALSE_WORDS:
            mapped.append(False)
        elif word == "":
            mapped.append(None)
        else:
            raise InputError(
                f"cannot read {word!r} as yes/no",
                file=file,
                line=_line(line_numbers, first[index]),
                column=column,
            )
    mapped = np.array(mapped, dtype=object)
    return pd.Series(mapped.take(codes) if len(codes) else mapped[:0], dtype=object)


def clean_id(values) -> pd.Series:
    """Trim record ids; blank and Salesforce's empty id ``000000000000000AAA``
    become None.

    Returns
    -------
    pandas.Series of str or None
    """
    text = _as_text(values)
    empty = (text == "") | text.isin(PLACEHOLDER_IDS)
    out = text.astype(object)
    out[empty.to_numpy()] = None
    return out
