"""A corpus of broken and odd export files, each built here from a tiny
invented fixture. Every file either imports with the right values or fails
with one InputError whose one-line message names the file and the line (and
the column, for a bad value). None may end in any other exception."""

from __future__ import annotations

import datetime as dt

import pytest

from dealcase import store
from dealcase.errors import InputError
from dealcase.importing import import_files, parsing
from dealcase.importing.readers import read_table

MAPPING = """\
dataset = "corpus"
currency = "USD"
has_dates = true

[columns]
deal_id = "Id"
name = "Name"
amount = "Amount"
stage = "Stage"
close_date = "CloseDate"
"""

HEADER = "Id,Name,Amount,Stage,CloseDate"


def _import(tmp_path, content, *, name="deals.csv", mapping=MAPPING, **options):
    """Import one file as a table; return (summary, deals by id)."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    mapping_path = tmp_path / "mapping.toml"
    mapping_path.write_text(mapping)
    with store.connect(tmp_path / "corpus.duckdb") as con:
        report = import_files(
            con, source="table", files=[path], mapping=mapping_path, **options
        )
        deals = con.execute(
            "SELECT deal_id, name, amount, currency, stage, close_date "
            "FROM deals ORDER BY deal_id"
        ).df()
    return report.doc, deals.set_index("deal_id")


def _refused(tmp_path, content, *, line, column=None, name="deals.csv", **options):
    """Import must fail with one InputError naming file, line and column."""
    with pytest.raises(InputError) as caught:
        _import(tmp_path, content, name=name, **options)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert error.file is not None and error.file.endswith(name)
    assert message.startswith(error.file)
    assert error.line == line and f"line {line}" in message
    if column is not None:
        assert error.column == column and f"column {column}" in message
    return message


def _rows(*rows: str, header: str = HEADER, end: str = "\n") -> str:
    return end.join((header, *rows)) + end


# -- encodings and characters ------------------------------------------------


def test_utf8_bom(tmp_path):
    content = b"\xef\xbb\xbf" + _rows("A1,Zebra Ltd,100,Open,2025-04-01").encode()
    _, deals = _import(tmp_path, content)
    assert deals.loc["A1", "name"] == "Zebra Ltd"
    assert deals.loc["A1", "amount"] == 100.0


def test_cp1252_names(tmp_path):
    content = _rows(
        "A1,Müller GmbH,100,Open,2025-04-01", "A2,Café Olé – Nord,50,Open,2025-04-02"
    ).encode("cp1252")
    _, deals = _import(tmp_path, content)
    assert deals["name"].tolist() == ["Müller GmbH", "Café Olé – Nord"]


def test_latin1_file(tmp_path):
    # 0x81 has no meaning in Windows-1252, so only Latin-1 decodes this file;
    # the C1 control it stands for is removed and counted.
    content = _rows("A1,S\xf8ren \x81A/S,100,Open,2025-04-01").encode("latin-1")
    summary, deals = _import(tmp_path, content)
    assert deals.loc["A1", "name"] == "Søren A/S"
    assert any("removed 1" in w for w in summary["warnings"])


def test_nul_bytes_removed_and_counted(tmp_path):
    content = _rows('A1,"Ara\x00 Corp",100,Open,2025-04-01', "A2,Be\x00\x00ta,5,Open,")
    summary, deals = _import(tmp_path, content)
    assert deals["name"].tolist() == ["Ara Corp", "Beta"]
    assert any("removed 3" in w for w in summary["warnings"])


def test_utf16_tab_text(tmp_path):
    text = _rows("A1\tÅsa AB\t100\tOpen\t2025-04-01", header=HEADER.replace(",", "\t"))
    content = text.encode("utf-16")
    _, deals = _import(tmp_path, content, name="deals.txt")
    assert deals.loc["A1", "name"] == "Åsa AB"


# -- dialects ---------------------------------------------------------------


def test_crlf_and_all_quoted(tmp_path):
    rows = ['"A1","Quoted Inc","1,250.50","Open","2025-04-01"']
    content = _rows(
        *rows, header='"Id","Name","Amount","Stage","CloseDate"', end="\r\n"
    )
    _, deals = _import(tmp_path, content)
    assert deals.loc["A1", "amount"] == 1250.5


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters(tmp_path, delimiter):
    content = _rows(
        f"A1{delimiter}Delta{delimiter}100{delimiter}Open{delimiter}2025-04-01",
        header=HEADER.replace(",", delimiter),
    )
    _, deals = _import(tmp_path, content)
    assert deals.loc["A1", "name"] == "Delta"


def test_semicolon_with_decimal_comma(tmp_path):
    content = _rows(
        "A1;Euro One;€1.250,50;Open;01.04.2025",
        "A2;Euro Two;€ 300;Open;29.04.2025",
        header=HEADER.replace(",", ";"),
    )
    _, deals = _import(tmp_path, content, mapping=MAPPING.replace("USD", "EUR"))
    assert deals["amount"].tolist() == [1250.5, 300.0]
    assert deals["currency"].tolist() == ["EUR", "EUR"]
    assert deals.loc["A1", "close_date"] == pd_date(2025, 4, 1)


def pd_date(year, month, day):
    import pandas as pd

    return pd.Timestamp(year, month, day)


def test_repeated_column_names(tmp_path):
    content = _rows("A1,First,100,Open,2025-04-01,Second", header=HEADER + ",Name")
    _, deals = _import(tmp_path, content)
    assert deals.loc["A1", "name"] == "First"
    assert read_table(tmp_path / "deals.csv").columns[-1] == "Name.2"


def test_header_names_trimmed_and_blank_lines_counted(tmp_path):
    content = (
        " Id , Name ,Amount,Stage,CloseDate\n\nA1,X,100,Open,\n\nA2,Y,lots,Open,\n"
    )
    _refused(tmp_path, content, line=5, column="Amount")


# -- amounts -----------------------------------------------------------------


def test_blank_and_zero_amounts(tmp_path):
    _, deals = _import(
        tmp_path, _rows("A1,Blank,,Open,2025-04-01", "A2,Zero,0,Open,2025-04-01")
    )
    assert deals["amount"].isna().tolist() == [True, False]
    assert deals.loc["A2", "amount"] == 0.0


def test_float_noise_rounded_to_cents(tmp_path):
    _, deals = _import(tmp_path, _rows("A1,Noise,16120999.999999998,Open,2025-04-01"))
    assert deals.loc["A1", "amount"] == 16121000.0


def test_thousands_and_currency_symbols(tmp_path):
    _, deals = _import(
        tmp_path,
        _rows(
            'A1,Sep,"1,250.50",Open,2025-04-01',
            'A2,Dollar,"$1,250",Open,2025-04-01',
            "A3,Negative,(75.25),Open,2025-04-01",
        ),
    )
    assert deals["amount"].tolist() == [1250.5, 1250.0, -75.25]
    assert deals.loc["A2", "currency"] == "USD"


def test_unreadable_amount(tmp_path):
    content = _rows("A1,X,100,Open,2025-04-01", "A2,Y,twelve,Open,2025-04-01")
    _refused(tmp_path, content, line=3, column="Amount")


MIXED = _rows(
    'A1,Yen Deal,"JPY 1,000,000",Open,2025-04-01',
    'A2,Dollar Deal,"USD 10,000.00",Open,2025-04-01',
    'A3,Credit,"USD (500.00)",Open,2025-04-01',
)


def test_mixed_currencies_without_rates_refused(tmp_path):
    with pytest.raises(InputError) as caught:
        _import(tmp_path, MIXED)
    assert "--rates" in str(caught.value) and "\n" not in str(caught.value)
    # The parsers name the first foreign amount and give the real totals.
    raw = read_table(tmp_path / "deals.csv")
    amounts, currencies = parsing.parse_money(raw.frame["Amount"])
    with pytest.raises(InputError) as caught:
        parsing.convert_currency(
            amounts,
            currencies,
            file=raw.path,
            column="Amount",
            line_numbers=raw.line_numbers,
        )
    message = str(caught.value)
    assert message.startswith(f"{raw.path}, line 2, column Amount:")
    assert "JPY 1,000,000.00; USD 9,500.00" in message


def test_mixed_currencies_with_rates(tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,rate\nUSD,1\nJPY,160\n")
    _, deals = _import(tmp_path, MIXED, rates=rates)
    assert deals["amount"].tolist() == [6250.0, 10000.0, -500.0]
    assert deals["amount"].sum() == 15750.0


def test_converted_column_known_case():
    amounts, currencies = parsing.parse_money(
        ["JPY 1,000,000", "USD 10,000.00", "USD (500.00)"]
    )
    converted = parsing.parse_money(["USD 6,700.00", "USD 10,000.00", "USD (500.00)"])
    total = parsing.convert_currency(amounts, currencies, converted=converted)
    assert total["amount"].sum() == 16200.0  # never 1,009,500


# -- dates -------------------------------------------------------------------


def test_iso_timestamps_and_locale_dates(tmp_path):
    _, deals = _import(
        tmp_path,
        _rows(
            "A1,Iso,1,Open,2025-04-01",
            "A2,Zulu,1,Open,2025-04-01T00:00:00.000Z",
            "A3,Stamp,1,Open,2018-10-13 17:16:45",
        ),
    )
    assert deals["close_date"].tolist() == [
        pd_date(2025, 4, 1),
        pd_date(2025, 4, 1),
        pd_date(2018, 10, 13),
    ]


def test_day_first_column_rejects_impossible_date(tmp_path):
    content = _rows(
        "A1,X,1,Open,29/01/2025", "A2,Y,1,Open,01/04/2025", "A3,Z,1,Open,13/23/2025"
    )
    message = _refused(tmp_path, content, line=4, column="CloseDate")
    assert "13/23/2025" in message


def test_ambiguous_dates_refused_then_accepted_with_order(tmp_path):
    content = _rows("A1,X,1,Open,03/01/2024", "A2,Y,1,Open,04/02/2024")
    message = _refused(tmp_path, content, line=2, column="CloseDate")
    assert "--date-order dmy|mdy" in message
    _, deals = _import(tmp_path, content, date_order="mdy")
    assert deals["close_date"].tolist() == [pd_date(2024, 3, 1), pd_date(2024, 4, 2)]


def test_impossible_iso_date(tmp_path):
    _refused(tmp_path, _rows("A1,X,1,Open,2025-02-30"), line=2, column="CloseDate")


# -- rows --------------------------------------------------------------------


def test_duplicated_ids_counted_once_with_reason(tmp_path):
    summary, deals = _import(
        tmp_path,
        _rows(
            "A1,Dup,100,Open,2025-04-01",
            "A1,Dup,100,Open,2025-04-01",
            "A2,Other,7,Open,2025-04-01",
        ),
    )
    assert len(deals) == 2 and deals["amount"].sum() == 107.0
    assert [s["lines"] for s in summary["rows_skipped"]] == [[3]]


def test_missing_stage_value_and_missing_stage_column(tmp_path):
    _, deals = _import(tmp_path, _rows("A1,No Stage,100,,2025-04-01"))
    assert deals.loc["A1", "stage"] is None
    content = "Id,Name,Amount,CloseDate\nA1,X,1,2025-04-01\n"
    message = _refused(tmp_path, content, line=1)
    assert "Stage" in message


def test_empty_file(tmp_path):
    _refused(tmp_path, b"", line=1)


def test_blank_lines_only(tmp_path):
    _refused(tmp_path, b"\r\n\r\n  \r\n", line=1)


def test_header_only(tmp_path):
    message = _refused(tmp_path, HEADER + "\r\n", line=1)
    assert message.endswith("deals.csv, line 1: no data rows after the header")


def test_no_header(tmp_path):
    _refused(tmp_path, "A1,Alpha,100,Open,2025-04-01\n", line=1)


def test_ragged_rows(tmp_path):
    content = _rows("A1,X,1,Open,2025-04-01", "A2,Y,2,Open,2025-04-01,extra,cells")
    _refused(tmp_path, content, line=3, column=6)
    content = _rows("A1,X,1,Open,2025-04-01", "A2")
    _refused(tmp_path, content, line=3)


def test_short_row_padded(tmp_path):
    summary, deals = _import(tmp_path, _rows("A1,Short,100,Open"))
    assert deals.loc["A1", "amount"] == 100.0 and pd_isna(deals.loc["A1", "close_date"])
    assert any("padded" in w for w in summary["warnings"])


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


REPORT_TRAILER = (
    "\r\n"
    '"Opportunity Pipeline"\r\n'
    '"Copyright (c) 2000-2025 salesforce.com, inc. All rights reserved."\r\n'
    '"Confidential Information - Do Not Distribute"\r\n'
    '"Generated By:  Rhea Stone  3/14/2025 9:02 AM"\r\n'
    '"Fictional Widgets Inc."\r\n'
)
REPORT_MAPPING = """\
dataset = "report"
currency = "USD"

