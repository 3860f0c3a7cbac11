"""The business-case question set: reading ``data/questions.toml`` and
keeping the ``questions`` table in step with it.

A question has a stable id (answers refer to it), one of the fixed
MEDDPICC dimensions, the text a rep answers and a weight in the case score.
A mistake in the file is reported with the file, the line of the offending
``[[question]]`` (or of the offending key) and what is wrong, so whoever
edits the file can fix it; the app keeps running on the last valid set
meanwhile (:func:`load_questions_or_last`).
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from dealcase.errors import InputError
from dealcase.store import transaction

logger = logging.getLogger(__name__)

DEFAULT_QUESTIONS = Path(__file__).resolve().parent.parent / "data" / "questions.toml"


def questions_path() -> Path:
    """The question set file in use: ``DEALCASE_QUESTIONS`` or the shipped
    ``data/questions.toml``."""
    return Path(os.environ.get("DEALCASE_QUESTIONS") or DEFAULT_QUESTIONS)


# The fixed dimensions, in the order pages and tables show them.
DIMENSIONS = (
    "pain",
    "impact",
    "metrics",
    "budget",
    "economic_buyer",
    "champion",
    "stakeholders",
    "decision_criteria",
    "decision_process",
    "paper_process",
    "compelling_event",
    "competition",
)

DIMENSION_LABELS = {
    "pain": "Pain",
    "impact": "Impact",
    "metrics": "Metrics",
    "budget": "Budget",
    "economic_buyer": "Economic buyer",
    "champion": "Champion",
    "stakeholders": "Stakeholder coverage",
    "decision_criteria": "Decision criteria",
    "decision_process": "Decision process",
    "paper_process": "Paper process and security",
    "compelling_event": "Compelling event",
    "competition": "Competition",
}

MAX_WEIGHT = 10.0
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER = re.compile(r"^\s*\[\[\s*question\s*\]\]")
_TOML_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class Question:
    question_id: str
    dimension: str
    text: str
    weight: float = 1.0
    sort_order: int = 0


@dataclass(frozen=True)
class QuestionSet:
    """The questions in file order, with where they came from."""

    questions: tuple[Question, ...]
    source: str | None = None
    version: int | None = None

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def __contains__(self, question_id: object) -> bool:
        return any(q.question_id == question_id for q in self.questions)

    def get(self, question_id: str) -> Question:
        for question in self.questions:
            if question.question_id == question_id:
                return question
        raise KeyError(question_id)

    @property
    def ids(self) -> list[str]:
        return [q.question_id for q in self.questions]

    @property
    def dimensions(self) -> list[str]:
        """The dimensions that have at least one question, in fixed order."""
        present = {q.dimension for q in self.questions}
        return [d for d in DIMENSIONS if d in present]

    def frame(self) -> pd.DataFrame:
        """One row per question: question_id, dimension, text, weight,
        sort_order."""
        return pd.DataFrame(
            {
                "question_id": pd.Series(self.ids, dtype="str"),
                "dimension": pd.Series(
                    [q.dimension for q in self.questions], dtype="str"
                ),
                "text": pd.Series([q.text for q in self.questions], dtype="str"),
                "weight": pd.Series(
                    [q.weight for q in self.questions], dtype="float64"
                ),
                "sort_order": pd.Series(
                    [q.sort_order for q in self.questions], dtype="int64"
                ),
            }
        )


def _block_lines(text: str) -> list[tuple[int, int]]:
    """(first, last) line numbers of each ``[[question]]`` block."""
    lines = text.splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if _HEADER.match(line)]
    ends = [s - 1 for s in starts[1:]] + [len(lines)]
    return list(zip(starts, ends))


def _key_line(text: str, block: tuple[int, int] | None, key: str) -> int | None:
    """Line of ``key = ...`` inside a block, else the block's header line."""
    if block is None:
        return None
    lines = text.splitlines()
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number in range(block[0], block[1] + 1):
        if pattern.match(lines[number - 1]):
            return number
    return block[0]


