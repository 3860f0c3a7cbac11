"""What every importer hands to the writer: deals in their current state, the
versions the source knows of, and what was noticed on the way.

A source module (table, Salesforce, HubSpot) turns files into one
:class:`DealBatch`; :func:`dealcase.importing.writer.write_batch` stores it.
Keeping the two apart means every source gets the same upsert, history and
idempotency rules, and a preview can show a batch without writing it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Columns of DealBatch.deals, in the order of the ``deals`` table.
DEAL_COLUMNS = [
    "deal_id",
    "name",
    "account",
    "owner",
    "team",
    "segment",
    "stage",
    "forecast_category",
    "amount",
    "amount_original",
    "currency",
    "amount_estimated",
    "probability",
    "created_on",
    "close_date",
    "closed_on",
    "outcome",
    "next_step",
    "source",
    "attributes",
]

# Columns of DealBatch.versions, as in ``deal_history``.
VERSION_COLUMNS = [
    "deal_id",
    "valid_from",
    "stage",
    "amount",
    "close_date",
    "forecast_category",
    "probability",
    "outcome",
    "next_step",
    "source",
]

# The moving fields: a deal whose values differ here has a new version.
STATE_FIELDS = [
    "stage",
    "amount",
    "close_date",
    "forecast_category",
    "probability",
    "outcome",
    "next_step",
]

TEXT_FIELDS = [
    "deal_id",
    "name",
    "account",
    "owner",
    "team",
    "segment",
    "stage",
    "forecast_category",
    "currency",
    "outcome",
    "next_step",
    "source",
    "attributes",
]
MONEY_FIELDS = ["amount", "amount_original"]
DATE_FIELDS = ["created_on", "close_date", "closed_on"]


@dataclass
class SkippedRows:
    """Rows left out of an import for one reason, with their file lines."""

    reason: str
    file: str
    lines: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "reason": self.reason,
            "file": self.file,
            "count": len(self.lines),
            "lines": list(self.lines),
        }


@dataclass
class DealBatch:
    """Deals read from one source, ready to be written.

    Attributes
    ----------
    source : str
        ``salesforce``, ``hubspot``, ``table`` or a dataset name; stored in
        ``deals.source`` and ``deal_history.source``.
    deals : pandas.DataFrame
        One row per deal with :data:`DEAL_COLUMNS`, in the source's currency
        until :func:`dealcase.importing.rates.convert_amounts` runs.
        ``attributes`` is JSON text.
    versions : pandas.DataFrame
        Versions the source knows of (its own history, or versions derived
        from its dates), :data:`VERSION_COLUMNS` and ``derived`` (see
        :func:`conform_versions`); ``valid_from`` a naive timestamp. Empty
        when the source has none.
    has_dates : bool
        False for sources without any date (IBM win-loss): then no history is
        written at all, only deals.
    today : datetime.date or None
        The data's present: the latest date seen in it.
    stages : pandas.DataFrame
        ``stage, sort_order, default_probability, is_closed, is_won``.
    meta : dict
        Values for the ``meta`` table (``dataset``, ``currency``, ...).
    rows_read : int
        Data rows read from the main file (not companions or history).
    skipped : list of SkippedRows
    warnings : list of str
    notes : dict
        Further summary fields of this source (duplicates collapsed, ...).
    stakeholders : pandas.DataFrame or None
        Buying influences the source names (Salesforce contact roles):
        ``stakeholder_id, deal_id, name, title, role, influence,
        recorded_at``; None when the source has none.
    rates : dict or None
        Exchange rates that came with the files (Salesforce CurrencyType),
        used when the import is given none.
    amounts_converted : bool
        True when ``deals.amount`` is already in the reporting currency
        (``meta["currency"]``), such as a report's ``Amount (Converted)``.
    stages_complete : bool
        False when ``stages`` are only the stages the file happens to show, in
        no reliable order (a report): then only stages not stored yet are
        added.
    missing_fields : frozenset of str
        Deal fields the source does not carry (a report without an Owner
        column): a deal already stored keeps its values of these instead of
        having them blanked.
    """

    source: str
    deals: pd.DataFrame
    versions: pd.DataFrame
    has_dates: bool = True
    today: dt.date | None = None
    stages: pd.DataFrame = field(default_factory=lambda: empty_stages())
    meta: dict = field(default_factory=dict)
    rows_read: int = 0
    history_rows_read: int = 0
    skipped: list[SkippedRows] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    mapping: dict | None = None
    stakeholders: pd.DataFrame | None = None
    rates: dict | None = None
    amounts_converted: bool = False
    missing_fields: frozenset = frozenset()
    stages_complete: bool = True


def empty_stages() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": pd.Series([], dtype="str"),
            "sort_order": pd.Series([], dtype="int64"),
            "default_probability": pd.Series([], dtype="float64"),
            "is_closed": pd.Series([], dtype="bool"),
            "is_won": pd.Series([], dtype="bool"),
        }
    )


def empty_versions() -> pd.DataFrame:
    frame = pd.DataFrame({name: [] for name in VERSION_COLUMNS})
    return conform_versions(frame)


def conform_deals(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a deals frame exactly :data:`DEAL_COLUMNS` with stable dtypes."""
    frame = frame.copy(deep=False)
    for name in DEAL_COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    frame = frame[DEAL_COLUMNS]
    for name in TEXT_FIELDS:
        frame[name] = _text(frame[name])
    frame["attributes"] = frame["attributes"].fillna("{}")
    for name in MONEY_FIELDS + ["probability"]:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for name in DATE_FIELDS:
        frame[name] = _dates(frame[name])
    frame["amount_estimated"] = frame["amount_estimated"].fillna(False).astype(bool)
    frame["outcome"] = frame["outcome"].fillna("open")
    return frame.reset_index(drop=True)


