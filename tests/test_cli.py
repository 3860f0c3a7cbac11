"""The command line as a user meets it: one JSON document on stdout, one line
on stderr when something is wrong, never a traceback."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run_cli(*args, db=None):
    command = [sys.executable, "-m", "dealcase", *args]
    if db is not None:
        command[4:4] = ["--db", str(db)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_forecast_json_is_one_document_with_the_design_fields(demo_db):
    result = run_cli("forecast", "--quarter", "2025Q4", "--format", "json", db=demo_db)

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    for field in (
        "quarter",
        "as_of",
        "currency",
        "booked",
        "expected",
        "p10",
        "p50",
        "p90",
        "target",
        "p_reach_target",
        "open_deals",
        "new_business",
    ):
        assert field in doc
    assert doc["p10"] <= doc["p50"] <= doc["p90"]
    assert doc["as_of"] == "2025-11-14"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("forecast", "--quarter", "2025-3"), "is not a quarter"),
        (("deals", "--quarter", "2025Q4", "--as-of", "14/11/2025"), "not a date"),
        # the demo's present is 2025-11-14: a later date is not known
        (
            ("forecast", "--quarter", "2025Q4", "--as-of", "2025-11-15"),
            "--as-of 2025-11-15 is after the data's present, 2025-11-14",
        ),
        (
            ("changes", "--from", "2025-11-01", "--to", "2026-01-05"),
            "--to 2026-01-05 is after the data's present, 2025-11-14",
        ),
        (("forecast", "--quarter", "1999Q1"), "1999Q1 ends before the data begins"),
        (
            ("backtest", "--quarters", "1999Q1"),
            "1999Q1: not a finished quarter of the data",
        ),
    ],
)
def test_bad_arguments_get_one_line(demo_db, args, expected):
    result = run_cli(*args, db=demo_db)

    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_missing_database_is_named(tmp_path):
    missing = tmp_path / "nowhere.duckdb"
    result = run_cli("slips", "--quarter", "2025Q3", db=missing)

    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert not missing.exists()
    assert len(result.stderr.strip().splitlines()) == 1


def test_failed_first_import_leaves_no_database_file(tmp_path):
    bad = tmp_path / "deals.csv"
    bad.write_text("Id,Name,Amount\n006A,Harbor Tools,1000\n")  # no stage column
    db = tmp_path / "new.duckdb"
    result = run_cli("import", "--source", "salesforce", str(bad), db=db)

    assert result.returncode == 1
    assert "deals.csv" in result.stderr
    assert not db.exists()
    assert not (tmp_path / "new.duckdb.wal").exists()


def test_a_broken_question_set_is_reported_and_the_last_valid_one_used(
    demo_db, copy_db, tmp_path
):
    import os

    broken = tmp_path / "questions.toml"
    shipped = (ROOT / "data" / "questions.toml").read_text(encoding="utf-8")
    broken.write_text(shipped.replace('id = "budget"', 'id = "pain"'), "utf-8")
    env = {**os.environ, "DEALCASE_QUESTIONS": str(broken)}
    db = str(copy_db(demo_db))
    result = subprocess.run(
        [sys.executable, "-m", "dealcase", "deals", "--db", db, "--quarter", "2025Q4"]
        + ["--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: the question set was not loaded" in result.stderr
    assert "questions.toml, line" in result.stderr and "used twice" in result.stderr
    assert json.loads(result.stdout)
