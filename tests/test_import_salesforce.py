"""The Salesforce sample export: Opportunity.csv with OpportunityHistory.csv."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dealcase import store
from dealcase.errors import InputError
from dealcase.importing import import_files


@pytest.fixture
def sf(salesforce_db):
    with store.connect(salesforce_db[0], read_only=True) as con:
        yield con


def test_summary_counts(salesforce_db):
    doc = salesforce_db[1]
    assert doc["rows_read"] == 31
    assert doc["deals_new"] == 31
    assert doc["history_rows_read"] == 62
    # Every deal's last history row matches its state: nothing is added.
    assert doc["history_rows"] == 62
    assert doc["rows_skipped"] == []
    assert doc["today"] == dt.date(2018, 10, 13)


def test_outcomes(sf):
    rows = dict(sf.execute("SELECT outcome, count(*) FROM deals GROUP BY 1").fetchall())
    assert rows == {"won": 18, "open": 13}
    won = sf.execute("SELECT sum(amount) FROM deals WHERE outcome = 'won'").fetchone()
    assert won[0] == 3_645_000


def test_history_keeps_all_62_rows_in_export_order(sf):
    assert sf.execute("SELECT count(*) FROM deal_history").fetchone()[0] == 62
    rows = sf.execute(
        """
        SELECT valid_from, close_date, stage, probability, forecast_category
        FROM deal_history WHERE deal_id = '0064600000J5S5TAAV' ORDER BY valid_from
        """
    ).fetchall()
    moment = dt.datetime(2018, 10, 13, 17, 16, 45)
    assert rows == [
        (moment, dt.date(2013, 9, 16), "Qualification", 0.1, "pipeline"),
        (
            moment + dt.timedelta(microseconds=1),
            dt.date(2018, 8, 22),
            "Qualification",
            0.1,
            "pipeline",
        ),
    ]


def test_fields(sf):
    row = sf.execute(
        """
        SELECT name, account, owner, stage, amount, probability, created_on,
               close_date, closed_on, forecast_category, attributes
        FROM deals WHERE deal_id = '0064600000J5S5VAAV'
        """
    ).fetchone()
    assert row[:10] == (
        "Express Logistics Standby Generator",
        "0014600001TvgfcAAB",
        "00546000001l1cJAAQ",
        "Closed Won",
        220000.0,
        1.0,
        dt.date(2018, 10, 13),
        dt.date(2018, 7, 6),
        dt.date(2018, 7, 6),
        "closed",
    )
    attributes = json.loads(row[10])
    assert attributes["Type"] == "New Customer"
    assert "CampaignId" not in attributes
    assert set(attributes) <= {
        "Type",
        "LeadSource",
        "Description",
        "DeliveryInstallationStatus__c",
        "TrackingNumber__c",
        "OrderNumber__c",
        "CurrentGenerators__c",
        "MainCompetitors__c",
    }


def test_won_history_rows_are_won(sf):
    rows = sf.execute(
        "SELECT outcome, forecast_category, count(*) FROM deal_history "
        "GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert rows == [("open", "pipeline", 26), ("won", "closed", 36)]


def test_stages_in_salesforce_order(sf):
    stages = sf.execute(
        "SELECT stage, default_probability, is_won FROM stages ORDER BY sort_order"
    ).fetchall()
    assert stages[0] == ("Prospecting", 0.1, False)
    assert stages[-1] == ("Closed Won", 1.0, True)
    assert len(stages) == 9


def test_second_import_changes_nothing(salesforce_db, shared_data, copy_db):
    folder = shared_data / "salesforce-sample"
    path = copy_db(salesforce_db[0])
    with store.connect(path) as con:
        doc = import_files(
            con,
            source="salesforce",
            files=[folder / "Opportunity.csv"],
            history=folder / "OpportunityHistory.csv",
        ).doc
        versions = con.execute("SELECT count(*) FROM deal_history").fetchone()[0]
    assert (doc["deals_new"], doc["deals_updated"], doc["deals_unchanged"]) == (
        0,
        0,
        31,
    )
    assert doc["history_rows"] == 0
    assert versions == 62


def test_forecast_category_spellings_and_placeholders(tmp_path):
    header = (
        "Id,Name,AccountId,StageName,Amount,Probability,CloseDate,IsClosed,"
        "IsWon,ForecastCategoryName,CreatedDate,CampaignId\n"
    )
    rows = [
        "A1,One,000000000000000AAA,Negotiation,1000,60,2024-03-01,0,0,BestCase,"
        "2024-01-02 10:00:00,000000000000000AAA",
        "A2,Two,ACC2,Proposal,2000.0,40,2024-03-05,0,0,Best Case,2024-01-03 10:00:00,",
        "A3,Three,ACC3,Proposal,3000,40,2024-03-09,0,0,Forecast,2024-01-04 10:00:00,",
        "A4,Four,ACC3,Closed Lost,500,0,2024-02-01,1,0,Omitted,2024-01-05 10:00:00,",
    ]
    path = tmp_path / "Opportunity.csv"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    with store.connect(tmp_path / "x.duckdb") as con:
        doc = import_files(con, source="salesforce", files=[path]).doc
        deals = con.execute(
            "SELECT deal_id, account, forecast_category, outcome, closed_on "
            "FROM deals ORDER BY 1"
        ).fetchall()
        versions = con.execute(
            "SELECT deal_id, valid_from, outcome FROM deal_history ORDER BY 1, 2"
        ).fetchall()
    assert deals == [
        ("A1", None, "best_case", "open", None),
        ("A2", "ACC2", "best_case", "open", None),
        ("A3", "ACC3", "commit", "open", None),
        ("A4", "ACC3", "omitted", "lost", dt.date(2024, 2, 1)),
    ]
    # No history file: a creation version each, and a closing version for the
    # lost deal (its close date is after its creation).
    assert versions == [
        ("A1", dt.datetime(2024, 1, 2, 10), "open"),
        ("A2", dt.datetime(2024, 1, 3, 10), "open"),
        ("A3", dt.datetime(2024, 1, 4, 10), "open"),
        ("A4", dt.datetime(2024, 1, 5, 10), "open"),
        ("A4", dt.datetime(2024, 2, 1), "lost"),
    ]
    assert doc["history_rows"] == 5


def test_reimport_without_history_adds_nothing_before_it(
    salesforce_db, shared_data, copy_db
):
    # The Opportunity file alone gives each deal a creation version at its
    # CreatedDate, the moment of its first stored history row: made-up
    # versions neither correct nor precede stored history.
    path = copy_db(salesforce_db[0])
    with store.connect(path) as con:
        doc = import_files(
            con,
            source="salesforce",
            files=[shared_data / "salesforce-sample" / "Opportunity.csv"],
        ).doc
        versions = con.execute("SELECT count(*) FROM deal_history").fetchone()[0]
    assert doc["deals_unchanged"] == 31
    assert doc["history_rows"] == 0
    assert versions == 62


def _variant(shared_data, tmp_path):
    """The sample export as another org would write it: Windows-1252, US
    dates, two currencies, float noise, a blank amount and both spellings of
    Best Case."""
    import csv

    from dealcase.importing.readers import read_table

    raw = read_table(shared_data / "salesforce-sample" / "Opportunity.csv")
    frame = raw.frame.copy()
    frame["CurrencyIsoCode"] = "USD"
    frame.loc[0, "CurrencyIsoCode"] = "EUR"
    frame.loc[0, "Name"] = "Dickenson Mobile Generatoren München"
    frame.loc[1, "Amount"] = "16120999.999999998"
    frame.loc[4, "Amount"] = ""
    frame.loc[0, "ForecastCategoryName"] = "BestCase"
    frame.loc[1, "ForecastCategoryName"] = "Best Case"
    frame["CloseDate"] = frame["CloseDate"].map(
        lambda v: dt.datetime.strptime(v[:10], "%Y-%m-%d").strftime("%m/%d/%Y")
    )
    path = tmp_path / "Opportunity.csv"
    with open(path, "w", encoding="cp1252", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(frame.columns)
        writer.writerows(frame.itertuples(index=False))
    return path


def test_export_of_another_org(shared_data, tmp_path):
    path = _variant(shared_data, tmp_path)
    rates = tmp_path / "CurrencyType.csv"
    rates.write_text("IsoCode,ConversionRate\nUSD,1\nEUR,0.8\n", encoding="utf-8")
    with store.connect(tmp_path / "x.duckdb") as con:
        doc = import_files(
            con, source="salesforce", files=[path], rates=rates, date_order="mdy"
        ).doc
        rows = con.execute(
            """
            SELECT deal_id, name, amount, amount_original, currency,
                   forecast_category, close_date
            FROM deals WHERE deal_id IN ('0064600000J5S5TAAV',
                '0064600000J5S5UAAV', '0064600000J5S5XAAV')
            ORDER BY deal_id
            """
        ).fetchall()
    assert doc["deals_new"] == 31
    assert doc["currencies_converted"] == 1
    assert rows == [
        (
            "0064600000J5S5TAAV",
            "Dickenson Mobile Generatoren München",
            18750.0,
            15000.0,
            "EUR",
            "best_case",
            dt.date(2018, 8, 22),
        ),
        (
            "0064600000J5S5UAAV",
            "United Oil Office Portable Generators",
            16121000.0,
            16121000.0,
            "USD",
            "best_case",
            dt.date(2018, 8, 10),
        ),
        (
            "0064600000J5S5XAAV",
            "Grand Hotels Kitchen Generator",
            None,
            None,
            "USD",
            "pipeline",
            dt.date(2018, 7, 1),
        ),
    ]


def test_other_currency_without_rates_is_refused(shared_data, tmp_path):
    path = _variant(shared_data, tmp_path)
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(InputError, match="--rates"):
            import_files(con, source="salesforce", files=[path], date_order="mdy")
        assert store.is_empty(con)


def test_corrected_history_row_is_updated_in_place(
    salesforce_db, shared_data, copy_db, tmp_path
):
    # The same history row exported again with another amount corrects the
    # stored version at that moment instead of adding one.
    folder = shared_data / "salesforce-sample"
    text = (folder / "OpportunityHistory.csv").read_text(encoding="utf-8")
    first_row = text.splitlines()[1]
    assert '"15000","1500"' in first_row
    history = tmp_path / "OpportunityHistory.csv"
    history.write_text(
        text.replace(first_row, first_row.replace('"15000","1500"', '"16000","1600"')),
        encoding="utf-8",
    )
    path = copy_db(salesforce_db[0])
    with store.connect(path) as con:
        doc = import_files(
            con,
            source="salesforce",
            files=[folder / "Opportunity.csv"],
            history=history,
        ).doc
        amounts = con.execute(
            "SELECT amount FROM deal_history WHERE deal_id = '0064600000J5S5TAAV' "
            "ORDER BY valid_from"
        ).fetchall()
        total = con.execute("SELECT count(*) FROM deal_history").fetchone()[0]
    assert doc["history_rows_corrected"] == 1
    assert doc["history_rows"] == 0
    assert amounts == [(16000.0,), (15000.0,)]
    assert total == 62