def conform_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a versions frame :data:`VERSION_COLUMNS` plus ``derived``.

    ``derived`` (bool) marks versions an importer made up from dates (a
    creation or closing version) rather than read from the source's history;
    the writer does not let them reach back before a deal's stored history.
    """
    frame = frame.copy(deep=False)
    for name in VERSION_COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    if "derived" not in frame.columns:
        frame["derived"] = False
    frame = frame[VERSION_COLUMNS + ["derived"]]
    frame["derived"] = frame["derived"].fillna(False).astype(bool)
    for name in (
        "deal_id",
        "stage",
        "forecast_category",
        "outcome",
        "next_step",
        "source",
    ):
        frame[name] = _text(frame[name])
    frame["valid_from"] = pd.to_datetime(frame["valid_from"]).astype("datetime64[us]")
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype("float64")
    frame["probability"] = pd.to_numeric(frame["probability"], errors="coerce").astype(
        "float64"
    )
    frame["close_date"] = _dates(frame["close_date"])
    frame["outcome"] = frame["outcome"].fillna("open")
    return frame.reset_index(drop=True)


def _text(values: pd.Series) -> pd.Series:
    """Trimmed text; missing values and blank text are missing."""
    values = pd.Series(values)
    if not len(values):
        return pd.Series([], index=values.index, dtype="str")
    text = pc.utf8_trim_whitespace(arrow_text(values))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
    return pd.Series(pd.array(text, dtype="str"), index=values.index, dtype="str")


def _dates(values: pd.Series) -> pd.Series:
    """Dates as ``datetime64[s]`` at midnight (NaT when unknown)."""
    return (
        pd.to_datetime(pd.Series(values), errors="coerce")
        .dt.normalize()
        .astype("datetime64[s]")
    )


def arrow_text(values) -> pa.Array:
    """``values`` (Series, Index, array, list or set) as an Arrow text array."""
    if isinstance(values, set | frozenset):
        values = list(values)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if series.dtype != "str":
        series = series.astype("str")
    array = pa.array(series)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def member(values, candidates) -> np.ndarray:
    """Whether each of ``values`` is among ``candidates``, compared as text.

    The same as ``Series.isin`` for text, without its per-value conversion
    of the candidates (which costs seconds for a million ids). Missing values
    are never members.

    Returns
    -------
    numpy.ndarray of bool, one per value.
    """
    left = arrow_text(values)
    if not len(left):
        return np.zeros(0, dtype=bool)
    right = pc.unique(arrow_text(candidates).drop_null())
    found = pc.is_in(left, value_set=right, skip_nulls=True)
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def latest_per_deal(frame: pd.DataFrame) -> np.ndarray:
    """Positions in ``frame`` of each deal's latest version.

    ``frame`` has ``deal_id`` and ``valid_from``; of versions sharing a deal's
    latest moment the last in ``frame`` is taken. Sorts integer codes rather
    than text, so it stays fast for millions of versions.

    Returns
    -------
    numpy.ndarray of int, one position per deal, in no particular order.
    """
    if not len(frame):
        return np.zeros(0, dtype=np.int64)
    codes, _ = pd.factorize(frame["deal_id"], use_na_sentinel=False)
    moments = frame["valid_from"].to_numpy().astype("M8[us]").view("i8")
    order = np.lexsort((np.arange(len(frame)), moments, codes))
    grouped = codes[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = grouped[1:] != grouped[:-1]
    return order[last]


# Characters json.dumps writes as a short escape; other control characters
# become \u00XX, which the vectorised path leaves to json.dumps.
_JSON_ESCAPES = [
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\x08", "\\b"),
    ("\x0c", "\\f"),
]
_OTHER_CONTROLS = r"[\x00-\x07\x0b\x0e-\x1f]"


def _json_strings(text: pa.Array) -> pa.Array:
    """Each text as a JSON string literal, exactly as ``json.dumps(value,
    ensure_ascii=False)`` writes it (nulls stay null)."""
    escaped = text
    for plain, escape in _JSON_ESCAPES:
        escaped = pc.replace_substring(escaped, plain, escape)
    quote = pa.scalar('"', pa.large_string())
    empty = pa.scalar("", pa.large_string())
    quoted = pc.binary_join_element_wise(quote, escaped, quote, empty)
    rare = pc.match_substring_regex(text, _OTHER_CONTROLS).fill_null(False)
    if pc.any(rare).as_py():
        values = quoted.to_pylist()
        for row in np.flatnonzero(rare.to_numpy(zero_copy_only=False)):
            values[row] = json.dumps(text[row].as_py(), ensure_ascii=False)
        quoted = pa.array(values, type=pa.large_string())
    return quoted


def attributes_json(frame: pd.DataFrame, names: dict[str, str]) -> pd.Series:
    """JSON objects of text from columns of ``frame``.

    ``names`` maps the attribute's name to the column holding it. Empty cells
    (blank, missing or the text ``nan``) are left out of the object, so an
    attribute is present only when known. The text is what
    ``json.dumps(..., ensure_ascii=False, sort_keys=True)`` writes, built
    column by column rather than row by row.
    """
    if not names:
        return pd.Series(["{}"] * len(frame), index=frame.index, dtype="str")
    separator = pa.scalar(", ", pa.large_string())
    empty = pa.scalar("", pa.large_string())
    pieces = []
    for attribute in sorted(names):
        text = pc.utf8_trim_whitespace(arrow_text(frame[names[attribute]]))
        absent = pc.or_(pc.equal(text, ""), pc.equal(text, "nan")).fill_null(True)
        key = pa.scalar(json.dumps(attribute, ensure_ascii=False) + ": ", text.type)
        piece = pc.binary_join_element_wise(key, _json_strings(text), separator, empty)
        pieces.append(pc.if_else(absent, empty, piece))
    # Every present piece ends with ", "; the last one's is cut off.
    joined = pc.binary_join_element_wise(*pieces, empty)
    joined = pc.utf8_slice_codeunits(joined, 0, -2)
    brace_open = pa.scalar("{", pa.large_string())
    brace_close = pa.scalar("}", pa.large_string())
    texts = pc.binary_join_element_wise(brace_open, joined, brace_close, empty)
    return pd.Series(pd.array(texts, dtype="str"), index=frame.index, dtype="str")
