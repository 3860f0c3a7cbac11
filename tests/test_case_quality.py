"""Case score and dimension status on hand-built deals."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from test_case_builders import add_answer, add_deal, new_db

from dealcase import store
from dealcase.case_quality import (
    case_dimensions_as_of,
    case_scores,
    case_scores_many,
)

T = dt.datetime
# Weights of data/questions.toml add up to 18.
TOTAL_WEIGHT = 18.0


@pytest.fixture(scope="module")
def scored_db(tmp_path_factory):
    path = new_db(tmp_path_factory.mktemp("scores"))
    with store.connect(path) as con:
        add_deal(con, "A")
        add_deal(con, "B")
        add_deal(con, "LATE", created_on=dt.date(2025, 11, 20))
        # A, as of 2025-11-14:
        add_answer(con, "A", "pain", "confirmed", T(2025, 11, 10, 9))  # 1.5
        add_answer(con, "A", "root_cause", "confirmed", T(2025, 10, 15, 12))
        # 30 days old: stale, half of 1.0
        add_answer(con, "A", "impact", "assumed", T(2025, 10, 16, 8))  # 29 days: 0.5
        add_answer(con, "A", "budget", "assumed", T(2025, 11, 1, 9))  # 0.75
        add_answer(con, "A", "economic_buyer", "confirmed", T(2025, 10, 1, 9))
        # 44 days old: stale, half of 2.0
        add_answer(con, "A", "champion", "risk", T(2025, 11, 2, 9))  # 0
        add_answer(con, "A", "compelling_event", "confirmed", T(2025, 9, 1, 9))
        add_answer(con, "A", "compelling_event", "unknown", T(2025, 11, 12, 9))
        add_answer(con, "A", "security_review", "confirmed", T(2025, 11, 20, 9))
        # recorded after the as-of date: not seen
        add_answer(con, "A", "no_such_question", "confirmed", T(2025, 11, 1, 9))
    return path


def test_case_score_matches_hand_computation(scored_db):
    with store.connect(scored_db) as con:
        scores = case_scores(con, dt.date(2025, 11, 14))

    assert scores["deal_id"].tolist() == ["A", "B"]  # LATE does not exist yet
    a = scores.set_index("deal_id").loc["A"]
    earned = 1.5 + 0.5 + 0.5 + 0.75 + 1.0
    assert a["case_score"] == pytest.approx(100 * earned / TOTAL_WEIGHT)
    assert a["pain"] == pytest.approx((1.5 + 0.5) / 2.5)
    assert a["budget"] == pytest.approx(0.5)
    assert a["economic_buyer"] == pytest.approx(0.5)
    assert a["champion"] == 0.0
    assert a["compelling_event"] == 0.0
    assert a["paper_process"] == 0.0
    assert a["stale_count"] == 2
    assert a["answered_count"] == 7
    b = scores.set_index("deal_id").loc["B"]
    assert b["case_score"] == 0.0 and b["stale_count"] == 0


def test_case_score_changes_with_as_of(scored_db):
    with store.connect(scored_db) as con:
        early = case_scores(con, dt.date(2025, 9, 1), deal_ids=["A"])
        late = case_scores(con, dt.date(2025, 11, 20), deal_ids=["A"])

    # 2025-09-01: only the compelling event (weight 2), confirmed that day.
    assert early["case_score"].iloc[0] == pytest.approx(100 * 2 / TOTAL_WEIGHT)
    # 2025-11-20: + security review 1.5; root cause (36 d), impact (35 d)
    # and budget (19 d) ... impact turns stale: 0.25; economic buyer stale.
    earned = 1.5 + 0.5 + 0.25 + 0.75 + 1.0 + 1.5
    assert late["case_score"].iloc[0] == pytest.approx(100 * earned / TOTAL_WEIGHT)
    assert late["stale_count"].iloc[0] == 3


def test_case_scores_many_agrees_with_single_dates(scored_db):
    days = [dt.date(2025, 9, 1), dt.date(2025, 11, 14), dt.date(2025, 11, 20)]
    snapshots = pd.DataFrame(
        {"deal_id": ["A", "B", "A", "A", "A"], "as_of": [days[1], days[1], *days]}
    )
    with store.connect(scored_db) as con:
        many = case_scores_many(con, snapshots)
        single = {d: case_scores(con, d).set_index("deal_id") for d in days}

    assert many["deal_id"].tolist() == ["A", "B", "A", "A", "A"]
    for row in many.itertuples():
        expected = single[row.as_of].loc[row.deal_id, "case_score"]
        assert row.case_score == pytest.approx(expected)


def test_dimension_takes_worst_status(scored_db):
    with store.connect(scored_db) as con:
        dims = case_dimensions_as_of(con, dt.date(2025, 11, 20), deal_ids=["A"])

    by_dim = dims.set_index("dimension")
    assert len(dims) == 12
    # paper process: security review confirmed, paper_process unanswered
    assert by_dim.loc["paper_process", "status"] == "unknown"
    assert by_dim.loc["pain", "status"] == "confirmed"
    assert by_dim.loc["pain", "stale"]  # root cause is stale
    assert by_dim.loc["champion", "status"] == "risk"
    assert by_dim.loc["impact", "status"] == "assumed"
    assert by_dim.loc["budget", "recorded_at"] == pd.Timestamp(2025, 11, 1, 9)
    assert pd.isna(by_dim.loc["metrics", "recorded_at"])
