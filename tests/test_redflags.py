"""Each red-flag rule on a hand-built deal that breaks only that rule."""

from __future__ import annotations

import datetime as dt

import pytest
from test_case_builders import add_answer, add_deal, add_stakeholder, new_db

from dealcase import store
from dealcase.redflags import RULES, close_date_pushes, red_flags, rules_frame

AS_OF = dt.date(2025, 11, 14)  # in 2025Q4 (fiscal year from January)
T = dt.datetime(2025, 10, 20, 10)


def clean_deal(con, deal_id: str, *, skip=(), people=("economic", "coach"), **deal):
    """A deal that breaks no rule, except what ``skip`` leaves out."""
    add_deal(con, deal_id, **deal)
    for question in ("economic_buyer", "compelling_event", "champion"):
        if question not in skip:
            add_answer(con, deal_id, question, "confirmed", T)
    for number, role in enumerate(people, start=1):
        add_stakeholder(
            con, deal_id, f"{deal_id}-{number}", name=f"Person {number}", role=role
        )


@pytest.fixture(scope="module")
def flag_db(tmp_path_factory):
    path = new_db(tmp_path_factory.mktemp("flags"))
    with store.connect(path) as con:
        # Ada's won deals: median 10,000.
        for deal_id, amount in (("W1", 8_000.0), ("W2", 10_000.0), ("W3", 30_000.0)):
            add_deal(
                con,
                deal_id,
                amount=amount,
                outcome="won",
                closed_on=dt.date(2025, 9, 10),
                close_date=dt.date(2025, 9, 10),
            )
        clean_deal(con, "CLEAN")
        clean_deal(con, "EB", skip=("economic_buyer",))
        add_answer(con, "EB", "economic_buyer", "assumed", T)
        clean_deal(
            con, "EB_NEXT_Q", skip=("economic_buyer",), close_date=dt.date(2026, 1, 15)
        )
        clean_deal(con, "COMMIT", forecast_category="commit")
        add_answer(con, "COMMIT", "paper_process", "confirmed", T)
        clean_deal(con, "COMMIT_OK", forecast_category="commit")
        add_answer(con, "COMMIT_OK", "paper_process", "confirmed", T)
        add_answer(con, "COMMIT_OK", "security_review", "risk", T)
        clean_deal(con, "EVENT", skip=("compelling_event",))
        add_answer(con, "EVENT", "compelling_event", "risk", T)
        clean_deal(con, "SINGLE", people=("economic",))
        clean_deal(con, "NOCOACH", skip=("champion",), people=("economic", "user"))
        clean_deal(con, "MODE", people=("coach",))
        add_stakeholder(
            con,
            "MODE",
            "MODE-9",
            name="Vera Lind",
            role="economic",
            attitude="even_keel",
        )
        # A buyer who was overconfident but was taken off the deal.
        add_stakeholder(
            con,
            "CLEAN",
            "CLEAN-9",
            name="Otto Brandt",
            role="economic",
            attitude="overconfident",
            recorded_at=dt.datetime(2025, 9, 1),
        )
        add_stakeholder(
            con,
            "CLEAN",
            "CLEAN-9",
            name="Otto Brandt",
            role="economic",
            attitude="overconfident",
            removed=True,
            recorded_at=dt.datetime(2025, 9, 2),
        )
        clean_deal(con, "BIG", amount=40_000.0)
        pushes = [
            (dt.datetime(2025, 7, 1), dt.date(2025, 12, 8)),  # later: push 1
            (dt.datetime(2025, 8, 1), dt.date(2025, 12, 5)),  # earlier
            (dt.datetime(2025, 9, 1), dt.date(2025, 12, 10)),  # push 2
            (dt.datetime(2025, 10, 1), dt.date(2025, 12, 15)),  # push 3
            (dt.datetime(2025, 11, 20), dt.date(2026, 1, 10)),  # after as-of
        ]
        clean_deal(
            con,
            "PUSHED",
            close_date=dt.date(2025, 12, 1),
            versions=[{"valid_from": v, "close_date": c} for v, c in pushes],
        )
        clean_deal(
            con,
            "PUSHED_TWICE",
            close_date=dt.date(2025, 12, 1),
            versions=[{"valid_from": v, "close_date": c} for v, c in pushes[:3]],
        )
        clean_deal(con, "NOSTEP", next_step="  ")
    return path


def flags_of(flags, deal_id):
    return flags.loc[flags["deal_id"] == deal_id, "flag"].tolist()


@pytest.fixture(scope="module")
def flags(flag_db):
    with store.connect(flag_db) as con:
        return red_flags(con, AS_OF)