[columns]
deal_id = "Opportunity ID"
name = "Opportunity Name"
amount = "Amount"
stage = "Stage"
close_date = "Close Date"
"""


def test_salesforce_report_with_trailer(tmp_path):
    content = (
        '"Opportunity ID","Opportunity Name","Stage","Amount","Close Date"\r\n'
        '"0061","Granite Works","Prospecting","12,000","2025-05-02"\r\n'
        '"0062","Birch Supply","Negotiation","8,000","2025-06-30"\r\n' + REPORT_TRAILER
    )
    summary, deals = _import(tmp_path, content, mapping=REPORT_MAPPING)
    assert len(deals) == 2 and deals["amount"].sum() == 20000.0
    raw = read_table(tmp_path / "deals.csv")
    assert raw.metadata["title"] == "Opportunity Pipeline"
    assert raw.metadata["generated_by"] == "Rhea Stone  3/14/2025 9:02 AM"


def test_opportunities_with_products_counted_once(tmp_path):
    content = (
        '"Opportunity ID","Opportunity Name","Stage","Amount","Close Date",'
        '"Product Name"\r\n'
        '"0071","Quarry Ltd","Proposal","500","2025-05-02","Bolts"\r\n'
        '"0071","Quarry Ltd","Proposal","500","2025-05-02","Nuts"\r\n' + REPORT_TRAILER
    )
    summary, deals = _import(tmp_path, content, mapping=REPORT_MAPPING)
    assert deals["amount"].tolist() == [500.0]
    reasons = {s["reason"]: s["lines"] for s in summary["rows_skipped"]}
    assert list(reasons.values()) == [[2]]


def test_long_quoted_description_far_down(tmp_path):
    mapping = MAPPING + 'next_step = "Description"\n'
    rows = [f"P{i:05d},Plain {i},{i},Open,2025-04-01," for i in range(3000)]
    rows.append(
        'Q1,Quoted,"1,250.50",Open,2025-04-01,"A long note, with a comma\n'
        + "and a second line " * 200
        + '\nand a third"'
    )
    rows.append("Q2,After,oops,Open,2025-04-01,")
    content = _rows(*rows, header=HEADER + ",Description")
    _refused(tmp_path, content, line=3005, column="Amount", mapping=mapping)
    content = _rows(*rows[:-1], header=HEADER + ",Description")
    _, deals = _import(tmp_path, content, mapping=mapping)
    assert len(deals) == 3001
    assert deals.loc["Q1", "amount"] == 1250.5
    assert deals["amount"].sum() == sum(range(3000)) + 1250.5


def test_quote_never_closed_is_refused_not_swallowed(tmp_path):
    """A quote opened on line 4 and never closed would read lines 4-11 as
    one cell and lose seven deals; it is refused where it opens."""
    rows = [f"P{i},Plain {i},{100 + i},Open,2025-04-01" for i in range(10)]
    rows[2] = 'P2,"Harbor Tools,102,Open,2025-04-01'
    message = _refused(tmp_path, _rows(*rows), line=4, column="Name")
    assert "missing closing quote" in message and "line 11" in message
    # opened later in the row, the row looks merely short: still refused
    rows[2] = 'P2,Harbor Tools,"102,Open,2025-04-01'
    message = _refused(tmp_path, _rows(*rows), line=4, column="Amount")
    assert "never closed" in message and "lines 4 to 11" in message
    # far from the end, the open cell outgrows the csv module's limit first
    rows = [f"P{i},Plain {i},{100 + i},Open,2025-04-01" for i in range(8000)]
    rows[2] = 'P2,"Harbor Tools,102,Open,2025-04-01'
    message = _refused(tmp_path, _rows(*rows), line=4)
    assert "opened and never closed" in message


def test_excel_workbook(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["Id", "Name", "Amount", "Stage", "CloseDate"])
    book.active.append(["A1", "Sheet Co", 1250.5, "Open", dt.datetime(2025, 4, 1)])
    book.active.append(["A2", "Other Co", 99, "Open", "bad date"])
    path = tmp_path / "deals.xlsx"
    book.save(path)
    mapping_path = tmp_path / "mapping.toml"
    mapping_path.write_text(MAPPING)
    with store.connect(tmp_path / "x.duckdb") as con:
        with pytest.raises(InputError) as caught:
            import_files(con, source="table", files=[path], mapping=mapping_path)
    assert (caught.value.line, caught.value.column) == (3, "CloseDate")


# -- Salesforce Data Export -------------------------------------------------

SF_HEADER = (
    '"Id","AccountId","Name","StageName","Amount","Probability","CloseDate",'
    '"IsClosed","IsWon","ForecastCategoryName","CreatedDate","OwnerId"'
)


def test_salesforce_export_placeholders_and_categories(tmp_path):
    path = tmp_path / "Opportunity.csv"
    path.write_text(
        SF_HEADER
        + "\r\n"
        + '"006A","000000000000000AAA","Pine","Proposal","16120999.999999998","50",'
        '"2025-05-02","0","0","BestCase","2025-01-02 10:00:00","005X"\r\n'
        + '"006B","001B","Oak","Closed Won","1250","100","2025-03-01","1","1",'
        '"Closed","2025-01-03 11:00:00","005X"\r\n',
        encoding="utf-8",
    )
    with store.connect(tmp_path / "sf.duckdb") as con:
        import_files(con, source="salesforce", files=[path])
        rows = con.execute(
            "SELECT deal_id, account, amount, probability, forecast_category, "
            "outcome FROM deals ORDER BY deal_id"
        ).fetchall()
    assert rows == [
        ("006A", None, 16121000.0, 0.5, "best_case", "open"),
        ("006B", "001B", 1250.0, 1.0, "closed", "won"),
    ]


def test_salesforce_bad_probability(tmp_path):
    path = tmp_path / "Opportunity.csv"
    path.write_text(
        SF_HEADER
        + "\n"
        + '"006A","001","Pine","Proposal","1","high","2025-05-02","0","0",'
        '"Pipeline","2025-01-02 10:00:00","005X"\n'
    )
    with store.connect(tmp_path / "sf.duckdb") as con:
        with pytest.raises(InputError) as caught:
            import_files(con, source="salesforce", files=[path])
    assert (caught.value.line, caught.value.column) == (2, "Probability")
