"""The printed table of a command: numbers people read, no pandas artefacts."""

from __future__ import annotations

import io

import pandas as pd

from dealcase.report import Report, emit


def _printed(table: pd.DataFrame) -> str:
    stream = io.StringIO()
    emit(Report({}, table=table, title="Title"), "table", stream)
    return stream.getvalue()


def test_amounts_and_shares_print_plainly():
    text = _printed(
        pd.DataFrame(
            {
                "amount": [361066.7, 1250.0],
                "share": [0.26812, 1.0],
                "closed": [pd.NaT, pd.Timestamp("2025-01-02")],
            }
        )
    )
    assert "361,067" in text and "1,250" in text
    assert "0.268" in text
    assert "e+05" not in text and "NaT" not in text


def test_an_empty_table_says_so():
    text = _printed(pd.DataFrame(columns=["deal_id", "amount"]))
    assert text == "Title\n(nothing to show)\n"
