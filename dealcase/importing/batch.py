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
    text = arrow_text(values)
    padded = may_have_padding(text)
    if padded:
        text = pc.utf8_trim_whitespace(text)
    blank = _has_blank(text)
    if blank:
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
    # One contiguous array: later steps then need no copy to combine chunks.
    return pd.Series(pd.array(text, dtype="str"), index=values.index, dtype="str")


def _has_blank(text: pa.Array) -> bool:
    """Whether a cell of the large string array ``text`` is ``""``."""
    if text.null_count:
        return bool(pc.any(pc.equal(text, "")).as_py())
    starts, ends = _offsets(text)
    return bool((starts == ends).any())


def _dates(values: pd.Series) -> pd.Series:
    """Dates as ``datetime64[s]`` at midnight (NaT when unknown)."""
    series = pd.Series(values)
    if series.dtype == "datetime64[s]":
        stamps = series.to_numpy()
        seconds = stamps[~np.isnat(stamps)].view("i8")
        if not (seconds % 86400).any():
            # Dates already: nothing to convert.
            return series
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
        # One chunk is taken as it is: combining would copy it.
        if array.num_chunks == 1:
            array = array.chunk(0)
        else:
            array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    return array


def release_memory() -> None:
    """Hand memory freed by the previous steps back to the system.

    Arrow's allocator keeps freed blocks for reuse, and so does the C
    library's for the arrays of pandas and numpy (an array of a few million
    numbers is small enough for its heap); between the steps of a large
    import that is memory held twice. Costs a few milliseconds.
    """
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc():
    """The C library when it is glibc (which has ``malloc_trim``), else None."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def may_have_padding(text) -> bool:
    """Whether trimming whitespace could change any cell of ``text``.

    Looks only at each cell's first and last byte: False when none is a
    space or control byte or a byte of a non-ASCII character, which covers
    every character that :func:`pyarrow.compute.utf8_trim_whitespace`
    removes. True does not mean a cell is padded, only that it must be
    checked.

    ``text`` is a large string array or chunked array (:func:`arrow_text`,
    :func:`text_chunks`).
    """
    for chunk in _chunks(text):
        if not len(chunk) or chunk.buffers()[2] is None:
            continue
        starts, ends = _offsets(chunk)
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)
        filled = ends > starts
        for edge in (data[starts[filled]], data[ends[filled] - 1]):
            if ((edge <= 0x20) | (edge >= 0x7F)).any():
                return True
    return False


def _chunks(text) -> list:
    return text.chunks if isinstance(text, pa.ChunkedArray) else [text]


def _offsets(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Start and end byte of each cell of a large string array."""
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
    offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
    return offsets[:-1], offsets[1:]


def text_chunks(values: pd.Series) -> pa.ChunkedArray:
    """A text Series as Arrow large strings, chunks as they are: unlike
    :func:`arrow_text` nothing is copied to join them."""
    if values.dtype == "str":
        try:
            array = pa.array(values.array)
        except (TypeError, pa.ArrowInvalid):
            array = None
        if array is not None and pa.types.is_large_string(array.type):
            if isinstance(array, pa.ChunkedArray):
                return array
            return pa.chunked_array([array])
    return pa.chunked_array([arrow_text(values)])


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
    # is_in builds its own set of the candidates: repeats cost nothing.
    right = arrow_text(candidates).drop_null()
    found = pc.is_in(left, value_set=right, skip_nulls=True)
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def latest_per_deal(frame: pd.DataFrame) -> np.ndarray:
    """Positions in ``frame`` of each deal's latest version.

    ``frame`` has ``deal_id`` and ``valid_from``; of versions sharing a deal's
    latest moment the last in ``frame`` is taken. Works on integer codes of
    the deals and needs no sort, so it stays fast for millions of versions.

    Returns
    -------
    numpy.ndarray of int, one position per deal, in no particular order.
    """
    if not len(frame):
        return np.zeros(0, dtype=np.int64)
    codes = deal_codes(frame["deal_id"])
    n_deals = int(codes.max()) + 1
    # NaT is the smallest int64, so an undated version is never the latest
    # of a deal that has a dated one.
    moments = frame["valid_from"].to_numpy().astype("M8[us]").view("i8")
    latest = np.full(n_deals, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, codes, moments)
    top = moments == latest[codes]
    positions = np.full(n_deals, -1, dtype=np.int64)
    np.maximum.at(positions, codes[top], np.flatnonzero(top))
    return positions


