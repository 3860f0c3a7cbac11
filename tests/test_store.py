import datetime as dt

import duckdb
import pytest

from dealcase import store
from dealcase.history import deals_as_of
from dealcase.periods import Quarter, parse_quarter, quarter_of


def test_new_file_gets_current_schema(tmp_path):
    path = tmp_path / "x.duckdb"
    with store.connect(path) as con:
        version = con.execute("SELECT max(version) FROM schema_version").fetchone()
    assert version[0] == store.SCHEMA_VERSION


def test_reopening_does_not_migrate_again(tmp_path):
    path = tmp_path / "x.duckdb"
    with store.connect(path):
        pass
    with store.connect(path) as con:
        before = store.migrate(con)
        rows = con.execute("SELECT count(*) FROM schema_version").fetchone()[0]
    assert before == store.SCHEMA_VERSION
    assert rows == len(store.MIGRATIONS)


def test_newer_file_is_refused(tmp_path):
    path = tmp_path / "x.duckdb"
    with store.connect(path) as con:
        con.execute("INSERT INTO schema_version VALUES (999, 'future', now())")
    with pytest.raises(store.StoreError, match="newer"):
        with store.connect(path):
            pass


def test_transaction_rolls_back_on_error(tmp_path):
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(duckdb.Error):
            with store.transaction(con):
                con.execute("INSERT INTO meta VALUES ('a', '1')")
                con.execute("INSERT INTO meta VALUES ('a', '2')")
        assert con.execute("SELECT count(*) FROM meta").fetchone()[0] == 0


def test_data_version_changes_on_write(tmp_path):
    path = tmp_path / "x.duckdb"
    with store.connect(path):
        pass
    before = store.data_version(path)
    with store.connect(path) as con:
        con.execute("CREATE TABLE filler AS SELECT range AS n FROM range(200000)")
        con.execute("CHECKPOINT")
    assert store.data_version(path) != before


def test_deals_as_of_uses_the_version_in_effect_at_end_of_day(tmp_path):
    with store.connect(tmp_path / "x.duckdb") as con:
        con.execute(
            "INSERT INTO deals (deal_id, name, created_on, outcome) "
            "VALUES ('D1', 'Invented Ltd', DATE '2025-01-02', 'won')"
        )
        versions = [
            ("2025-01-02 09:00", "Qualify", 10_000, "2025-03-31", "open"),
            ("2025-01-20 09:00", "Propose", 10_000, "2025-03-31", "open"),
            ("2025-02-10 09:00", "Propose", 12_000, "2025-05-30", "open"),
            ("2025-03-01 09:00", "Negotiate", 12_000, "2025-04-15", "open"),
            ("2025-04-10 15:00", "Closed Won", 12_000, "2025-04-10", "won"),
        ]
        for valid_from, stage, amount, close, outcome in versions:
            con.execute(
                "INSERT INTO deal_history (deal_id, valid_from, stage, amount, "
                "close_date, outcome) VALUES ('D1', ?, ?, ?, ?, ?)",
                [valid_from, stage, amount, close, outcome],
            )
        on_feb_1 = deals_as_of(con, dt.date(2025, 2, 1))
        on_feb_10 = deals_as_of(con, dt.date(2025, 2, 10))
        before = deals_as_of(con, dt.date(2025, 1, 1))
        on_close = deals_as_of(con, dt.date(2025, 4, 10))

    assert on_feb_1.loc[0, "close_date"].date() == dt.date(2025, 3, 31)
    assert on_feb_1.loc[0, "stage"] == "Propose"
    assert on_feb_10.loc[0, "amount"] == 12_000
    assert len(before) == 0
    assert on_close.loc[0, "outcome"] == "won"


@pytest.mark.parametrize(
    ("day", "start_month", "name"),
    [
        (dt.date(2017, 7, 1), 1, "2017Q3"),
        (dt.date(2017, 12, 31), 1, "2017Q4"),
        (dt.date(2017, 1, 31), 2, "2016Q4"),
        (dt.date(2017, 2, 1), 2, "2017Q1"),
    ],
)
def test_quarter_of(day, start_month, name):
    assert quarter_of(day, start_month).name == name


def test_quarter_bounds():
    q = parse_quarter("2017Q3")
    assert (q.start, q.end) == (dt.date(2017, 7, 1), dt.date(2017, 9, 30))
    assert Quarter(2017, 4).next().name == "2018Q1"
    assert parse_quarter("2018q1", 2).start == dt.date(2018, 2, 1)


def test_a_file_of_another_kind_is_refused_not_opened_in_memory(tmp_path):
    csv = tmp_path / "deals.csv"
    csv.write_text("id,amount\n1,100\n")
    with pytest.raises(store.StoreError, match="not a DuckDB database"):
        with store.connect(csv):
            pass
    assert csv.read_text() == "id,amount\n1,100\n"


def test_remembered_results_follow_the_data(tmp_path):
    calls = []
    memo = store.Remembered(size=2)
    with store.connect(tmp_path / "m.duckdb") as con:
        first = memo.get(con, ("a",), lambda: calls.append("a") or len(calls))
        assert memo.get(con, ("a",), lambda: calls.append("again")) == first
        store.set_meta(con, "today", "2025-01-02")  # the data changed
        assert memo.get(con, ("a",), lambda: calls.append("a2") or len(calls)) == 2
        memo.get(con, ("b",), lambda: calls.append("b"))
    assert calls == ["a", "a2", "b"]
    assert len(memo) == 2  # the oldest entry was dropped
