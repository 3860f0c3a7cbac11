"""Import deals from CRM exports and plain tables.

:func:`import_files` is the one entry point of the command line and the Data
page. It reads every file first (nothing is written while reading), then
writes deals, history versions, stages, meta and a row of ``imports`` in one
transaction: a file that fails leaves the database exactly as it was.

Sources:

- ``table``: any CSV or Excel table with a mapping file
  (:mod:`dealcase.importing.table`); without one a mapping is proposed and
  the import refuses to run until it is saved and passed with ``--mapping``.
- ``salesforce``: a Data Export ``Opportunity.csv`` with optional
  ``OpportunityHistory``, ``User``, ``Account``, ``Contact``,
  ``OpportunityContactRole`` and ``CurrencyType`` files
  (:mod:`dealcase.importing.salesforce`), or an opportunity report export
  (:mod:`dealcase.importing.salesforce_report`).
- ``hubspot``: :mod:`dealcase.importing.hubspot`.

See ``docs/import.md`` for the rules on history, duplicates and re-imports.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from dealcase.errors import DealCaseError, InputError
from dealcase.importing import parsing
from dealcase.importing.batch import DealBatch, SkippedRows
from dealcase.importing.readers import read_table
from dealcase.importing.table import (
    MappingRequired,
    build_table_batch,
    check_mapping,
    load_mapping,
    propose_mapping,
    render_mapping,
)
from dealcase.importing.writer import write_batch
from dealcase.report import Report, to_jsonable
from dealcase.store import get_meta, set_meta, transaction

logger = logging.getLogger(__name__)

SOURCES = ("salesforce", "hubspot", "table")

__all__ = [
    "MappingRequired",
    "import_files",
    "preview_import",
    "propose_mapping",
    "render_mapping",
]


def import_files(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    files,
    mapping=None,
    history=None,
    rates=None,
    date_order: str | None = None,
    progress=None,
    snapshot_date: dt.date | None = None,
) -> Report:
    """Import deals from ``files`` into the database, in one transaction.

    Parameters
    ----------
    source : {"salesforce", "hubspot", "table"}
    files : list of path
        The deal files (for Salesforce, ``Opportunity.csv`` or a report,
        with any companion files of the export).
    mapping : path or dict, optional
        The mapping of a ``table`` import (TOML file or its parsed dict).
        Required for ``table``: without it a proposal is raised as
        :class:`MappingRequired`.
    history : path, optional
        Salesforce ``OpportunityHistory.csv``.
    rates : path or dict, optional
        Exchange rates (units of each currency per unit of the reporting
        currency) for files with several currencies.
    date_order : {"dmy", "mdy"}, optional
        Order of day and month in locale dates such as ``03/01/2024``.
    progress : callable(fraction, message), optional
    snapshot_date : date, optional
        The day the export was taken; a change the source gives no time for
        is dated then (default: now).

    Returns
    -------
    Report
        ``doc`` is the import summary: ``source, files, rows_read,
        deals_new, deals_updated, deals_unchanged, rows_skipped`` (reason,
        file, count, lines), ``history_rows`` (versions added),
        ``amounts_estimated, currencies_converted, warnings`` and ``today``.

    Raises
    ------
    InputError
        A file cannot be read or a value cannot be understood (naming file,
        line and column); nothing was written.
    MappingRequired
        ``source="table"`` without a mapping; the message holds the proposal.
    """
    report = _progress(progress)
    files = [Path(f) for f in (files or [])]
    if source not in SOURCES:
        raise InputError(f"unknown source '{source}': expected one of {SOURCES}")
    if not files:
        raise InputError("no file to import: name at least one file")

    report(0.0, "reading files")
    batches, authoritative = _read_batches(
        source,
        files,
        mapping=mapping,
        history=history,
        date_order=date_order,
        snapshot_date=snapshot_date,
    )
    if not sum(b.rows_read for b in batches):
        raise InputError("no data rows after the header", file=files[0], line=1)
    _check_company(con, batches)
    report(0.3, f"read {sum(b.rows_read for b in batches):,} rows")
    reporting = _reporting_currency(con, batches)
    converted = sum(_convert_amounts(b, rates, reporting) for b in batches)

    snapshot_at = (
        dt.datetime.now().replace(microsecond=0)
        if snapshot_date is None
        else dt.datetime.combine(snapshot_date, dt.time())
    )
    totals: dict = {}
    logger.info(
        "writing %s deals in one transaction", f"{sum(len(b.deals) for b in batches):,}"
    )
    with transaction(con):
        for index, batch in enumerate(batches):
            counts = write_batch(
                con,
                batch,
                snapshot_at=snapshot_at,
                authoritative_history=authoritative,
                progress=_slot(
                    report, 0.3 + 0.6 * index / len(batches), 0.6 / len(batches)
                ),
            )
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
        today = _data_today(batches, totals, snapshot_at)
        set_meta(con, "today", today.isoformat())
        set_meta(con, "currency", reporting)
        summary = _summary(source, files, history, batches, totals, converted, today)
        con.execute(
            "INSERT INTO imports (source, files, summary) VALUES (?, ?, ?)",
            [
                source,
                json.dumps([str(f) for f in files]),
                json.dumps(to_jsonable(summary)),
            ],
        )
    report(1.0, "import finished")
    logger.info(
        "imported %s deals (%s new, %s updated)",
        len(batches[0].deals) if batches else 0,
        totals.get("deals_new", 0),
        totals.get("deals_updated", 0),
    )
    return Report(
        doc=summary,
        table=_summary_table(summary),
        title=f"Import from {source}",
        notes=summary["warnings"],
    )


def preview_import(
    *,
    source: str,
    files,
    mapping=None,
    history=None,
    date_order: str | None = None,
    rows: int = 20,
) -> dict:
    """Read files as :func:`import_files` would, without writing anything.

    Returns
    -------
    dict
        ``mapping`` (the mapping used, or the proposal for a table without
        one), ``mapping_toml``, ``proposed`` (True when it is a proposal),
        ``deals`` (the first ``rows`` deals as parsed), ``versions`` (their
        history versions), ``rows_read``, ``deal_count``, ``rows_skipped``,
        ``warnings`` and ``error`` (the message when the files cannot be
        imported with this mapping, else None).
    """
    files = [Path(f) for f in files]
    proposed = False
    if source == "table" and mapping is None:
        mapping = propose_mapping(read_table(files[0]))
        proposed = True
    elif source == "table":
        mapping = _mapping_dict(mapping)
    result = {
        "mapping": mapping,
        "mapping_toml": render_mapping(mapping) if mapping else None,
        "proposed": proposed,
        "deals": pd.DataFrame(),
        "versions": pd.DataFrame(),
        "rows_read": 0,
        "deal_count": 0,
        "rows_skipped": [],
        "warnings": [],
        "error": None,
    }
    try:
        batches, _ = _read_batches(
            source, files, mapping=mapping, history=history, date_order=date_order
        )
    except DealCaseError as error:
        result["error"] = str(error)
        return result
    batch = batches[0]
    head = batch.deals.head(rows)
    result.update(
        deals=head,
        versions=batch.versions.loc[batch.versions["deal_id"].isin(head["deal_id"])]
        .drop(columns=["derived"], errors="ignore")
        .sort_values(["deal_id", "valid_from"])
        .reset_index(drop=True),
        rows_read=sum(b.rows_read for b in batches),
        deal_count=sum(len(b.deals) for b in batches),
        rows_skipped=[s.as_dict() for b in batches for s in b.skipped],
        warnings=[w for b in batches for w in b.warnings],
    )
    return result


def _progress(progress):
    def report(fraction: float, message: str) -> None:
        logger.debug("import %3.0f%%: %s", 100 * fraction, message)
        if progress is not None:
            progress(fraction, message)

    return report


def _slot(report, start: float, width: float):
    """A progress callback that maps 0..1 into ``start .. start + width``."""

    def inner(fraction: float, message: str) -> None:
        report(start + width * fraction, message)

    return inner


def _mapping_dict(mapping) -> dict:
    if isinstance(mapping, dict):
        check_mapping(mapping)
        return mapping
    return load_mapping(mapping)


def _read_batches(source, files, *, mapping, history, date_order, snapshot_date=None):
    """Every file read into batches; returns (batches, authoritative)."""
    if source == "table":
        if history is not None:
            raise InputError(
                "--history is for Salesforce OpportunityHistory exports; a table "
                "import takes its history from the dates its mapping names"
            )
        if mapping is None:
            raw = _read_rows(files[0])
            proposal = propose_mapping(raw)
            raise MappingRequired(
                "this table has no mapping yet. A proposal from its headers:\n\n"
                + render_mapping(proposal)
                + "\nSave it as a .toml file, check every column, and run the "
                "import again with --mapping FILE.",
                proposal=proposal,
                file=files[0],
            )
        mapping = _mapping_dict(mapping)
        batches = [
            build_table_batch(_read_rows(f), mapping, date_order=date_order)
            for f in files
        ]
        return batches, False
    if source == "salesforce":
        from dealcase.importing.salesforce import build_salesforce_batch

        return [
            build_salesforce_batch(files, history=history, date_order=date_order)
        ], True
    return _hubspot_batches(
        files, history=history, date_order=date_order, snapshot_date=snapshot_date
    )


def _read_rows(path):
    """The file read as a table; refused when it has no data rows."""
    raw = read_table(path)
    if raw.frame.empty:
        raise InputError("no data rows after the header", file=path, line=1)
    return raw


def _check_company(con, batches) -> None:
    """Refuse to mix another dataset into the synthetic demo company."""
    held = get_meta(con, "dataset", None)
    incoming = batches[0].meta.get("dataset") if batches else None
    if held == "demo" and incoming != "demo":
        raise DealCaseError(
            "the database holds the synthetic demo company; import into another "
            "file with --db"
        )


def _hubspot_reader():
    """``hubspot.read_hubspot(files, *, history=None, date_order=None, ...)
    -> DealBatch``, written here by the common writer."""
    try:
        from dealcase.importing.hubspot import read_hubspot
    except ImportError as error:
        raise NotImplementedError(
            "HubSpot import is not available in this version; export the deals "
            "as CSV and use --source table with a mapping"
        ) from error
    return read_hubspot


def _hubspot_batches(files, *, history, date_order, snapshot_date=None):
    reader = _hubspot_reader()
    options = {"history": history, "date_order": date_order}
    if "snapshot_date" in inspect.signature(reader).parameters:
        options["snapshot_date"] = snapshot_date
    batch = reader(files, **options)
    if not isinstance(batch, DealBatch):
        raise NotImplementedError(
            "the HubSpot reader must return a DealBatch to be written"
        )
    return [batch], bool(batch.notes.get("authoritative_history", False))


def _reporting_currency(con, batches) -> str:
    for batch in batches:
        if batch.meta.get("currency"):
            return str(batch.meta["currency"]).upper()
    return str(get_meta(con, "currency", "USD") or "USD").upper()


def _convert_amounts(batch: DealBatch, rates, reporting: str) -> int:
    """Convert the batch's amounts (deals and versions) to ``reporting``.

    Rates passed to the import win over those that came with the files
    (``batch.rates``). A batch whose amounts are already converted is left
    as it is.

    Returns the number of deals whose amount was converted.

    Raises
    ------
    InputError
        Amounts in several currencies without rates for them: the message
        gives the total of each currency, never their sum.
    """
    deals = batch.deals
    codes = deals["currency"].fillna(reporting).str.upper()
    foreign = (codes != reporting).to_numpy()
    if batch.amounts_converted:
        deals["currency"] = codes.to_numpy()
        return int((foreign & deals["amount"].notna().to_numpy()).sum())
    if not foreign.any():
        deals["currency"] = codes.to_numpy()
        return 0
    rates = rates if rates is not None else batch.rates
    if rates is None:
        totals = deals.assign(code=codes).groupby("code")["amount"].sum().sort_index()
        listed = "; ".join(f"{code} {total:,.2f}" for code, total in totals.items())
        raise InputError(
            f"amounts are in several currencies ({listed}) and adding them would "
            f"be wrong: pass --rates FILE (or a CurrencyType export) or include a "
            f"converted amount column in {reporting}",
            file=batch.notes.get("file"),
        )
    distinct = pd.unique(codes)
    factors = parsing.convert_currency(
        pd.Series(np.ones(len(distinct))),
        pd.Series(distinct),
        rates=rates,
        reporting=reporting,
        file=batch.notes.get("file"),
        column="currency",
    )["amount"].to_numpy()
    factor = dict(zip(distinct, factors))
    per_deal = codes.map(factor).astype("float64")
    deals["amount_original"] = deals["amount"]
    deals["amount"] = (deals["amount"] * per_deal).round(2)
    deals["currency"] = codes.to_numpy()
    if len(batch.versions):
        deal_factor = pd.Series(per_deal.to_numpy(), index=deals["deal_id"].to_numpy())
        version_factor = batch.versions["deal_id"].map(deal_factor).fillna(1.0)
        batch.versions["amount"] = (batch.versions["amount"] * version_factor).round(2)
    return int((foreign & deals["amount"].notna().to_numpy()).sum())


def _data_today(batches, totals, snapshot_at: dt.datetime) -> dt.date:
    known = [b.today for b in batches if b.today is not None]
    today = max(known) if known else snapshot_at.date()
    if totals.get("snapshot_versions"):
        today = max(today, snapshot_at.date())
    return today


def _summary(source, files, history, batches, totals, converted, today) -> dict:
    skipped: list[SkippedRows] = [s for b in batches for s in b.skipped]
    warnings = [w for b in batches for w in b.warnings]
    notes: dict = {}
    for batch in batches:
        for key, value in batch.notes.items():
            if key in ("file", "authoritative_history"):
                continue
            if isinstance(value, int | float):
                notes[key] = notes.get(key, 0) + value
            else:
                notes[key] = value
    if totals.get("deals_older_snapshot"):
        warnings.append(
            f"{totals['deals_older_snapshot']} deal(s) have versions stored after "
            "this snapshot: the file was taken as their state on the snapshot date "
            "and their current state was kept"
        )
    if totals.get("snapshot_moved"):
        warnings.append(
            f"{totals['snapshot_moved']} change(s) were dated one second after the "
            "deal's latest stored version, which is later than the snapshot date"
        )
    summary = {
        "source": source,
        "dataset": batches[0].meta.get("dataset") if batches else None,
        "files": [str(f) for f in files] + ([str(history)] if history else []),
        "rows_read": sum(b.rows_read for b in batches),
        "history_rows_read": sum(b.history_rows_read for b in batches),
        "deals_new": totals.get("deals_new", 0),
        "deals_updated": totals.get("deals_updated", 0),
        "deals_unchanged": totals.get("deals_unchanged", 0),
        "rows_skipped": [s.as_dict() for s in skipped],
        "history_rows": totals.get("history_rows", 0),
        "history_rows_corrected": totals.get("history_rows_corrected", 0),
        "snapshot_versions": totals.get("snapshot_versions", 0),
        "amounts_estimated": int(
            sum(b.deals["amount_estimated"].sum() for b in batches)
        ),
        "currencies_converted": int(converted),
        "has_dates": all(b.has_dates for b in batches),
        **{
            key: totals[key]
            for key in (
                "deals_older_snapshot",
                "stakeholders_added",
                "stakeholders_removed",
                "stakeholder_deals_kept",
            )
            if key in totals
        },
        "today": today,
        "warnings": warnings,
    }
    summary.update(notes)
    return summary


def _summary_table(summary: dict) -> pd.DataFrame:
    rows = [
        {"field": key, "value": value}
        for key, value in summary.items()
        if not isinstance(value, list | dict)
    ]
    for key, value in summary.items():
        if isinstance(value, dict):
            rows += [
                {"field": f"{key} {name}", "value": text}
                for name, text in value.items()
                if not isinstance(text, list | dict)
            ]
    for skip in summary["rows_skipped"]:
        shown = ", ".join(str(n) for n in skip["lines"][:8])
        more = " ..." if skip["count"] > 8 else ""
        rows.append(
            {
                "field": f"skipped: {skip['reason']}",
                "value": f"{skip['count']} (line {shown}{more})",
            }
        )
    return pd.DataFrame(rows)
