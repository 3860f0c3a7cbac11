"""HubSpot deal exports: stages by label or internal id, snapshots as history.

A HubSpot "Deals" export has one row per deal (``Record ID``, ``Deal Name``,
``Deal Stage``, ``Pipeline``, ``Close Date``, ``Deal owner``, ``Amount``,
``Create Date``, ``Forecast category``, ...). HubSpot keeps no stage history
in an export, so history comes from several exports of the same deals taken
on different days: each file is a snapshot, dated by ``snapshot_date`` or by
a ``YYYY-MM-DD`` in its name, and a deal gets a new version wherever its
values (not their formatting) differ from the previous snapshot.

Stages arrive either as labels (``Appointment Scheduled``) or as internal ids
that only mean something together with their pipeline (``default`` /
``appointmentscheduled``, or a numeric pipeline with a numeric stage id).
Ids are resolved through a stage map (a CSV with columns ``pipeline, stage,
label, probability`` and optional ``closed, won, pipeline_label``, given as
``stage_map`` or as one more file among ``files``) and HubSpot's default
pipeline; an id that cannot be resolved is reported as an unknown stage and
the row is left out, never taken as an open deal at 0%.

HubSpot fills a missing close date with the end of the month; an open deal
whose close date is the last day of a month carries the attribute
``close_date_reliable: "false"``, so the forecast can time it from history.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dealcase.errors import InputError
from dealcase.importing import parsing
from dealcase.importing.batch import (
    DealBatch,
    SkippedRows,
    conform_deals,
    conform_versions,
)
from dealcase.importing.readers import RawTable, read_table

logger = logging.getLogger(__name__)

SOURCE = "hubspot"

# Export headers (labels as HubSpot writes them, or internal property names).
COLUMNS = {
    "deal_id": ("record id", "deal id", "hs_object_id"),
    "name": ("deal name", "dealname"),
    "stage": ("deal stage", "dealstage"),
    "pipeline": ("pipeline",),
    "close_date": ("close date", "closedate"),
    "owner": ("deal owner", "hubspot_owner_id", "owner"),
    "amount": ("amount",),
    "amount_company": ("amount in company currency", "amount_in_home_currency"),
    "currency": ("currency", "deal_currency_code"),
    "created": ("create date", "createdate"),
    "forecast_category": (
        "forecast category",
        "hs_manual_forecast_category",
        "hs_forecast_category",
    ),
    "probability": ("deal probability", "hs_deal_stage_probability"),
    "account": (
        "associated company",
        "associated company (primary)",
        "company name",
    ),
    "team": ("hubspot team", "team", "hubspot_team_id"),
    "next_step": ("next step", "hs_next_step"),
}

DEFAULT_PIPELINE = ("default", "sales pipeline")


@dataclass(frozen=True)
class StageInfo:
    """What a HubSpot stage means."""

    label: str
    probability: float
    closed: bool
    won: bool
    order: int


# HubSpot's default sales pipeline, as every new portal has it.
DEFAULT_STAGES = {
    "appointmentscheduled": StageInfo("Appointment Scheduled", 0.2, False, False, 1),
    "qualifiedtobuy": StageInfo("Qualified To Buy", 0.4, False, False, 2),
    "presentationscheduled": StageInfo("Presentation Scheduled", 0.6, False, False, 3),
    "decisionmakerboughtin": StageInfo(
        "Decision Maker Bought-In", 0.8, False, False, 4
    ),
    "contractsent": StageInfo("Contract Sent", 0.9, False, False, 5),
    "closedwon": StageInfo("Closed Won", 1.0, True, True, 6),
    "closedlost": StageInfo("Closed Lost", 0.0, True, False, 7),
}

_DATE_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_ID_LIKE = re.compile(r"^[a-z0-9_]*\d[a-z0-9_]*$")


class StageMap:
    """(pipeline, stage id) -> :class:`StageInfo`, plus labels by pipeline."""

    def __init__(self) -> None:
        self.by_id: dict[tuple[str, str], StageInfo] = {}
        self.by_label: dict[str, StageInfo] = {}
        self.pipeline_ids: dict[str, str] = {}
        for pipeline in DEFAULT_PIPELINE:
            for stage, info in DEFAULT_STAGES.items():
                self.by_id[(pipeline, stage)] = info
        for info in DEFAULT_STAGES.values():
            self.by_label.setdefault(info.label.lower(), info)

    def add(
        self, pipeline: str, stage: str, info: StageInfo, pipeline_label=""
    ) -> None:
        pipeline = pipeline.strip().lower()
        self.by_id[(pipeline, stage.strip().lower())] = info
        self.by_label[info.label.lower()] = info
        if pipeline_label:
            self.pipeline_ids[pipeline_label.strip().lower()] = pipeline

    def resolve(self, pipeline: str, stage: str) -> StageInfo | None | str:
        """Return the stage's info, None for an unknown id, or "label"."""
        pipeline_key = pipeline.strip().lower()
        pipeline_key = self.pipeline_ids.get(pipeline_key, pipeline_key)
        stage_key = stage.strip().lower()
        info = self.by_id.get((pipeline_key, stage_key))
        if info is not None:
            return info
        if stage_key in ("closedwon", "closedlost"):
            return DEFAULT_STAGES[stage_key]
        if stage_key in DEFAULT_STAGES or _ID_LIKE.match(stage_key):
            return None
        return self.by_label.get(stage_key, "label")


