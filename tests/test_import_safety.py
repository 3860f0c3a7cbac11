"""Imports never lose data.

A failed import, and one killed while it writes, leave every table exactly
as it was; a repeated import changes nothing; what people record in the app
(business-case answers, stakeholders) survives re-imports; and importing a
weekly snapshot twice gives the pipeline of that week it gave the first time.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dealcase import store
from dealcase.case import record_answers, record_stakeholder
from dealcase.case_capture import case_version
from dealcase.errors import InputError
from dealcase.history import deals_as_of
from dealcase.importing import import_files

ROOT = Path(__file__).resolve().parent.parent

HEADER = (
    "Id,Name,AccountId,OwnerId,StageName,Amount,Probability,CloseDate,IsClosed,"
    "IsWon,ForecastCategoryName,CreatedDate"
)
ROWS = [
    "006S1,Harbor Cranes,001A,005A,Proposal,40000,40,2025-05-30,0,0,Pipeline,"
    "2025-01-06 09:00:00",
    "006S2,Mill Sensors,001B,005A,Negotiation,25000,70,2025-04-18,0,0,Commit,"
    "2025-01-20 09:00:00",
    "006S3,Dock Lights,001C,005B,Closed Won,12000,100,2025-03-03,1,1,Closed,"
    "2025-01-08 09:00:00",
]


def _opportunities(path: Path, rows=ROWS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def everything(path: Path) -> dict:
    """Every row of every table of the database file, in a stable order."""
    with store.connect(path, read_only=True) as con:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
            ).fetchall()
        ]
        state = {
            table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in tables
        }
    assert {"deals", "deal_history", "stakeholders", "imports", "meta"} <= set(state)
    return state


def _import(path: Path, *files, **options) -> dict:
    with store.connect(path) as con:
        return import_files(con, source="salesforce", files=list(files), **options).doc


def _record_case(path: Path) -> None:
    """A rep's answers and a stakeholder on 006S1, as the app records them."""
    with store.connect(path) as con:
        record_answers(
            con,
            "006S1",
            [
                ("pain", "confirmed", "cranes fail weekly", dt.date(2025, 2, 1)),
                ("budget", "assumed", None, None),
            ],
            author="ada",
            expected_version=case_version(con, "006S1"),
            recorded_at=dt.datetime(2025, 2, 3, 10),
        )
        record_stakeholder(
            con,
            "006S1",
            {"name": "Ivo Brandt", "role": "economic", "attitude": "growth"},
            author="ada",
            expected_version=case_version(con, "006S1", "stakeholders"),
            recorded_at=dt.datetime(2025, 2, 3, 10),
        )


@pytest.fixture
def base_db(tmp_path) -> Path:
    """A database with three deals, answers and a stakeholder."""
    path = tmp_path / "base.duckdb"
    _import(path, _opportunities(tmp_path / "first" / "Opportunity.csv"))
    _record_case(path)
    return path


def test_failed_reads_leave_every_table_as_it_was(base_db, tmp_path):
    before = everything(base_db)
    changed = [r.replace("40000", "41000") for r in ROWS]
    good = _opportunities(tmp_path / "second" / "Opportunity.csv", changed)
    rates = tmp_path / "second" / "CurrencyType.csv"
    rates.write_text("IsoCode,ConversionRate\nUSD,1\nEUR,-2\n", encoding="utf-8")
    bad_date = _opportunities(
        tmp_path / "third" / "Opportunity.csv",
        changed + [ROWS[0].replace("006S1", "006S4").replace("2025-05-30", "30.13.25")],
    )
    for files in ([good, rates], [bad_date], [good, good]):
        with pytest.raises(InputError):
            _import(base_db, *files)
        assert everything(base_db) == before


def test_failure_while_writing_rolls_back_every_table(base_db, tmp_path, monkeypatch):
    from dealcase.importing import writer

    before = everything(base_db)
    changed = [r.replace("40000", "41000").replace("Proposal", "Negotiation")
               for r in ROWS]  # fmt: skip
    path = _opportunities(tmp_path / "second" / "Opportunity.csv", changed)

    def fail(*args, **kwargs):
        raise OSError("no space left on device")

    # Deals and versions are written by then; the stages write fails.
    monkeypatch.setattr(writer, "_write_stages", fail)
    with pytest.raises(OSError):
        _import(base_db, path)
    assert everything(base_db) == before


