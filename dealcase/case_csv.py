"""Business cases in and out of spreadsheets (CSV).

``python -m dealcase case export FILE`` writes two files:

- ``FILE``: one row per deal and question, the case as it stands now:
  ``deal_id, question_id, dimension, status, evidence, learned_on,
  answered_by, recorded_at`` (unanswered questions have status ``unknown``
  and empty answered_by and recorded_at);
- ``<stem>-stakeholders.csv`` next to it: the current buying influences,
  ``deal_id, stakeholder_id, name, title, role, influence, attitude,
  last_contact, removed, recorded_by, recorded_at``.

``case import FILE`` reads the same files (the stakeholder file only when it
exists). Every row is checked first; any error stops the import with the
file, line and column, and nothing is written. Rows that say what the case
already says are skipped, so importing a file twice adds nothing, and rows
older than the stored answers are skipped, so an old export never undoes
newer answers.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
from pathlib import Path

import duckdb
import pandas as pd

from dealcase.case_capture import ATTITUDES, INFLUENCES, ROLES, edit_times
from dealcase.case_questions import current_questions
from dealcase.errors import InputError
from dealcase.periods import end_of_day, resolve_as_of
from dealcase.report import Report
from dealcase.store import STATUSES, transaction

logger = logging.getLogger(__name__)

ANSWER_COLUMNS = [
    "deal_id",
    "question_id",
    "dimension",
    "status",
    "evidence",
    "learned_on",
    "answered_by",
    "recorded_at",
]
STAKEHOLDER_COLUMNS = [
    "deal_id",
    "stakeholder_id",
    "name",
    "title",
    "role",
    "influence",
    "attitude",
    "last_contact",
    "removed",
    "recorded_by",
    "recorded_at",
]
REQUIRED_ANSWER = ("deal_id", "question_id", "status")
REQUIRED_STAKEHOLDER = ("deal_id", "name", "role")
IMPORTED_BY = "import"


def stakeholder_file(path: str | os.PathLike) -> Path:
    """The stakeholder file that goes with an answers file."""
    path = Path(path)
    return path.with_name(f"{path.stem}-stakeholders.csv")


def _text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return pd.Timestamp(value).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _write(path: Path, columns: list[str], rows) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(v) for v in row])


def export_case(con: duckdb.DuckDBPyConnection, path: str | os.PathLike) -> Report:
    """Write every deal's current case and stakeholders as CSV.

    Returns
    -------
    Report
        ``doc``: ``file, stakeholder_file, answers, answered, stakeholders``
        (row counts).
    """
    path = Path(path)
    frame = current_questions(con).frame()
    answers = con.execute(
        """
        WITH q AS (
            SELECT unnest(?::VARCHAR[]) AS question_id,
                   unnest(?::VARCHAR[]) AS dimension,
                   unnest(?::INTEGER[]) AS sort_order
        ),
        latest AS (
            SELECT * FROM case_answers
            QUALIFY row_number() OVER (
                PARTITION BY deal_id, question_id
                ORDER BY recorded_at DESC, answer_id DESC
            ) = 1
        )
        SELECT d.deal_id, q.question_id, q.dimension,
               coalesce(l.status, 'unknown'), l.evidence, l.learned_on,
               l.answered_by, l.recorded_at
        FROM deals d CROSS JOIN q
        LEFT JOIN latest l
          ON l.deal_id = d.deal_id AND l.question_id = q.question_id
        ORDER BY d.deal_id, q.sort_order
        """,
        [
            frame["question_id"].tolist(),
            frame["dimension"].tolist(),
            frame["sort_order"].tolist(),
        ],
    ).fetchall()
    people = con.execute(
        """
        SELECT deal_id, stakeholder_id, name, title, role, influence, attitude,
               last_contact, removed, recorded_by, recorded_at
        FROM stakeholders
        QUALIFY row_number() OVER (
            PARTITION BY deal_id, stakeholder_id
            ORDER BY recorded_at DESC, version_id DESC
        ) = 1 AND NOT coalesce(removed, false)
        ORDER BY deal_id, recorded_at, stakeholder_id
        """
    ).fetchall()

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, ANSWER_COLUMNS, answers)
        _write(stakeholder_file(path), STAKEHOLDER_COLUMNS, people)
    except OSError as error:
        raise InputError(f"cannot write: {error}", file=path) from error

    answered = sum(1 for row in answers if row[7] is not None)
    doc = {
        "file": str(path),
        "stakeholder_file": str(stakeholder_file(path)),
        "answers": len(answers),
        "answered": answered,
        "stakeholders": len(people),
    }
    logger.info("exported %d case rows and %d stakeholders", len(answers), len(people))
    return Report(doc, title="Business case exported")


def _read(path: Path, required: tuple[str, ...], known: list[str]):
    """Rows of a CSV as (line, dict) with the header checked."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as error:
        raise InputError("the file does not exist", file=path) from error
    except OSError as error:
        raise InputError(f"cannot read: {error}", file=path) from error
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration as error:
            raise InputError("the file is empty", file=path, line=1) from error
        except (csv.Error, UnicodeDecodeError) as error:
            raise InputError(f"not readable as CSV: {error}", file=path) from error
        names = [h.strip().lower() for h in header]
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(missing)}; the header must name "
                f"{', '.join(known)}",
                file=path,
                line=1,
            )
        rows = []
        line = 1
        try:
            for values in reader:
                start = line + 1
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(names):
                    raise InputError(
                        f"{len(values)} values but {len(names)} columns",
                        file=path,
                        line=start,
                    )
                record = {n: "" for n in names}
                record.update({n: v.strip() for n, v in zip(names, values)})
                rows.append((start, record))
        except (csv.Error, UnicodeDecodeError) as error:
            raise InputError(
                f"not readable as CSV: {error}", file=path, line=line + 1
            ) from error
    return rows


