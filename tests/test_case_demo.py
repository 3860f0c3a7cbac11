"""The business case on the demo company: the vectorised queries agree with
a plain row-by-row reading of the stored answers."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import DEMO_TODAY

from dealcase import store
from dealcase.case import (
    case_scores,
    case_scores_many,
    close_date_pushes,
    current_questions,
    red_flags,
)
from dealcase.history import deals_as_of

PAST = DEMO_TODAY - dt.timedelta(days=200)


def plain_scores(con, as_of: dt.date) -> pd.Series:
    """The score definition applied answer by answer in pandas."""
    questions = current_questions(con).frame().set_index("question_id")
    answers = con.execute("SELECT * FROM case_answers").df()
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    seen = answers[
        (answers["recorded_at"] < cutoff) & answers["question_id"].isin(questions.index)
    ]
    latest = (
        seen.sort_values(["recorded_at", "answer_id"])
        .groupby(["deal_id", "question_id"])
        .tail(1)
    )
    credit = latest["status"].map({"confirmed": 1.0, "assumed": 0.5}).fillna(0.0)
    age = (pd.Timestamp(as_of) - latest["recorded_at"].dt.normalize()).dt.days
    credit = credit.where(age < 30, credit / 2)
    earned = (
        (credit * latest["question_id"].map(questions["weight"]))
        .groupby(latest["deal_id"])
        .sum()
    )
    return 100 * earned / questions["weight"].sum()


@pytest.mark.parametrize("as_of", [DEMO_TODAY, PAST])
def test_scores_match_a_plain_reading(demo_db, as_of):
    with store.connect(demo_db, read_only=True) as con:
        scores = case_scores(con, as_of).set_index("deal_id")["case_score"]
        expected = plain_scores(con, as_of)
        existing = deals_as_of(con, as_of)["deal_id"]
    assert set(scores.index) == set(existing)
    assert len(scores) > 100
    expected = expected.reindex(scores.index).fillna(0.0)
    assert (scores - expected).abs().max() < 1e-9
    assert scores.between(0, 100).all()


def test_many_snapshots_match_single_dates(demo_db):
    with store.connect(demo_db, read_only=True) as con:
        today = case_scores(con, DEMO_TODAY).set_index("deal_id")
        past = case_scores(con, PAST).set_index("deal_id")
        ids = list(past.index[:50])
        snapshots = pd.DataFrame(
            {"deal_id": ids + ids, "as_of": [PAST] * 50 + [DEMO_TODAY] * 50}
        )
        many = case_scores_many(con, snapshots)
    expected = list(past.loc[ids, "case_score"]) + list(today.loc[ids, "case_score"])
    assert many["case_score"].tolist() == pytest.approx(expected)


def test_red_flags_only_on_open_deals_and_pushes_recount(demo_db):
    with store.connect(demo_db, read_only=True) as con:
        flags = red_flags(con, DEMO_TODAY)
        states = deals_as_of(con, DEMO_TODAY)
        pushes = close_date_pushes(con, DEMO_TODAY).set_index("deal_id")["pushes"]
        history = con.execute(
            "SELECT deal_id, valid_from, close_date FROM deal_history "
            "WHERE valid_from < ? ORDER BY deal_id, valid_from",
            [dt.datetime.combine(DEMO_TODAY + dt.timedelta(days=1), dt.time())],
        ).df()
    open_ids = set(states.loc[states["outcome"] == "open", "deal_id"])
    assert set(flags["deal_id"]) <= open_ids
    assert not flags.duplicated(["deal_id", "flag"]).any()

    previous = history.groupby("deal_id")["close_date"].shift()
    later = (history["close_date"] > previous).groupby(history["deal_id"]).sum()
    assert pushes.reindex(later.index).tolist() == later.tolist()
    pushed = set(flags.loc[flags["flag"] == "pushed_repeatedly", "deal_id"])
    assert pushed == {d for d in open_ids if later.get(d, 0) >= 3}