def read_stage_map(path) -> StageMap:
    """Read a stage map CSV.

    Columns ``pipeline`` (internal id), ``stage`` (internal id), ``label``,
    ``probability`` (0..1 or percent) and optionally ``closed``, ``won``
    (yes/no) and ``pipeline_label``. Without ``closed``/``won``, a stage is
    won at probability 1 and lost when its label says "lost".

    Returns
    -------
    StageMap
    """
    table = read_table(path)
    return _stage_map_from_table(table)


def _is_stage_map(table: RawTable) -> bool:
    names = {c.lower() for c in table.columns}
    return {"pipeline", "stage", "label"} <= names and not (
        names & set(COLUMNS["deal_id"])
    )


def _stage_map_from_table(table: RawTable) -> StageMap:
    columns = {c.lower(): c for c in table.columns}
    missing = [c for c in ("pipeline", "stage", "label") if c not in columns]
    if missing:
        raise InputError(
            "a stage map needs the columns pipeline, stage, label (and "
            f"probability); missing {', '.join(missing)}",
            file=table.path,
            line=1,
        )
    frame = table.frame
    lines = table.line_numbers

    def column(name):
        return frame[columns[name]] if name in columns else pd.Series([""] * len(frame))

    probability = parsing.parse_probability(
        column("probability"),
        file=table.path,
        column=columns.get("probability"),
        line_numbers=lines,
    )
    closed = parsing.parse_bool(
        column("closed"), file=table.path, column="closed", line_numbers=lines
    )
    won = parsing.parse_bool(
        column("won"), file=table.path, column="won", line_numbers=lines
    )
    stage_map = StageMap()
    for row in range(len(frame)):
        label = column("label").iloc[row].strip()
        stage = column("stage").iloc[row].strip()
        if not stage or not label:
            raise InputError(
                "every stage map row needs a stage id and a label",
                file=table.path,
                line=lines[row],
            )
        p = float(probability.iloc[row])
        is_won = won.iloc[row]
        if is_won is None:
            is_won = stage.lower() == "closedwon" or p == 1.0
        is_closed = closed.iloc[row]
        if is_closed is None:
            is_closed = bool(is_won) or "lost" in label.lower()
        if np.isnan(p):
            p = 1.0 if is_won else (0.0 if is_closed else np.nan)
        stage_map.add(
            column("pipeline").iloc[row],
            stage,
            StageInfo(label, p, bool(is_closed), bool(is_won), row + 1),
            column("pipeline_label").iloc[row],
        )
    return stage_map


def snapshot_date_of(path, default: dt.date | None = None) -> dt.date | None:
    """The day an export was taken: the ``YYYY-MM-DD`` in its file name, else
    ``default``."""
    match = _DATE_IN_NAME.search(Path(path).name)
    if match is None:
        return default
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return default


def _find_columns(table: RawTable) -> dict[str, str]:
    lowered = {c.strip().lower(): c for c in table.columns}
    found = {}
    for field_name, names in COLUMNS.items():
        for name in names:
            if name in lowered:
                found[field_name] = lowered[name]
                break
    for required in ("deal_id", "stage"):
        if required not in found:
            label = {"deal_id": "Record ID", "stage": "Deal Stage"}[required]
            raise InputError(
                f"this does not look like a HubSpot deal export: no {label!r} "
                f"column (found {', '.join(table.columns[:8])})",
                file=table.path,
                line=1,
            )
    return found