@pytest.mark.parametrize(
    ("deal_id", "expected"),
    [
        ("CLEAN", []),
        ("EB", ["no_economic_buyer"]),
        ("EB_NEXT_Q", []),
        ("COMMIT", ["commit_paper_unknown"]),
        ("COMMIT_OK", []),
        ("EVENT", ["no_compelling_event"]),
        ("SINGLE", ["single_threaded"]),
        ("NOCOACH", ["no_coach"]),
        ("MODE", ["economic_buyer_mode"]),
        ("BIG", ["amount_above_usual"]),
        ("PUSHED", ["pushed_repeatedly"]),
        ("PUSHED_TWICE", []),
        ("NOSTEP", ["no_next_step"]),
        ("W1", []),  # closed deals carry no flags
    ],
)
def test_each_rule_fires_only_on_its_deal(flags, deal_id, expected):
    assert flags_of(flags, deal_id) == expected


def test_flag_texts_name_the_facts(flags):
    text = dict(zip(flags["deal_id"], flags["text"]))
    assert text["EB"] == (
        "Expected to close 2025-12-15 in 2025Q4; economic buyer access is assumed."
    )
    assert text["COMMIT"] == "In commit, but the security review is unknown."
    assert text["BIG"] == (
        "Amount 40,000 is 4.0 times Ada Moreno's median won deal (10,000)."
    )
    assert text["PUSHED"] == "The close date moved later 3 times."
    assert text["MODE"] == "Economic buyer: Vera Lind (even keel)."
    assert text["SINGLE"] == "Only one buying influence is recorded: Person 1."


def test_pushes_count_only_later_dates_known_then(flag_db):
    with store.connect(flag_db) as con:
        before = close_date_pushes(con, AS_OF, ["PUSHED"])
        after = close_date_pushes(con, dt.date(2025, 11, 30), ["PUSHED"])
    assert before["pushes"].tolist() == [3]
    assert before["days_pushed"].tolist() == [7 + 5 + 5]
    assert after["pushes"].tolist() == [4]


def test_quarter_and_deal_filter(flag_db):
    with store.connect(flag_db) as con:
        next_quarter = red_flags(con, AS_OF, ["EB", "EB_NEXT_Q"], quarter="2026Q1")
    assert next_quarter["deal_id"].tolist() == ["EB_NEXT_Q"]
    assert next_quarter["flag"].tolist() == ["no_economic_buyer"]


def test_rules_are_explained():
    table = rules_frame()
    assert len(table) == len(RULES) == 9
    assert table["flag"].is_unique
    assert all(len(text) > 40 for text in table["explanation"])


def test_no_next_step_is_the_one_of_the_version_then(tmp_path):
    """Two deals whose next step changes after the as-of date: the flag
    follows the version in force at the end of each day, not the deal's
    current next step."""
    path = new_db(tmp_path)
    with store.connect(path) as con:
        later = dt.datetime(2025, 11, 20, 9)
        clean_deal(
            con,
            "FILLED_LATER",
            next_step="Send order form",
            versions=[
                {"valid_from": dt.datetime(2025, 10, 1, 9)},
                {"valid_from": later},
            ],
        )
        clean_deal(
            con, "CLEARED_LATER", next_step=None, versions=[{"valid_from": later}]
        )
        steps = [
            ("FILLED_LATER", dt.datetime(2025, 6, 1, 9), "Call on Monday"),
            ("FILLED_LATER", dt.datetime(2025, 10, 1, 9), None),
            ("FILLED_LATER", later, "Send order form"),
            ("CLEARED_LATER", dt.datetime(2025, 6, 1, 9), "Book the demo"),
            ("CLEARED_LATER", later, None),
        ]
        for deal_id, valid_from, step in steps:
            con.execute(
                "UPDATE deal_history SET next_step = ? "
                "WHERE deal_id = ? AND valid_from = ?",
                [step, deal_id, valid_from],
            )
        on = {day: red_flags(con, day) for day in (AS_OF, dt.date(2025, 11, 25))}
        early = red_flags(con, dt.date(2025, 9, 30))
    ids = ["FILLED_LATER", "CLEARED_LATER"]
    assert [flags_of(on[AS_OF], d) for d in ids] == [["no_next_step"], []]
    assert [flags_of(on[dt.date(2025, 11, 25)], d) for d in ids] == [
        [],
        ["no_next_step"],
    ]
    assert "no_next_step" not in flags_of(early, "FILLED_LATER")


def test_unversioned_next_step_is_not_judged_in_the_past(flag_db):
    # The fixture's versions carry no next step (a source that keeps only
    # the current one): today's next step counts today, not for a past day.
    with store.connect(flag_db) as con:
        past = red_flags(con, dt.date(2025, 10, 25))
        today = red_flags(con, AS_OF)
    assert "no_next_step" not in set(past["flag"])
    assert flags_of(today, "NOSTEP") == ["no_next_step"]
    assert (today["flag"] == "no_next_step").sum() == 1
