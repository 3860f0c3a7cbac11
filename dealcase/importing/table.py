"""Import any table of deals through a mapping file.

A mapping (TOML) says which column holds which deal field, how to tell won
from lost, where an amount comes from when the file has none, which
companion tables to join, and which stages exist. ``data/mappings/`` ships
mappings for the public samples; :func:`propose_mapping` drafts one from a
file's headers. The format::

    dataset = "maven"            # meta dataset and deals.source
    currency = "USD"             # currency of the amounts
    has_dates = true             # false: deals only, no history
    name_template = "{product} for {account}"   # when no column holds a name
    other_stages = "refuse"      # or "open": a stage not in [[stages]] is open

    [columns]                    # deal field = column (of the file or a lookup)
    deal_id = "opportunity_id"
    stage = "deal_stage"

    [outcome]                    # or map a column to the field "outcome"
    column = "deal_stage"
    won = ["Won"]
    lost = ["Lost"]

    [amount]
    known_for = ["won"]          # outcomes whose amount column is the value
    estimate = "list_price"      # column used otherwise (amount_estimated)

    [history]
    first_stage = "Engaging"     # stage of a closed deal's first version
    close_date_known_while_open = false
    undated = "today"            # deals without a created date appear then

    [attributes]                 # attribute name = column; or attributes = "*"
    product = "product"
    exclude = []                 # with "*": columns left out entirely

    [[lookups]]                  # a companion table, path relative to the file
    file = "products.csv"
    on = "product"               # column of the file
    key = "product"              # column of the companion table
    columns = { list_price = "sales_price" }   # new column = companion column
    aliases = { GTXPro = "GTX Pro" }           # file value = companion value

    [[stages]]                   # in pipeline order; other stages are refused
    stage = "Prospecting"
    probability = 0.1

Versions written for a table (which has no history of its own): a first
version at the created date (open, at ``first_stage`` for deals that are
closed now, with the amount known while open) and, for won and lost deals, a
closing version at the close date with the final state.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from dealcase.errors import InputError
from dealcase.importing import parsing
from dealcase.importing.batch import (
    DealBatch,
    SkippedRows,
    attributes_json,
    conform_deals,
    conform_versions,
    empty_stages,
    empty_versions,
)

logger = logging.getLogger(__name__)

FIELDS = (
    "deal_id",
    "name",
    "account",
    "owner",
    "team",
    "segment",
    "stage",
    "forecast_category",
    "amount",
    "currency",
    "probability",
    "created_on",
    "close_date",
    "closed_on",
    "outcome",
    "next_step",
)
TEXT_FIELDS = ("deal_id", "name", "account", "owner", "team", "segment", "stage")
MAPPING_KEYS = {
    "dataset",
    "name_template",
    "currency",
    "has_dates",
    "date_order",
    "description",
    "columns",
    "outcome",
    "amount",
    "history",
    "attributes",
    "lookups",
    "stages",
    "other_stages",
    "exclude",
}
OTHER_STAGES = ("refuse", "open")
_OUTCOME_WORDS = {
    "won": "won",
    "closed won": "won",
    "closedwon": "won",
    "win": "won",
    "lost": "lost",
    "loss": "lost",
    "closed lost": "lost",
    "closedlost": "lost",
    "open": "open",
    "": "open",
}


class MappingRequired(InputError):
    """A table was given without a mapping: the proposal is in ``proposal``."""

    def __init__(self, message: str, *, proposal: dict, file=None):
        self.proposal = proposal
        super().__init__(message, file=file)


# -- mapping files -----------------------------------------------------------


def load_mapping(path) -> dict:
    """Read and check a mapping TOML file.

    Raises
    ------
    InputError
        The file is missing, is not TOML, or has keys this importer does not
        know (so a typo is not silently ignored).
    """
    path = Path(path)
    try:
        mapping = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError("mapping file not found", file=path) from error
    except tomllib.TOMLDecodeError as error:
        raise InputError(
            f"the mapping is not valid TOML: {error}", file=path
        ) from error
    check_mapping(mapping, file=path)
    return mapping


def check_mapping(mapping: dict, *, file=None) -> None:
    """Raise InputError for unknown keys or fields in ``mapping``."""
    unknown = set(mapping) - MAPPING_KEYS
    if unknown:
        raise InputError(
            f"unknown key(s) {', '.join(sorted(unknown))}; expected some of "
            f"{', '.join(sorted(MAPPING_KEYS))}",
            file=file,
        )
    columns = mapping.get("columns", {})
    bad = set(columns) - set(FIELDS)
    if bad:
        raise InputError(
            f"[columns] names unknown deal field(s) {', '.join(sorted(bad))}; "
            f"expected some of {', '.join(FIELDS)}",
            file=file,
        )
    if "deal_id" not in columns:
        raise InputError("[columns] must name the deal_id column", file=file)
    other = mapping.get("other_stages", "refuse")
    if other not in OTHER_STAGES:
        raise InputError(
            f'other_stages = {other!r} is not understood: expected "refuse" '
            '(a stage not listed under [[stages]] stops the import) or "open" '
            "(such a stage is kept as an open stage)",
            file=file,
        )


# -- proposing a mapping -----------------------------------------------------

_GUESSES = [
    (
        "deal_id",
        [
            r"^(opportunity|opp|deal)[ _]?(id|number|no)?$",
            r"^id$",
            r"id$",
        ],
    ),
    ("name", [r"^(opportunity|opp|deal)[ _]?name$", r"^name$"]),
    ("account", [r"^account([ _]?name)?$", r"company", r"client$", r"customer$"]),
    ("owner", [r"owner", r"sales[ _]?(agent|rep)", r"^rep$", r"^agent$"]),
    ("team", [r"^team$", r"manager", r"sales[ _]?team"]),
    ("segment", [r"segment", r"region", r"office"]),
    ("stage", [r"stage[ _]?name", r"^(deal[ _]?)?stage$", r"deal[ _]?stage"]),
    ("forecast_category", [r"forecast[ _]?category"]),
    ("amount", [r"amount", r"close[ _]?value", r"deal[ _]?value", r"^value$"]),
    ("currency", [r"currency"]),
    ("probability", [r"probability"]),
    ("created_on", [r"created", r"create[ _]?date", r"engage", r"open[ _]?date"]),
    (
        "close_date",
        [
            r"clos(e|ing)[ _]?(date|day|on)",
            r"expected[ _]?clos(e|ing)",
            r"^(expected[ _]?)?clos(e|es|ing)$",
        ],
    ),
    ("outcome", [r"result", r"outcome", r"^status$", r"won"]),
    ("next_step", [r"next[ _]?step"]),
]


def propose_mapping(raw) -> dict:
    """Draft a mapping from the headers of a :class:`RawTable`.

    Each deal field takes the first column whose name fits it; every other
    column becomes an attribute. The outcome rule lists the values seen in
    the outcome (or stage) column that read as won or lost. The proposal is
    a starting point: the import refuses to run on it until a person saved
    and checked it.
    """
    columns: dict[str, str] = {}
    taken: set[str] = set()
    for field_name, patterns in _GUESSES:
        for pattern in patterns:
            match = next(
                (
                    c
                    for c in raw.columns
                    if c not in taken and re.search(pattern, c.strip().lower())
                ),
                None,
            )
            if match:
                columns[field_name] = match
                taken.add(match)
                break
    mapping: dict = {"dataset": "table", "currency": "USD", "has_dates": True}
    outcome_column = columns.pop("outcome", None) or columns.get("stage")
    if outcome_column:
        values = pd.Series(raw.frame[outcome_column], dtype="str").str.strip()
        seen = [v for v in pd.unique(values) if v]
        won = [v for v in seen if _OUTCOME_WORDS.get(v.lower()) == "won"]
        lost = [v for v in seen if _OUTCOME_WORDS.get(v.lower()) == "lost"]
        mapping["outcome"] = {"column": outcome_column, "won": won, "lost": lost}
    if "created_on" not in columns and "close_date" not in columns:
        mapping["has_dates"] = False
    mapping["columns"] = columns
    mapping["attributes"] = "*"
    return mapping


def render_mapping(mapping: dict) -> str:
    """The mapping as TOML text (the subset of TOML mappings use)."""
    lines: list[str] = []
    tables = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables:
        if isinstance(value, dict):
            lines += ["", f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        else:
            for item in value:
                lines += ["", f"[[{_toml_key(key)}]]"]
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines).strip() + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(
            f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()
        )
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value), ensure_ascii=False)


# -- building the batch ------------------------------------------------------


def build_table_batch(
    raw, mapping: dict, *, date_order: str | None = None
) -> DealBatch:
    """Turn a :class:`RawTable` and its mapping into a :class:`DealBatch`.

    Rows without a deal id are skipped; exact duplicate rows are collapsed
    into the first; when different rows share a deal id, the last row in the
    file is kept (a later line of an export is taken as the later state).
    All of it is reported with line numbers.

    Raises
    ------
    InputError
        A mapped column is missing, or a value cannot be read (naming file,
        line and column).
    """
    file = str(raw.path)
    date_order = date_order or mapping.get("date_order")
    columns: dict[str, str] = dict(mapping.get("columns", {}))
    dataset = mapping.get("dataset", "table")
    frame = raw.frame.drop(columns=list(mapping.get("exclude", [])), errors="ignore")
    lines = np.asarray(raw.line_numbers, dtype=np.int64)
    skipped: list[SkippedRows] = []
    warnings: list[str] = []
    notes: dict = {}
    rows_read = len(frame)

    frame = _join_lookups(frame, lines, mapping.get("lookups", []), raw, warnings)
    _require_columns(frame, mapping, file)

    # Rows that cannot be deals, and rows that say the same thing twice.
    id_column = columns["deal_id"]
    ids = frame[id_column].astype("str").str.strip()
    keep = (ids != "").to_numpy().copy()
    if not keep.all():
        skipped.append(SkippedRows("no deal id", file, lines[~keep].tolist()))
    frame, lines, ids = frame.loc[keep], lines[keep], ids[keep]
    source_columns = [c for c in raw.frame.columns if c in frame.columns]
    exact = frame.duplicated(subset=source_columns, keep="first").to_numpy()
    repeated = ids.duplicated(keep="first").to_numpy()
    if exact.any():
        skipped.append(
            SkippedRows(
                "exact duplicate of an earlier row", file, lines[exact].tolist()
            )
        )
    frame, lines, ids = frame.loc[~exact], lines[~exact], ids[~exact]
    superseded = ids.duplicated(keep="last").to_numpy()
    if superseded.any():
        skipped.append(
            SkippedRows(
                "deal id repeated with other values; the last row of each id is kept",
                file,
                lines[superseded].tolist(),
            )
        )
    frame, lines = frame.loc[~superseded].reset_index(drop=True), lines[~superseded]
    notes["duplicate_rows"] = int(exact.sum())
    notes["repeated_ids"] = int(repeated.sum())
    notes["ids_resolved"] = int(superseded.sum())
    if repeated.any():
        warnings.append(
            f"{int(repeated.sum())} row(s) repeat the deal id of an earlier row: "
            f"{int(exact.sum())} exact duplicate(s) were collapsed into the first "
            f"copy, and for ids whose rows differ the last row was kept "
            f"({int(superseded.sum())} earlier row(s) dropped); the lines are "
            "listed under rows_skipped"
        )
    line_list = lines.tolist()

    def parse(kind, field_name):
        column = columns[field_name]
        values = frame[column].astype("str").reset_index(drop=True)
        kwargs = {"file": file, "column": column, "line_numbers": line_list}
        if kind == "date":
            result = parsing.parse_dates(
                values, date_order=date_order, warnings=warnings, **kwargs
            )
            return pd.Series(pd.to_datetime(pd.Series(result).to_numpy()))
        if kind == "money":
            amounts, codes = parsing.parse_money(values, warnings=warnings, **kwargs)
            return (
                pd.Series(amounts, dtype="float64").reset_index(drop=True),
                pd.Series(codes, dtype="object").reset_index(drop=True),
            )
        if kind == "probability":
            return pd.Series(
                parsing.parse_probability(values, **kwargs), dtype="float64"
            )
        result = parsing.normalise_forecast_category(
            values, file=file, column=column, warnings=warnings
        )
        return pd.Series(result, dtype="str").reset_index(drop=True)

    deals = pd.DataFrame(index=range(len(frame)))
    for field_name in (
        "deal_id",
        "name",
        "account",
        "owner",
        "team",
        "segment",
        "stage",
        "currency",
        "next_step",
    ):
        if field_name in columns:
            deals[field_name] = (
                frame[columns[field_name]].astype("str").str.strip().to_numpy()
            )
    for field_name in ("created_on", "close_date", "closed_on"):
        deals[field_name] = (
            parse("date", field_name)
            if field_name in columns
            else (pd.Series(pd.NaT, index=deals.index, dtype="datetime64[s]"))
        )
    if "probability" in columns:
        deals["probability"] = parse("probability", "probability")
    if "forecast_category" in columns:
        deals["forecast_category"] = parse("category", "forecast_category")

    if "stage" in deals.columns:
        _check_stages(deals["stage"], mapping, file, columns["stage"], line_list)
    deals["outcome"] = _outcomes(frame, mapping, file, line_list)
    closed = deals["outcome"] != "open"
    if "closed_on" not in columns:
        deals["closed_on"] = deals["close_date"].where(closed)
    else:
        deals["closed_on"] = deals["closed_on"].where(closed)

    amount_known_open = _amounts(deals, frame, mapping, columns, parse, file, line_list)
    if "currency" not in deals.columns:
        deals["currency"] = mapping.get("currency", "USD")
    deals["attributes"] = _attributes(frame, mapping, columns).to_numpy()
    if mapping.get("name_template") and "name" not in columns:
        deals["name"] = _names(frame, mapping["name_template"], file).to_numpy()
    deals["source"] = dataset
    deals = conform_deals(deals)

    has_dates = bool(mapping.get("has_dates", True)) and any(
        f in columns for f in ("created_on", "close_date", "closed_on")
    )
    today = None
    if has_dates:
        seen = pd.concat([deals["created_on"], deals["closed_on"]]).dropna()
        today = seen.max().date() if len(seen) else None
    versions = empty_versions()
    if has_dates:
        versions, undated = _table_versions(
            deals, amount_known_open, mapping.get("history", {}), today, dataset
        )
        if undated:
            notes["undated_deals"] = undated
            warnings.append(
                f"{undated} deal(s) have no created date; they appear from the "
                f"data's present ({today}) on, with created_on set to that day"
            )

    stages = _stages(deals, mapping.get("stages", []))
    meta = {"dataset": dataset, "currency": mapping.get("currency", "USD")}
    meta["has_dates"] = "true" if has_dates else "false"
    return DealBatch(
        source=dataset,
        deals=deals,
        versions=versions,
        has_dates=has_dates,
        today=today,
        stages=stages,
        meta=meta,
        rows_read=rows_read,
        skipped=skipped,
        warnings=list(raw.warnings) + warnings,
        notes=notes,
        mapping=mapping,
    )


def _join_lookups(frame, lines, lookups, raw, warnings) -> pd.DataFrame:
    from dealcase.importing.readers import read_table

    for lookup in lookups:
        path = Path(raw.path).parent / lookup["file"]
        if not path.exists():
            raise InputError(
                f"the mapping joins the companion table {lookup['file']}, which "
                f"is not in the data file's folder ({path.parent})",
                file=path,
            )
        companion = read_table(path)
        on, key = lookup["on"], lookup.get("key", lookup["on"])
        for column, where in ((on, raw.path), (key, path)):
            table = frame if where == raw.path else companion.frame
            if column not in table.columns:
                # The file's own columns, not those joined from companions.
                own = raw.frame.columns if where == raw.path else table.columns
                raise InputError(
                    f"the mapping joins on column '{column}', which is not in "
                    f"the file (columns: {', '.join(own)})",
                    file=where,
                    line=1,
                )
        wanted = lookup.get("columns", {})
        if isinstance(wanted, list):
            wanted = {name: name for name in wanted}
        for column in wanted.values():
            if column not in companion.frame.columns:
                raise InputError(
                    f"the mapping takes column '{column}', which is not in the file",
                    file=path,
                    line=1,
                )
        table = companion.frame[[key, *wanted.values()]].copy()
        table.columns = ["__key", *wanted.keys()]
        table["__key"] = table["__key"].str.strip()
        doubled = table["__key"].duplicated(keep="first")
        if doubled.any():
            warnings.append(
                f"{path.name}: key {key} repeated on {int(doubled.sum())} line(s); "
                "the first is used"
            )
        table = table.loc[~doubled]
        aliases = lookup.get("aliases", {})
        probe = frame[on].astype("str").str.strip().replace(aliases)
        joined = probe.to_frame("__key").merge(table, on="__key", how="left")
        unmatched = (probe != "").to_numpy() & ~probe.isin(table["__key"]).to_numpy()
        if unmatched.any():
            shown = ", ".join(str(n) for n in lines[unmatched][:5])
            values = ", ".join(sorted(set(probe[unmatched]))[:5])
            warnings.append(
                f"{int(unmatched.sum())} row(s) have a {on} not found in "
                f"{path.name} ({values}; line {shown})"
            )
        frame = frame.copy()
        for new in wanted:
            frame[new] = joined[new].fillna("").astype("str").to_numpy()
    return frame


def _require_columns(frame, mapping, file) -> None:
    wanted = list(mapping.get("columns", {}).values())
    outcome = mapping.get("outcome", {})
    if outcome.get("column"):
        wanted.append(outcome["column"])
    amount = mapping.get("amount", {})
    if amount.get("estimate"):
        wanted.append(amount["estimate"])
    attributes = mapping.get("attributes", {})
    if isinstance(attributes, dict):
        wanted += [v for k, v in attributes.items() if k != "exclude"]
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        raise InputError(
            f"column(s) {', '.join(missing)} named in the mapping are not in the "
            f"file; its columns are {', '.join(frame.columns)}",
            file=file,
            line=1,
        )


def _check_stages(stages: pd.Series, mapping, file, column, line_list) -> None:
    """Refuse a stage the mapping's ``[[stages]]`` do not list.

    A mapping without ``[[stages]]`` takes every stage it sees; one with
    ``other_stages = "open"`` keeps unlisted stages as open stages. Blank
    stages are left to the outcome rule.
    """
    configured = mapping.get("stages", [])
    if not configured or mapping.get("other_stages", "refuse") == "open":
        return
    known = [str(s["stage"]) for s in configured]
    unknown = ((stages != "") & ~stages.isin(known)).to_numpy()
    if not unknown.any():
        return
    position = int(unknown.argmax())
    raise InputError(
        f"stage {stages.iloc[position]!r} is not one of the mapping's stages "
        f"({', '.join(known)}); add it under [[stages]], or set "
        'other_stages = "open" to keep unlisted stages as open',
        file=file,
        line=line_list[position],
        column=column,
    )


def _outcomes(frame, mapping, file, line_list) -> pd.Series:
    rule = mapping.get("outcome")
    if rule:
        values = frame[rule["column"]].astype("str").str.strip()
        won = set(rule.get("won", []))
        lost = set(rule.get("lost", []))
        outcome = np.where(
            values.isin(won), "won", np.where(values.isin(lost), "lost", "open")
        )
        return pd.Series(outcome, dtype="str")
    column = mapping.get("columns", {}).get("outcome")
    if column is None:
        return pd.Series(["open"] * len(frame), dtype="str")
    values = frame[column].astype("str").str.strip()
    mapped = values.str.lower().map(_OUTCOME_WORDS)
    bad = mapped.isna().to_numpy()
    if bad.any():
        position = int(bad.argmax())
        raise InputError(
            f"'{values.iloc[position]}' is not an outcome: expected won, lost or "
            "open (or add an [outcome] rule to the mapping)",
            file=file,
            line=line_list[position],
            column=column,
        )
    return pd.Series(mapped.to_numpy(), dtype="str")


def _amounts(deals, frame, mapping, columns, parse, file, line_list) -> pd.Series:
    """Fill ``amount`` and ``amount_estimated``; return the amount known while
    each deal was open (for its first version)."""
    rule = mapping.get("amount", {})
    if "amount" in columns:
        value, written_codes = parse("money", "amount")
        if "currency" not in columns and written_codes.notna().any():
            fallback = mapping.get("currency", "USD")
            deals["currency"] = written_codes.fillna(fallback).to_numpy()
    else:
        value = pd.Series(np.nan, index=deals.index)
    estimate = pd.Series(np.nan, index=deals.index)
    if rule.get("estimate"):
        column = rule["estimate"]
        amounts, _ = parsing.parse_money(
            frame[column].astype("str").reset_index(drop=True),
            file=file,
            column=column,
            line_numbers=line_list,
        )
        estimate = pd.Series(amounts, dtype="float64").reset_index(drop=True)
    known_for = set(rule.get("known_for", ["won", "lost", "open"]))
    known = deals["outcome"].isin(known_for).to_numpy() & value.notna().to_numpy()
    deals["amount"] = np.where(known, value, estimate)
    deals["amount_estimated"] = ~known & estimate.notna().to_numpy()
    deals["amount_original"] = deals["amount"]
    if "open" in known_for:
        return value.where(value.notna(), estimate)
    return estimate


def _names(frame, template: str, file) -> pd.Series:
    """Deal names from ``template`` (``"{product} for {account}"``).

    A piece whose column is blank is left out with the words that tie it to
    the rest, so a deal without an account is named by its product alone.
    """
    fields = re.findall(r"{([^{}]+)}", template)
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise InputError(
            f"name_template names column(s) {', '.join(missing)}, which are not "
            "in the file",
            file=file,
            line=1,
        )
    pieces = re.split(r"({[^{}]+})", template)
    values = {f: frame[f].astype("str").str.strip().tolist() for f in fields}
    names = []
    for row in range(len(frame)):
        text, glue = "", ""
        for piece in pieces[1:]:
            match = re.fullmatch(r"{([^{}]+)}", piece)
            if match is None:
                glue += piece
                continue
            value = values[match.group(1)][row]
            if value:
                text += (glue if text else "") + value
            glue = ""
        names.append(pieces[0] + text if text else None)
    return pd.Series(names, dtype="str")


def _attributes(frame, mapping, columns) -> pd.Series:
    spec = mapping.get("attributes", {})
    if spec == "*":
        used = set(columns.values())
        outcome = mapping.get("outcome", {})
        used |= {outcome.get("column"), mapping.get("amount", {}).get("estimate")}
        names = {c: c for c in frame.columns if c not in used}
    elif isinstance(spec, list):
        names = {c: c for c in spec}
    else:
        names = {k: v for k, v in spec.items() if k != "exclude"}
    return attributes_json(frame.reset_index(drop=True), names)


def _table_versions(deals, amount_known_open, history, today, dataset):
    created = deals["created_on"]
    undated = created.isna()
    undated_policy = history.get("undated", "today")
    if undated.any() and undated_policy == "today" and today is not None:
        created = created.fillna(pd.Timestamp(today))
        deals["created_on"] = created.astype("datetime64[s]")
    has_start = created.notna()
    closed = deals["outcome"] != "open"
    first_stage = history.get("first_stage")
    close_known = history.get("close_date_known_while_open", True)
    ends = closed & deals["closed_on"].notna()
    # The file's next step is the deal's as of its latest version only.
    next_step = (
        deals["next_step"]
        if "next_step" in deals.columns
        else pd.Series(None, index=deals.index, dtype="str")
    )

    first = pd.DataFrame(
        {
            "deal_id": deals["deal_id"],
            "valid_from": created,
            "stage": deals["stage"].where(~closed, first_stage),
            "amount": amount_known_open.to_numpy(),
            "close_date": deals["close_date"].where(~closed | close_known),
            "forecast_category": deals["forecast_category"].where(~closed),
            "probability": deals["probability"].where(~closed),
            "outcome": "open",
            "next_step": next_step.where(~ends),
            "source": dataset,
        }
    ).loc[has_start]

    closing_at = deals["closed_on"].where(
        deals["closed_on"] > created, created + pd.Timedelta(seconds=1)
    )
    closing = deals.loc[
        ends,
        [
            "deal_id",
            "stage",
            "amount",
            "close_date",
            "forecast_category",
            "probability",
            "outcome",
        ],
    ]
    closing = closing.assign(
        valid_from=closing_at[ends], next_step=next_step[ends], source=dataset
    )
    versions = pd.concat([first, closing], ignore_index=True)
    return conform_versions(versions.assign(derived=True)), int(undated.sum())


def _stages(deals, configured) -> pd.DataFrame:
    if deals["stage"].isna().all() and not configured:
        return empty_stages()
    observed = deals.groupby("stage", sort=False)["outcome"]
    won_share = observed.apply(lambda s: (s == "won").all())
    closed_share = observed.apply(lambda s: (s != "open").all())
    rows = []
    names = [s["stage"] for s in configured] or list(observed.groups)
    extra = [s for s in observed.groups if s not in names]
    by_name = {s["stage"]: s for s in configured}
    for order, name in enumerate(names + extra, start=1):
        spec = by_name.get(name, {})
        is_won = spec.get("won", bool(won_share.get(name, False)))
        is_closed = spec.get("closed", bool(closed_share.get(name, False)) or is_won)
        default = 1.0 if is_won else (0.0 if is_closed else np.nan)
        rows.append(
            {
                "stage": name,
                "sort_order": order,
                "default_probability": float(spec.get("probability", default)),
                "is_closed": bool(is_closed),
                "is_won": bool(is_won),
            }
        )
    return pd.DataFrame(rows)
