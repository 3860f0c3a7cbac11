"""Pipeline history, what changed between two dates, and deal movements.

Small databases are built in ``tmp_path`` row by row, so every expected
number below is counted by hand from the rows written here (or, for the
Salesforce sample, from its OpportunityHistory.csv).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealcase import store
from dealcase.changes import (
    STEP_KINDS,
    changes_report,
    deal_movements,
    pipeline_as_of,
    pipeline_changes,
)

D = dt.date.fromisoformat


def add_deal(con, deal_id, versions, *, team="East", created=None, next_step="call"):
    """Write a deal and its versions: ``(valid_from, stage, amount, close_date,
    outcome)``; the deal row holds the last version."""
    for valid_from, stage, amount, close_date, outcome in versions:
        con.execute(
            "INSERT INTO deal_history (deal_id, valid_from, stage, amount, "
            "close_date, outcome) VALUES (?, ?, ?, ?, ?, ?)",
            [deal_id, pd.Timestamp(valid_from), stage, amount, D(close_date), outcome],
        )
    first, last = versions[0], versions[-1]
    created_on = D(created) if created else pd.Timestamp(first[0]).date()
    closed_on = pd.Timestamp(last[0]).date() if last[4] != "open" else None
    con.execute(
        "INSERT INTO deals (deal_id, name, owner, team, stage, amount, created_on, "
        "close_date, closed_on, outcome, next_step) "
        "VALUES (?, ?, 'Ana Lind', ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            deal_id,
            f"Deal {deal_id}",
            team,
            last[1],
            last[2],
            created_on,
            D(last[3]),
            closed_on,
            last[4],
            next_step,
        ],
    )


@pytest.fixture
def known_deal(tmp_path):
    path = tmp_path / "one.duckdb"
    with store.connect(path) as con:
        add_deal(
            con,
            "K1",
            [
                ("2025-01-02", "Qualify", 10_000, "2025-03-31", "open"),
                ("2025-01-20", "Propose", 10_000, "2025-03-31", "open"),
                ("2025-02-10", "Propose", 12_000, "2025-05-30", "open"),
                ("2025-03-01", "Negotiate", 12_000, "2025-04-15", "open"),
            ],
        )
    return path


def test_known_deal_movements(known_deal):
    with store.connect(known_deal) as con:
        moves = deal_movements(con).set_index("deal_id").loc["K1"]
        early = deal_movements(con, ["K1"], as_of=D("2025-02-01")).iloc[0]
        q1_feb = pipeline_as_of(con, "2025Q1", D("2025-02-01"))
        q1_mar = pipeline_as_of(con, "2025Q1", D("2025-03-01"))
        q2_mar = pipeline_as_of(con, "2025Q2", D("2025-03-01"))

    # four versions, two close-date changes: one push, one pull-in
    assert moves["versions"] == 4
    assert (moves["pushes"], moves["pull_ins"]) == (1, 1)
    assert moves["push_days"] == 60  # 2025-03-31 -> 2025-05-30
    assert moves["stage_moves"] == 2
    assert moves["amount_changes"] == 1
    assert pd.Timestamp(moves["close_date"]).date() == D("2025-04-15")
    assert pd.Timestamp(moves["last_push_on"]) == pd.Timestamp("2025-02-10")

    assert (early["pushes"], early["stage_moves"], early["amount_changes"]) == (
        0,
        1,
        0,
    )
    assert q1_feb["deal_id"].tolist() == ["K1"]
    assert pd.Timestamp(q1_feb["close_date"].iloc[0]).date() == D("2025-03-31")
    assert q1_mar.empty  # pulled in to 2025-04-15: still outside Q1
    assert q2_mar["deal_id"].tolist() == ["K1"]


@pytest.fixture
def waterfall_db(tmp_path):
    """Eight deals, each taking one path through 2025Q1 between 2025-02-01 and
    2025-02-15 (amounts chosen so each step is recognisable)."""
    path = tmp_path / "waterfall.duckdb"
    o = "open"
    with store.connect(path) as con:
        store.set_meta(con, "today", "2025-02-15")
        add_deal(con, "A", [("2025-01-05", "Propose", 1000, "2025-03-10", o)])
        add_deal(
            con,
            "B",
            [
                ("2025-01-05", "Propose", 2000, "2025-03-20", o),
                ("2025-02-05", "Propose", 2500, "2025-03-20", o),
            ],
        )
        add_deal(
            con,
            "C",
            [
                ("2025-01-05", "Propose", 3000, "2025-03-15", o),
                ("2025-02-10 09:30", "Propose", 2000, "2025-03-15", o),
            ],
        )
        add_deal(con, "D", [("2025-02-03", "Qualify", 4000, "2025-03-30", o)])
        add_deal(
            con,
            "E",
            [
                ("2025-01-05", "Qualify", 5000, "2025-04-20", o),
                ("2025-02-07", "Qualify", 5000, "2025-03-25", o),
            ],
        )
        add_deal(
            con,
            "F",
            [
                ("2025-01-05", "Propose", 6000, "2025-03-05", o),
                ("2025-02-08", "Propose", 6000, "2025-05-01", o),
            ],
        )
        add_deal(
            con,
            "G",
            [
                ("2025-01-05", "Negotiate", 7000, "2025-03-01", o),
                ("2025-02-12", "Won", 7500, "2025-02-12", "won"),
            ],
        )
        add_deal(
            con,
            "H",
            [
                ("2025-01-05", "Negotiate", 8000, "2025-03-02", o),
                ("2025-02-13", "Lost", 8000, "2025-02-13", "lost"),
            ],
        )
        # expected in Q2 all along: never in the Q1 pipeline
        add_deal(con, "I", [("2025-01-05", "Qualify", 9000, "2025-06-30", o)])
        # another team, inside Q1 at both dates with a changed amount
        add_deal(
            con,
            "W1",
            [
                ("2025-01-05", "Propose", 100, "2025-03-10", o),
                ("2025-02-11", "Propose", 150, "2025-03-10", o),
            ],
            team="West",
        )
    return path


def test_waterfall_steps_and_closure(waterfall_db):
    with store.connect(waterfall_db) as con:
        doc = pipeline_changes(
            con, D("2025-02-01"), D("2025-02-15"), quarter="2025Q1", team="East"
        )

    assert doc["start"] == 27_000  # A B C F G H at start
    assert doc["end"] == 14_500  # A B(2500) C(2000) D E at end
    steps = {s["kind"]: s for s in doc["steps"]}
    assert [s["kind"] for s in doc["steps"]] == list(STEP_KINDS)
    expected = {
        "new": (["D"], 4000),
        "pulled_in": (["E"], 5000),
        "pushed_out": (["F"], -6000),
        "won": (["G"], -7000),
        "lost": (["H"], -8000),
        "increased": (["B"], 500),
        "decreased": (["C"], -1000),
    }
    for kind, (deal_ids, amount) in expected.items():
        assert steps[kind]["deal_ids"] == deal_ids, kind
        assert steps[kind]["count"] == len(deal_ids)
        assert steps[kind]["amount"] == amount, kind
    assert doc["start"] + sum(s["amount"] for s in doc["steps"]) == doc["end"]


def test_waterfall_defaults_and_whole_company(waterfall_db):
    # defaults: a week before meta today (2025-02-08, end of day) to today;
    # quarter of the end date. F's push (02-08) is already in at the start.
    with store.connect(waterfall_db) as con:
        doc = pipeline_changes(con)
        report = changes_report(con, start=D("2025-02-01"), end=D("2025-02-15"))

    assert (doc["start_date"], doc["end_date"], doc["quarter"]) == (
        D("2025-02-08"),
        D("2025-02-15"),
        "2025Q1",
    )
    # at 02-08: A 1000, B 2500, C 3000, D 4000, E 5000, G 7000, H 8000, W1 100
    assert doc["start"] == 30_600
    assert doc["end"] == 14_650
    steps = {s["kind"]: s["deal_ids"] for s in doc["steps"]}
    assert steps == {
        "new": [],
        "pulled_in": [],
        "pushed_out": [],
        "won": ["G"],
        "lost": ["H"],
        "increased": ["W1"],
        "decreased": ["C"],
    }

    table = report.table
    assert table["step"].tolist() == ["start", *STEP_KINDS, "end"]
    assert table["running_total"].iloc[-2] == table["running_total"].iloc[-1]
    assert report.doc["start"] == 27_100 and report.doc["end"] == 14_650


def test_same_day_edits_use_the_last_version(waterfall_db):
    with store.connect(waterfall_db) as con:
        add_deal(
            con,
            "S",
            [
                ("2025-02-14 10:00", "Qualify", 50, "2025-03-01", "open"),
                ("2025-02-14 16:00", "Qualify", 50, "2025-07-01", "open"),
            ],
        )
        in_q1 = pipeline_as_of(con, "2025Q1", D("2025-02-14"))["deal_id"].tolist()
        doc = pipeline_changes(con, D("2025-02-13"), D("2025-02-14"), "2025Q1")
    assert "S" not in in_q1
    assert all("S" not in s["deal_ids"] for s in doc["steps"])


def test_start_after_end_is_refused(waterfall_db):
    from dealcase.errors import DealCaseError

    with store.connect(waterfall_db) as con, pytest.raises(DealCaseError):
        pipeline_changes(con, D("2025-02-15"), D("2025-02-01"))


def test_salesforce_sample_movements(salesforce_db):
    """Counted by hand from OpportunityHistory.csv: 62 rows, two per
    opportunity (31). In each pair only the close date differs: the first row
    says 2013-09-16, the second a date in 2018; stage and amount repeat. So
    31 pushes, no pull-ins, no stage moves and no amount changes."""
    with store.connect(salesforce_db[0], read_only=True) as con:
        moves = deal_movements(con)
        q3 = pipeline_as_of(con, "2018Q3", D("2018-10-13"))
        q4 = pipeline_as_of(con, "2018Q4", D("2018-10-13"))

    assert len(moves) == 31
    assert moves["pushes"].sum() == 31
    assert (moves["pushes"] == 1).all()
    assert moves["pull_ins"].sum() == 0
    assert moves["stage_moves"].sum() == 0
    assert moves["amount_changes"].sum() == 0
    # e.g. 0064600000J5S5TAAV: 2013-09-16 -> 2018-08-22
    one = moves.set_index("deal_id").loc["0064600000J5S5TAAV"]
    assert one["push_days"] == (D("2018-08-22") - D("2013-09-16")).days

    # open opportunities of Opportunity.csv (13) by their close date: ten in
    # 2018Q3 (J5S5T, U, X, Y, d, e, h, n, o, w), three in Q4 (a, f, x)
    assert len(q3) == 10
    assert q3["amount"].sum() == 1_770_000
    assert sorted(q4["deal_id"]) == [
        "0064600000J5S5aAAF",
        "0064600000J5S5fAAF",
        "0064600000J5S5xAAF",
    ]
    assert q4["amount"].sum() == 345_000


@pytest.mark.parametrize(
    ("start", "end", "quarter"),
    [
        ("2025-10-01", "2025-11-14", None),
        ("2025-11-07", "2025-11-14", "2025Q4"),
        ("2025-05-15", "2025-08-20", "2025Q3"),
        ("2024-12-20", "2025-01-10", "2025Q1"),
    ],
)
def test_waterfall_closes_on_the_demo(demo_db, start, end, quarter):
    with store.connect(demo_db, read_only=True) as con:
        doc = pipeline_changes(con, D(start), D(end), quarter=quarter)
        before = pipeline_as_of(con, doc["quarter"], D(start))
        after = pipeline_as_of(con, doc["quarter"], D(end))
        closed = con.execute(
            "SELECT deal_id, outcome, closed_on FROM deals WHERE outcome <> 'open'"
        ).df()

    total = doc["start"] + sum(s["amount"] for s in doc["steps"])
    assert total == pytest.approx(doc["end"], abs=1e-6)
    assert doc["start"] == pytest.approx(before["amount"].sum())
    assert doc["end"] == pytest.approx(after["amount"].sum())
    # every deal of either pipeline is in exactly one step, or unchanged
    ids = [d for s in doc["steps"] for d in s["deal_ids"]]
    assert len(ids) == len(set(ids))
    assert set(ids) <= set(before["deal_id"]) | set(after["deal_id"])
    # won and lost deals closed between the two dates
    closed = closed.set_index("deal_id")
    for kind in ("won", "lost"):
        step = next(s for s in doc["steps"] if s["kind"] == kind)
        rows = closed.loc[step["deal_ids"]]
        assert (rows["outcome"] == kind).all()
        closed_on = pd.to_datetime(rows["closed_on"]).dt.date
        assert ((closed_on > D(start)) & (closed_on <= D(end))).all()


# A random history: each deal a few versions with random dates, amounts, close
# dates and an optional closing version.
_version = st.tuples(
    st.integers(0, 120),  # days after 2025-01-01
    st.sampled_from([0, 500, 1000, 2500]),
    st.integers(-30, 200),  # close date, days after 2025-01-01
)
_deal = st.tuples(
    st.lists(_version, min_size=1, max_size=4),
    st.sampled_from(["open", "won", "lost"]),
)


@settings(max_examples=15, deadline=None)
@given(
    deals=st.lists(_deal, min_size=1, max_size=6),
    start=st.integers(0, 120),
    length=st.integers(0, 60),
)
def test_waterfall_always_closes(deals, start, length):
    import duckdb

    base = D("2025-01-01")
    con = duckdb.connect(":memory:")
    store.migrate(con)
    for number, (versions, ending) in enumerate(deals):
        days = sorted({v[0] for v in versions})
        rows = []
        for day, (_, amount, close) in zip(days, versions):
            close_on = base + dt.timedelta(days=close)
            rows.append(
                (str(base + dt.timedelta(days=day)), "S", amount, str(close_on), "open")
            )
        if ending != "open":
            last_day = base + dt.timedelta(days=days[-1] + 1)
            rows.append((str(last_day), ending, rows[-1][2], str(last_day), ending))
        add_deal(con, f"R{number}", rows)
    start_day = base + dt.timedelta(days=start)
    end_day = start_day + dt.timedelta(days=length)

    doc = pipeline_changes(con, start_day, end_day, quarter="2025Q2")
    ids = [d for s in doc["steps"] for d in s["deal_ids"]]
    assert len(ids) == len(set(ids))
    assert doc["start"] + sum(s["amount"] for s in doc["steps"]) == pytest.approx(
        doc["end"]
    )
    con.close()


def test_maven_says_why_its_waterfall_is_empty(maven_db):
    """Maven's open deals carry no expected close date: no quarter has a
    pipeline, and the report says so rather than show zeros alone."""
    from dealcase.changes import changes_report

    with store.connect(maven_db, read_only=True) as con:
        report = changes_report(con, start="2017-12-01", end="2017-12-31")
    assert report.doc["start"] == 0 and report.doc["end"] == 0
    assert any("no expected close date for open deals" in n for n in report.notes)