def _large_export(path: Path, count: int) -> Path:
    lines = [HEADER]
    for number in range(count):
        month = 1 + number % 12
        lines.append(
            f"006L{number:09d},Generated {number},001X{number % 97},005Q{number % 13},"
            f"Proposal,{1000 + number % 9000},40,2026-{month:02d}-15,0,0,Pipeline,"
            f"2025-{month:02d}-0{1 + number % 9} 08:00:00"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_killed_import_leaves_the_database_as_it_was(base_db, tmp_path):
    before = everything(base_db)
    export = _large_export(tmp_path / "big" / "Opportunity.csv", 40_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "dealcase", "-v", "import", "--db", str(base_db)]
        + ["--source", "salesforce", str(export)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    writing = threading.Event()
    seen: list[str] = []

    def watch():
        for line in process.stderr:
            seen.append(line)
            # Deals are inserted (uncommitted) once versions are being added.
            if "adding history versions" in line:
                writing.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert writing.wait(timeout=30), "the import never started writing: " + (
            "".join(seen)
        )
        assert process.poll() is None, "the import finished before it was killed"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    watcher.join(timeout=5)

    assert everything(base_db) == before
    # The file opens for writing and takes the next import.
    doc = _import(base_db, _opportunities(tmp_path / "again" / "Opportunity.csv"))
    assert doc["deals_unchanged"] == 3


def test_repeated_import_is_idempotent(tmp_path, shared_data):
    folder = shared_data / "salesforce-sample"
    files = [folder / "Opportunity.csv", folder / "OpportunityHistory.csv"]
    path = tmp_path / "sf.duckdb"
    _import(path, *files, snapshot_date=dt.date(2018, 10, 14))
    once = everything(path)
    doc = _import(path, *files, snapshot_date=dt.date(2018, 10, 14))
    twice = everything(path)
    assert (doc["deals_new"], doc["deals_updated"], doc["deals_unchanged"]) == (
        0,
        0,
        31,
    )
    assert (doc["history_rows"], doc["history_rows_corrected"]) == (0, 0)
    assert len(twice["imports"]) == len(once["imports"]) + 1
    del once["imports"], twice["imports"]
    assert twice == once


def test_case_answers_and_stakeholders_survive_reimport(base_db, tmp_path):
    before = everything(base_db)
    assert len(before["case_answers"]) == 2 and len(before["stakeholders"]) == 1
    changed = [r.replace("40000", "45000").replace("Proposal", "Negotiation")
               for r in ROWS]  # fmt: skip
    doc = _import(
        base_db,
        _opportunities(tmp_path / "second" / "Opportunity.csv", changed),
        snapshot_date=dt.date(2025, 3, 1),
    )
    assert doc["deals_updated"] == 1
    after = everything(base_db)
    assert after["case_answers"] == before["case_answers"]
    assert after["stakeholders"] == before["stakeholders"]
    with store.connect(base_db, read_only=True) as con:
        amount = con.execute(
            "SELECT amount FROM deals WHERE deal_id = '006S1'"
        ).fetchone()[0]
    assert amount == 45000.0


REPORT_HEADER = (
    '"Opportunity ID","Opportunity Name","Stage","Amount","Close Date",'
    '"Created Date","Forecast Category"'
)
WEEK_1 = [
    '"0069A","Quay Pumps","Proposal","30,000","2025-03-28","2025-01-10","Pipeline"',
    '"0069B","Reed Valves","Negotiation","18,000","2025-03-21","2025-01-15","Commit"',
]
WEEK_2 = [
    '"0069A","Quay Pumps","Negotiation","32,000","2025-04-04","2025-01-10","Best Case"',
    '"0069B","Reed Valves","Closed Won","18,000","2025-03-12","2025-01-15","Closed"',
    '"0069C","Tide Gauges","Prospecting","9,000","2025-05-30","2025-03-11","Pipeline"',
]
WEEK_1_DAY = dt.date(2025, 3, 7)
WEEK_2_DAY = dt.date(2025, 3, 14)


def _report(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        REPORT_HEADER + "\r\n" + "".join(r + "\r\n" for r in rows)
        + '\r\n"Weekly Pipeline"\r\n"Generated By:  Ada Finch  3/7/2025 7:00 AM"\r\n',
        encoding="utf-8",
    )  # fmt: skip
    return path


def _pipeline(path: Path, day: dt.date) -> list[tuple]:
    with store.connect(path, read_only=True) as con:
        frame = deals_as_of(con, day)
    columns = ["deal_id", "stage", "amount", "close_date", "forecast_category"]
    return sorted(map(tuple, frame[columns + ["outcome"]].astype(str).to_numpy()))


def test_weekly_snapshot_imported_twice_gives_the_same_pipeline(tmp_path):
    week_1 = _report(tmp_path / "w1" / "report.csv", WEEK_1)
    path = tmp_path / "weekly.duckdb"
    _import(path, week_1, snapshot_date=WEEK_1_DAY)
    once = _pipeline(path, WEEK_1_DAY)
    assert once == [
        ("0069A", "Proposal", "30000.0", "2025-03-28", "pipeline", "open"),
        ("0069B", "Negotiation", "18000.0", "2025-03-21", "commit", "open"),
    ]
    history = everything(path)["deal_history"]
    doc = _import(path, week_1, snapshot_date=WEEK_1_DAY)
    assert doc["history_rows"] == 0
    assert _pipeline(path, WEEK_1_DAY) == once
    assert everything(path)["deal_history"] == history


def test_older_weekly_snapshot_after_a_newer_one_changes_nothing(tmp_path):
    week_1 = _report(tmp_path / "w1" / "report.csv", WEEK_1)
    week_2 = _report(tmp_path / "w2" / "report.csv", WEEK_2)
    path = tmp_path / "weekly.duckdb"
    _import(path, week_1, snapshot_date=WEEK_1_DAY)
    _import(path, week_2, snapshot_date=WEEK_2_DAY)
    first, second = _pipeline(path, WEEK_1_DAY), _pipeline(path, WEEK_2_DAY)
    assert second == [
        ("0069A", "Negotiation", "32000.0", "2025-04-04", "best_case", "open"),
        ("0069B", "Closed Won", "18000.0", "2025-03-12", "closed", "won"),
        ("0069C", "Prospecting", "9000.0", "2025-05-30", "pipeline", "open"),
    ]
    state = everything(path)
    # Week 1's file again, after week 2's: it is the past, not the present.
    doc = _import(path, week_1, snapshot_date=WEEK_1_DAY)
    assert doc["history_rows"] == 0
    assert _pipeline(path, WEEK_1_DAY) == first
    assert _pipeline(path, WEEK_2_DAY) == second
    again = everything(path)
    for table in ("deals", "deal_history", "stakeholders", "case_answers"):
        assert again[table] == state[table], table


def _doubled_versions(path: Path) -> list[tuple]:
    with store.connect(path, read_only=True) as con:
        return con.execute(
            "SELECT deal_id, valid_from, count(*) FROM deal_history "
            "GROUP BY ALL HAVING count(*) > 1"
        ).fetchall()


def test_no_deal_ever_gets_two_versions_at_one_moment(tmp_path, shared_data):
    # deal_history has no key index; every path that adds versions must keep
    # one version per (deal, moment): source history imported twice, a
    # snapshot corrected on its own day, an older snapshot after a newer one,
    # and a snapshot dated before the deal's latest stored version.
    folder = shared_data / "salesforce-sample"
    sample = tmp_path / "sf.duckdb"
    files = [folder / "Opportunity.csv", folder / "OpportunityHistory.csv"]
    for _ in range(2):
        _import(sample, *files, snapshot_date=dt.date(2018, 10, 14))
    _import(sample, files[0], snapshot_date=dt.date(2018, 10, 14))
    _import(sample, *files, snapshot_date=dt.date(2017, 1, 2))
    assert _doubled_versions(sample) == []

    weekly = tmp_path / "weekly.duckdb"
    week_1 = _report(tmp_path / "w1" / "report.csv", WEEK_1)
    week_2 = _report(tmp_path / "w2" / "report.csv", WEEK_2)
    corrected = _report(
        tmp_path / "w1b" / "report.csv", [r.replace("30,000", "31,000") for r in WEEK_1]
    )
    _import(weekly, week_1, snapshot_date=WEEK_1_DAY)
    _import(weekly, corrected, snapshot_date=WEEK_1_DAY)
    # The same day's export, corrected: its version is replaced, not doubled.
    assert _amounts(weekly, "0069A")[-1:] == [("2025-03-07", 31000.0)]
    _import(weekly, week_2, snapshot_date=WEEK_2_DAY)
    _import(weekly, week_1, snapshot_date=WEEK_1_DAY)
    _import(weekly, week_2, snapshot_date=WEEK_2_DAY)
    assert _doubled_versions(weekly) == []
    # Week 1's file, restated after week 2, corrects its own day only.
    assert _amounts(weekly, "0069A")[-2:] == [
        ("2025-03-07", 30000.0),
        ("2025-03-14", 32000.0),
    ]


def _amounts(path: Path, deal_id: str) -> list[tuple]:
    with store.connect(path, read_only=True) as con:
        rows = con.execute(
            "SELECT valid_from::DATE, amount FROM deal_history "
            "WHERE deal_id = ? ORDER BY valid_from",
            [deal_id],
        ).fetchall()
    return [(str(day), amount) for day, amount in rows]


def test_an_import_that_would_double_a_version_changes_nothing(
    base_db, tmp_path, monkeypatch
):
    # A writer fault that inserts a version twice is caught before commit.
    from dealcase.importing import writer

    insert = writer._insert_versions

    def insert_twice(con, versions):
        insert(con, versions)
        insert(con, versions)

    monkeypatch.setattr(writer, "_insert_versions", insert_twice)
    before = everything(base_db)
    changed = [r.replace("25000", "26000") for r in ROWS]
    with pytest.raises(ValueError, match="006S2 would have two versions at 2025-"):
        _import(
            base_db,
            _opportunities(tmp_path / "next" / "Opportunity.csv", changed),
            snapshot_date=dt.date(2025, 3, 1),
        )
    assert everything(base_db) == before
