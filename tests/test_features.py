"""Training rows and features: hand-computed values, and no leakage."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from dealcase import store
from dealcase.features import labelled_snapshots, open_probes, snapshot_features

D = dt.date


def _small_db(path):
    """Three deals of two owners: A won (pushed twice), B lost, C open."""
    with store.connect(path) as con:
        con.execute(
            """
            INSERT INTO stages VALUES
              ('Discover', 1, 0.1, false, false), ('Propose', 2, 0.4, false, false),
              ('Won', 9, 1.0, true, true), ('Lost', 9, 0.0, true, false)
            """
        )
        con.execute(
            """
            INSERT INTO deals (deal_id, owner, team, created_on, outcome, closed_on,
                               amount, stage, attributes)
            VALUES
              ('A', 'ann', 'east', '2024-01-01', 'won', '2024-03-01', 100, 'Won',
               '{"product": "x"}'),
              ('B', 'bob', 'east', '2024-01-05', 'lost', '2024-02-10', 50, 'Lost',
               '{"product": "y"}'),
              ('C', 'ann', 'west', '2024-02-01', 'open', NULL, 70, 'Propose', '{}')
            """
        )
        con.execute(
            """
            INSERT INTO deal_history (deal_id, valid_from, stage, amount, close_date,
                                      forecast_category, outcome)
            VALUES
              ('A', '2024-01-01 09:00', 'Discover', 80, '2024-02-01', 'pipeline',
               'open'),
              ('A', '2024-01-20 09:00', 'Propose', 90, '2024-02-15', 'best_case',
               'open'),
              ('A', '2024-02-05 09:00', 'Propose', 90, '2024-02-25', NULL, 'open'),
              ('A', '2024-03-01 10:00', 'Won', 100, '2024-03-01', 'closed', 'won'),
              ('B', '2024-01-05 09:00', 'Discover', 50, '2024-02-01', 'pipeline',
               'open'),
              ('B', '2024-02-10 09:00', 'Lost', 50, '2024-02-10', 'omitted', 'lost'),
              ('C', '2024-02-01 09:00', 'Propose', 70, '2024-03-01', 'commit', 'open')
            """
        )
        con.execute(
            """
            INSERT INTO case_answers (deal_id, question_id, status, recorded_at)
            VALUES
              ('A', 'economic_buyer', 'assumed', '2024-01-10 10:00'),
              ('A', 'economic_buyer', 'confirmed', '2024-01-25 10:00'),
              ('A', 'security_review', 'risk', '2024-01-26 08:00'),
              ('A', 'compelling_event', 'confirmed', '2024-01-26 08:00')
            """
        )
        con.execute(
            """
            INSERT INTO stakeholders (stakeholder_id, deal_id, role, influence,
                                      attitude, recorded_at)
            VALUES
              ('s1', 'A', 'economic', 'high', 'growth', '2024-01-12 10:00'),
              ('s1', 'A', 'economic', 'high', 'trouble', '2024-02-12 10:00')
            """
        )
    return path


@pytest.fixture
def small_db(tmp_path):
    return _small_db(tmp_path / "small.duckdb")


def _features(path, deal_id, as_of):
    with store.connect(path) as con:
        probes = pd.DataFrame({"deal_id": [deal_id], "as_of": [as_of]})
        return snapshot_features(con, probes)


def test_snapshots_are_weekly_and_labelled_only_when_resolved(small_db):
    with store.connect(small_db) as con:
        rows = labelled_snapshots(con, D(2024, 3, 10))
        early = labelled_snapshots(con, D(2024, 2, 20))

    # A: open from Jan 1 to Mar 1 -> snapshots Jan 7 .. Feb 25 (8 weeks)
    a = rows[rows["deal_id"] == "A"]
    assert list(a["as_of"]) == [D(2024, 1, 7) + dt.timedelta(weeks=k) for k in range(8)]
    assert set(a["won"]) == {1}
    # B closed Feb 10: its last snapshot is Feb 4, labelled lost
    b = rows[rows["deal_id"] == "B"]
    assert b["as_of"].max() == D(2024, 2, 4) and set(b["won"]) == {0}
    # C is still open: unlabelled, left out
    assert "C" not in set(rows["deal_id"])
    # with a cutoff on Feb 20, A's outcome is not known yet: only B remains,
    # on the weeks that end on the cutoff (Feb 20, 13, 6, ...)
    assert set(early["deal_id"]) == {"B"}
    assert early["as_of"].max() == D(2024, 2, 6)


def test_mechanics_are_hand_computed(small_db):
    row = _features(small_db, "A", D(2024, 2, 11)).iloc[0]

    assert row["stage"] == "Propose" and row["stage_order"] == 2
    assert row["age_days"] == 41  # Jan 1 -> Feb 11
    assert row["days_in_stage"] == 22  # Propose since Jan 20
    assert row["days_to_close"] == 14  # expected Feb 25
    assert row["pushes"] == 2 and row["push_days"] == 24  # +14 and +10 days
    assert row["pulls"] == 0
    assert row["amount_change"] == pytest.approx(90 / 80 - 1)
    assert row["amount_changes"] == 1
    assert row["forecast_category"] == "none"  # the latest version has none
    # B (bob, east) was lost on Feb 10: company prior (0 + 1) / (1 + 2) = 1/3
    assert row["owner_win_rate"] == pytest.approx(1 / 3)  # ann: no closed deal
    assert row["team_win_rate"] == pytest.approx((0 + 5 / 3) / (1 + 5))
    assert row["attr:product"] == "x"


def test_case_as_of_the_day(small_db):
    before = _features(small_db, "A", D(2024, 1, 21)).iloc[0]
    after = _features(small_db, "A", D(2024, 2, 18)).iloc[0]

    assert before["status_economic_buyer"] == "assumed"
    assert before["status_compelling_event"] == "unknown"
    assert before["status_paper_process"] == "unknown"
    assert before["case_coverage"] == pytest.approx(2.0 / 18.0)  # weight 2 of 18
    assert before["days_since_answer"] == 11
    assert before["economic_attitude"] == "growth"

    assert after["status_economic_buyer"] == "confirmed"
    assert after["status_compelling_event"] == "confirmed"
    assert after["status_paper_process"] == "risk"  # one question at risk
    assert after["status_pain"] == "unknown"  # never answered: its own level
    assert after["case_coverage"] == pytest.approx((2.0 + 1.5 + 2.0) / 18.0)
    assert after["economic_attitude"] == "trouble"
    assert after["has_economic"] == 1 and after["has_coach"] == 0


def test_no_answers_means_unknown_not_imputed(small_db):
    row = _features(small_db, "B", D(2024, 1, 21)).iloc[0]
    statuses = {v for k, v in row.items() if k.startswith("status_")}
    assert statuses == {"unknown"}
    assert row["case_coverage"] == 0 and row["has_case"] == 0
    assert row["economic_attitude"] == "none"


def test_nothing_after_the_day_changes_the_row(small_db):
    as_of = D(2024, 1, 28)
    before = _features(small_db, "A", as_of)

    with store.connect(small_db) as con:
        # the final amount, outcome, close day and current state
        con.execute(
            "UPDATE deals SET amount = 999999, amount_estimated = true, "
            "outcome = 'lost', closed_on = '2024-01-29', stage = 'Lost', "
            "close_date = '2024-01-29' WHERE deal_id = 'A'"
        )
        # later history: a closing version, pushes and amount changes
        con.execute(
            "UPDATE deal_history SET amount = 5, close_date = '2030-01-01', "
            "outcome = 'lost', stage = 'Lost' WHERE deal_id = 'A' "
            "AND valid_from > '2024-01-29'"
        )
        con.execute(
            "INSERT INTO deal_history (deal_id, valid_from, stage, amount, "
            "close_date, outcome) VALUES "
            "('A', '2024-01-29 00:00', 'Discover', 1, '2031-01-01', 'open')"
        )
        # later answers and stakeholder versions
        con.execute(
            "INSERT INTO case_answers (deal_id, question_id, status, recorded_at) "
            "VALUES ('A', 'pain', 'confirmed', '2024-01-29 00:00'), "
            "('A', 'economic_buyer', 'risk', '2024-02-20 00:00')"
        )
        con.execute(
            "INSERT INTO stakeholders (stakeholder_id, deal_id, role, attitude, "
            "recorded_at) VALUES ('s2', 'A', 'coach', 'growth', '2024-01-29 00:00')"
        )

    after = _features(small_db, "A", as_of)
    pd.testing.assert_frame_equal(before, after)


def test_something_on_the_day_does_change_the_row(small_db):
    """The guard above can fail: a fact of the as-of day itself is seen."""
    as_of = D(2024, 1, 28)
    before = _features(small_db, "A", as_of)
    with store.connect(small_db) as con:
        con.execute(
            "INSERT INTO case_answers (deal_id, question_id, status, recorded_at) "
            "VALUES ('A', 'budget', 'confirmed', '2024-01-28 23:59')"
        )
    after = _features(small_db, "A", as_of)
    assert before.iloc[0]["status_budget"] == "unknown"
    assert after.iloc[0]["status_budget"] == "confirmed"


def test_open_probes(small_db):
    with store.connect(small_db) as con:
        assert list(open_probes(con, D(2024, 3, 10))["deal_id"]) == ["C"]
        # B was lost on Feb 10, so it was still open on Feb 5
        assert list(open_probes(con, D(2024, 2, 5))["deal_id"]) == ["A", "B", "C"]
        assert list(open_probes(con, D(2024, 2, 10))["deal_id"]) == ["A", "C"]
        assert list(open_probes(con, D(2024, 2, 5), ["A"])["deal_id"]) == ["A"]
