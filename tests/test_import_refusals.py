"""Files and databases an import refuses instead of reading them wrongly."""

from __future__ import annotations

import numpy as np
import pytest

from dealcase import store
from dealcase.errors import DealCaseError, InputError
from dealcase.importing import MappingRequired, import_files
from dealcase.importing.readers import read_table

STAGES = [
    {"stage": "Prospecting", "probability": 0.1},
    {"stage": "Engaging", "probability": 0.4},
    {"stage": "Won", "probability": 1.0, "won": True, "closed": True},
    {"stage": "Lost", "probability": 0.0, "closed": True},
]
MAPPING = {
    "dataset": "pipeline",
    "currency": "USD",
    "columns": {
        "deal_id": "id",
        "owner": "agent",
        "stage": "stage",
        "amount": "value",
        "created_on": "engaged",
        "close_date": "closed",
    },
    "outcome": {"column": "stage", "won": ["Won"], "lost": ["Lost"]},
    "stages": STAGES,
}
HEADER = "id,agent,stage,value,engaged,closed\n"


def _rows(count: int, **special) -> str:
    """``count`` data rows (file lines 2..count+1); ``special`` maps a file
    line to the text of that row."""
    lines = []
    for line in range(2, count + 2):
        default = f"P{line:02d},Ivo Marsh,Won,{100 * line},2017-01-02,2017-02-03"
        lines.append(special.get(f"line{line}", default))
    return HEADER + "\n".join(lines) + "\n"


