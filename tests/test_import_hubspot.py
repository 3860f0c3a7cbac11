"""HubSpot deal exports: stage labels and ids, snapshots as history."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dealcase import store
from dealcase.errors import InputError
from dealcase.importing.hubspot import import_hubspot, read_hubspot

HEADER = (
    "Record ID,Deal Name,Deal Stage,Pipeline,Close Date,Deal owner,Amount,"
    "Create Date,Forecast category,Deal Type\n"
)


def _export(tmp_path, name: str, rows: list[str]):
    path = tmp_path / name
    path.write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


FIRST = [
    "101,Harbor Tools,appointmentscheduled,default,2025-04-30,Ines Ruiz,12000,"
    "2025-03-02 09:15,Pipeline,newbusiness",
    "102,Kestrel Labs,Contract Sent,Sales Pipeline,2025-04-17,Omar Hale,8000,"
    "2025-02-11 14:00,Commit,",
    "103,Lumen Dairy,closedwon,default,2025-03-28,Ines Ruiz,5000,"
    "2025-01-05 08:00,Closed won,",
    "104,Nimbus Freight,1122334,776655,2025-05-15,Omar Hale,3000,"
    "2025-03-20 10:00,Pipeline,",
]


def test_stages_by_label_and_id(tmp_path):
    batch = read_hubspot([_export(tmp_path, "deals.csv", FIRST)])
    deals = batch.deals.set_index("deal_id")
    assert list(deals.index) == ["101", "102", "103"]
    assert deals.loc["101", "stage"] == "Appointment Scheduled"
    assert deals.loc["101", "probability"] == pytest.approx(0.2)
    assert deals.loc["102", "stage"] == "Contract Sent"
    assert deals.loc["102", "forecast_category"] == "commit"
    assert deals.loc["103", "outcome"] == "won"
    assert deals.loc["103", "closed_on"] == dt.datetime(2025, 3, 28)
    # The numeric stage of a numeric pipeline cannot be resolved: reported,
    # never imported as an open deal.
    assert batch.notes["unknown_stages"] == [
        {
            "file": str(tmp_path / "deals.csv"),
            "pipeline": "776655",
            "stage": "1122334",
            "count": 1,
            "lines": [5],
        }
    ]
    assert any("unknown stage id '1122334'" in s.reason for s in batch.skipped)
    # Month-end close date of an open deal is flagged; a mid-month one is not.
    attributes = {k: json.loads(v) for k, v in deals["attributes"].items()}
    assert attributes["101"]["close_date_reliable"] == "false"
    assert attributes["101"]["stage_id"] == "appointmentscheduled"
    assert "close_date_reliable" not in attributes["102"]
    stages = batch.stages.set_index("stage")
    assert stages.loc["Closed Won", "is_won"]
    assert stages.loc["Contract Sent", "default_probability"] == pytest.approx(0.9)


def test_stage_map_resolves_numeric_pipeline(tmp_path):
    stage_map = tmp_path / "stages.csv"
    stage_map.write_text(
        "pipeline,stage,label,probability,closed,won\n"
        "776655,1122334,Discovery,10%,no,no\n"
        "776655,1122399,Signed,100%,yes,yes\n"
    )
    batch = read_hubspot([_export(tmp_path, "deals.csv", FIRST), stage_map])
    deals = batch.deals.set_index("deal_id")
    assert deals.loc["104", "stage"] == "Discovery"
    assert deals.loc["104", "probability"] == pytest.approx(0.1)
    assert batch.notes["unknown_stages"] == []
    # The same id under another pipeline is still unknown.
    other = _export(
        tmp_path,
        "other.csv",
        ["201,Orbit Co,1122334,default,2025-05-15,Omar Hale,1,2025-03-20,,"],
    )
    batch = read_hubspot([other], stage_map=stage_map)
    assert batch.deals.empty and batch.notes["unknown_stages"][0]["lines"] == [2]


def test_snapshots_become_history(tmp_path):
    first = _export(tmp_path, "deals-2025-04-01.csv", FIRST[:3])
    second = _export(
        tmp_path,
        "deals-2025-04-15.csv",
        [
            # Same values written differently: not a change.
            "101,Harbor Tools,Appointment Scheduled,default,04/30/2025,Ines Ruiz,"
            '"12,000.00",2025-03-02 09:15,pipeline,newbusiness',
            # Moved to won on the 10th.
            "102,Kestrel Labs,closedwon,default,2025-04-10,Omar Hale,8500,"
            "2025-02-11 14:00,Closed won,",
            "103,Lumen Dairy,closedwon,default,2025-03-28,Ines Ruiz,5000,"
            "2025-01-05 08:00,Closed won,",
        ],
    )
    db = tmp_path / "h.duckdb"
    with store.connect(db) as con:
        with store.transaction(con):
            summary = import_hubspot(con, [second, first])
        history = con.execute(
            "SELECT deal_id, valid_from, stage, amount, outcome FROM deal_history "
            "ORDER BY deal_id, valid_from"
        ).fetchall()
        deal = con.execute(
            "SELECT stage, amount, outcome, closed_on FROM deals WHERE deal_id = '102'"
        ).fetchone()
        today = store.get_meta(con, "today")
    assert summary["deals_new"] == 3
    assert [s["snapshot_date"] for s in summary["snapshots"]] == [
        "2025-04-01",
        "2025-04-15",
    ]
    assert history == [
        (
            "101",
            dt.datetime(2025, 3, 2, 9, 15),
            "Appointment Scheduled",
            12000.0,
            "open",
        ),
        ("102", dt.datetime(2025, 2, 11, 14, 0), "Contract Sent", 8000.0, "open"),
        ("102", dt.datetime(2025, 4, 10), "Closed Won", 8500.0, "won"),
        # First seen already won: open (stage unknown) at creation, won on
        # its close date.
        ("103", dt.datetime(2025, 1, 5, 8, 0), None, 5000.0, "open"),
        ("103", dt.datetime(2025, 3, 28), "Closed Won", 5000.0, "won"),
    ]
    assert deal == ("Closed Won", 8500.0, "won", dt.date(2025, 4, 10))
    assert today == "2025-04-15"

    # Importing the same exports again changes nothing.
    with store.connect(db) as con:
        with store.transaction(con):
            again = import_hubspot(con, [first, second])
        rows = con.execute("SELECT count(*) FROM deal_history").fetchone()[0]
    assert (again["deals_new"], again["deals_updated"], again["history_rows"]) == (
        0,
        0,
        0,
    )
    assert rows == 5


def test_not_a_hubspot_export(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Id,Name\n1,a\n")
    with pytest.raises(InputError, match="no 'Record ID' column"):
        read_hubspot([path])


def test_two_undated_exports_refused(tmp_path):
    a = _export(tmp_path, "a.csv", FIRST[:1])
    b = _export(tmp_path, "b.csv", FIRST[:1])
    with pytest.raises(InputError, match="2 exports have no date"):
        read_hubspot([a, b])


def test_company_currency_amount_preferred(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text(
        "Record ID,Deal Stage,Pipeline,Amount,Currency,Amount in company currency,"
        "Close Date\n"
        "301,contractsent,default,1000,EUR,1100,2025-05-15\n"
        "302,contractsent,default,500,,,2025-05-15\n"
    )
    deals = read_hubspot([path]).deals.set_index("deal_id")
    assert deals.loc["301", "amount"] == 1100.0
    assert deals.loc["301", "amount_original"] == 1000.0
    assert json.loads(deals.loc["301", "attributes"])["currency_original"] == "EUR"
    assert deals.loc["302", "amount"] == 500.0
