"""The question set file: the shipped set, and errors with their line."""

from __future__ import annotations

import pytest

from dealcase import store
from dealcase.case_questions import (
    DEFAULT_QUESTIONS,
    DIMENSIONS,
    load_questions,
    load_questions_or_last,
    sync_questions,
)
from dealcase.errors import InputError

GOOD = """\
version = 1

[[question]]
id = "pain"
dimension = "pain"
text = "What hurts?"
weight = 1.5

[[question]]
id = "budget"
dimension = "budget"
text = "Is budget committed?"
"""


def write(tmp_path, text, name="questions.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_set():
    questions = load_questions()
    assert len(questions) == 14
    assert questions.ids[:3] == ["pain", "root_cause", "impact"]
    assert set(questions.dimensions) == set(DIMENSIONS)
    assert sum(q.weight for q in questions) == 18.0
    assert questions.get("security_review").dimension == "paper_process"
    assert questions.source == str(DEFAULT_QUESTIONS)


def test_small_file_and_default_weight(tmp_path):
    questions = load_questions(write(tmp_path, GOOD))
    assert questions.ids == ["pain", "budget"]
    assert [q.weight for q in questions] == [1.5, 1.0]
    assert [q.sort_order for q in questions] == [1, 2]
    assert questions.version == 1


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (('dimension = "budget"', 'dimension = "money"'), 11, "unknown dimension"),
        (('id = "budget"', 'id = "pain"'), 10, "used twice"),
        (('id = "budget"\n', ""), 9, "no id"),
        (('text = "Is budget committed?"\n', ""), 9, "no text"),
        (("weight = 1.5", "weight = -2"), 7, "weight -2"),
        (("weight = 1.5", 'weight = "heavy"'), 7, "weight 'heavy'"),
        (("weight = 1.5", "weight = 0"), 7, "above 0"),
    ],
)
def test_errors_name_file_and_line(tmp_path, change, line, words):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(InputError) as caught:
        load_questions(path)
    error = caught.value
    assert error.file == str(path)
    assert error.line == line
    assert words in error.reason
    assert f"line {line}" in str(error)


def test_toml_syntax_error_keeps_its_line(tmp_path):
    path = write(tmp_path, GOOD.replace('text = "What hurts?"', "text = What hurts"))
    with pytest.raises(InputError) as caught:
        load_questions(path)
    assert caught.value.line == 6
    assert "not valid TOML" in caught.value.reason


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_questions(tmp_path / "nope.toml")


def test_keep_running_on_last_valid_set(tmp_path):
    path = write(tmp_path, GOOD)
    first, error = load_questions_or_last(path, None)
    assert error is None and first.ids == ["pain", "budget"]

    path.write_text(GOOD.replace('"budget"\ntext', '"bogus"\ntext'), encoding="utf-8")
    kept, error = load_questions_or_last(path, first)
    assert kept is first
    assert "line 11" in error and "unknown dimension 'bogus'" in error

    default, error = load_questions_or_last(path, None)
    assert len(default) == 14 and error


def test_sync_replaces_the_table(tmp_path):
    db = tmp_path / "q.duckdb"
    with store.connect(db) as con:
        assert sync_questions(con, load_questions()) == 14
        assert sync_questions(con, load_questions(write(tmp_path, GOOD))) == 2
        rows = con.execute(
            "SELECT question_id, dimension, weight, sort_order FROM questions "
            "ORDER BY sort_order"
        ).fetchall()
    assert rows == [("pain", "pain", 1.5, 1), ("budget", "budget", 1.0, 2)]


def test_refresh_syncs_good_files_and_keeps_the_table_on_errors(tmp_path):
    from dealcase.case_questions import current_questions, refresh_questions

    path = write(tmp_path, GOOD)
    db = tmp_path / "r.duckdb"
    with store.connect(db) as con:
        loaded, error = refresh_questions(con, path)
        assert error is None and current_questions(con).ids == ["pain", "budget"]

        path.write_text(GOOD.replace("weight = 1.5", "weight = 99"), encoding="utf-8")
        kept, error = refresh_questions(con, path)
        assert "line 7" in error and "weight 99" in error
        assert kept.ids == ["pain", "budget"] and kept.get("pain").weight == 1.5
        assert current_questions(con).get("pain").weight == 1.5
