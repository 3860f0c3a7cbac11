"""The fast paths of the import give exactly what the general ones give."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dealcase import store
from dealcase.importing import import_files, parsing, readers
from dealcase.importing.batch import (
    attributes_json,
    duplicated_versions,
    latest_per_deal,
    may_have_padding,
    member,
)
from tests.conftest import ROOT

CASES = {
    # name: (bytes, frame as lists, line numbers)
    "plain.csv": (b"a,b\n1,2\n3,4\n", {"a": ["1", "3"], "b": ["2", "4"]}, [2, 3]),
    "crlf_cells.csv": (
        b'a,b\r\n"x\r\ny",2\r\n3,"4\n5"\r\n6,7\r\n\r\n',
        {"a": ["x\r\ny", "3", "6"], "b": ["2", "4\n5", "7"]},
        [2, 4, 6],
    ),
    "bom.csv": (b"\xef\xbb\xbfa,b\n1,\xc3\xa9\n", {"a": ["1"], "b": ["\u00e9"]}, [2]),
    "blank_line.csv": (
        b"a,b\n1,2\n\n3,4\n",
        {"a": ["1", "3"], "b": ["2", "4"]},
        [2, 4],
    ),
    "blank_in_cell.csv": (
        b'a,b\n"x\n\ny",2\n3,4\n',
        {"a": ["x\n\ny", "3"], "b": ["2", "4"]},
        [2, 5],
    ),
    "trailer.csv": (
        b'a,b\n1,2\n\n"Deals"\n"Copyright (c) 2000-2025 salesforce.com, inc."\n',
        {"a": ["1"], "b": ["2"]},
        [2],
    ),
    "empty_row.csv": (
        b"a,b\n1,2\n , \n3,4\n",
        {"a": ["1", "3"], "b": ["2", "4"]},
        [2, 4],
    ),
}


DISK_REFUSES = {"blank_line.csv", "blank_in_cell.csv", "trailer.csv"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_large_file_route_reads_what_the_whole_file_route_reads(
    tmp_path, monkeypatch, name
):
    data, frame, lines = CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    whole = readers.read_table(path)
    # Every file takes the route from disk, scanned three bytes at a time so
    # that line breaks and characters fall across the slices.
    monkeypatch.setattr(readers, "DISK_ROUTE_BYTES", 0)
    monkeypatch.setattr(readers._DiskFile, "chunk", 3)
    disk = readers.read_table(path)
    # Blank lines and report trailers are left to the general route.
    taken = readers._read_utf8_file(path, path.stat().st_size) is not None
    assert taken == (name not in DISK_REFUSES)
    for table in (whole, disk):
        assert table.frame.to_dict("list") == frame
        assert table.line_numbers == lines
    assert disk.warnings == whole.warnings
    assert disk.metadata == whole.metadata
    assert disk.encoding == whole.encoding


def test_large_file_with_a_nul_byte_is_cleaned_like_any_other(tmp_path, monkeypatch):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"a,b\n1,2\x00\n3,4\n")
    monkeypatch.setattr(readers, "DISK_ROUTE_BYTES", 0)
    monkeypatch.setattr(readers._DiskFile, "chunk", 4)
    table = readers.read_table(path)
    assert table.frame.to_dict("list") == {"a": ["1", "3"], "b": ["2", "4"]}
    assert table.removed_characters == 1


def test_latest_per_deal_takes_the_latest_moment_then_the_last_row():
    frame = pd.DataFrame(
        {
            "deal_id": pd.Series(["a", "b", "a", "a", "b", None], dtype="str"),
            "valid_from": pd.to_datetime(
                ["2025-01-02", "2025-01-05", "2025-01-03", "2025-01-03", None, None]
            ),
        }
    )
    # a: rows 2 and 3 share the latest moment, row 3 comes last; b: row 1
    # (its other row has no moment); the missing deal: row 5.
    assert sorted(latest_per_deal(frame).tolist()) == [1, 3, 5]


@pytest.mark.parametrize("keep", ["first", "last", False])
def test_duplicated_versions_is_pandas_duplicated(keep):
    moments = ["2025-01-01", "2025-01-02", "2025-01-01", "2025-01-01", "2025-01-02"]
    frame = pd.DataFrame(
        {
            "deal_id": pd.Series(["a", "a", "b", "a", "a"], dtype="str"),
            "valid_from": pd.to_datetime(moments),
        }
    )
    expected = {
        "first": [False, False, False, True, True],
        "last": [True, True, False, False, False],
        False: [True, True, False, True, True],
    }[keep]
    assert duplicated_versions(frame, keep).tolist() == expected
    ordered = frame.sort_values(["deal_id", "valid_from"], kind="stable")
    assert (
        duplicated_versions(ordered, keep).tolist()
        == ordered.duplicated(["deal_id", "valid_from"], keep=keep).tolist()
    )


def test_attributes_of_repeated_rows_are_written_once_and_spread_back():
    frame = pd.DataFrame(
        {
            "Type": pd.Series(
                ["New", "New", " Renewal ", "", "New", "nan"], dtype="str"
            ),
            "Note": pd.Series(['say "hi"', 'say "hi"', "a\nb", "", 'say "hi"', "x"]),
        }
    )
    texts = attributes_json(frame, {"Type": "Type", "Note": "Note"}).tolist()
    assert texts == [
        '{"Note": "say \\"hi\\"", "Type": "New"}',
        '{"Note": "say \\"hi\\"", "Type": "New"}',
        '{"Note": "a\\nb", "Type": "Renewal"}',
        "{}",
        '{"Note": "say \\"hi\\"", "Type": "New"}',
        '{"Note": "x"}',
    ]
    for text, (_, row) in zip(texts, frame.iterrows()):
        expected = {
            k: v.strip() for k, v in row.items() if v.strip() not in ("", "nan")
        }
        assert json.loads(text) == expected


def test_may_have_padding_flags_every_cell_that_trimming_changes():
    assert not may_have_padding(pa.array(["ab", "c", ""], pa.large_string()))
    for padded in (" a", "a\t", "\u00a0a", "a\u3000", "\x1fa"):
        assert may_have_padding(pa.array(["x", padded], pa.large_string()))
    # Only the part an array slice covers counts.
    sliced = pa.array([" a", "b", "c "], pa.large_string()).slice(1, 1)
    assert not may_have_padding(sliced)


def test_member_compares_text_and_ignores_repeated_candidates():
    values = pd.Series(["a", "b", None, "c"], dtype="str")
    assert member(values, ["c", "a", "a", None]).tolist() == [True, False, False, True]


def test_plain_amounts_read_in_one_pass_match_the_general_parser():
    amounts, currencies = parsing.parse_money(["1250.5", "", "-3", "0.126"])
    assert amounts.tolist()[0] == 1250.5
    assert np.isnan(amounts.tolist()[1])
    assert amounts.tolist()[2:] == [-3.0, 0.13]
    assert currencies.tolist() == [None, None, None, None]
    # One value in another form sends the column down the general parser.
    amounts, currencies = parsing.parse_money(["1250.5", "$1,000"])
    assert amounts.tolist() == [1250.5, 1000.0]
    assert currencies.tolist() == [None, "USD"]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_import", ROOT / "benchmarks" / "bench_import.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_export_imports_the_same_from_disk_as_from_memory(tmp_path, monkeypatch):
    opportunity, history = _bench().generate(tmp_path, 400, seed=3)
    for path in (opportunity, history):
        assert readers._read_utf8_file(path, path.stat().st_size) is not None
    tables = {}
    for route, threshold in (("memory", 1 << 62), ("disk", 0)):
        monkeypatch.setattr(readers, "DISK_ROUTE_BYTES", threshold)
        with store.connect(tmp_path / f"{route}.duckdb") as con:
            report = import_files(
                con, source="salesforce", files=[opportunity], history=history
            )
            assert report.doc["deals_new"] == 400
            assert report.doc["history_rows"] == 1200
            tables[route] = [
                con.execute(
                    "SELECT * EXCLUDE (updated_at) FROM deals ORDER BY ALL"
                ).df(),
                con.execute("SELECT * FROM deal_history ORDER BY ALL").df(),
            ]
    for memory, disk in zip(tables["memory"], tables["disk"]):
        pd.testing.assert_frame_equal(memory, disk)