def _date(value: str, where: dict, column: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise InputError(
            f"'{value}' is not a date; write it like 2025-07-01",
            column=column,
            **where,
        ) from error


def _moment(value: str, where: dict, column: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError as error:
        raise InputError(
            f"'{value}' is not a date and time; write it like 2025-07-01 09:30:00",
            column=column,
            **where,
        ) from error


def _check_not_after(day, moment, where, column) -> None:
    if day is not None and moment is not None and day > moment.date():
        raise InputError(
            f"{day} is after the row's recorded_at ({moment:%Y-%m-%d})",
            column=column,
            **where,
        )


MAX_LISTED_ERRORS = 10


def _check_each(rows, check) -> None:
    """Run ``check(line, row)`` on every row; then raise one error naming the
    first bad row (file, line, column) and listing where the others are, so
    a sheet is mended in one pass."""
    errors: list[InputError] = []
    for line, row in rows:
        try:
            check(line, row)
        except InputError as error:
            errors.append(error)
    if not errors:
        return
    first = errors[0]
    if len(errors) == 1:
        raise first
    listed = ", ".join(
        f"line {e.line}" + (f" ({e.column})" if e.column else "")
        for e in errors[1 : 1 + MAX_LISTED_ERRORS]
    )
    more = len(errors) - 1 - MAX_LISTED_ERRORS
    raise InputError(
        f"{first.reason}; {len(errors) - 1} more row(s) with problems: {listed}"
        + (f" and {more} more" if more > 0 else ""),
        file=first.file,
        line=first.line,
        column=first.column,
    )


def _answer_rows(con, path: Path, deals: set[str], now: dt.datetime):
    questions = current_questions(con)
    rows = _read(path, REQUIRED_ANSWER, ANSWER_COLUMNS)
    checked = []
    seen: dict[tuple[str, str], int] = {}

    def check(line, row):
        where = {"file": path, "line": line}
        if row["deal_id"] not in deals:
            raise InputError(
                f"there is no deal '{row['deal_id']}'", column="deal_id", **where
            )
        if row["question_id"] not in questions:
            raise InputError(
                f"'{row['question_id']}' is not a question of the question set",
                column="question_id",
                **where,
            )
        status = row["status"].lower()
        if status not in STATUSES:
            raise InputError(
                f"status '{row['status']}' is not one of {', '.join(STATUSES)}",
                column="status",
                **where,
            )
        key = (row["deal_id"], row["question_id"])
        if key in seen:
            raise InputError(
                f"{key[1]} of {key[0]} is already given on line {seen[key]}",
                column="question_id",
                **where,
            )
        seen[key] = line
        learned_on = _date(row.get("learned_on", ""), where, "learned_on")
        recorded_at = _moment(row.get("recorded_at", ""), where, "recorded_at")
        _check_not_after(learned_on, recorded_at or now, where, "learned_on")
        if recorded_at is not None and recorded_at > now:
            raise InputError(
                f"{recorded_at} is in the future", column="recorded_at", **where
            )
        checked.append(
            {
                "deal_id": row["deal_id"],
                "question_id": row["question_id"],
                "status": status,
                "evidence": row.get("evidence") or None,
                "learned_on": learned_on,
                "answered_by": row.get("answered_by") or IMPORTED_BY,
                "recorded_at": recorded_at,
                # An export writes an unanswered question this way.
                "blank": status == "unknown"
                and not row.get("evidence")
                and not row.get("answered_by")
                and recorded_at is None,
            }
        )

    _check_each(rows, check)
    return checked


def _stakeholder_rows(path: Path, deals: set[str], now: dt.datetime):
    rows = _read(path, REQUIRED_STAKEHOLDER, STAKEHOLDER_COLUMNS)
    checked = []

    def check(line, row):
        where = {"file": path, "line": line}
        if row["deal_id"] not in deals:
            raise InputError(
                f"there is no deal '{row['deal_id']}'", column="deal_id", **where
            )
        if not row["name"]:
            raise InputError("a stakeholder needs a name", column="name", **where)
        for column, allowed, required in (
            ("role", ROLES, True),
            ("influence", INFLUENCES, False),
            ("attitude", ATTITUDES, False),
        ):
            value = row.get(column, "").lower()
            if (value or required) and value not in allowed:
                raise InputError(
                    f"{column} '{row.get(column, '')}' is not one of "
                    f"{', '.join(allowed)}",
                    column=column,
                    **where,
                )
            row[column] = value or None
        removed_text = row.get("removed", "").lower()
        if removed_text not in ("", "true", "false", "1", "0", "yes", "no"):
            raise InputError(
                f"removed '{row['removed']}' must be true or false",
                column="removed",
                **where,
            )
        last_contact = _date(row.get("last_contact", ""), where, "last_contact")
        recorded_at = _moment(row.get("recorded_at", ""), where, "recorded_at")
        _check_not_after(last_contact, recorded_at or now, where, "last_contact")
        checked.append(
            {
                "deal_id": row["deal_id"],
                "stakeholder_id": row.get("stakeholder_id") or None,
                "name": row["name"],
                "title": row.get("title") or None,
                "role": row["role"],
                "influence": row["influence"],
                "attitude": row["attitude"],
                "last_contact": last_contact,
                "removed": removed_text in ("true", "1", "yes"),
                "recorded_by": row.get("recorded_by") or IMPORTED_BY,
                "recorded_at": recorded_at,
            }
        )

    _check_each(rows, check)
    return checked


def _same(a, b) -> bool:
    if (a is None or a == "") and (b is None or b == ""):
        return True
    if isinstance(a, pd.Timestamp | dt.datetime) or isinstance(b, pd.Timestamp):
        return pd.Timestamp(a) == pd.Timestamp(b)
    return a == b


def _new_answers(con, rows: list[dict], skipped: dict) -> list[dict]:
    """The rows that change a deal's case. A row is left out when it says
    what the latest answer says; when it is older than the latest answer
    (its ``recorded_at`` is earlier: an old export must not undo newer
    answers); or when it is an export's blank row (unknown, no evidence, no
    author, no time) for a question answered since. ``skipped`` counts the
    last two kinds."""
    latest = {
        (deal_id, qid): (status, evidence, learned_on, recorded_at)
        for deal_id, qid, status, evidence, learned_on, recorded_at in con.execute(
            """
            SELECT deal_id, question_id, status, evidence, learned_on, recorded_at
            FROM case_answers
            QUALIFY row_number() OVER (
                PARTITION BY deal_id, question_id
                ORDER BY recorded_at DESC, answer_id DESC
            ) = 1
            """
        ).fetchall()
    }
    fresh = []
    for row in rows:
        current = latest.get((row["deal_id"], row["question_id"]))
        if current is None:
            # An unanswered question already means unknown.
            if row["status"] == "unknown" and not row["evidence"]:
                continue
        elif all(
            _same(x, y)
            for x, y in zip(
                current[:3], (row["status"], row["evidence"], row["learned_on"])
            )
        ):
            continue
        elif row["blank"]:
            skipped["answers_blank"] += 1
            continue
        elif row["recorded_at"] is not None and row["recorded_at"] < current[3]:
            skipped["answers_older"] += 1
            continue
        elif row["recorded_at"] is not None and row["recorded_at"] == current[3]:
            # The exported answer, edited in the file: a new answer now.
            row = {**row, "recorded_at": None}
        fresh.append(row)
    return fresh


_PERSON_FIELDS = (
    "name",
    "title",
    "role",
    "influence",
    "attitude",
    "last_contact",
    "removed",
)


def _new_stakeholders(con, rows: list[dict], skipped: dict) -> list[dict]:
    latest = con.execute(
        f"""
        SELECT deal_id, stakeholder_id, {", ".join(_PERSON_FIELDS)}, recorded_at
        FROM stakeholders
        QUALIFY row_number() OVER (
            PARTITION BY deal_id, stakeholder_id
            ORDER BY recorded_at DESC, version_id DESC
        ) = 1
        """
    ).fetchall()
    by_id = {(r[0], r[1]): r[2:-1] for r in latest}
    recorded = {(r[0], r[1]): r[-1] for r in latest}
    by_name = {(r[0], str(r[2]).lower()): r[1] for r in latest if not r[-2]}
    counts: dict[str, int] = {}
    for deal_id, _ in by_id:
        counts[deal_id] = counts.get(deal_id, 0) + 1
    taken = {sid for _, sid in by_id}

    fresh = []
    for row in rows:
        if not row["stakeholder_id"]:
            known = by_name.get((row["deal_id"], row["name"].lower()))
            if known is None:
                number = counts.get(row["deal_id"], 0) + 1
                while f"{row['deal_id']}-P{number}" in taken:
                    number += 1
                known = f"{row['deal_id']}-P{number}"
                counts[row["deal_id"]] = number
                taken.add(known)
            row = {**row, "stakeholder_id": known}
        key = (row["deal_id"], row["stakeholder_id"])
        current = by_id.get(key)
        if current is not None and all(
            _same(x, row[f]) for x, f in zip(current, _PERSON_FIELDS)
        ):
            continue
        if current is not None and row["recorded_at"] is not None:
            if row["recorded_at"] < recorded[key]:
                skipped["stakeholders_older"] += 1
                continue
            if row["recorded_at"] == recorded[key]:
                row = {**row, "recorded_at": None}
        fresh.append(row)
    return fresh


def _stamp(con, rows: list[dict], part: str) -> list[dict]:
    """Give rows without ``recorded_at`` the moment an edit made now is
    recorded (:func:`dealcase.case_capture.edit_times`)."""
    unstamped = [row["deal_id"] for row in rows if row["recorded_at"] is None]
    if not unstamped:
        return rows
    times = edit_times(con, part, unstamped)
    return [
        row
        if row["recorded_at"] is not None
        else {**row, "recorded_at": times[row["deal_id"]]}
        for row in rows
    ]


_ANSWER_INSERT = (
    "deal_id",
    "question_id",
    "status",
    "evidence",
    "learned_on",
    "answered_by",
    "recorded_at",
)


def _columns(rows: list[dict], names) -> list[list]:
    return [[row[name] for row in rows] for name in names]


def import_case(con: duckdb.DuckDBPyConnection, path: str | os.PathLike) -> Report:
    """Read case answers (and ``<stem>-stakeholders.csv`` when present).

    All rows are checked before anything is written, and everything is
    written in one transaction. A row is skipped when it says what the
    deal's latest answer already says (status, evidence, learned_on), or
    for people the same as their latest version; when its ``recorded_at``
    is earlier than the stored latest (an old export never undoes newer
    answers); and when it is an export's blank row for a question answered
    since. Rows without ``recorded_at``, and exported rows edited in the
    file, are recorded as edits made now (after the deal's latest record),
    without ``answered_by`` as "import".
    The ``dimension`` column is informational: a question's dimension comes
    from the question set.

    Returns
    -------
    Report
        ``doc``: ``file, answers_read, answers_added, stakeholders_read,
        stakeholders_added, answers_older_skipped, answers_blank_skipped,
        stakeholders_older_skipped``; notes say why rows were skipped.

    Raises
    ------
    InputError
        With file, line and column: unknown deal or question, bad status,
        role, influence or attitude, a bad date, a date after the row's
        recorded_at, a question given twice for one deal.
    """
    path = Path(path)
    # The latest moment a row may carry: now, or the end of the data's own
    # present day when that is later (the demo records answers through it).
    now = max(
        dt.datetime.now().replace(microsecond=0),
        end_of_day(resolve_as_of(con, None)) - dt.timedelta(seconds=1),
    )
    deals = {r[0] for r in con.execute("SELECT deal_id FROM deals").fetchall()}
    answers = _answer_rows(con, path, deals, now)
    people_path = stakeholder_file(path)
    people = _stakeholder_rows(people_path, deals, now) if people_path.exists() else []

    skipped = {"answers_older": 0, "answers_blank": 0, "stakeholders_older": 0}
    with transaction(con):
        new_answers = _stamp(con, _new_answers(con, answers, skipped), "answers")
        new_people = _stamp(
            con, _new_stakeholders(con, people, skipped), "stakeholders"
        )
        if new_answers:
            con.execute(
                """
                INSERT INTO case_answers (deal_id, question_id, status, evidence,
                    learned_on, answered_by, recorded_at)
                SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::DATE[]), unnest(?::VARCHAR[]),
                       unnest(?::TIMESTAMP[])
                """,
                _columns(new_answers, _ANSWER_INSERT),
            )
        if new_people:
            con.execute(
                """
                INSERT INTO stakeholders (deal_id, stakeholder_id, name, title,
                    role, influence, attitude, last_contact, removed,
                    recorded_by, recorded_at)
                SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::VARCHAR[]), unnest(?::DATE[]),
                       unnest(?::BOOLEAN[]), unnest(?::VARCHAR[]),
                       unnest(?::TIMESTAMP[])
                """,
                _columns(new_people, STAKEHOLDER_COLUMNS),
            )

    doc = {
        "file": str(path),
        "answers_read": len(answers),
        "answers_added": len(new_answers),
        "stakeholder_file": str(people_path) if people_path.exists() else None,
        "stakeholders_read": len(people),
        "stakeholders_added": len(new_people),
        "answers_older_skipped": skipped["answers_older"],
        "answers_blank_skipped": skipped["answers_blank"],
        "stakeholders_older_skipped": skipped["stakeholders_older"],
    }
    notes = []
    if skipped["answers_older"] or skipped["stakeholders_older"]:
        notes.append(
            f"{skipped['answers_older'] + skipped['stakeholders_older']:,} row(s) "
            "are older than what is stored (their recorded_at is earlier than "
            "the latest answer or version): the stored ones were kept"
        )
    if skipped["answers_blank"]:
        notes.append(
            f"{skipped['answers_blank']:,} blank row(s) (unknown, with no "
            "evidence, author or time, as an export writes an unanswered "
            "question) left answers given since as they are; to set an answer "
            "back to unknown, give evidence or answered_by"
        )
    logger.info(
        "imported %d of %d case rows and %d of %d stakeholder rows",
        len(new_answers),
        len(answers),
        len(new_people),
        len(people),
    )
    return Report(doc, title="Business case imported", notes=notes)
