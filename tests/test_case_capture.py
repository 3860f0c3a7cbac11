"""Recording answers and stakeholders, and two people editing one deal."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
from test_case_builders import add_deal, new_db

from dealcase import store
from dealcase.case_capture import (
    Answer,
    EditConflict,
    Stakeholder,
    _guarded_append,
    case_as_of,
    case_history,
    case_version,
    record_answers,
    record_stakeholder,
    remove_stakeholder,
    stakeholders_as_of,
)
from dealcase.errors import InputError

T0 = dt.datetime(2025, 11, 10, 9, 0)
T1 = dt.datetime(2025, 11, 14, 10, 5)
T2 = dt.datetime(2025, 11, 14, 10, 7)


@pytest.fixture
def db(tmp_path):
    path = new_db(tmp_path)
    with store.connect(path) as con:
        add_deal(con, "D1")
        add_deal(con, "D2")
    return path


def test_answers_are_appended_and_read_as_of(db):
    with store.connect(db) as con:
        assert case_version(con, "D1") == 0
        v1 = record_answers(
            con,
            "D1",
            [("budget", "assumed", "CFO mentioned it", dt.date(2025, 11, 7))],
            author="Ada Moreno",
            expected_version=0,
            recorded_at=T0,
        )
        v2 = record_answers(
            con,
            "D1",
            [Answer("budget", "confirmed", "PO number 4471"), ("pain", "risk")],
            author="Ben Ito",
            expected_version=v1,
            recorded_at=T1,
        )
        rows = con.execute("SELECT count(*) FROM case_answers").fetchone()[0]
        before = case_as_of(con, "D1", dt.date(2025, 11, 13)).set_index("question_id")
        after = case_as_of(con, "D1", dt.date(2025, 11, 14)).set_index("question_id")
        other = case_as_of(con, "D2", dt.date(2025, 11, 14))

    assert v2 > v1 > 0 and rows == 3
    assert before.loc["budget", "status"] == "assumed"
    assert before.loc["budget", "learned_on"] == pd.Timestamp(2025, 11, 7)
    assert before.loc["pain", "status"] == "unknown"
    assert not before.loc["pain", "answered"]
    assert after.loc["budget", "status"] == "confirmed"
    assert after.loc["budget", "evidence"] == "PO number 4471"
    assert after.loc["budget", "answered_by"] == "Ben Ito"
    assert after.loc["pain", "status"] == "risk"
    assert len(after) == 14 and after["text"].notna().all()
    assert (other["status"] == "unknown").all()


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (("no_such", "confirmed"), "'no_such' is not a question"),
        (("budget", "maybe"), "status 'maybe' is not one of"),
        (("budget", "confirmed", None, dt.date(2025, 11, 20)), "after the day"),
        (("budget", "confirmed", None, "last week"), "not a date"),
    ],
)
def test_bad_answers_are_refused(db, answer, words):
    with store.connect(db) as con:
        with pytest.raises(InputError, match=words):
            record_answers(
                con,
                "D1",
                [answer],
                author="Ada Moreno",
                expected_version=0,
                recorded_at=T1,
            )
        assert con.execute("SELECT count(*) FROM case_answers").fetchone()[0] == 0


def test_unknown_deal_is_refused(db):
    with store.connect(db) as con:
        with pytest.raises(InputError, match="no deal 'NOPE'"):
            record_answers(
                con, "NOPE", [("pain", "risk")], author="Ada", expected_version=0
            )


def test_second_save_is_refused_and_both_edits_survive(db):
    with store.connect(db) as con:
        opened = record_answers(
            con,
            "D1",
            [("budget", "unknown")],
            author="Ada Moreno",
            expected_version=0,
            recorded_at=T0,
        )
        # Ada and Ben both open the form now, holding version `opened`.
        record_answers(
            con,
            "D1",
            [("budget", "confirmed", "Signed budget memo")],
            author="Ben Ito",
            expected_version=opened,
            recorded_at=T1,
        )
        adas_edit = [("pain", "confirmed", "Month-end close takes 9 days")]
        with pytest.raises(EditConflict) as caught:
            record_answers(
                con,
                "D1",
                adas_edit,
                author="Ada Moreno",
                expected_version=opened,
                recorded_at=T2,
            )
        conflict = caught.value
        assert str(conflict).startswith(
            "D1 changed while you were editing it (budget unknown -> confirmed by "
            "Ben Ito at 2025-11-14 10:05); your changes were not saved"
        )
        assert conflict.edit == adas_edit
        assert conflict.changes[0]["item"] == "budget"
        assert con.execute("SELECT count(*) FROM case_answers").fetchone()[0] == 2

        # Ada saves her kept edit again with the fresh version.
        record_answers(
            con,
            "D1",
            conflict.edit,
            author="Ada Moreno",
            expected_version=conflict.current_version,
            recorded_at=T2,
        )
        case = case_as_of(con, "D1", dt.date(2025, 11, 14)).set_index("question_id")
        history = case_history(con, "D1")

    assert case.loc["budget", ["status", "answered_by"]].tolist() == [
        "confirmed",
        "Ben Ito",
    ]
    assert case.loc["pain", ["status", "answered_by"]].tolist() == [
        "confirmed",
        "Ada Moreno",
    ]
    assert history["change"].tolist() == [
        "pain: unanswered -> confirmed",
        "budget: unknown -> confirmed",
        "budget: unanswered -> unknown",
    ]
    assert history["author"].tolist() == ["Ada Moreno", "Ben Ito", "Ada Moreno"]


def test_check_and_append_are_one_transaction(db):
    """A writer that starts while another is between its check and its commit
    is refused, though it could not see the other's rows yet."""
    with store.connect(db) as first, store.connect(db) as second:
        outcome = {}

        def write_while_second_saves(con):
            con.execute(
                "INSERT INTO case_answers (deal_id, question_id, status, "
                "answered_by, recorded_at) VALUES ('D1', 'budget', 'risk', "
                "'Ben Ito', ?)",
                [T1],
            )
            try:
                record_answers(
                    second,
                    "D1",
                    [("pain", "confirmed")],
                    author="Ada Moreno",
                    expected_version=0,
                    recorded_at=T1,
                )
                outcome["second"] = "saved"
            except EditConflict as error:
                outcome["second"] = error

        _guarded_append(first, "D1", "answers", 0, [], write_while_second_saves)
        refused = outcome["second"]
        assert isinstance(refused, EditConflict)
        assert str(refused).startswith("someone else saved D1 at the same moment")
        assert refused.edit == [("pain", "confirmed")]
        rows = first.execute(
            "SELECT question_id, answered_by FROM case_answers"
        ).fetchall()
    assert rows == [("budget", "Ben Ito")]


