"""The IBM win-loss sample: no dates, duplicate rows and repeated ids."""

from __future__ import annotations

import json

import pytest

from dealcase import store
from dealcase.importing import import_files
from dealcase.importing.table import load_mapping

ROOT = store.DEFAULT_DB.parent.parent
THROUGH_CLOSING = {
    "Elapsed Days In Sales Stage",
    "Sales Stage Change Count",
    "Total Days Identified Through Closing",
    "Total Days Identified Through Qualified",
    "Ratio Days Identified To Total Days",
    "Ratio Days Validated To Total Days",
    "Ratio Days Qualified To Total Days",
}


@pytest.fixture(scope="module")
def ibm_db(tmp_path_factory, shared_data):
    path = tmp_path_factory.mktemp("ibm") / "ibm.duckdb"
    with store.connect(path) as con:
        doc = import_files(
            con,
            source="table",
            files=[shared_data / "ibm-win-loss" / "WA_Fn-UseC_-Sales-Win-Loss.csv"],
            mapping=ROOT / "data" / "mappings" / "ibm.toml",
        ).doc
    return path, doc


def test_duplicates_collapsed_and_ids_resolved(ibm_db):
    doc = ibm_db[1]
    assert doc["rows_read"] == 78_025
    assert doc["duplicate_rows"] == 55
    assert doc["repeated_ids"] == 196
    # 196 rows repeat an id: 55 are exact copies, 141 differ and lose to the
    # last row of their id.
    assert doc["ids_resolved"] == 141
    assert doc["deals_new"] == 78_025 - 55 - 141
    reasons = {s["reason"]: s for s in doc["rows_skipped"]}
    exact = reasons["exact duplicate of an earlier row"]
    assert exact["count"] == 55
    assert exact["lines"][0] == 1277


def test_deals_only_no_history(ibm_db):
    with store.connect(ibm_db[0], read_only=True) as con:
        outcomes = dict(
            con.execute("SELECT outcome, count(*) FROM deals GROUP BY 1").fetchall()
        )
        history = con.execute("SELECT count(*) FROM deal_history").fetchone()[0]
        has_dates = store.get_meta(con, "has_dates")
        zero = con.execute("SELECT count(*) FROM deals WHERE amount = 0").fetchone()
        attributes = json.loads(
            con.execute("SELECT attributes FROM deals LIMIT 1").fetchone()[0]
        )
    assert sum(outcomes.values()) == 77_829
    assert set(outcomes) == {"won", "lost"}
    assert history == 0
    assert has_dates == "false"
    assert zero[0] > 2000
    assert "Opportunity Result" not in attributes
    assert THROUGH_CLOSING <= set(attributes)


def test_the_last_row_of_a_repeated_id_wins(ibm_db, shared_data):
    # Opportunity 4787647 appears on two lines with different values; the
    # later line is kept.
    from dealcase.importing.readers import read_table

    raw = read_table(shared_data / "ibm-win-loss" / "WA_Fn-UseC_-Sales-Win-Loss.csv")
    rows = raw.frame.loc[raw.frame["Opportunity Number"] == "4787647"]
    assert len(rows) >= 2
    last_amount = float(rows["Opportunity Amount USD"].iloc[-1])
    with store.connect(ibm_db[0], read_only=True) as con:
        amount = con.execute(
            "SELECT amount FROM deals WHERE deal_id = '4787647'"
        ).fetchone()[0]
    assert amount == last_amount


def test_early_mapping_leaves_out_through_closing_columns(shared_data):
    mapping = load_mapping(ROOT / "data" / "mappings" / "ibm-early.toml")
    header = (
        (shared_data / "ibm-win-loss" / "WA_Fn-UseC_-Sales-Win-Loss.csv")
        .read_text(encoding="utf-8")
        .splitlines()[0]
        .split(",")
    )
    assert set(mapping["exclude"]) == THROUGH_CLOSING
    assert THROUGH_CLOSING <= set(header)


def test_early_mapping_import_has_no_through_closing_attributes(tmp_path, shared_data):
    source = shared_data / "ibm-win-loss" / "WA_Fn-UseC_-Sales-Win-Loss.csv"
    lines = source.read_text(encoding="utf-8").splitlines()[:21]
    small = tmp_path / "ibm.csv"
    small.write_text("\n".join(lines + lines[-1:]) + "\n", encoding="utf-8")
    with store.connect(tmp_path / "x.duckdb") as con:
        doc = import_files(
            con,
            source="table",
            files=[small],
            mapping=ROOT / "data" / "mappings" / "ibm-early.toml",
        ).doc
        attributes = json.loads(
            con.execute("SELECT attributes FROM deals LIMIT 1").fetchone()[0]
        )
    assert doc["deals_new"] == 20
    assert doc["duplicate_rows"] == 1
    assert doc["rows_skipped"][0]["lines"] == [22]
    assert not THROUGH_CLOSING & set(attributes)
    assert "Region" in attributes
