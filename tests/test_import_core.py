"""Rules every import follows: one transaction, idempotent re-imports,
snapshot versions, mapping proposals and previews."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealcase import store
from dealcase.errors import InputError
from dealcase.importing import (
    MappingRequired,
    import_files,
    preview_import,
    propose_mapping,
    render_mapping,
)
from dealcase.importing.readers import read_table
from dealcase.importing.table import load_mapping

MAPPING = {
    "dataset": "acme",
    "currency": "USD",
    "columns": {
        "deal_id": "Deal",
        "owner": "Rep",
        "stage": "Stage",
        "amount": "Amount",
        "created_on": "Created",
        "close_date": "Close",
    },
    "outcome": {"column": "Stage", "won": ["Closed Won"], "lost": ["Closed Lost"]},
    "attributes": {"region": "Region"},
}

FIRST_EXPORT = """Deal,Rep,Stage,Amount,Created,Close,Region
D1,Ann Vale,Discovery,375000,2024-01-10,2024-06-30,North
D2,Bo Lind,Proposal,1200,2024-02-01,2024-04-15,South
D3,Bo Lind,Closed Won,900,2024-01-05,2024-03-20,South
"""


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(con):
    """Every row of every table, and the sequences' next values."""
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
    assert {"deals", "deal_history", "imports", "case_answers"} <= set(state)
    return state


def run(con, path, **kwargs):
    return import_files(con, source="table", files=[path], mapping=MAPPING, **kwargs)