def test_concurrent_writers_exactly_one_wins(db):
    results: list = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def save(author: str) -> None:
        with store.connect(db) as con:
            start.wait(timeout=10)
            try:
                record_answers(
                    con,
                    "D1",
                    [("champion", "assumed", f"{author} thinks so")],
                    author=author,
                    expected_version=0,
                )
                outcome = "saved"
            except EditConflict:
                outcome = "refused"
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=save, args=(name,))
        for name in ("Ada Moreno", "Ben Ito", "Cleo Park", "Dan Ruiz")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == ["refused"] * 3 + ["saved"]
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM case_answers").fetchone()[0] == 1


def test_stakeholders_versions_and_removal(db):
    with store.connect(db) as con:
        saved = record_stakeholder(
            con,
            "D1",
            Stakeholder(
                "Vera Lind",
                "economic",
                title="CFO",
                influence="high",
                attitude="even_keel",
            ),
            author="Ada Moreno",
            expected_version=0,
            recorded_at=T0,
        )
        assert saved.stakeholder_id == "D1-P1"
        coach = record_stakeholder(
            con,
            "D1",
            {"name": "Sam Okafor", "role": "coach", "attitude": "growth"},
            author="Ada Moreno",
            expected_version=saved.version,
            recorded_at=T0,
        )
        changed = record_stakeholder(
            con,
            "D1",
            Stakeholder(
                "Vera Lind",
                "economic",
                title="CFO",
                attitude="growth",
                stakeholder_id="D1-P1",
            ),
            author="Ben Ito",
            expected_version=coach.version,
            recorded_at=T1,
        )
        with pytest.raises(EditConflict, match="Vera Lind economic, even_keel -> "):
            record_stakeholder(
                con,
                "D1",
                {"name": "Lee Chan", "role": "user"},
                author="Ada Moreno",
                expected_version=coach.version,
            )
        remove_stakeholder(
            con,
            "D1",
            "D1-P2",
            author="Ada Moreno",
            expected_version=changed.version,
            recorded_at=T2,
        )
        on_10th = stakeholders_as_of(con, "D1", dt.date(2025, 11, 10))
        on_14th = stakeholders_as_of(con, "D1", dt.date(2025, 11, 14))
        with pytest.raises(InputError, match="attitude 'grumpy'"):
            record_stakeholder(
                con,
                "D1",
                {"name": "X", "role": "user", "attitude": "grumpy"},
                author="Ada",
                expected_version=changed.version,
            )
        versions = con.execute("SELECT count(*) FROM stakeholders").fetchone()[0]
        history = case_history(con, "D1")

    assert on_10th[["name", "attitude"]].values.tolist() == [
        ["Vera Lind", "even_keel"],
        ["Sam Okafor", "growth"],
    ]
    assert on_14th[["name", "attitude", "recorded_by"]].values.tolist() == [
        ["Vera Lind", "growth", "Ben Ito"]
    ]
    assert versions == 4  # nothing updated or deleted
    assert history["change"].tolist() == [
        "Sam Okafor: coach, growth -> removed",
        "Vera Lind: economic, even_keel -> economic, growth",
        "Sam Okafor: added -> coach, growth",
        "Vera Lind: added -> economic, even_keel",
    ]


