"""The Maven CRM sample imported through data/mappings/maven.toml.

Expected figures are counted from the files (see ../shared/data/README.md).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest

from dealcase import store
from dealcase.errors import InputError
from dealcase.history import deals_as_of
from dealcase.importing import import_files
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def maven(maven_db):
    with store.connect(maven_db, read_only=True) as con:
        yield con


def test_outcome_counts(maven):
    rows = dict(
        maven.execute("SELECT outcome, count(*) FROM deals GROUP BY 1").fetchall()
    )
    assert rows == {"won": 4238, "lost": 2473, "open": 2089}


def test_stage_counts(maven):
    rows = dict(
        maven.execute("SELECT stage, count(*) FROM deals GROUP BY 1").fetchall()
    )
    assert rows == {"Won": 4238, "Lost": 2473, "Engaging": 1589, "Prospecting": 500}


def test_won_value_by_close_quarter(maven):
    rows = maven.execute(
        """
        SELECT year(closed_on) || 'Q' || quarter(closed_on), sum(amount)
        FROM deals WHERE outcome = 'won' GROUP BY 1 ORDER BY 1
        """
    ).fetchall()
    assert rows == [
        ("2017Q1", 1_134_672),
        ("2017Q2", 3_086_111),
        ("2017Q3", 2_982_255),
        ("2017Q4", 2_802_496),
    ]


def test_amounts_never_give_away_the_outcome(maven):
    # Lost deals carry close_value 0 and open ones none: both take the list
    # price, marked as estimated; only won deals have a known amount.
    rows = maven.execute(
        """
        SELECT outcome, bool_and(amount_estimated), bool_or(amount_estimated),
               min(amount)
        FROM deals GROUP BY 1 ORDER BY 1
        """
    ).fetchall()
    assert rows[0][:3] == ("lost", True, True)
    assert rows[1][:3] == ("open", True, True)
    assert rows[2][:3] == ("won", False, False)
    assert rows[0][3] == 55  # MG Special list price, not 0


def test_gtxpro_alias_takes_gtx_pro_list_price(maven):
    # 6EQRRQVD... any open GTXPro deal: its amount is GTX Pro's 4821.
    prices = maven.execute(
        """
        SELECT DISTINCT amount FROM deals
        WHERE outcome <> 'won' AND json_extract_string(attributes, '$.product')
              = 'GTXPro'
        """
    ).fetchall()
    assert prices == [(4821.0,)]


def test_open_versions_show_list_price_for_won_deals(maven):
    # 1C1I7A6R: GTX Plus Basic (list 1096), engaged 2016-10-20, won 1054 on
    # 2017-03-01.
    rows = maven.execute(
        """
        SELECT valid_from, stage, amount, close_date, outcome FROM deal_history
        WHERE deal_id = '1C1I7A6R' ORDER BY valid_from
        """
    ).fetchall()
    assert rows == [
        (dt.datetime(2016, 10, 20), "Engaging", 1096.0, None, "open"),
        (dt.datetime(2017, 3, 1), "Won", 1054.0, dt.date(2017, 3, 1), "won"),
    ]


LIST_PRICES = {
    "GTX Basic": 550.0,
    "GTXPro": 4821.0,
    "MG Special": 55.0,
    "MG Advanced": 3393.0,
    "GTX Plus Pro": 5482.0,
    "GTX Plus Basic": 1096.0,
    "GTK 500": 26768.0,
}


def test_every_open_version_shows_only_what_was_known(maven):
    # While open, every deal (won ones included) shows its product's list
    # price and no close date.
    rows = maven.execute(
        """
        SELECT json_extract_string(d.attributes, '$.product') AS product,
               list(DISTINCT h.amount), count(*), count(h.close_date)
        FROM deal_history h JOIN deals d USING (deal_id)
        WHERE h.outcome = 'open' GROUP BY 1
        """
    ).fetchall()
    assert {r[0]: r[1] for r in rows} == {k: [v] for k, v in LIST_PRICES.items()}
    assert sum(r[2] for r in rows) == 8800
    assert sum(r[3] for r in rows) == 0


def test_history_rows(maven):
    # One first version per deal, one closing version per won or lost deal.
    total = maven.execute("SELECT count(*) FROM deal_history").fetchone()[0]
    assert total == 8800 + 4238 + 2473


def test_prospecting_deals_appear_at_the_data_present(maven):
    first = maven.execute(
        """
        SELECT min(h.valid_from), max(h.valid_from), count(*)
        FROM deal_history h JOIN deals d USING (deal_id)
        WHERE d.stage = 'Prospecting'
        """
    ).fetchone()
    assert first == (dt.datetime(2017, 12, 31), dt.datetime(2017, 12, 31), 500)
    before = deals_as_of(maven, dt.date(2017, 12, 30))
    assert "Prospecting" not in set(before["stage"])
    assert len(deals_as_of(maven, dt.date(2017, 12, 31))) == 8800


def test_teams_segments_and_attributes(maven):
    teams = dict(
        maven.execute("SELECT team, count(*) FROM deals GROUP BY 1").fetchall()
    )
    assert teams["Melvin Marxen"] == 1929
    assert sum(teams.values()) == 8800
    row = maven.execute(
        "SELECT segment, attributes FROM deals WHERE deal_id = '1C1I7A6R'"
    ).fetchone()
    assert row[0] == "Central"
    assert json.loads(row[1]) == {
        "employees": "2448",
        "office": "United States",
        "product": "GTX Plus Basic",
        "revenue": "718.62",
        "sector": "retail",
        "series": "GTX",
    }


def test_meta_and_stages(maven):
    meta = dict(maven.execute("SELECT key, value FROM meta").fetchall())
    assert meta["dataset"] == "maven"
    assert meta["currency"] == "USD"
    assert meta["today"] == "2017-12-31"
    stages = maven.execute(
        "SELECT stage, default_probability, is_closed, is_won FROM stages "
        "ORDER BY sort_order"
    ).fetchall()
    assert stages == [
        ("Prospecting", 0.1, False, False),
        ("Engaging", 0.4, False, False),
        ("Won", 1.0, True, True),
        ("Lost", 0.0, True, False),
    ]


def test_import_is_recorded(maven):
    summary = json.loads(
        maven.execute("SELECT summary FROM imports ORDER BY import_id").fetchone()[0]
    )
    assert summary["deals_new"] == 8800
    assert summary["history_rows"] == 15511
    assert summary["amounts_estimated"] == 2473 + 2089
    assert summary["undated_deals"] == 500


def test_reimport_of_the_same_file_changes_nothing(maven_db, copy_db, shared_data):
    from dealcase.importing import import_files

    path = copy_db(maven_db)
    with store.connect(path) as con:
        before = con.execute("SELECT * FROM deal_history ORDER BY ALL").fetchall()
        doc = import_files(
            con,
            source="table",
            files=[shared_data / "maven-crm" / "sales_pipeline.csv"],
            mapping=store.DEFAULT_DB.parent / "mappings" / "maven.toml",
        ).doc
        after = con.execute("SELECT * FROM deal_history ORDER BY ALL").fetchall()
    assert (doc["deals_new"], doc["deals_updated"], doc["deals_unchanged"]) == (
        0,
        0,
        8800,
    )
    assert doc["history_rows"] == 0
    assert after == before


def test_names_from_product_and_account(maven):
    rows = dict(
        maven.execute(
            "SELECT deal_id, name FROM deals WHERE deal_id IN ('1C1I7A6R', "
            "(SELECT min(deal_id) FROM deals WHERE account IS NULL))"
        ).fetchall()
    )
    assert rows.pop("1C1I7A6R") == "GTX Plus Basic for Cancity"
    (unnamed,) = rows.values()
    assert " for" not in unnamed and unnamed in LIST_PRICES


def test_a_missing_join_column_lists_only_the_file_own_columns(shared_data, tmp_path):
    """sales_pipeline.csv without its account column: the message names the
    file's columns, not manager and regional_office joined from
    sales_teams.csv before."""
    folder = shared_data / "maven-crm"
    for name in ("sales_teams.csv", "products.csv", "accounts.csv"):
        shutil.copy(folder / name, tmp_path / name)
    frame = pd.read_csv(folder / "sales_pipeline.csv", dtype=str, nrows=50)
    frame.drop(columns=["account"]).to_csv(tmp_path / "pipeline.csv", index=False)
    with store.connect(tmp_path / "m.duckdb") as con:
        with pytest.raises(InputError) as caught:
            import_files(
                con,
                source="table",
                files=[tmp_path / "pipeline.csv"],
                mapping=ROOT / "data" / "mappings" / "maven.toml",
            )
    message = str(caught.value)
    assert "joins on column 'account'" in message
    assert "columns: opportunity_id, sales_agent, product, deal_stage" in message
    assert "manager" not in message and "regional_office" not in message
