"""Coaching gaps and next questions on a hand-built pipeline."""

from __future__ import annotations

import datetime as dt

import pytest
from test_case_builders import add_answer, add_deal, new_db

from dealcase import store
from dealcase.coaching import coaching

AS_OF = dt.date(2025, 11, 14)
T = dt.datetime(2025, 11, 10, 9)


@pytest.fixture(scope="module")
def coach_db(tmp_path_factory):
    path = new_db(tmp_path_factory.mktemp("coach"))
    with store.connect(path) as con:
        add_deal(con, "A1", amount=10_000.0)
        add_answer(con, "A1", "economic_buyer", "confirmed", T)
        add_deal(con, "A2", amount=20_000.0)
        add_answer(con, "A2", "budget", "assumed", T)
        add_answer(con, "A2", "economic_buyer", "risk", T)
        add_deal(con, "A3", amount=1_000.0, close_date=dt.date(2026, 2, 1))
        add_deal(con, "B1", owner="Ben Ito", team="West", amount=5_000.0)
        add_deal(
            con,
            "WON",
            outcome="won",
            closed_on=dt.date(2025, 10, 1),
            close_date=dt.date(2025, 10, 1),
        )
    return path


@pytest.fixture(scope="module")
def result(coach_db):
    with store.connect(coach_db) as con:
        return coaching(
            con, AS_OF, quarter="2025Q4", likelihood={"A1": 0.5, "A2": 0.25}
        )


def gap(result, group, dimension):
    gaps = result["gaps"].set_index(["group", "dimension"])
    return gaps.loc[
        (group, dimension), ["deals_lacking", "open_deals", "value_at_stake"]
    ]


def test_gaps_weight_money_by_likelihood(result):
    # Values: A1 10,000 x 0.5, A2 20,000 x 0.25, B1 5,000 x 1 (no likelihood).
    assert gap(result, "Ada Moreno", "economic_buyer").tolist() == [1, 2, 5_000.0]
    assert gap(result, "Ada Moreno", "budget").tolist() == [1, 2, 5_000.0]
    assert gap(result, "Ada Moreno", "pain").tolist() == [2, 2, 10_000.0]
    assert gap(result, "Ben Ito", "pain").tolist() == [1, 1, 5_000.0]
    assert len(result["gaps"]) == 2 * 12
    first = result["gaps"].iloc[0]
    assert first["value_at_stake"] == 10_000.0 and first["group"] == "Ada Moreno"


def test_next_questions_by_weight_times_gap(result):
    deals = result["deals"].set_index("deal_id")
    assert list(deals.index) == ["A1", "A2", "B1"]  # A3 closes next quarter
    asks = {
        d: [q["question_id"] for q in deals.loc[d, "next_questions"]]
        for d in deals.index
    }
    assert asks["A1"] == ["compelling_event", "pain", "budget"]
    assert asks["A2"] == ["economic_buyer", "compelling_event", "pain"]
    first = deals.loc["A2", "next_questions"][0]
    assert first["status"] == "risk" and first["priority"] == 2.0
    assert first["text"].startswith("Have we met the economic buyer")
    assert deals.loc["A1", "case_score"] == pytest.approx(100 * 2 / 18)
    assert deals.loc["A2", "case_score"] == pytest.approx(100 * 0.75 / 18)
    assert deals.loc["A1", "weakest_dimension"] == "pain"


def test_filters_by_owner_and_team(coach_db):
    with store.connect(coach_db) as con:
        west = coaching(con, AS_OF, team="West")
        ada = coaching(con, AS_OF, owner="Ada Moreno", by="team")
    assert west["deals"]["deal_id"].tolist() == ["B1"]
    assert ada["deals"]["deal_id"].tolist() == ["A2", "A1", "A3"]
    assert set(ada["gaps"]["group"]) == {"East"}
    pain = ada["gaps"].set_index("dimension").loc["pain"]
    assert pain["value_at_stake"] == 31_000.0 and pain["deals_lacking"] == 3


def test_no_open_deals(coach_db):
    with store.connect(coach_db) as con:
        empty = coaching(con, AS_OF, owner="Nobody")
    assert empty["deals"].empty and empty["gaps"].empty