def test_an_edit_after_records_stamped_later_today_is_the_latest(db):
    """A demo built today, or a sheet imported earlier today, may hold
    answers and people stamped later today than the clock: an edit made now
    must still read as the latest, never be hidden behind them."""
    now = dt.datetime.now().replace(microsecond=0)
    ahead = now + dt.timedelta(hours=3)
    with store.connect(db) as con:
        store.set_meta(con, "today", now.date().isoformat())
        version = record_answers(
            con,
            "D1",
            [("champion", "confirmed", "Sponsor named")],
            author="Demo Writer",
            expected_version=0,
            recorded_at=ahead,
        )
        record_answers(
            con,
            "D1",
            [("champion", "risk", "Sponsor left")],
            author="Ada Moreno",
            expected_version=version,
        )
        saved = record_stakeholder(
            con,
            "D1",
            {"name": "Ivo Marsh", "role": "coach"},
            author="Demo Writer",
            expected_version=0,
            recorded_at=ahead,
        )
        record_stakeholder(
            con,
            "D1",
            {
                "stakeholder_id": saved.stakeholder_id,
                "name": "Ivo Marsh",
                "role": "coach",
                "attitude": "trouble",
            },
            author="Ada Moreno",
            expected_version=saved.version,
        )
        case = case_as_of(con, "D1").set_index("question_id")
        people = stakeholders_as_of(con, "D1")
    assert case.loc["champion", "status"] == "risk"
    assert case.loc["champion", "answered_by"] == "Ada Moreno"
    assert people.set_index("name").loc["Ivo Marsh", "attitude"] == "trouble"


def test_recording_time_is_now_for_live_data_and_the_present_day_otherwise(db):
    from dealcase.case_capture import recording_time

    with store.connect(db) as con:
        # the fixture's present, 2025-11-14, lies in the past
        assert recording_time(con) == dt.datetime(2025, 11, 14, 23, 59, 59)
        store.set_meta(con, "today", dt.date.today().isoformat())
        moment = recording_time(con)
    assert abs(moment - dt.datetime.now()) < dt.timedelta(seconds=5)


def test_a_conflict_names_a_person_added_meanwhile_as_added(db):
    with store.connect(db) as con:
        record_stakeholder(
            con,
            "D1",
            {"name": "Olu Brandt", "role": "technical", "attitude": "even_keel"},
            author="Ben Ito",
            expected_version=0,
            recorded_at=T1,
        )
        with pytest.raises(EditConflict) as caught:
            record_stakeholder(
                con,
                "D1",
                {"name": "Lee Chan", "role": "user"},
                author="Ada Moreno",
                expected_version=0,
            )
    assert (
        "(Olu Brandt added: technical, even_keel by Ben Ito at 2025-11-14 10:05)"
        in (str(caught.value))
    )
