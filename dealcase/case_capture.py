"""Recording what reps learn: answers to the question set and the buying
influences (stakeholders) of a deal.

Both are append-only: a change is a new row, nothing is updated or
deleted, so the case as it stood on any day can be rebuilt and every change
shows who made it and when.

No edit is lost when two people edit one deal at once. A form holds the
deal's version token (:func:`case_version`) from when it was opened and
passes it back as ``expected_version``. The check and the append run in one
transaction that also touches the deal's row, so two writers cannot both
pass the check: the second is refused with :class:`EditConflict`, which
says what changed meanwhile and carries the refused edit, so the form can
show it again and save it with the fresh version.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import duckdb
import pandas as pd

from dealcase.case_quality import question_states
from dealcase.case_questions import QuestionSet, current_questions
from dealcase.errors import DealCaseError, InputError
from dealcase.periods import PeriodError, end_of_day, parse_date, resolve_as_of
from dealcase.store import STATUSES

logger = logging.getLogger(__name__)

ROLES = ("economic", "user", "technical", "coach")
INFLUENCES = ("high", "medium", "low")
ATTITUDES = ("growth", "trouble", "even_keel", "overconfident")
PARTS = ("answers", "stakeholders")


@dataclass(frozen=True)
class Answer:
    """One answer as a rep gives it; ``learned_on`` is the day it was
    learned (not after the day it is recorded)."""

    question_id: str
    status: str
    evidence: str | None = None
    learned_on: dt.date | None = None


@dataclass(frozen=True)
class Stakeholder:
    """A buying influence. Leave ``stakeholder_id`` empty to add a person;
    give it to record a new version of one already on the deal."""

    name: str
    role: str
    title: str | None = None
    influence: str | None = None
    attitude: str | None = None
    last_contact: dt.date | None = None
    stakeholder_id: str | None = None
    removed: bool = False


class SavedStakeholder(NamedTuple):
    stakeholder_id: str
    version: int


class EditConflict(DealCaseError):
    """The deal's case changed after the form was opened; nothing was saved.

    Attributes
    ----------
    deal_id, expected_version, current_version
        The token the form held and the one to save with now.
    changes
        What others recorded meanwhile: a list of dicts ``item, old, new,
        by, at`` (for answers ``item`` is the question id).
    edit
        The refused edit as it was passed (a list of :class:`Answer`, or a
        :class:`Stakeholder`), to keep in the form and save again.
    part
        ``answers`` or ``stakeholders``.
    """

    def __init__(
        self,
        deal_id: str,
        *,
        part: str,
        expected_version: int,
        current_version: int,
        changes: list[dict],
        edit,
    ):
        self.deal_id = deal_id
        self.part = part
        self.expected_version = expected_version
        self.current_version = current_version
        self.changes = changes
        self.edit = edit
        if changes:
            before = "added:" if part == "stakeholders" else "unanswered ->"
            listed = "; ".join(
                (
                    f"{c['item']} {c['old']} -> {c['new']}"
                    if c["old"]
                    else f"{c['item']} {before} {c['new']}"
                )
                + f" by {c['by'] or 'someone'} at "
                f"{pd.Timestamp(c['at']):%Y-%m-%d %H:%M}"
                for c in changes
            )
            what = f"{deal_id} changed while you were editing it ({listed})"
        else:
            what = f"someone else saved {deal_id} at the same moment"
        super().__init__(
            f"{what}; your changes were not saved and are still in the form: "
            "check them against the current case and save again"
        )


def _as_answer(item) -> Answer:
    if isinstance(item, Answer):
        return item
    if isinstance(item, Mapping):
        return Answer(**{k: item.get(k) for k in Answer.__dataclass_fields__})
    values = list(item) + [None] * (4 - len(item))
    return Answer(*values[:4])


def _as_stakeholder(item) -> Stakeholder:
    if isinstance(item, Stakeholder):
        return item
    known = Stakeholder.__dataclass_fields__
    return Stakeholder(**{k: v for k, v in dict(item).items() if k in known})


def _optional_date(value, what: str, latest: dt.date) -> dt.date | None:
    if value is None or (not isinstance(value, dt.date) and pd.isna(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    try:
        day = parse_date(value)
    except PeriodError as error:
        raise InputError(f"{what}: {error}") from error
    if day > latest:
        raise InputError(
            f"{what} is {day}, after the day it is recorded ({latest}); "
            "a date in the future cannot have happened yet"
        )
    return day


def validate_answers(
    answers: Iterable, questions: QuestionSet, recorded_on: dt.date
) -> list[Answer]:
    """Check answers and return them as :class:`Answer` with dates parsed.

    Raises :class:`InputError` naming the question and what is wrong: an
    unknown question id, a status outside confirmed/assumed/unknown/risk, a
    ``learned_on`` that is not a date or lies after ``recorded_on``, or the
    same question twice.
    """
    checked: list[Answer] = []
    seen: set[str] = set()
    for raw in answers:
        answer = _as_answer(raw)
        if answer.question_id not in questions:
            raise InputError(
                f"'{answer.question_id}' is not a question of the question set"
            )
        if answer.question_id in seen:
            raise InputError(f"'{answer.question_id}' is answered twice in one save")
        seen.add(answer.question_id)
        if answer.status not in STATUSES:
            raise InputError(
                f"'{answer.question_id}': status {answer.status!r} is not one of "
                f"{', '.join(STATUSES)}"
            )
        evidence = answer.evidence
        if evidence is not None and not isinstance(evidence, str):
            evidence = None if pd.isna(evidence) else str(evidence)
        evidence = evidence.strip() or None if evidence else None
        learned_on = _optional_date(
            answer.learned_on, f"'{answer.question_id}': learned on", recorded_on
        )
        checked.append(replace(answer, evidence=evidence, learned_on=learned_on))
    return checked


def validate_stakeholder(stakeholder, recorded_on: dt.date) -> Stakeholder:
    """Check a stakeholder; raises :class:`InputError` saying what is wrong."""
    person = _as_stakeholder(stakeholder)
    name = (person.name or "").strip() if isinstance(person.name, str) else ""
    if not name:
        raise InputError("a stakeholder needs a name")
    for value, allowed, label in (
        (person.role, ROLES, "role"),
        (person.influence, INFLUENCES, "influence"),
        (person.attitude, ATTITUDES, "attitude"),
    ):
        if label == "role" and value is None:
            raise InputError(f"{name}: give a role ({', '.join(ROLES)})")
        if value is not None and value not in allowed:
            raise InputError(
                f"{name}: {label} {value!r} is not one of {', '.join(allowed)}"
            )
    last_contact = _optional_date(
        person.last_contact, f"{name}: last contact", recorded_on
    )
    title = person.title.strip() or None if isinstance(person.title, str) else None
    return replace(person, name=name, title=title, last_contact=last_contact)


def case_version(
    con: duckdb.DuckDBPyConnection, deal_id: str, part: str = "answers"
) -> int:
    """The version token of a deal's answers or stakeholders.

    A form keeps it from when it was opened and passes it as
    ``expected_version``; it is the highest answer id (``part="answers"``)
    or stakeholder version id (``part="stakeholders"``) of the deal, 0 when
    there is none, and grows with every change.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}")
    if part == "answers":
        sql = "SELECT coalesce(max(answer_id), 0) FROM case_answers WHERE deal_id = ?"
    else:
        sql = "SELECT coalesce(max(version_id), 0) FROM stakeholders WHERE deal_id = ?"
    return int(con.execute(sql, [deal_id]).fetchone()[0])