def test_table_import_and_history(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    with store.connect(tmp_path / "x.duckdb") as con:
        doc = run(con, path).doc
        versions = con.execute(
            "SELECT deal_id, valid_from, stage, outcome FROM deal_history ORDER BY 1, 2"
        ).fetchall()
        today = store.get_meta(con, "today")
    assert (doc["deals_new"], doc["history_rows"]) == (3, 4)
    assert versions == [
        ("D1", dt.datetime(2024, 1, 10), "Discovery", "open"),
        ("D2", dt.datetime(2024, 2, 1), "Proposal", "open"),
        ("D3", dt.datetime(2024, 1, 5), None, "open"),
        ("D3", dt.datetime(2024, 3, 20), "Closed Won", "won"),
    ]
    assert today == "2024-03-20"


def test_second_import_adds_nothing(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path)
        before = snapshot(con)
        doc = run(con, path).doc
        after = snapshot(con)
    assert (doc["deals_new"], doc["deals_updated"], doc["deals_unchanged"]) == (0, 0, 3)
    assert doc["history_rows"] == 0
    assert before["deals"] == after["deals"]
    assert before["deal_history"] == after["deal_history"]
    assert len(after["imports"]) == 2


def test_formatting_only_differences_are_not_changes(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    reformatted = write(
        tmp_path / "again.csv",
        FIRST_EXPORT.replace("375000", "375000.0").replace("1200,", '" 1,200.00 ",'),
    )
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path)
        doc = run(con, reformatted).doc
    assert doc["deals_unchanged"] == 3
    assert doc["history_rows"] == 0


def test_changed_deal_gets_a_version_at_the_snapshot_date(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    later = write(
        tmp_path / "later.csv",
        FIRST_EXPORT.replace(
            "Proposal,1200,2024-02-01,2024-04-15",
            "Closed Lost,1200,2024-02-01,2024-04-20",
        ),
    )
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path)
        doc = run(con, later, snapshot_date=dt.date(2024, 5, 2)).doc
        versions = con.execute(
            "SELECT valid_from, stage, close_date, outcome FROM deal_history "
            "WHERE deal_id = 'D2' ORDER BY 1"
        ).fetchall()
    assert (doc["deals_updated"], doc["deals_unchanged"]) == (1, 2)
    # The table's dates give the closing version its day; no extra
    # snapshot version is needed because that is the file's state.
    assert versions == [
        (dt.datetime(2024, 2, 1), "Proposal", dt.date(2024, 4, 15), "open"),
        (dt.datetime(2024, 4, 20), "Closed Lost", dt.date(2024, 4, 20), "lost"),
    ]
    assert doc["history_rows"] == 1


def test_open_deal_change_is_dated_at_the_snapshot(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    later = write(
        tmp_path / "later.csv",
        FIRST_EXPORT.replace("Discovery,375000", "Negotiation,410000"),
    )
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path)
        doc = run(con, later, snapshot_date=dt.date(2024, 5, 2)).doc
        versions = con.execute(
            "SELECT valid_from, stage, amount FROM deal_history "
            "WHERE deal_id = 'D1' ORDER BY 1"
        ).fetchall()
        today = store.get_meta(con, "today")
    assert versions == [
        (dt.datetime(2024, 1, 10), "Discovery", 375000.0),
        (dt.datetime(2024, 5, 2), "Negotiation", 410000.0),
    ]
    assert doc["snapshot_versions"] == 1
    assert today == "2024-05-02"


def test_failing_import_leaves_database_unchanged(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    broken = write(
        tmp_path / "broken.csv",
        FIRST_EXPORT.replace("D2,Bo Lind,Proposal,1200", "D2,Bo Lind,Proposal,12OO"),
    )
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path)
        before = snapshot(con)
        with pytest.raises(InputError) as caught:
            run(con, broken)
        assert snapshot(con) == before
    error = caught.value
    assert error.file == str(broken)
    assert (error.line, error.column) == (3, "Amount")
    assert "12OO" in str(error)


def test_failure_while_writing_rolls_back(tmp_path, monkeypatch):
    from dealcase.importing import writer

    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path)
        before = snapshot(con)
        changed = write(tmp_path / "b.csv", FIRST_EXPORT.replace("375000", "5"))

        def fail(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(writer, "_write_stages", fail)
        with pytest.raises(RuntimeError):
            run(con, changed)
        assert snapshot(con) == before


def test_bad_date_names_file_line_and_column(tmp_path):
    broken = write(
        tmp_path / "broken.csv",
        FIRST_EXPORT + "D4,Cy Mor,Discovery,50,2024-13-45,2024-07-01,East\n",
    )
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(InputError) as caught:
            run(con, broken)
        assert store.is_empty(con)
    assert (caught.value.line, caught.value.column) == (5, "Created")


def test_reimport_never_touches_case_answers_or_stakeholders(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path)
        con.execute(
            "INSERT INTO case_answers (deal_id, question_id, status, recorded_at) "
            "VALUES ('D1', 'pain', 'confirmed', TIMESTAMP '2024-02-01 09:00')"
        )
        con.execute(
            "INSERT INTO stakeholders (stakeholder_id, deal_id, name, recorded_at) "
            "VALUES ('s1', 'D1', 'Dana Roe', TIMESTAMP '2024-02-01 09:00')"
        )
        before = snapshot(con)
        run(con, write(tmp_path / "b.csv", FIRST_EXPORT.replace("375000", "5")))
        after = snapshot(con)
    assert after["case_answers"] == before["case_answers"]
    assert after["stakeholders"] == before["stakeholders"]
    assert after["deals"] != before["deals"]


def test_missing_mapping_is_proposed_and_refused(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(MappingRequired) as caught:
            import_files(con, source="table", files=[path])
        assert store.is_empty(con)
    proposal = caught.value.proposal
    assert proposal["columns"] == {
        "deal_id": "Deal",
        "owner": "Rep",
        "stage": "Stage",
        "amount": "Amount",
        "created_on": "Created",
        "close_date": "Close",
        "segment": "Region",
    }
    assert proposal["outcome"] == {
        "column": "Stage",
        "won": ["Closed Won"],
        "lost": [],
    }
    assert "--mapping" in str(caught.value)


def test_proposal_round_trips_through_toml(tmp_path):
    raw = read_table(write(tmp_path / "deals.csv", FIRST_EXPORT))
    proposal = propose_mapping(raw)
    saved = write(tmp_path / "mapping.toml", render_mapping(proposal))
    assert load_mapping(saved) == proposal
    with store.connect(tmp_path / "x.duckdb") as con:
        doc = import_files(
            con, source="table", files=[tmp_path / "deals.csv"], mapping=saved
        ).doc
        row = con.execute(
            "SELECT segment, close_date, attributes FROM deals WHERE deal_id = 'D1'"
        ).fetchone()
    assert doc["deals_new"] == 3
    assert row == ("North", dt.date(2024, 6, 30), "{}")


def test_unknown_mapping_key_is_refused(tmp_path):
    saved = write(tmp_path / "m.toml", '[columns]\ndeal_id = "Deal"\n[colums]\n')
    with pytest.raises(InputError, match="colums"):
        load_mapping(saved)


def test_preview_writes_nothing(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    preview = preview_import(source="table", files=[path], rows=2)
    assert preview["proposed"] is True
    assert preview["deal_count"] == 3
    assert list(preview["deals"]["deal_id"]) == ["D1", "D2"]
    assert preview["error"] is None
    used = preview_import(source="table", files=[path], mapping=MAPPING)
    assert used["proposed"] is False
    assert list(used["deals"]["outcome"]) == ["open", "open", "won"]


def test_rates_convert_amounts(tmp_path):
    export = (
        "Deal,Stage,Amount,Currency,Created\n"
        "E1,Discovery,1000,EUR,2024-01-10\n"
        "E2,Discovery,500,USD,2024-01-11\n"
    )
    path = write(tmp_path / "deals.csv", export)
    rates = write(tmp_path / "rates.csv", "currency,rate\nUSD,1\nEUR,0.8\n")
    mapping = {
        "columns": {
            "deal_id": "Deal",
            "stage": "Stage",
            "amount": "Amount",
            "currency": "Currency",
            "created_on": "Created",
        }
    }
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(InputError, match="rates"):
            import_files(con, source="table", files=[path], mapping=mapping)
        doc = import_files(
            con, source="table", files=[path], mapping=mapping, rates=rates
        ).doc
        rows = con.execute(
            "SELECT deal_id, amount, amount_original, currency FROM deals ORDER BY 1"
        ).fetchall()
        history = con.execute(
            "SELECT amount FROM deal_history ORDER BY deal_id"
        ).fetchall()
    assert rows == [("E1", 1250.0, 1000.0, "EUR"), ("E2", 500.0, 500.0, "USD")]
    assert history == [(1250.0,), (500.0,)]
    assert doc["currencies_converted"] == 1


def test_currency_written_in_amounts_is_converted(tmp_path):
    export = "Deal,Stage,Amount,Created\nF1,Discovery,€1.250,50,2024-01-10\n"
    export = export.replace("€1.250,50", '"€1.250,50"')
    path = write(tmp_path / "deals.csv", export)
    mapping = {
        "columns": {
            "deal_id": "Deal",
            "stage": "Stage",
            "amount": "Amount",
            "created_on": "Created",
        }
    }
    with store.connect(tmp_path / "x.duckdb") as con:
        import_files(
            con,
            source="table",
            files=[path],
            mapping=mapping,
            rates={"USD": 1.0, "EUR": 0.5},
        )
        row = con.execute(
            "SELECT amount, amount_original, currency FROM deals"
        ).fetchone()
    assert row == (2501.0, 1250.5, "EUR")


def test_progress_is_reported(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    seen = []
    with store.connect(tmp_path / "x.duckdb") as con:
        run(con, path, progress=lambda fraction, message: seen.append(fraction))
    assert seen[0] == 0.0
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


def test_hubspot_source_goes_through_the_common_writer(tmp_path):
    export = (
        "Record ID,Deal Name,Deal Stage,Pipeline,Close Date,Deal owner,Amount,"
        "Create Date\n"
        "201,Quarry Works,closedwon,default,2025-03-28,Ines Ruiz,5000,"
        "2025-01-05 08:00\n"
        "202,Tern Optics,Contract Sent,Sales Pipeline,2025-04-17,Omar Hale,8000,"
        "2025-02-11 14:00\n"
    )
    path = write(tmp_path / "deals.csv", export)
    with store.connect(tmp_path / "x.duckdb") as con:
        doc = import_files(con, source="hubspot", files=[path]).doc
        again = import_files(con, source="hubspot", files=[path]).doc
        rows = con.execute(
            "SELECT deal_id, outcome, amount FROM deals ORDER BY 1"
        ).fetchall()
        recorded = con.execute("SELECT count(*) FROM imports").fetchone()[0]
    assert rows == [("201", "won", 5000.0), ("202", "open", 8000.0)]
    assert doc["source"] == "hubspot"
    assert doc["deals_new"] == 2
    assert (again["deals_unchanged"], again["history_rows"]) == (2, 0)
    assert recorded == 2


def test_history_file_is_refused_for_tables(tmp_path):
    path = write(tmp_path / "deals.csv", FIRST_EXPORT)
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(InputError, match="--history"):
            run(con, path, history=path)


@settings(max_examples=60, deadline=None)
@given(cents=st.integers(min_value=0, max_value=10**11))
def test_amount_spellings_compare_equal(cents):
    import pandas as pd

    from dealcase.importing.writer import value_keys

    amount = cents / 100
    spellings = pd.DataFrame(
        {"amount": [amount, float(f"{amount:.2f}"), round(amount, 2) + 1e-9]}
    )
    keys = value_keys(spellings, ["amount"])
    assert keys.nunique() == 1
    other = pd.DataFrame({"amount": [amount + 0.01]})
    assert value_keys(other, ["amount"]).iloc[0] != keys.iloc[0]


def test_several_tables_in_one_import(tmp_path):
    first = write(tmp_path / "a.csv", FIRST_EXPORT)
    second = write(
        tmp_path / "b.csv",
        "Deal,Rep,Stage,Amount,Created,Close,Region\n"
        "D9,Cy Mor,Discovery,50,2024-03-01,2024-09-30,East\n",
    )
    with store.connect(tmp_path / "x.duckdb") as con:
        report = import_files(
            con, source="table", files=[first, second], mapping=MAPPING
        )
        deals = con.execute("SELECT count(*) FROM deals").fetchone()[0]
    assert report.doc["rows_read"] == 4
    assert report.doc["deals_new"] == 4
    assert deals == 4
