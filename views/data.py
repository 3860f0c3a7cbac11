"""Data: which database is open, what it holds, and importing CRM exports."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from dealcase.errors import DealCaseError, InputError
from dealcase.importing import import_files, preview_import
from dealcase.importing.table import load_mapping

filters = ui.filters()
ui.header(
    "Data",
    "Which database is open, what does it hold, and how do new CRM exports get in?",
)

MAPPINGS = Path(__file__).resolve().parent.parent / "data" / "mappings"
SOURCES = {
    "table": "Any table (CSV or Excel) with a column mapping",
    "salesforce": "Salesforce Data Export (Opportunity.csv)",
    "hubspot": "HubSpot deals export",
}
UPLOADS = Path(tempfile.gettempdir()) / "dealcase-uploads"

# What is open -------------------------------------------------------------------

info = ui.facts()
st.subheader("Database")
st.markdown(
    f"File `{ui.db_path()}` · dataset **{ui.dataset_label(info['dataset'])}** · "
    f"data as of {info['today'].isoformat()} · money in {info['currency']}"
)
if info["dataset"] == "demo":
    st.info(
        "This is the synthetic demo company: invented deals that show what "
        "DealCase does. Import your own exports below, or point DEALCASE_DB "
        "at another file."
    )
counts = ui.query("dealcase.store.table_counts")
labels = {
    "deals": "Deals",
    "deal_history": "History versions",
    "case_answers": "Case answers",
    "stakeholders": "Stakeholder versions",
    "targets": "Targets",
}
cols = st.columns(len(counts))
for column, (table, count) in zip(cols, counts.items()):
    column.metric(labels.get(table, table), f"{count:,}")

st.subheader("Imports")
imports = ui.query("dealcase.store.import_history")
if not imports:
    st.info("Nothing imported into this file yet.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "started_at": item["started_at"],
                    "source": item["source"],
                    "files": ", ".join(Path(f).name for f in item["files"]),
                    "rows_read": item["summary"].get("rows_read"),
                    "deals_new": item["summary"].get("deals_new"),
                    "deals_updated": item["summary"].get("deals_updated"),
                    "history_rows": item["summary"].get("history_rows"),
                }
                for item in imports
            ]
        ),
        hide_index=True,
        key="data_imports",
        column_config={
            "started_at": st.column_config.DatetimeColumn("When"),
            "rows_read": "Rows read",
            "deals_new": "New deals",
            "deals_updated": "Updated deals",
            "history_rows": "History versions added",
        },
    )

# Import -------------------------------------------------------------------------

st.subheader("Import a file")
st.markdown(
    "Nothing is written until you press **Import**: first check the mapping "
    "and the preview. The command line does the same: "
    "`python -m dealcase import --source table --mapping FILE data.csv`."
)
source = st.selectbox(
    "Source", list(SOURCES), format_func=SOURCES.get, key="data_source"
)
target_db = None
if info["dataset"] == "demo":
    # One company per database file: the demo stays as it is.
    target_db = st.text_input(
        "Import into this new database file (the demo database stays as it is)",
        value=str(Path(ui.db_path()).with_name("my-deals.duckdb")),
        key="data_target_db",
    )
uploaded = st.file_uploader("Deal file", type=["csv", "txt", "xlsx"], key="data_file")
history_file = None
export_files = []
snapshot_date = None
if source == "salesforce":
    history_file = st.file_uploader(
        "OpportunityHistory.csv (optional: the stage and close-date history)",
        type=["csv"],
        key="data_history_file",
    )
    export_files = st.file_uploader(
        "Other files of the same export (optional): User.csv names the owners, "
        "Account.csv the accounts, Contact.csv with OpportunityContactRole.csv "
        "the stakeholders, CurrencyType.csv the exchange rates",
        type=["csv"],
        accept_multiple_files=True,
        key="data_export_files",
    )
elif source == "hubspot":
    snapshot_date = st.date_input(
        "Export taken on",
        value=dt.date.today(),
        key="data_snapshot_date",
        help="Exports of the same deals taken on different days become their "
        "history: a stage or close date that differs from the stored one is "
        "dated on this day.",
    )
date_order = st.selectbox(
    "Dates like 03/01/2024 mean",
    [None, "mdy", "dmy"],
    format_func=lambda o: {
        None: "detect (ISO dates need nothing)",
        "mdy": "month/day/year",
        "dmy": "day/month/year",
    }[o],
    key="data_date_order",
)


def saved_upload(upload, folder: Path | None = None) -> Path:
    """Keep an uploaded file on disk under its own name for the importer (in
    ``folder``, else a folder named after the file's content). A file of the
    same name uploaded again with other content replaces the kept one."""
    content = upload.getvalue()
    if folder is None:
        folder = UPLOADS / hashlib.sha256(content).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(upload.name).name
    if not path.exists() or path.read_bytes() != content:
        path.write_bytes(content)
    return path


def without_upload_folder(message: str) -> str:
    """``/tmp/dealcase-uploads/3f2a.../deals.csv`` -> ``deals.csv``."""
    return re.sub(re.escape(str(UPLOADS)) + r"[/\\][0-9a-f]{16}[/\\]", "", message)


def show_input_error(error: DealCaseError) -> None:
    """An import problem as a sentence with file, line and column, naming
    an uploaded file by its own name rather than where it is kept."""
    st.error(without_upload_folder(str(error)))
    if isinstance(error, InputError):
        where = {
            "file": Path(error.file).name if error.file else None,
            "line": error.line,
            "column": error.column,
        }
        if any(v is not None for v in where.values()):
            st.caption(
                "Where: "
                + ", ".join(f"{k} {v}" for k, v in where.items() if v is not None)
            )


if uploaded is None:
    ui.stop_with("info", "Choose a file to see the proposed mapping and a preview.")

deal_path = saved_upload(uploaded)
history_path = (
    saved_upload(history_file, deal_path.parent) if history_file is not None else None
)
# The importer tells the files of an export apart by name (or header).
deal_files = [deal_path, *(saved_upload(f, deal_path.parent) for f in export_files)]

mapping = None
if source == "table":
    companions = st.file_uploader(
        "Companion tables the mapping joins (optional, e.g. products.csv)",
        type=["csv", "xlsx"],
        accept_multiple_files=True,
        key="data_companions",
    )
    for companion in companions or []:
        saved_upload(companion, deal_path.parent)
    shipped = sorted(p.name for p in MAPPINGS.glob("*.toml"))
    choice = st.selectbox(
        "Mapping",
        ["propose from the file", *shipped],
        key="data_mapping_choice",
        help="How the file's columns map to deal fields. Shipped mappings "
        "fit known public datasets.",
    )
    if choice == "propose from the file":
        proposal = ui.guarded(
            preview_import,
            source=source,
            files=[deal_path],
            date_order=date_order,
            rows=0,
        )
        if proposal["mapping_toml"] is None:
            ui.stop_with("error", proposal["error"] or "No mapping could be proposed.")
        default_text = proposal["mapping_toml"]
    else:
        default_text = (MAPPINGS / choice).read_text(encoding="utf-8")
    text = st.text_area(
        "Mapping (TOML): check it and correct it before importing",
        value=default_text,
        height=260,
        key=f"data_mapping_text_{choice}_{deal_path.parent.name}",
    )
    mapping_path = UPLOADS / deal_path.parent.name / "mapping.toml"
    mapping_path.write_text(text, encoding="utf-8")
    try:
        mapping = load_mapping(mapping_path)
    except DealCaseError as error:
        show_input_error(error)
        st.stop()

preview = ui.guarded(
    preview_import,
    source=source,
    files=deal_files,
    mapping=mapping,
    history=history_path,
    date_order=date_order,
)
if preview["error"]:
    st.error(
        "This file cannot be imported as it is: "
        + without_upload_folder(preview["error"])
    )
    st.stop()

st.markdown(
    f"**Preview**: {preview['rows_read']:,} rows read, "
    f"{preview['deal_count']:,} deals; the first {len(preview['deals'])} as "
    "they would be stored."
)
for warning in preview["warnings"]:
    st.warning(warning)
if preview["rows_skipped"]:
    st.warning("Rows that would be skipped:")
    st.dataframe(
        pd.DataFrame(preview["rows_skipped"]), hide_index=True, key="data_skipped"
    )
st.dataframe(preview["deals"], hide_index=True, key="data_preview")
with st.expander("History versions of these deals"):
    st.dataframe(preview["versions"], hide_index=True, key="data_preview_versions")

if not st.button("Import", type="primary", key="data_import"):
    st.stop()

bar = st.progress(0.0, text="Starting the import...")


def show_progress(fraction: float, message: str) -> None:
    bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)


try:
    arguments = dict(
        source=source,
        files=deal_files,
        mapping=mapping,
        history=history_path,
        date_order=date_order,
        progress=show_progress,
        snapshot_date=snapshot_date,
    )
    if target_db:
        report = ui.write_to(target_db, import_files, **arguments)
    else:
        report = ui.write(import_files, **arguments)
except DealCaseError as error:
    bar.empty()
    show_input_error(error)
    st.stop()

summary = report.doc
st.success(
    f"Imported {summary.get('rows_read', 0):,} rows: "
    f"{summary.get('deals_new', 0):,} new deals, "
    f"{summary.get('deals_updated', 0):,} updated, "
    f"{summary.get('history_rows', 0):,} history versions."
    + (
        f" They are in `{target_db}`: start the app on it with "
        f"`DEALCASE_DB={target_db} python3 run.py app`."
        if target_db
        else " Every page now shows the new data."
    )
)
for note in report.notes:
    st.warning(note)
if report.table is not None:
    # One column of numbers, dates and sentences: shown as text.
    summary_table = report.table.assign(
        field=[ui.label(f) for f in report.table["field"]],
        value=[
            f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
            for v in report.table["value"]
        ],
    )
    st.dataframe(
        summary_table,
        hide_index=True,
        key="data_import_summary",
        column_config={"field": "What", "value": "How many"},
    )
st.button("Show the new data", key="data_refresh")
