"""The next step is versioned: each history version holds the next step known
at that version, so the next step as of a past day is what was said then."""

from __future__ import annotations

import datetime as dt

from dealcase import store
from dealcase.history import deals_as_of
from dealcase.importing import import_files

MAPPING = {
    "dataset": "acme",
    "currency": "USD",
    "columns": {
        "deal_id": "Deal",
        "stage": "Stage",
        "amount": "Amount",
        "created_on": "Created",
        "close_date": "Close",
        "next_step": "Next",
    },
    "outcome": {"column": "Stage", "won": ["Closed Won"], "lost": ["Closed Lost"]},
}

MARCH = """Deal,Stage,Amount,Created,Close,Next
D1,Discovery,5000,2024-01-10,2024-06-30,Book the demo
D2,Proposal,1200,2024-02-01,2024-04-15,Send the quote
"""
# Two weeks later D1 has a new next step and nothing else changed; D2 too.
APRIL = MARCH.replace("Book the demo", "Meet the CFO").replace(
    "Send the quote", "Chase the signature"
)


def _table(con, path, day):
    return import_files(
        con, source="table", files=[path], mapping=MAPPING, snapshot_date=day
    ).doc


def _next_steps(con, day):
    frame = deals_as_of(con, day)
    return dict(zip(frame["deal_id"], frame["next_step"]))


def test_next_step_as_of_a_past_day_is_that_snapshots(tmp_path):
    first = tmp_path / "march.csv"
    first.write_text(MARCH, encoding="utf-8")
    second = tmp_path / "april.csv"
    second.write_text(APRIL, encoding="utf-8")
    with store.connect(tmp_path / "x.duckdb") as con:
        _table(con, first, dt.date(2024, 3, 1))
        doc = _table(con, second, dt.date(2024, 3, 15))
        versions = con.execute(
            "SELECT deal_id, valid_from, stage, next_step FROM deal_history "
            "ORDER BY 1, 2"
        ).fetchall()
        early = _next_steps(con, dt.date(2024, 3, 10))
        late = _next_steps(con, dt.date(2024, 3, 20))
        again = _table(con, second, dt.date(2024, 3, 15))
    # A change of next step alone is a change: one version per deal at the
    # second snapshot, holding its next step; the first version keeps the
    # first snapshot's.
    assert doc["snapshot_versions"] == 2
    assert versions == [
        ("D1", dt.datetime(2024, 1, 10), "Discovery", "Book the demo"),
        ("D1", dt.datetime(2024, 3, 15), "Discovery", "Meet the CFO"),
        ("D2", dt.datetime(2024, 2, 1), "Proposal", "Send the quote"),
        ("D2", dt.datetime(2024, 3, 15), "Proposal", "Chase the signature"),
    ]
    assert early == {"D1": "Book the demo", "D2": "Send the quote"}
    assert late == {"D1": "Meet the CFO", "D2": "Chase the signature"}
    assert again["history_rows"] == 0


OPPORTUNITY = (
    "Id,Name,StageName,Amount,Probability,CloseDate,IsClosed,IsWon,"
    "ForecastCategoryName,CreatedDate,NextStep\n"
    "O1,One,Negotiation,{amount},80,2024-05-31,0,0,Commit,2024-01-02 09:00:00,{step}\n"
)
HISTORY = (
    "Id,OpportunityId,CreatedDate,StageName,Amount,CloseDate,Probability,"
    "ForecastCategory\n"
    "H1,O1,2024-01-02 09:00:00,Prospecting,9000,2024-05-31,10,Pipeline\n"
    "H2,O1,2024-02-10 12:00:00,Proposal,9000,2024-05-31,60,BestCase\n"
    "H3,O1,2024-03-05 15:30:00,Negotiation,9000,2024-05-31,80,Commit\n"
)
LATER_ROW = "H4,O1,2024-04-01 08:00:00,Negotiation,9500,2024-05-31,80,Commit\n"


def _salesforce(con, folder, step, history, amount=9000):
    opportunity = folder / "Opportunity.csv"
    opportunity.write_text(
        OPPORTUNITY.format(step=step, amount=amount), encoding="utf-8"
    )
    rows = folder / "OpportunityHistory.csv"
    rows.write_text(history, encoding="utf-8")
    return import_files(con, source="salesforce", files=[opportunity], history=rows).doc


def test_salesforce_next_step_only_in_the_latest_version(tmp_path):
    with store.connect(tmp_path / "x.duckdb") as con:
        doc = _salesforce(con, tmp_path, "Legal review", HISTORY)
        first = con.execute(
            "SELECT valid_from, stage, next_step FROM deal_history ORDER BY 1"
        ).fetchall()
        # A later export: one more history row and a new next step. The
        # version that was the latest keeps the next step it had then.
        _salesforce(con, tmp_path, "Countersign", HISTORY + LATER_ROW, 9500)
        second = con.execute(
            "SELECT valid_from, amount, next_step FROM deal_history ORDER BY 1"
        ).fetchall()
        march = _next_steps(con, dt.date(2024, 3, 20))
        february = _next_steps(con, dt.date(2024, 2, 20))
    # The opportunity's state is its last history row's: no extra version.
    assert doc["history_rows"] == 3
    assert first == [
        (dt.datetime(2024, 1, 2, 9), "Prospecting", None),
        (dt.datetime(2024, 2, 10, 12), "Proposal", None),
        (dt.datetime(2024, 3, 5, 15, 30), "Negotiation", "Legal review"),
    ]
    assert second == [
        (dt.datetime(2024, 1, 2, 9), 9000.0, None),
        (dt.datetime(2024, 2, 10, 12), 9000.0, None),
        (dt.datetime(2024, 3, 5, 15, 30), 9000.0, "Legal review"),
        (dt.datetime(2024, 4, 1, 8), 9500.0, "Countersign"),
    ]
    assert march == {"O1": "Legal review"}
    assert february == {"O1": None}


HUBSPOT_HEADER = (
    "Record ID,Deal Name,Deal Stage,Pipeline,Close Date,Amount,Create Date,Next Step\n"
)


def test_hubspot_snapshots_keep_their_next_step(tmp_path):
    from dealcase.importing.hubspot import import_hubspot

    row = (
        "201,Harbor Tools,appointmentscheduled,default,2025-06-30,12000,"
        "2025-03-02 09:15,{}\n"
    )
    first = tmp_path / "deals-2025-04-01.csv"
    first.write_text(HUBSPOT_HEADER + row.format("Demo on site"), encoding="utf-8")
    second = tmp_path / "deals-2025-04-15.csv"
    second.write_text(HUBSPOT_HEADER + row.format("Pricing call"), encoding="utf-8")
    with store.connect(tmp_path / "h.duckdb") as con:
        with store.transaction(con):
            import_hubspot(con, [second, first])
        versions = con.execute(
            "SELECT valid_from, next_step FROM deal_history ORDER BY 1"
        ).fetchall()
        before = _next_steps(con, dt.date(2025, 3, 20))
        april = _next_steps(con, dt.date(2025, 4, 10))
        later = _next_steps(con, dt.date(2025, 4, 20))
    # Nothing is known of the next step before the first snapshot.
    assert versions == [
        (dt.datetime(2025, 3, 2, 9, 15), None),
        (dt.datetime(2025, 4, 1), "Demo on site"),
        (dt.datetime(2025, 4, 15), "Pricing call"),
    ]
    assert (before, april, later) == (
        {"201": None},
        {"201": "Demo on site"},
        {"201": "Pricing call"},
    )