def _answer_changes_since(con, deal_id: str, version: int) -> list[dict]:
    rows = con.execute(
        """
        WITH ordered AS (
            SELECT answer_id, question_id, status, answered_by, recorded_at,
                   lag(status) OVER (
                       PARTITION BY question_id ORDER BY recorded_at, answer_id
                   ) AS old
            FROM case_answers WHERE deal_id = ?
        )
        SELECT question_id, old, status, answered_by, recorded_at
        FROM ordered WHERE answer_id > ? ORDER BY answer_id
        """,
        [deal_id, version],
    ).fetchall()
    return [
        {"item": q, "old": old, "new": new, "by": by, "at": at}
        for q, old, new, by, at in rows
    ]


def _stakeholder_changes_since(con, deal_id: str, version: int) -> list[dict]:
    rows = con.execute(
        """
        WITH ordered AS (
            SELECT version_id, name, role, attitude, removed, recorded_by,
                   recorded_at,
                   lag(role || ', ' || coalesce(attitude, '?')) OVER (
                       PARTITION BY stakeholder_id ORDER BY recorded_at, version_id
                   ) AS old
            FROM stakeholders WHERE deal_id = ?
        )
        SELECT name, old,
               CASE WHEN removed THEN 'removed'
                    ELSE role || ', ' || coalesce(attitude, '?') END,
               recorded_by, recorded_at
        FROM ordered WHERE version_id > ? ORDER BY version_id
        """,
        [deal_id, version],
    ).fetchall()
    return [
        {"item": name, "old": old, "new": new, "by": by, "at": at}
        for name, old, new, by, at in rows
    ]