def _month_end(days: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(days, errors="coerce")
    last = stamps.dt.days_in_month
    return (stamps.dt.day == last).fillna(False).to_numpy(dtype=bool)


def _read_snapshot(
    table: RawTable, stage_map: StageMap, date_order: str | None
) -> tuple[pd.DataFrame, list[SkippedRows], list[str], list[dict]]:
    """One export as deal states (one row per deal) in file order."""
    columns = _find_columns(table)
    frame = table.frame
    lines = np.asarray(table.line_numbers, dtype=np.int64)
    file = table.path
    warnings: list[str] = []
    skipped: list[SkippedRows] = []

    def text(field_name) -> pd.Series:
        if field_name not in columns:
            return pd.Series([""] * len(frame), dtype="str")
        return frame[columns[field_name]].str.strip().reset_index(drop=True)

    def where(field_name):
        return {"file": file, "column": columns.get(field_name), "line_numbers": lines}

    deal_id = parsing.clean_id(text("deal_id"))
    stage_raw = text("stage")
    pipeline_raw = text("pipeline")

    # Stages: resolved per distinct (pipeline, stage) pair.
    pairs = pd.DataFrame({"p": pipeline_raw, "s": stage_raw})
    distinct = pairs.drop_duplicates()
    resolved = {}
    for p, s in zip(distinct["p"], distinct["s"]):
        resolved[(p, s)] = stage_map.resolve(p, s) if s else None
    infos = [resolved[(p, s)] for p, s in zip(pairs["p"], pairs["s"])]

    keep = np.ones(len(frame), dtype=bool)
    missing_id = deal_id.isna().to_numpy()
    if missing_id.any():
        skipped.append(
            SkippedRows("no Record ID", str(file), lines[missing_id].tolist())
        )
        keep &= ~missing_id
    no_stage = (stage_raw == "").to_numpy() & keep
    if no_stage.any():
        skipped.append(
            SkippedRows("no deal stage", str(file), lines[no_stage].tolist())
        )
        keep &= ~no_stage
    unknown = np.array([info is None for info in infos]) & keep
    unknown_stages = []
    if unknown.any():
        groups = pairs.loc[unknown].assign(line=lines[unknown])
        for (p, s), group in groups.groupby(["p", "s"], sort=False):
            unknown_stages.append(
                {
                    "file": str(file),
                    "pipeline": p,
                    "stage": s,
                    "count": len(group),
                    "lines": group["line"].tolist(),
                }
            )
            skipped.append(
                SkippedRows(
                    f"unknown stage id {s!r} in pipeline {p!r}: add it to a "
                    "stage map (pipeline,stage,label,probability)",
                    str(file),
                    group["line"].tolist(),
                )
            )
        keep &= ~unknown
    repeated = deal_id.duplicated(keep="first").to_numpy() & keep
    if repeated.any():
        skipped.append(
            SkippedRows(
                "Record ID repeated in the file", str(file), lines[repeated].tolist()
            )
        )
        keep &= ~repeated

    labels = []
    probability_default = np.full(len(frame), np.nan)
    closed = np.zeros(len(frame), dtype=bool)
    won = np.zeros(len(frame), dtype=bool)
    for row, (info, label) in enumerate(zip(infos, stage_raw)):
        if isinstance(info, StageInfo):
            labels.append(info.label)
            probability_default[row] = info.probability
            closed[row], won[row] = info.closed, info.won
        else:
            labels.append(label)
            lowered = label.lower()
            won[row] = bool(re.search(r"\bwon\b", lowered))
            closed[row] = won[row] or bool(re.search(r"\blost\b", lowered))
            if closed[row]:
                probability_default[row] = 1.0 if won[row] else 0.0

    close_date = parsing.parse_dates(
        text("close_date"), date_order=date_order, **where("close_date")
    )
    created = parsing.parse_timestamps(
        text("created"), date_order=date_order, **where("created")
    )
    amounts, currencies = parsing.parse_money(text("amount"), **where("amount"))
    if "currency" in columns:
        named = text("currency").str.upper()
        currencies = named.where(named != "", currencies).astype(object)
        currencies = currencies.where(currencies.notna(), None)
    amount_original = amounts.copy()
    if "amount_company" in columns:
        company, _ = parsing.parse_money(
            text("amount_company"), **where("amount_company")
        )
        have = company.notna().to_numpy()
        amounts = amounts.where(~have, company)
        currencies = currencies.where(~have, None)
    if "probability" in columns:
        probability = parsing.parse_probability(
            text("probability"), **where("probability")
        ).to_numpy()
        probability = np.where(np.isnan(probability), probability_default, probability)
    else:
        probability = probability_default
    probability = np.where(closed, np.where(won, 1.0, 0.0), probability)
    forecast = parsing.normalise_forecast_category(
        text("forecast_category"),
        file=file,
        column=columns.get("forecast_category"),
        warnings=warnings,
    )

    outcome = np.where(won, "won", np.where(closed, "lost", "open"))
    close_values = pd.Series(close_date, dtype=object)
    month_end = _month_end(close_values) & (outcome == "open")

    used = set(columns.values())
    extra = [c for c in table.columns if c not in used]
    attribute_rows = []
    named_currency = text("currency").tolist()
    converted_rows = (
        company.notna().to_numpy()
        if "amount_company" in columns
        else np.zeros(len(frame), dtype=bool)
    )
    extra_values = {c: frame[c].str.strip().tolist() for c in extra}
    for row in range(len(frame)):
        values = {c: extra_values[c][row] for c in extra if extra_values[c][row]}
        if pipeline_raw.iloc[row]:
            values["pipeline"] = pipeline_raw.iloc[row]
        if stage_raw.iloc[row] != labels[row]:
            values["stage_id"] = stage_raw.iloc[row]
        if month_end[row]:
            values["close_date_reliable"] = "false"
        if converted_rows[row] and named_currency[row]:
            values["currency_original"] = named_currency[row].upper()
        attribute_rows.append(json.dumps(values, ensure_ascii=False, sort_keys=True))

    states = pd.DataFrame(
        {
            "deal_id": deal_id,
            "name": text("name"),
            "account": text("account"),
            "owner": text("owner"),
            "team": text("team"),
            "stage": labels,
            "forecast_category": forecast,
            "amount": amounts,
            "amount_original": amount_original,
            "currency": currencies,
            "probability": probability,
            "created_at": created,
            "close_date": close_values,
            "outcome": outcome,
            "next_step": text("next_step"),
            "attributes": attribute_rows,
            "line": lines,
        }
    )
    states["closed_on"] = states["close_date"].where(states["outcome"] != "open")
    states = states.loc[keep].reset_index(drop=True)
    without_close = states["close_date"].isna() & (states["outcome"] != "open")
    if without_close.any():
        warnings.append(
            f"{file.name}: {int(without_close.sum())} closed deal(s) have no close "
            "date; their closing day is unknown"
        )
    stages = [
        (info.label, info.order, info.probability, info.closed, info.won)
        for info in resolved.values()
        if isinstance(info, StageInfo)
    ]
    states.attrs["stages"] = stages
    return states, skipped, warnings, unknown_stages


_STATE = [
    "stage",
    "amount",
    "close_date",
    "forecast_category",
    "probability",
    "outcome",
    "next_step",
]


def _state_keys(frame: pd.DataFrame) -> pd.Series:
    amount = (
        frame["amount"]
        .astype(float)
        .round(2)
        .map(lambda v: "" if np.isnan(v) else f"{v + 0.0:.2f}")
    )
    probability = (
        frame["probability"]
        .astype(float)
        .round(4)
        .map(lambda v: "" if np.isnan(v) else f"{v + 0.0:.4f}")
    )
    close = frame["close_date"].map(lambda d: "" if pd.isna(d) else str(d))
    return (
        frame["stage"].fillna("").astype(str)
        + "|"
        + amount
        + "|"
        + close.astype(str)
        + "|"
        + frame["forecast_category"].fillna("").astype(str)
        + "|"
        + probability
        + "|"
        + frame["outcome"].astype(str)
        + "|"
        + frame["next_step"].fillna("").astype(str)
    )


def read_hubspot(
    files,
    *,
    history=None,
    date_order: str | None = None,
    stage_map=None,
    snapshot_date: dt.date | None = None,
    progress=None,
) -> DealBatch:
    """Read HubSpot deal exports into one :class:`DealBatch`.

    Parameters
    ----------
    files : list of path
        Deal exports; a file with columns ``pipeline, stage, label`` is taken
        as the stage map. Several exports are snapshots: each is dated by the
        ``YYYY-MM-DD`` in its name, else by ``snapshot_date``; at most one
        export may be undated (it is the latest, dated by the writer's
        snapshot moment).
    history : None
        HubSpot has no history file; pass dated exports instead.
    stage_map : path or StageMap, optional
        Resolves internal stage ids; HubSpot's default pipeline is built in.
    snapshot_date : date, optional
        The day a single export (or every undated one) was taken.

    Returns
    -------
    DealBatch
        ``deals`` in their latest state; ``versions``: a first version at
        creation, one at each snapshot where the deal's values changed, and a
        closing version on the close date. ``notes`` has ``snapshots``
        (file, date) and ``unknown_stages``.

    Raises
    ------
    InputError
        A file is not a HubSpot deal export or a value cannot be read.
    """
    if history is not None:
        raise NotImplementedError(
            "HubSpot exports have no history file: pass several exports taken on "
            "different days, each with its date in the file name (YYYY-MM-DD)"
        )
    report = progress or (lambda fraction, message: None)
    if isinstance(stage_map, StageMap):
        stages = stage_map
    elif stage_map is not None:
        stages = read_stage_map(stage_map)
    else:
        stages = None
    tables = []
    for path in files:
        table = read_table(path)
        if _is_stage_map(table):
            if stages is not None and stage_map is not None:
                raise InputError("two stage maps given: pass one", file=path)
            stages = _stage_map_from_table(table)
        else:
            tables.append(table)
    if not tables:
        raise InputError("no HubSpot deal export among the files")
    stages = stages or StageMap()

    dated = []
    undated = 0
    for order, table in enumerate(tables):
        day = snapshot_date_of(table.path, default=snapshot_date)
        if day is None:
            undated += 1
        dated.append((day, order, table))
    if undated > 1:
        raise InputError(
            f"{undated} exports have no date: put the day each was taken in its "
            "name (deals-2025-04-01.csv) so they can be ordered",
            file=next(t.path for d, _, t in dated if d is None),
        )
    far_future = dt.date.max
    dated.sort(key=lambda item: (item[0] or far_future, item[1]))

    snapshots = []
    skipped: list[SkippedRows] = []
    warnings: list[str] = []
    unknown_stages: list[dict] = []
    stage_rows: dict[str, tuple] = {}
    rows_read = 0
    for index, (day, _, table) in enumerate(dated):
        report(0.05 + 0.4 * index / len(dated), f"reading {table.path.name}")
        warnings.extend(f"{table.path.name}: {w}" for w in table.warnings)
        states, file_skipped, file_warnings, file_unknown = _read_snapshot(
            table, stages, date_order
        )
        rows_read += len(table.frame)
        skipped.extend(file_skipped)
        warnings.extend(file_warnings)
        unknown_stages.extend(file_unknown)
        for label, order, p, closed, won in states.attrs["stages"]:
            stage_rows.setdefault(label, (label, order, p, closed, won))
        states["snapshot"] = pd.Timestamp(day) if day is not None else pd.NaT
        states["snapshot_order"] = index
        snapshots.append(states)
        entry = {"file": str(table.path), "snapshot_date": day, "deals": len(states)}
        logger.info("read HubSpot export %s", entry)

    every = pd.concat(snapshots, ignore_index=True)
    latest = (
        every.sort_values("snapshot_order", kind="stable")
        .groupby("deal_id", sort=False)
        .tail(1)
    )
    deals = latest.assign(
        created_on=pd.to_datetime(latest["created_at"], errors="coerce").dt.normalize(),
        source=SOURCE,
        segment=None,
        amount_estimated=False,
    )
    versions = _versions(every)
    labels_seen = set(every["stage"])
    stage_table = _stage_table(stage_rows, every, labels_seen)

    seen_days = [d for d, _, _ in dated if d is not None]
    if seen_days:
        today = max(seen_days)
    else:
        created = pd.to_datetime(every["created_at"], errors="coerce").max()
        today = None if pd.isna(created) else created.date()
    notes = {
        "file": str(dated[-1][2].path),
        "snapshots": [
            {"file": str(t.path), "snapshot_date": d and d.isoformat()}
            for d, _, t in dated
        ],
        "unknown_stages": unknown_stages,
        "close_dates_unreliable": int(
            deals["attributes"].str.contains('"close_date_reliable"').sum()
        ),
    }
    return DealBatch(
        source=SOURCE,
        deals=conform_deals(deals),
        versions=conform_versions(versions),
        has_dates=True,
        today=today,
        stages=stage_table,
        meta={"dataset": SOURCE},
        rows_read=rows_read,
        skipped=skipped,
        warnings=warnings,
        notes=notes,
    )


def _versions(every: pd.DataFrame) -> pd.DataFrame:
    """Creation, snapshot and closing versions, repeated states removed."""
    dated = every.loc[every["snapshot"].notna()]
    snapshot_rows = dated.assign(valid_from=dated["snapshot"], kind=1)

    first = (
        every.sort_values("snapshot_order", kind="stable")
        .groupby("deal_id", sort=False)
        .head(1)
    )
    created = pd.to_datetime(first["created_at"], errors="coerce")
    before_first = created.notna() & (
        first["snapshot"].isna() | (created < first["snapshot"])
    )
    creation_rows = first.loc[before_first].assign(
        valid_from=created[before_first], kind=0
    )
    # A next step is what a snapshot said; none is known before the first.
    creation_rows.loc[creation_rows["snapshot"].notna(), "next_step"] = None
    # A deal first seen closed was open at creation, in a stage not known.
    was_closed = (creation_rows["outcome"] != "open").to_numpy()
    if was_closed.any():
        creation_rows = creation_rows.astype({"probability": "float64"})
        creation_rows.loc[was_closed, ["stage", "forecast_category"]] = None
        creation_rows.loc[was_closed, "probability"] = np.nan
        creation_rows.loc[was_closed, "outcome"] = "open"

    # A closed deal's closing version on its close day, unless an earlier
    # export still showed it open after that day.
    closed = every.loc[every["outcome"] != "open"]
    closed = (
        closed.sort_values("snapshot_order", kind="stable")
        .groupby("deal_id", sort=False)
        .head(1)
    )
    closing_day = pd.to_datetime(closed["closed_on"], errors="coerce")
    closing_rows = closed.loc[closing_day.notna()].assign(
        valid_from=closing_day[closing_day.notna()], kind=2
    )
    rows = pd.concat([creation_rows, snapshot_rows, closing_rows], ignore_index=True)
    if rows.empty:
        return rows.reindex(columns=["deal_id", "valid_from", *_STATE, "source"])
    last_open = (
        rows.loc[rows["outcome"] == "open"].groupby("deal_id")["valid_from"].max()
    )
    floor = rows["deal_id"].map(last_open)
    closing = (rows["kind"] == 2).to_numpy()
    late = (
        closing
        & floor.notna().to_numpy()
        & (rows["valid_from"].to_numpy() <= floor.to_numpy())
    )
    if late.any():
        rows.loc[late, "valid_from"] = floor[late] + pd.Timedelta(seconds=1)

    rows = rows.sort_values(["deal_id", "valid_from", "kind"], kind="stable")
    rows = rows.drop_duplicates(["deal_id", "valid_from"], keep="last")
    keys = _state_keys(rows)
    repeat = (rows["deal_id"] == rows["deal_id"].shift()) & (keys == keys.shift())
    rows = rows.loc[~repeat.to_numpy()]
    return rows.assign(source=SOURCE)[["deal_id", "valid_from", *_STATE, "source"]]


def _stage_table(
    stage_rows: dict, every: pd.DataFrame, labels_seen: set
) -> pd.DataFrame:
    rows = [stage_rows[label] for label in labels_seen if label in stage_rows]
    known = {row[0] for row in rows}
    others = every.loc[~every["stage"].isin(known)]
    if len(others):
        grouped = others.groupby("stage")
        for label, group in grouped:
            outcome = group["outcome"].iloc[0]
            p = (
                float(group["probability"].median())
                if outcome == "open"
                else (1.0 if outcome == "won" else 0.0)
            )
            rows.append((label, None, p, outcome != "open", outcome == "won"))
    table = pd.DataFrame(
        rows, columns=["stage", "order", "default_probability", "is_closed", "is_won"]
    )
    table["rank"] = table["order"].fillna(1000 + table["default_probability"].fillna(0))
    table["closed_last"] = table["is_closed"].astype(int) + table["is_won"].map(
        {True: 0, False: 1}
    ) * table["is_closed"].astype(int)
    table = table.sort_values(["closed_last", "rank", "stage"]).reset_index(drop=True)
    return pd.DataFrame(
        {
            "stage": table["stage"].astype("str"),
            "sort_order": np.arange(1, len(table) + 1, dtype="int64"),
            "default_probability": table["default_probability"].astype("float64"),
            "is_closed": table["is_closed"].astype(bool),
            "is_won": table["is_won"].astype(bool),
        }
    )


def import_hubspot(
    con,
    files,
    *,
    stage_map=None,
    date_order: str | None = None,
    snapshot_date: dt.date | None = None,
    progress=None,
    rates=None,
) -> dict:
    """Import HubSpot deal exports into the caller's open transaction.

    Reads the files with :func:`read_hubspot`, converts amounts to the
    reporting currency (meta ``currency``, USD by default) and writes through
    :func:`dealcase.importing.writer.write_batch`. Nothing is committed here.

    Returns
    -------
    dict
        ``source, files, rows_read, deals_new, deals_updated,
        deals_unchanged, history_rows, snapshots, unknown_stages,
        rows_skipped, close_dates_unreliable, warnings, today``.
    """
    from dealcase.importing.writer import write_batch
    from dealcase.store import set_meta

    batch = read_hubspot(
        files,
        date_order=date_order,
        stage_map=stage_map,
        snapshot_date=snapshot_date,
        progress=progress,
    )
    # fetchall, not fetchone: DuckDB keeps a half-read result open and then
    # refuses the writer's next statement.
    stored = con.execute("SELECT value FROM meta WHERE key = 'currency'").fetchall()
    reporting = str(stored[0][0] if stored and stored[0][0] else "USD").upper()
    _convert(batch, rates, reporting)
    undated = any(s["snapshot_date"] is None for s in batch.notes["snapshots"])
    if undated:
        moment = (
            dt.datetime.combine(snapshot_date, dt.time())
            if snapshot_date is not None
            else dt.datetime.now().replace(microsecond=0)
        )
    else:
        moment = dt.datetime.combine(batch.today, dt.time())
    counts = write_batch(con, batch, snapshot_at=moment, progress=progress)
    today = batch.today or moment.date()
    if undated and counts.get("snapshot_versions"):
        today = max(today, moment.date())
    set_meta(con, "today", today.isoformat())
    set_meta(con, "currency", reporting)
    return {
        "source": SOURCE,
        "files": [str(f) for f in files],
        "rows_read": batch.rows_read,
        **counts,
        "snapshots": batch.notes["snapshots"],
        "unknown_stages": batch.notes["unknown_stages"],
        "rows_skipped": [s.as_dict() for s in batch.skipped],
        "close_dates_unreliable": batch.notes["close_dates_unreliable"],
        "warnings": batch.warnings,
        "today": today.isoformat(),
    }


def _convert(batch: DealBatch, rates, reporting: str) -> None:
    deals = batch.deals
    codes = deals["currency"].astype(object).where(deals["currency"].notna(), None)
    converted = parsing.convert_currency(
        deals["amount"],
        codes,
        rates=rates,
        reporting=reporting,
        file=batch.notes.get("file"),
        column="Amount",
    )
    factor = (converted["amount"] / converted["amount_original"]).where(
        converted["amount_original"].fillna(0) != 0, 1.0
    )
    keep_original = deals["amount_original"].notna() & deals["currency"].isna()
    deals["amount_original"] = deals["amount_original"].where(
        keep_original, converted["amount_original"]
    )
    deals["amount"] = converted["amount"].to_numpy()
    deals["currency"] = converted["currency"].to_numpy()
    if len(batch.versions):
        per_deal = pd.Series(factor.to_numpy(), index=deals["deal_id"].to_numpy())
        version_factor = batch.versions["deal_id"].map(per_deal).fillna(1.0)
        batch.versions["amount"] = (batch.versions["amount"] * version_factor).round(2)