def _write(tmp_path, text, name="pipeline.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _import(tmp_path, path, mapping=MAPPING):
    with store.connect(tmp_path / "x.duckdb") as con:
        return import_files(con, source="table", files=[path], mapping=mapping).doc


# -- 1: thousands grouping ----------------------------------------------------


def test_irregular_grouping_names_file_line_and_column(tmp_path):
    bad = 'P11,Ivo Marsh,Won,"12,34,5",2017-01-02,2017-02-03'
    path = _write(tmp_path, _rows(12, line11=bad))
    with pytest.raises(InputError) as caught:
        _import(tmp_path, path)
    assert str(caught.value) == (
        f"{path}, line 11, column value: cannot read '12,34,5' as an amount: "
        "expected digits grouped in threes with ',' (like 1,234,567.89) or no "
        "grouping at all"
    )
    assert (caught.value.line, caught.value.column) == (11, "value")


def test_regular_grouping_still_imports(tmp_path):
    good = 'P11,Ivo Marsh,Won,"12,345",2017-01-02,2017-02-03'
    path = _write(tmp_path, _rows(12, line11=good))
    _import(tmp_path, path)
    with store.connect(tmp_path / "x.duckdb", read_only=True) as con:
        amount = con.execute("SELECT amount FROM deals WHERE deal_id = 'P11'")
        assert amount.fetchone()[0] == 12345.0


# -- 2: stages the mapping does not list --------------------------------------


def test_unlisted_stage_is_refused(tmp_path):
    bad = "P05,Ivo Marsh,Wonn,500,2017-01-02,2017-02-03"
    path = _write(tmp_path, _rows(6, line5=bad))
    with pytest.raises(InputError) as caught:
        _import(tmp_path, path)
    assert str(caught.value) == (
        f"{path}, line 5, column stage: stage 'Wonn' is not one of the mapping's "
        "stages (Prospecting, Engaging, Won, Lost); add it under [[stages]], or "
        'set other_stages = "open" to keep unlisted stages as open'
    )
    assert "\n" not in str(caught.value)
    with store.connect(tmp_path / "x.duckdb", read_only=True) as con:
        assert store.is_empty(con)


def test_other_stages_open_keeps_unlisted_stage_as_open(tmp_path):
    bad = "P05,Ivo Marsh,Wonn,500,2017-01-02,2017-02-03"
    path = _write(tmp_path, _rows(6, line5=bad))
    _import(tmp_path, path, mapping={**MAPPING, "other_stages": "open"})
    with store.connect(tmp_path / "x.duckdb", read_only=True) as con:
        rows = con.execute(
            "SELECT deal_id, outcome FROM deals WHERE outcome = 'open'"
        ).fetchall()
        stage = con.execute(
            "SELECT is_closed, is_won FROM stages WHERE stage = 'Wonn'"
        ).fetchone()
    assert rows == [("P05", "open")]
    assert stage == (False, False)


def test_unknown_other_stages_value_is_refused(tmp_path):
    path = _write(tmp_path, _rows(2))
    with pytest.raises(InputError, match="other_stages = 'won' is not understood"):
        _import(tmp_path, path, mapping={**MAPPING, "other_stages": "won"})


# -- 3: the demo company is not mixed with another dataset --------------------


def test_import_into_demo_database_is_refused(tmp_path):
    path = _write(tmp_path, _rows(3))
    with store.connect(tmp_path / "x.duckdb") as con:
        store.set_meta(con, "dataset", "demo")
        before = con.execute("SELECT count(*) FROM deals").fetchone()[0]
        with pytest.raises(DealCaseError) as caught:
            import_files(con, source="table", files=[path], mapping=MAPPING)
        after = con.execute("SELECT count(*) FROM deals").fetchone()[0]
        assert store.get_meta(con, "dataset") == "demo"
    assert str(caught.value) == (
        "the database holds the synthetic demo company; import into another "
        "file with --db"
    )
    assert (before, after) == (0, 0)


def test_import_into_same_dataset_is_accepted(tmp_path):
    path = _write(tmp_path, _rows(3))
    assert _import(tmp_path, path)["deals_new"] == 3
    assert _import(tmp_path, path)["deals_unchanged"] == 3


# -- 4: header only -----------------------------------------------------------


@pytest.mark.parametrize("mapping", [MAPPING, None])
def test_header_only_file_is_refused(tmp_path, mapping):
    path = _write(tmp_path, HEADER)
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(InputError) as caught:
            import_files(con, source="table", files=[path], mapping=mapping)
        assert store.is_empty(con)
    assert not isinstance(caught.value, MappingRequired)
    assert str(caught.value) == f"{path}, line 1: no data rows after the header"
    assert caught.value.line == 1


# -- 5: binary files ----------------------------------------------------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08"
    b"\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00"
    b"\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_png_is_not_a_text_table(tmp_path):
    path = tmp_path / "pipeline.csv"
    path.write_bytes(PNG)
    with pytest.raises(InputError) as caught:
        _import(tmp_path, path)
    assert str(caught.value) == (
        f"{path}: the file is not a text table (a PNG image): export the deals "
        "as CSV or .xlsx"
    )


def test_random_bytes_are_not_a_text_table(tmp_path):
    path = tmp_path / "pipeline.csv"
    data = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)
    path.write_bytes(data.tobytes())
    share = sum(b < 9 or 13 < b < 32 or b in (11, 12, 127) for b in data.tobytes())
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value) == (
        f"{path}: the file is not a text table ({share / 4096:.0%} of its first "
        "bytes are control bytes): export the deals as CSV or .xlsx"
    )
    assert "(11% of" in str(caught.value)


def test_few_nul_bytes_in_text_are_still_cleaned(tmp_path):
    path = tmp_path / "pipeline.csv"
    path.write_bytes(_rows(2).replace("Ivo", "I\x00vo", 1).encode("utf-8"))
    table = read_table(path)
    assert table.removed_characters == 1
    assert table.frame["agent"].tolist() == ["Ivo Marsh", "Ivo Marsh"]


# -- 6: close-date headers in a proposal --------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "closes",
        "close",
        "Close Date",
        "closing date",
        "Expected Close",
        "expected_close_date",
        "close_on",
    ],
)
def test_proposal_recognises_close_date_headers(tmp_path, header):
    text = f"id,stage,created,{header}\nQ1,Won,2020-01-02,2020-03-04\n"
    path = _write(tmp_path, text)
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(MappingRequired) as caught:
            import_files(con, source="table", files=[path])
    assert caught.value.proposal["columns"] == {
        "deal_id": "id",
        "stage": "stage",
        "created_on": "created",
        "close_date": header,
    }