def _guarded_append(
    con, deal_id: str, part: str, expected_version: int, edit, write
) -> int:
    """Check ``expected_version`` and run ``write(con)`` in one transaction.

    Touching the deal's row makes two concurrent saves of one deal collide
    in DuckDB, so at most one of them can commit.
    """
    try:
        con.execute("BEGIN TRANSACTION")
        touched = con.execute(
            "UPDATE deals SET updated_at = current_localtimestamp() WHERE deal_id = ?",
            [deal_id],
        ).fetchone()[0]
        if touched == 0:
            con.execute("ROLLBACK")
            raise InputError(f"there is no deal '{deal_id}'")
        current = case_version(con, deal_id, part)
        if current != expected_version:
            if part == "answers":
                changes = _answer_changes_since(con, deal_id, expected_version)
            else:
                changes = _stakeholder_changes_since(con, deal_id, expected_version)
            con.execute("ROLLBACK")
            raise EditConflict(
                deal_id,
                part=part,
                expected_version=expected_version,
                current_version=current,
                changes=changes,
                edit=edit,
            )
        write(con)
        new_version = case_version(con, deal_id, part)
        con.execute("COMMIT")
        return new_version
    except duckdb.TransactionException as error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # already rolled back by the failed statement
        current = case_version(con, deal_id, part)
        raise EditConflict(
            deal_id,
            part=part,
            expected_version=expected_version,
            current_version=current,
            changes=_answer_changes_since(con, deal_id, expected_version)
            if part == "answers"
            else _stakeholder_changes_since(con, deal_id, expected_version),
            edit=edit,
        ) from error
    except duckdb.Error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise


def recording_time(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """When an edit made now is recorded: now for live data; for a dataset
    whose present lies in the past (a demo built earlier, an old export),
    the end of its present day, so the edit shows in the views of that
    present rather than after it."""
    present = resolve_as_of(con, None)
    now = dt.datetime.now().replace(microsecond=0)
    if present >= now.date():
        return now
    return dt.datetime.combine(present, dt.time(23, 59, 59))


# The tables of the business case, each with its own recording times.
_RECORDED_IN = {"answers": "case_answers", "stakeholders": "stakeholders"}


def edit_times(con, part: str, deal_ids) -> dict[str, dt.datetime]:
    """When an edit made now to each deal's answers or stakeholders
    (``part``) is recorded: :func:`recording_time`, moved up to the deal's
    latest record when one is stamped later (the demo's present day, or an
    import made earlier today, may carry later times), so that a new edit
    always reads as the latest (equal times are ordered by id)."""
    when = recording_time(con)
    ids = sorted({str(d) for d in deal_ids})
    latest = dict(
        con.execute(
            f"SELECT deal_id, max(recorded_at) FROM {_RECORDED_IN[part]} "
            "WHERE list_contains(?, deal_id) GROUP BY deal_id",
            [ids],
        ).fetchall()
    )
    return {d: max(when, latest.get(d) or when) for d in ids}


def _recorded_at(con, deal_id: str, part: str, recorded_at) -> dt.datetime:
    """``recorded_at`` when given, else :func:`edit_times` of the deal."""
    if recorded_at is not None:
        return pd.Timestamp(recorded_at).to_pydatetime()
    return edit_times(con, part, [deal_id])[str(deal_id)]


def record_answers(
    con: duckdb.DuckDBPyConnection,
    deal_id: str,
    answers: Iterable,
    *,
    author: str,
    expected_version: int,
    recorded_at: dt.datetime | None = None,
    questions: QuestionSet | None = None,
) -> int:
    """Append answers for a deal, unless someone changed them meanwhile.

    Parameters
    ----------
    answers
        Items ``(question_id, status, evidence, learned_on)`` (tuples, dicts
        or :class:`Answer`). Passing an answer unchanged records it again,
        which marks it as re-checked (it is no longer stale).
    author
        Who answers (stored as ``answered_by``).
    expected_version
        :func:`case_version` of the deal's answers when the form was opened.
    recorded_at
        When it is recorded (default :func:`recording_time`, after the
        deal's latest record).

    Returns
    -------
    int
        The new version token of the deal's answers.

    Raises
    ------
    InputError
        Unknown deal or question, bad status, bad or future ``learned_on``.
    EditConflict
        The answers changed after ``expected_version``; nothing is written.

    Runs its own transaction; do not call it inside one.
    """
    when = _recorded_at(con, deal_id, "answers", recorded_at)
    questions = questions or current_questions(con)
    edit = list(answers)
    checked = validate_answers(edit, questions, when.date())
    if not checked:
        return case_version(con, deal_id)

    def write(c):
        c.execute(
            """
            INSERT INTO case_answers (deal_id, question_id, status, evidence,
                learned_on, answered_by, recorded_at)
            SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                   unnest(?::VARCHAR[]), unnest(?::DATE[]), ?, ?
            """,
            [
                deal_id,
                [a.question_id for a in checked],
                [a.status for a in checked],
                [a.evidence for a in checked],
                [a.learned_on for a in checked],
                author,
                when,
            ],
        )

    version = _guarded_append(con, deal_id, "answers", expected_version, edit, write)
    logger.info("recorded %d answers for %s by %s", len(checked), deal_id, author)
    return version


def record_answer(
    con: duckdb.DuckDBPyConnection,
    deal_id: str,
    question_id: str,
    status: str,
    evidence: str | None = None,
    learned_on: dt.date | None = None,
    *,
    author: str,
    expected_version: int,
    recorded_at: dt.datetime | None = None,
) -> int:
    """One answer; see :func:`record_answers`."""
    return record_answers(
        con,
        deal_id,
        [Answer(question_id, status, evidence, learned_on)],
        author=author,
        expected_version=expected_version,
        recorded_at=recorded_at,
    )


def _new_stakeholder_id(con, deal_id: str) -> str:
    count = con.execute(
        "SELECT count(DISTINCT stakeholder_id) FROM stakeholders WHERE deal_id = ?",
        [deal_id],
    ).fetchone()[0]
    number = count + 1
    while True:
        candidate = f"{deal_id}-P{number}"
        taken = con.execute(
            "SELECT count(*) FROM stakeholders WHERE stakeholder_id = ?", [candidate]
        ).fetchone()[0]
        if not taken:
            return candidate
        number += 1


def record_stakeholder(
    con: duckdb.DuckDBPyConnection,
    deal_id: str,
    stakeholder,
    *,
    author: str,
    expected_version: int,
    recorded_at: dt.datetime | None = None,
) -> SavedStakeholder:
    """Add a buying influence or record a new version of one.

    Parameters
    ----------
    stakeholder
        A :class:`Stakeholder` or a dict with its fields (``name``, ``role``
        in economic/user/technical/coach, ``title``, ``influence`` in
        high/medium/low, ``attitude`` in growth/trouble/even_keel/
        overconfident, ``last_contact``; ``stakeholder_id`` to change an
        existing person, ``removed=True`` to take them off the deal).
    expected_version
        ``case_version(con, deal_id, "stakeholders")`` when the form opened.

    Returns
    -------
    SavedStakeholder
        ``(stakeholder_id, version)``: the person's id (new ones get
        ``<deal_id>-P<n>``) and the new version token of the deal's
        stakeholders.

    Raises
    ------
    InputError, EditConflict
        As :func:`record_answers`.
    """
    when = _recorded_at(con, deal_id, "stakeholders", recorded_at)
    person = validate_stakeholder(stakeholder, when.date())
    if person.stakeholder_id:
        known = con.execute(
            "SELECT count(*) FROM stakeholders WHERE deal_id = ? "
            "AND stakeholder_id = ?",
            [deal_id, person.stakeholder_id],
        ).fetchone()[0]
        if not known:
            raise InputError(
                f"'{person.stakeholder_id}' is not a stakeholder of {deal_id}"
            )
    saved: dict = {}

    def write(c):
        stakeholder_id = person.stakeholder_id or _new_stakeholder_id(c, deal_id)
        saved["id"] = stakeholder_id
        c.execute(
            """
            INSERT INTO stakeholders (stakeholder_id, deal_id, name, title, role,
                influence, attitude, last_contact, removed, recorded_by,
                recorded_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                stakeholder_id,
                deal_id,
                person.name,
                person.title,
                person.role,
                person.influence,
                person.attitude,
                person.last_contact,
                bool(person.removed),
                author,
                when,
            ],
        )

    version = _guarded_append(
        con, deal_id, "stakeholders", expected_version, stakeholder, write
    )
    return SavedStakeholder(saved["id"], version)


def remove_stakeholder(
    con: duckdb.DuckDBPyConnection,
    deal_id: str,
    stakeholder_id: str,
    *,
    author: str,
    expected_version: int,
    recorded_at: dt.datetime | None = None,
) -> SavedStakeholder:
    """Take a person off the deal: a new version of them with removed=true."""
    row = con.execute(
        """
        SELECT name, role, title, influence, attitude, last_contact
        FROM stakeholders WHERE deal_id = ? AND stakeholder_id = ?
        ORDER BY recorded_at DESC, version_id DESC LIMIT 1
        """,
        [deal_id, stakeholder_id],
    ).fetchone()
    if row is None:
        raise InputError(f"'{stakeholder_id}' is not a stakeholder of {deal_id}")
    name, role, title, influence, attitude, last_contact = row
    person = Stakeholder(
        name=name,
        role=role,
        title=title,
        influence=influence,
        attitude=attitude,
        last_contact=last_contact,
        stakeholder_id=stakeholder_id,
        removed=True,
    )
    return record_stakeholder(
        con,
        deal_id,
        person,
        author=author,
        expected_version=expected_version,
        recorded_at=recorded_at,
    )


STAKEHOLDER_COLUMNS = [
    "deal_id",
    "stakeholder_id",
    "name",
    "title",
    "role",
    "influence",
    "attitude",
    "last_contact",
    "recorded_by",
    "recorded_at",
]


def all_stakeholders_as_of(
    con: duckdb.DuckDBPyConnection, as_of=None, deal_ids=None
) -> pd.DataFrame:
    """Buying influences of many deals as they stood at the end of ``as_of``.

    Returns
    -------
    DataFrame
        :data:`STAKEHOLDER_COLUMNS`; the latest version of each person
        recorded before the end of the day, people removed by then left out.
    """
    day = resolve_as_of(con, as_of)
    params: list = [end_of_day(day)]
    clause = ""
    if deal_ids is not None:
        clause = "AND list_contains(?, deal_id)"
        params.append([str(d) for d in deal_ids])
    return con.execute(
        f"""
        SELECT {", ".join(STAKEHOLDER_COLUMNS)} FROM (
            SELECT *, row_number() OVER (
                PARTITION BY deal_id, stakeholder_id
                ORDER BY recorded_at DESC, version_id DESC
            ) AS latest
            FROM stakeholders WHERE recorded_at < ? {clause}
        )
        WHERE latest = 1 AND NOT coalesce(removed, false)
        ORDER BY deal_id, recorded_at, stakeholder_id
        """,
        params,
    ).df()


def stakeholders_as_of(
    con: duckdb.DuckDBPyConnection, deal_id: str, as_of=None
) -> pd.DataFrame:
    """The buying influences of one deal at the end of ``as_of`` (default
    meta ``today``); see :func:`all_stakeholders_as_of`."""
    return all_stakeholders_as_of(con, as_of, [deal_id]).reset_index(drop=True)


def case_as_of(
    con: duckdb.DuckDBPyConnection, deal_id: str, as_of=None
) -> pd.DataFrame:
    """One deal's case at the end of ``as_of``: every question of the set.

    Returns
    -------
    DataFrame
        In question order: ``question_id, dimension, text, weight, status``
        (``unknown`` when unanswered), ``answered, evidence, learned_on,
        answered_by, recorded_at, stale``.
    """
    day = resolve_as_of(con, as_of)
    questions = current_questions(con)
    states = question_states(
        con, pd.DataFrame({"deal_id": [deal_id], "as_of": [day]}), questions
    )
    texts = questions.frame()[["question_id", "text"]]
    case = states.merge(texts, on="question_id", how="left")
    return case[
        [
            "question_id",
            "dimension",
            "text",
            "weight",
            "status",
            "answered",
            "evidence",
            "learned_on",
            "answered_by",
            "recorded_at",
            "stale",
        ]
    ].reset_index(drop=True)


def _before(old, kind: str) -> str:
    if isinstance(old, str):
        return old
    return "added" if kind == "stakeholder" else "unanswered"


def case_history(con: duckdb.DuckDBPyConnection, deal_id: str) -> pd.DataFrame:
    """Every change to a deal's case, newest first.

    Returns
    -------
    DataFrame
        ``recorded_at, author, kind`` (answer|stakeholder), ``item`` (the
        question id or the person's name), ``old, new`` (status; for people
        ``role, attitude`` or ``removed``), ``evidence`` and ``change``, a
        sentence such as ``budget: unknown -> confirmed``.
    """
    answers = con.execute(
        """
        SELECT recorded_at, answered_by AS author, 'answer' AS kind,
               question_id AS item,
               lag(status) OVER (
                   PARTITION BY question_id ORDER BY recorded_at, answer_id
               ) AS old,
               status AS new, evidence, answer_id AS seq
        FROM case_answers WHERE deal_id = ?
        """,
        [deal_id],
    ).df()
    people = con.execute(
        """
        SELECT recorded_at, recorded_by AS author, 'stakeholder' AS kind,
               name AS item,
               lag(CASE WHEN removed THEN 'removed'
                        ELSE role || ', ' || coalesce(attitude, '?') END) OVER (
                   PARTITION BY stakeholder_id ORDER BY recorded_at, version_id
               ) AS old,
               CASE WHEN removed THEN 'removed'
                    ELSE role || ', ' || coalesce(attitude, '?') END AS new,
               CAST(NULL AS VARCHAR) AS evidence, version_id AS seq
        FROM stakeholders WHERE deal_id = ?
        """,
        [deal_id],
    ).df()
    history = pd.concat([answers, people], ignore_index=True)
    if history.empty:
        history["change"] = pd.Series(dtype="str")
        return history.drop(columns="seq")
    history["change"] = [
        f"{item}: {_before(old, kind)} -> {new}"
        for item, old, new, kind in zip(
            history["item"], history["old"], history["new"], history["kind"]
        )
    ]
    history = history.sort_values(
        ["recorded_at", "kind", "seq"], ascending=[False, True, False]
    )
    return history.drop(columns="seq").reset_index(drop=True)


__all__ = [
    "ATTITUDES",
    "Answer",
    "EditConflict",
    "INFLUENCES",
    "ROLES",
    "SavedStakeholder",
    "Stakeholder",
    "all_stakeholders_as_of",
    "case_as_of",
    "case_history",
    "case_version",
    "record_answer",
    "record_answers",
    "record_stakeholder",
    "remove_stakeholder",
    "stakeholders_as_of",
    "validate_answers",
    "validate_stakeholder",
]