def duplicated_versions(frame: pd.DataFrame, keep="first") -> np.ndarray:
    """``frame.duplicated(["deal_id", "valid_from"], keep=keep)``: versions
    of a deal at a moment it has another version at.

    Sorts integer codes of the deals and moments (cheap when the versions
    are grouped by deal already, as exports list them) instead of hashing
    pairs of text and time. Missing deal ids are one deal and missing
    moments one moment, as for :meth:`pandas.DataFrame.duplicated`.

    Returns
    -------
    numpy.ndarray of bool, one per row.
    """
    size = len(frame)
    if not size:
        return np.zeros(0, dtype=bool)
    codes = deal_codes(frame["deal_id"])
    moments = frame["valid_from"].to_numpy().astype("M8[us]").view("i8")
    later = (codes[1:] > codes[:-1]) | (
        (codes[1:] == codes[:-1]) & (moments[1:] >= moments[:-1])
    )
    order = None
    if not later.all():
        # Ordered by deal, then moment, then position.
        order = np.lexsort((np.arange(size), moments, codes))
        codes, moments = codes[order], moments[order]
    same = (codes[1:] == codes[:-1]) & (moments[1:] == moments[:-1])
    repeated = np.zeros(size, dtype=bool)
    if keep in ("first", False):
        repeated[1:] |= same
    if keep in ("last", False):
        repeated[:-1] |= same
    if order is None:
        return repeated
    result = np.empty(size, dtype=bool)
    result[order] = repeated
    return result


def deal_codes(values) -> np.ndarray:
    """An integer code per value, equal exactly when the texts are equal
    (missing values share one code); codes count up from 0 in order of
    first appearance.

    Returns
    -------
    numpy.ndarray of int64, one per value.
    """
    text = arrow_text(values)
    encoded = pc.dictionary_encode(text, null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


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
    attributes = sorted(names)
    columns = []
    for attribute in attributes:
        text = arrow_text(frame[names[attribute]])
        columns.append(
            pc.utf8_trim_whitespace(text) if may_have_padding(text) else text
        )
    # Rows often repeat the same few values (types, sources): the text is
    # then written once per distinct row and spread back.
    distinct = _distinct_rows(columns)
    if distinct is None:
        texts = _attributes_text(attributes, columns)
    else:
        first, inverse = distinct
        few = _attributes_text(attributes, [c.take(first) for c in columns])
        texts = pc.take(few, inverse)
    return pd.Series(pd.array(texts, dtype="str"), index=frame.index, dtype="str")


def _distinct_rows(columns: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Where each distinct row of ``columns`` (text arrays of one length)
    first occurs and which distinct row each row is; None when rows repeat
    too little for this to pay."""
    size = len(columns[0])
    if not size:
        return None
    key = np.zeros(size, dtype=np.int64)
    span = 1
    for column in columns:
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        count = len(encoded.dictionary)
        span *= count
        if span * 2 > size or span >= 2**62:
            return None
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        key = key * count + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _attributes_text(attributes: list[str], columns: list) -> pa.Array:
    """The JSON object text of each row, from trimmed text ``columns`` (one
    per attribute, in the order of the sorted ``attributes``)."""
    empty = pa.scalar("", pa.large_string())
    pieces = []
    for attribute, text in zip(attributes, columns):
        key = pa.scalar(json.dumps(attribute, ensure_ascii=False) + ": ", text.type)
        pieces.append(_by_distinct(text, _attribute_piece, key))
    # Every present piece ends with ", "; the last one's is cut off.
    joined = pc.binary_join_element_wise(*pieces, empty)
    joined = pc.utf8_slice_codeunits(joined, 0, -2)
    brace_open = pa.scalar("{", pa.large_string())
    brace_close = pa.scalar("}", pa.large_string())
    return pc.binary_join_element_wise(brace_open, joined, brace_close, empty)


def _attribute_piece(text: pa.Array, key: pa.Scalar) -> pa.Array:
    """``"key": "value", `` for each text, ``""`` where it is empty."""
    separator = pa.scalar(", ", pa.large_string())
    empty = pa.scalar("", pa.large_string())
    absent = pc.or_(pc.equal(text, ""), pc.equal(text, "nan")).fill_null(True)
    piece = pc.binary_join_element_wise(key, _json_strings(text), separator, empty)
    return pc.if_else(absent, empty, piece).fill_null("")


def _by_distinct(text: pa.Array, function, *args) -> pa.Array:
    """``function(text, *args)``, worked out once per distinct value when a
    column repeats its values (types, sources, stages) and spread back by
    position.

    ``function`` maps text to text of the same length, value by value.
    """
    encoded = pc.dictionary_encode(text, null_encoding="encode")
    if len(encoded.dictionary) * 2 > len(text):
        return function(text, *args)
    return pc.take(function(encoded.dictionary, *args), encoded.indices)