def load_questions(path: str | os.PathLike | None = None) -> QuestionSet:
    """Read and check the question set.

    Parameters
    ----------
    path
        A TOML file with ``[[question]]`` tables (``id``, ``dimension``,
        ``text``, optional ``weight`` between 0 and 10, default 1). Default:
        ``data/questions.toml``.

    Returns
    -------
    QuestionSet

    Raises
    ------
    InputError
        With the file, the line and what is wrong: a TOML syntax error, a
        missing or duplicate id, a missing text, an unknown dimension, a
        weight that is not a number in (0, 10].
    """
    file = Path(path) if path else DEFAULT_QUESTIONS
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InputError("the question file does not exist", file=file) from error
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot read the question file: {error}", file=file
        ) from error

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        where = _TOML_WHERE.search(str(error))
        reason = _TOML_WHERE.sub("", str(error)).strip()
        raise InputError(
            f"not valid TOML: {reason}",
            file=file,
            line=int(where.group(1)) if where else None,
            column=int(where.group(2)) if where else None,
        ) from error

    entries = document.get("question")
    if not isinstance(entries, list) or not entries:
        raise InputError("no [[question]] tables found", file=file)
    blocks = _block_lines(text)
    if len(blocks) != len(entries):
        blocks = []  # written in another TOML form: no line numbers

    questions: list[Question] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        block = blocks[index] if blocks else None

        def fail(reason: str, key=None, _block=block, _index=index) -> None:
            line = _key_line(text, _block, key) if key else (_block or (None,))[0]
            raise InputError(f"question {_index + 1}: {reason}", file=file, line=line)

        if not isinstance(entry, dict):
            fail("each question must be a table")
        question_id = entry.get("id")
        if question_id is None or str(question_id).strip() == "":
            fail('it has no id; add id = "..."')
        if not isinstance(question_id, str) or not _ID.match(question_id):
            fail(
                f"id {question_id!r} must be lower-case letters, digits and _",
                "id",
            )
        if question_id in seen:
            fail(
                f"id '{question_id}' is used twice (first by question "
                f"{seen[question_id] + 1}); ids must be unique",
                "id",
            )
        seen[question_id] = index

        dimension = entry.get("dimension")
        if dimension is None:
            fail(f"'{question_id}' has no dimension")
        if dimension not in DIMENSIONS:
            fail(
                f"'{question_id}' has unknown dimension {dimension!r}; "
                f"use one of {', '.join(DIMENSIONS)}",
                "dimension",
            )

        question_text = entry.get("text")
        if not isinstance(question_text, str) or not question_text.strip():
            fail(f"'{question_id}' has no text", "text" if "text" in entry else None)

        weight = entry.get("weight", 1.0)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or not 0 < weight <= MAX_WEIGHT
        ):
            fail(
                f"'{question_id}' has weight {weight!r}; it must be a number "
                f"above 0 and at most {MAX_WEIGHT:g}",
                "weight",
            )
        questions.append(
            Question(
                question_id=question_id,
                dimension=dimension,
                text=question_text.strip(),
                weight=float(weight),
                sort_order=index + 1,
            )
        )

    version = document.get("version")
    return QuestionSet(
        tuple(questions),
        source=str(file),
        version=version if isinstance(version, int) else None,
    )


def load_questions_or_last(
    path: str | os.PathLike | None, last_valid: QuestionSet | None
) -> tuple[QuestionSet, str | None]:
    """Read the question set, falling back to the last valid one.

    Returns
    -------
    (questions, error)
        ``error`` is None when the file was read; otherwise it is the message
        of the :class:`InputError` and ``questions`` is ``last_valid``, or the
        shipped default set when there is none yet.
    """
    try:
        return load_questions(path), None
    except InputError as error:
        logger.warning("question set not loaded: %s", error)
        fallback = last_valid
        if fallback is None:
            fallback = load_questions(DEFAULT_QUESTIONS)
        return fallback, str(error)


def sync_questions(con: duckdb.DuckDBPyConnection, questions: QuestionSet) -> int:
    """Make the ``questions`` table hold exactly ``questions``.

    Answers to questions that were dropped stay in ``case_answers``; they no
    longer count in scores. Returns the number of questions written.
    """
    frame = questions.frame()
    with transaction(con):
        con.execute("DELETE FROM questions")
        con.execute(
            """
            INSERT INTO questions (question_id, dimension, text, weight, sort_order)
            SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                   unnest(?::DOUBLE[]), unnest(?::INTEGER[])
            """,
            [
                frame["question_id"].tolist(),
                frame["dimension"].tolist(),
                frame["text"].tolist(),
                frame["weight"].tolist(),
                frame["sort_order"].tolist(),
            ],
        )
    return len(frame)


def current_questions(con: duckdb.DuckDBPyConnection) -> QuestionSet:
    """The question set in effect for a database: the ``questions`` table,
    or the shipped file when the table is empty."""
    rows = con.execute(
        "SELECT question_id, dimension, text, weight, sort_order FROM questions "
        "ORDER BY sort_order NULLS LAST, question_id"
    ).fetchall()
    if not rows:
        return load_questions(DEFAULT_QUESTIONS)
    return QuestionSet(
        tuple(
            Question(
                question_id=qid,
                dimension=dimension,
                text=text,
                weight=1.0 if weight is None else float(weight),
                sort_order=order if order is not None else i + 1,
            )
            for i, (qid, dimension, text, weight, order) in enumerate(rows)
        ),
        source="database",
    )


def refresh_questions(
    con: duckdb.DuckDBPyConnection,
    path: str | os.PathLike | None = None,
    last_valid: QuestionSet | None = None,
) -> tuple[QuestionSet, str | None]:
    """Read the question file and bring the ``questions`` table in line.

    When the file is broken the table is left as it is and the set in
    effect is returned with the error message, so the app keeps working on
    the last valid set. Writes only when the file differs from the table.

    Returns
    -------
    (questions, error)
        As :func:`load_questions_or_last`; ``questions`` is what scores use.
    """
    try:
        loaded = load_questions(path)
    except InputError as error:
        logger.warning("question set not loaded: %s", error)
        in_effect = last_valid or current_questions(con)
        return in_effect, str(error)
    stored = current_questions(con)
    if stored.source != "database" or stored.questions != loaded.questions:
        sync_questions(con, loaded)
    return loaded, None
