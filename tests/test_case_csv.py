"""Business cases to and from CSV: round trip, idempotency, row errors."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from test_case_builders import add_answer, add_deal, add_stakeholder, new_db

from dealcase import cli, store
from dealcase.case_capture import case_as_of, stakeholders_as_of
from dealcase.case_csv import export_case, import_case, stakeholder_file
from dealcase.errors import InputError

AS_OF = dt.date(2025, 11, 14)
HEADER = (
    "deal_id,question_id,dimension,status,evidence,learned_on,answered_by,recorded_at"
)


def deals_only(tmp_path, name):
    path = new_db(tmp_path, name)
    with store.connect(path) as con:
        add_deal(con, "D1")
        add_deal(con, "D2")
    return path


def build_source(tmp_path):
    path = deals_only(tmp_path, "source.duckdb")
    with store.connect(path) as con:
        add_answer(con, "D1", "budget", "assumed", dt.datetime(2025, 10, 1, 9))
        add_answer(
            con,
            "D1",
            "budget",
            "confirmed",
            dt.datetime(2025, 11, 3, 14, 30),
            evidence='PO "4471", signed',
            learned_on=dt.date(2025, 11, 2),
            answered_by="Ben Ito",
        )
        add_answer(
            con, "D2", "pain", "risk", dt.datetime(2025, 11, 5, 8), evidence="a\nb"
        )
        add_stakeholder(
            con,
            "D1",
            "D1-P1",
            name="Vera Lind",
            role="economic",
            attitude="even_keel",
            title="CFO",
            last_contact=dt.date(2025, 10, 30),
            recorded_at=dt.datetime(2025, 10, 31, 9),
        )
        add_stakeholder(con, "D1", "D1-P2", name="Sam Okafor", role="coach")
        add_stakeholder(
            con,
            "D1",
            "D1-P2",
            name="Sam Okafor",
            role="coach",
            removed=True,
            recorded_at=dt.datetime(2025, 11, 1),
        )
    return path


@pytest.fixture
def source(tmp_path):
    return build_source(tmp_path)


@pytest.fixture(scope="module")
def unchanged_source(tmp_path_factory):
    """For tests whose imports are refused: nothing may be written to it."""
    return build_source(tmp_path_factory.mktemp("refused"))


def snapshot(path):
    with store.connect(path) as con:
        cases = [case_as_of(con, d, AS_OF) for d in ("D1", "D2")]
        people = stakeholders_as_of(con, "D1", AS_OF)
    return cases, people


def test_export_writes_one_row_per_deal_and_question(source, tmp_path):
    target = tmp_path / "out" / "case.csv"
    with store.connect(source) as con:
        report = export_case(con, target)
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert report.doc["answers"] == 28 and report.doc["answered"] == 2
    assert len(rows) == 28
    budget = next(
        r for r in rows if r["deal_id"] == "D1" and r["question_id"] == "budget"
    )
    assert budget == {
        "deal_id": "D1",
        "question_id": "budget",
        "dimension": "budget",
        "status": "confirmed",
        "evidence": 'PO "4471", signed',
        "learned_on": "2025-11-02",
        "answered_by": "Ben Ito",
        "recorded_at": "2025-11-03 14:30:00",
    }
    with stakeholder_file(target).open(newline="", encoding="utf-8") as handle:
        people = list(csv.DictReader(handle))
    assert [p["name"] for p in people] == ["Vera Lind"]  # Sam was removed
    assert report.doc["stakeholders"] == 1


def test_round_trip_and_reimport_adds_nothing(source, tmp_path):
    target = tmp_path / "case.csv"
    with store.connect(source) as con:
        export_case(con, target)
    copy = deals_only(tmp_path, "copy.duckdb")

    with store.connect(copy) as con:
        first = import_case(con, target)
        again = import_case(con, target)
    with store.connect(source) as con:
        onto_source = import_case(con, target)

    assert (first.doc["answers_read"], first.doc["answers_added"]) == (28, 2)
    assert first.doc["stakeholders_added"] == 1
    assert again.doc["answers_added"] == 0 and again.doc["stakeholders_added"] == 0
    assert onto_source.doc["answers_added"] == 0
    assert onto_source.doc["stakeholders_added"] == 0

    (cases_a, people_a), (cases_b, people_b) = snapshot(source), snapshot(copy)
    for a, b in zip(cases_a, cases_b):
        columns = [
            "question_id",
            "status",
            "evidence",
            "learned_on",
            "answered_by",
            "recorded_at",
            "stale",
        ]
        assert a[columns].equals(b[columns])
    columns = ["stakeholder_id", "name", "title", "role", "attitude", "last_contact"]
    assert people_a[columns].equals(people_b[columns])


def test_an_old_export_never_undoes_newer_answers(source, tmp_path):
    """Export, then answers change (D1 budget at risk; D2 champion answered,
    which the export wrote as a blank row; Vera Lind now in trouble), then
    the old export comes back: the newer answers stay and the report says
    why each old row was skipped. An exported row edited in the file is a
    new answer."""
    old = tmp_path / "old.csv"
    with store.connect(source) as con:
        export_case(con, old)
        add_answer(con, "D1", "budget", "risk", dt.datetime(2025, 11, 12, 9))
        add_answer(con, "D2", "champion", "confirmed", dt.datetime(2025, 11, 12, 9))
        add_stakeholder(
            con,
            "D1",
            "D1-P1",
            name="Vera Lind",
            role="economic",
            attitude="trouble",
            title="CFO",
            recorded_at=dt.datetime(2025, 11, 12, 9),
        )
        report = import_case(con, old)
        case_1 = case_as_of(con, "D1", AS_OF).set_index("question_id")
        case_2 = case_as_of(con, "D2", AS_OF).set_index("question_id")
        people = stakeholders_as_of(con, "D1", AS_OF).set_index("name")

    assert report.doc["answers_added"] == 0
    assert report.doc["answers_older_skipped"] == 1
    assert report.doc["answers_blank_skipped"] == 1
    assert report.doc["stakeholders_older_skipped"] == 1
    assert len(report.notes) == 2
    assert case_1.loc["budget", "status"] == "risk"
    assert case_2.loc["champion", "status"] == "confirmed"
    assert people.loc["Vera Lind", "attitude"] == "trouble"

    # the current export, with D1 budget edited in the sheet
    edited = tmp_path / "edited.csv"
    with store.connect(source) as con:
        export_case(con, edited)
        rows = list(csv.DictReader(edited.open(encoding="utf-8")))
        for row in rows:
            if (row["deal_id"], row["question_id"]) == ("D1", "budget"):
                row["status"] = "confirmed"
        with edited.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        report = import_case(con, edited)
        case_1 = case_as_of(con, "D1", AS_OF).set_index("question_id")
    assert report.doc["answers_added"] == 1
    assert case_1.loc["budget", "status"] == "confirmed"


def test_new_rows_are_recorded_and_people_matched_by_name(source, tmp_path):
    answers = tmp_path / "sheet.csv"
    answers.write_text(
        "deal_id,question_id,status,evidence\n"
        "D1,champion,Confirmed,Sam sells for us\n"
        'D2,pain,risk,"a\nb"\n',  # the same as the latest answer
        encoding="utf-8",
    )
    stakeholder_file(answers).write_text(
        "deal_id,name,role,attitude\nD1,Vera Lind,economic,growth\nD2,Lee Chan,user,\n",
        encoding="utf-8",
    )
    with store.connect(source) as con:
        report = import_case(con, answers)
        again = import_case(con, answers)
        case = case_as_of(con, "D1", dt.date.today()).set_index("question_id")
        vera = stakeholders_as_of(con, "D1", dt.date.today())
        lee = stakeholders_as_of(con, "D2", dt.date.today())
    assert report.doc["answers_added"] == 1
    assert report.doc["stakeholders_added"] == 2
    assert again.doc["answers_added"] == 0 and again.doc["stakeholders_added"] == 0
    assert case.loc["champion", ["status", "answered_by"]].tolist() == [
        "confirmed",
        "import",
    ]
    assert vera[["stakeholder_id", "attitude"]].values.tolist() == [["D1-P1", "growth"]]
    assert lee["stakeholder_id"].tolist() == ["D2-P1"]


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        ("D9,pain,pain,confirmed,,,,", "deal_id", "no deal 'D9'"),
        ("D1,hunch,pain,confirmed,,,,", "question_id", "'hunch' is not a question"),
        ("D1,pain,pain,sure,,,,", "status", "status 'sure'"),
        ("D1,pain,pain,confirmed,,2025-13-01,,", "learned_on", "not a date"),
        ("D1,pain,pain,confirmed,,,,yesterday", "recorded_at", "not a date and time"),
        ("D1,pain,pain,confirmed,,2025-11-09,,2025-11-08 10:00", "learned_on", "after"),
        ("D1,budget,budget,risk,,,,", "question_id", "already given on line 2"),
    ],
)
def test_bad_row_stops_everything(unchanged_source, tmp_path, row, column, words):
    source = unchanged_source
    sheet = tmp_path / "bad.csv"
    sheet.write_text(
        f"{HEADER}\nD1,budget,budget,risk,,,,\nD2,impact,impact,confirmed,,,,\n{row}\n",
        encoding="utf-8",
    )
    with store.connect(source) as con:
        before = con.execute("SELECT count(*) FROM case_answers").fetchone()[0]
        with pytest.raises(InputError) as caught:
            import_case(con, sheet)
        after = con.execute("SELECT count(*) FROM case_answers").fetchone()[0]
    error = caught.value
    assert (error.file, error.line, error.column) == (str(sheet), 4, column)
    assert words in error.reason
    assert after == before


def test_every_bad_row_is_named_at_once(unchanged_source, tmp_path):
    sheet = tmp_path / "bad.csv"
    sheet.write_text(
        f"{HEADER}\nD1,budget,budget,risk,,,,\nD1,pain,pain,confirmed,,2026-13-40,,\n"
        "D2,impact,impact,confirmed,,,,\nD2,pain,pain,confrimed,,,,\n"
        "D9,pain,pain,risk,,,,\n",
        encoding="utf-8",
    )
    with store.connect(unchanged_source) as con, pytest.raises(InputError) as caught:
        import_case(con, sheet)
    error = caught.value
    assert (error.line, error.column) == (3, "learned_on")
    assert "2 more row(s) with problems: line 5 (status), line 6 (deal_id)" in str(
        error
    )


def test_bad_stakeholder_row_names_its_file(source, tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text(f"{HEADER}\nD1,budget,budget,risk,,,,\n", encoding="utf-8")
    people = stakeholder_file(sheet)
    people.write_text("deal_id,name,role\nD1,Lee Chan,buyer\n", encoding="utf-8")
    with store.connect(source) as con:
        before = con.execute("SELECT count(*) FROM case_answers").fetchone()[0]
        with pytest.raises(InputError) as caught:
            import_case(con, sheet)
        after = con.execute("SELECT count(*) FROM case_answers").fetchone()[0]
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        str(people),
        2,
        "role",
    )
    assert after == before


def test_missing_column(unchanged_source, tmp_path):
    source = unchanged_source
    sheet = tmp_path / "m.csv"
    sheet.write_text("deal_id,status\nD1,risk\n", encoding="utf-8")
    with store.connect(source) as con, pytest.raises(InputError, match="question_id"):
        import_case(con, sheet)


def test_command_line(source, tmp_path, capsys):
    target = tmp_path / "cli.csv"
    assert cli.main(["case", "export", str(target), "--db", str(source)]) == 0
    assert target.exists() and stakeholder_file(target).exists()
    assert cli.main(["case", "import", str(target), "--db", str(source)]) == 0
    out = capsys.readouterr().out
    assert "answers_added" in out
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\nD1,pain,pain,sure,,,,\n", encoding="utf-8")
    assert cli.main(["case", "import", str(bad), "--db", str(source)]) == 1
    assert "line 2, column status" in capsys.readouterr().err


def test_demo_case_round_trips_through_csv(tmp_path):
    """A demo built today records answers through the end of today; they are
    not 'in the future' when its export is read back."""
    import datetime as dt

    from dealcase import store
    from dealcase.case import export_case, import_case
    from dealcase.demo import build_demo

    path = tmp_path / "case.csv"
    with store.connect(tmp_path / "today.duckdb") as con:
        build_demo(con, seed=3, scale=0.03, today=dt.date.today())
        # the demo's clock runs through the whole of its present day
        con.execute(
            "UPDATE case_answers SET recorded_at = ? WHERE answer_id = "
            "(SELECT max(answer_id) FROM case_answers)",
            [dt.datetime.combine(dt.date.today(), dt.time(23, 59))],
        )
        exported = export_case(con, path)
        before = con.execute("SELECT count(*) FROM case_answers").fetchall()[0][0]
        imported = import_case(con, path)
        after = con.execute("SELECT count(*) FROM case_answers").fetchall()[0][0]

    assert exported.doc["answers"] > 0
    assert imported.doc["answers_added"] == 0
    assert after == before
