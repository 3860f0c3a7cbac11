"""Value parsers: dates, money, probabilities, categories, flags and ids."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealcase.errors import InputError
from dealcase.importing import parsing

# -- dates -------------------------------------------------------------------


def test_iso_dates_and_timestamps_keep_their_calendar_date():
    got = parsing.parse_dates(
        [
            "2025-04-01",
            "2025-04-01T00:00:00.000Z",
            "2025-04-01T23:30:00-05:00",
            "2018-10-13 17:16:45",
            "",
            "  ",
        ]
    )
    assert got.tolist() == [
        dt.date(2025, 4, 1),
        dt.date(2025, 4, 1),
        dt.date(2025, 4, 1),
        dt.date(2018, 10, 13),
        None,
        None,
    ]


def test_day_first_proven_by_one_value():
    got = parsing.parse_dates(["29/01/2025", "01/04/2025", "3.1.2024"])
    assert got.tolist() == [
        dt.date(2025, 1, 29),
        dt.date(2025, 4, 1),
        dt.date(2024, 1, 3),
    ]


def test_month_first_proven_by_one_value():
    got = parsing.parse_dates(["03/01/2024", "12/31/2024"])
    assert got.tolist() == [dt.date(2024, 3, 1), dt.date(2024, 12, 31)]


def test_ambiguous_column_is_refused_with_first_ambiguous_line():
    with pytest.raises(InputError) as caught:
        parsing.parse_dates(
            ["", "05/05/2024", "03/01/2024", "04/02/2024"],
            file="deals.csv",
            column="Close Date",
            line_numbers=[2, 3, 5, 9],
        )
    error = caught.value
    assert (error.file, error.line, error.column) == ("deals.csv", 5, "Close Date")
    assert "--date-order dmy|mdy" in str(error)


def test_date_order_decides_ambiguous_values():
    values = ["03/01/2024", "04/02/2024"]
    assert parsing.parse_dates(values, date_order="dmy").tolist() == [
        dt.date(2024, 1, 3),
        dt.date(2024, 2, 4),
    ]
    assert parsing.parse_dates(values, date_order="mdy").tolist() == [
        dt.date(2024, 3, 1),
        dt.date(2024, 4, 2),
    ]


def test_impossible_date_rejected_with_its_line_not_rolled_over():
    with pytest.raises(InputError) as caught:
        parsing.parse_dates(
            ["29/01/2025", "01/04/2025", "13/23/2025"],
            file="f.csv",
            column="CloseDate",
            line_numbers=[2, 3, 4],
        )
    assert caught.value.line == 4
    assert "13/23/2025" in str(caught.value)


def test_february_30_is_rejected():
    with pytest.raises(InputError) as caught:
        parsing.parse_dates(["2025-02-30"], line_numbers=[7])
    assert caught.value.line == 7


def test_conflicting_date_orders_reported():
    with pytest.raises(InputError) as caught:
        parsing.parse_dates(
            ["29/01/2025", "01/30/2025"], file="f.csv", column="d", line_numbers=[2, 3]
        )
    message = str(caught.value)
    assert "line 2 is day-first" in message and "line 3 is month-first" in message


def test_garbage_date_names_line_and_column():
    with pytest.raises(InputError) as caught:
        parsing.parse_dates(
            ["2025-01-01", "next week"], file="f.csv", column="d", line_numbers=[2, 3]
        )
    assert str(caught.value).startswith("f.csv, line 3, column d:")


def test_timestamps_convert_offsets_to_utc_and_keep_naive_values():
    got = parsing.parse_timestamps(
        ["2025-04-01T23:30:00.000-02:00", "2018-10-13 17:16:45", "", "3/1/2024"],
        date_order="dmy",
    )
    assert str(got.dtype) == "datetime64[us]"
    assert got.isna().tolist() == [False, False, True, False]
    assert got.dropna().tolist() == [
        dt.datetime(2025, 4, 2, 1, 30),
        dt.datetime(2018, 10, 13, 17, 16, 45),
        dt.datetime(2024, 1, 3),
    ]


def test_plain_iso_timestamps_take_the_fast_path_with_same_result():
    values = ["2018-10-13 17:16:45", "2025-04-01T00:00:00Z", "", "2025-04-01 08:30"]
    got = parsing.parse_timestamps(values)
    assert got.tolist()[:2] == [
        dt.datetime(2018, 10, 13, 17, 16, 45),
        dt.datetime(2025, 4, 1),
    ]
    assert got.tolist()[3] == dt.datetime(2025, 4, 1, 8, 30)
    with pytest.raises(InputError) as caught:
        parsing.parse_timestamps(["2025-04-01 08:30:00", "2025-04-01 25:00:00"])
    assert caught.value.line == 3


def test_us_timestamp_with_meridiem():
    got = parsing.parse_timestamps(["1/2/2025 10:05 PM", "12/30/2025 12:00 AM"])
    assert got.tolist() == [dt.datetime(2025, 1, 2, 22, 5), dt.datetime(2025, 12, 30)]


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(
        st.dates(min_value=dt.date(1971, 1, 1), max_value=dt.date(2068, 12, 31)),
        min_size=1,
        max_size=20,
    ),
    order=st.sampled_from(["dmy", "mdy"]),
    separator=st.sampled_from(["/", ".", "-"]),
    padded=st.booleans(),
)
def test_dates_round_trip_through_formatting(days, order, separator, padded):
    def fmt(day: dt.date) -> str:
        d, m = (
            (f"{day.day:02d}", f"{day.month:02d}")
            if padded
            else (
                str(day.day),
                str(day.month),
            )
        )
        first, second = (d, m) if order == "dmy" else (m, d)
        return f"{first}{separator}{second}{separator}{day.year}"

    assert parsing.parse_dates([fmt(d) for d in days], date_order=order).tolist() == (
        days
    )
    assert parsing.parse_dates([d.isoformat() for d in days]).tolist() == days


# -- money -------------------------------------------------------------------


def test_money_formats():
    amounts, currencies = parsing.parse_money(
        ["1,250.50", "$1,250", "-500", "16120999.999999998", "", "0", "1.5E+03"]
    )
    assert amounts.tolist()[:4] == [1250.5, 1250.0, -500.0, 16121000.0]
    assert math.isnan(amounts[4])
    assert amounts.tolist()[5:] == [0.0, 1500.0]
    assert currencies.tolist() == [None, "USD", None, None, None, None, None]


def test_money_currency_codes_and_parentheses():
    amounts, currencies = parsing.parse_money(
        ["JPY 1,000,000", "USD 10,000.00", "USD (500.00)", "(75)", "20 EUR"]
    )
    assert amounts.tolist() == [1_000_000.0, 10_000.0, -500.0, -75.0, 20.0]
    assert currencies.tolist() == ["JPY", "USD", "USD", None, "EUR"]


def test_decimal_comma_decided_per_column():
    amounts, currencies = parsing.parse_money(["€1.250,50", "€1.250", "12,5"])
    assert amounts.tolist() == [1250.5, 1250.0, 12.5]
    assert currencies.tolist() == ["EUR", "EUR", None]
    # Without a value that proves a decimal comma, the comma groups thousands.
    amounts, _ = parsing.parse_money(["1,250", "2,000"])
    assert amounts.tolist() == [1250.0, 2000.0]


@pytest.mark.parametrize(
    ("value", "group", "example"),
    [
        ("12,34,5", ",", "1,234,567.89"),
        ("12,34,567", ",", "1,234,567.89"),
        ("1,234,56.70", ",", "1,234,567.89"),
        ("€1.23.456,70", ".", "1.234.567,89"),
    ],
)
def test_irregular_thousands_grouping_refused(value, group, example):
    with pytest.raises(InputError) as caught:
        parsing.parse_money(
            ["1,000", value], file="t.csv", column="value", line_numbers=[10, 11]
        )
    shown = value.lstrip("€")
    assert str(caught.value) == (
        f"t.csv, line 11, column value: cannot read {shown!r} as an amount: "
        f"expected digits grouped in threes with '{group}' (like {example}) or "
        "no grouping at all"
    )


def test_regular_thousands_grouping_read():
    amounts, _ = parsing.parse_money(["12,345", "1,234,567.5", "1 234 567"])
    assert amounts.tolist() == [12_345.0, 1_234_567.5, 1_234_567.0]


def test_mixed_decimal_marks_refused():
    with pytest.raises(InputError) as caught:
        parsing.parse_money(["1.250,50", "1,250.50"], line_numbers=[2, 3])
    assert "decimal commas (line 2)" in str(caught.value)


def test_unreadable_amount_names_line_and_column():
    with pytest.raises(InputError) as caught:
        parsing.parse_money(
            ["100", "about 5k"], file="o.csv", column="Amount", line_numbers=[2, 40]
        )
    assert str(caught.value).startswith("o.csv, line 40, column Amount:")


@settings(max_examples=80, deadline=None)
@given(
    cents=st.lists(st.integers(-(10**11), 10**11), min_size=1, max_size=20),
    style=st.sampled_from(["us", "eu", "plain", "code", "paren"]),
)
def test_money_round_trips_through_formatting(cents, style):
    def fmt(value: int) -> str:
        number = f"{abs(value) / 100:,.2f}"
        if style == "eu":
            number = number.replace(",", "_").replace(".", ",").replace("_", ".")
            return ("-" if value < 0 else "") + "€" + number
        if style == "plain":
            return f"{value / 100:.2f}"
        if style == "code":
            return ("-" if value < 0 else "") + "GBP " + number
        if style == "paren":
            return f"USD ({number})" if value < 0 else f"USD {number}"
        return ("-$" if value < 0 else "$") + number

    amounts, _ = parsing.parse_money([fmt(v) for v in cents])
    assert np.allclose(amounts.to_numpy(), np.array(cents) / 100, rtol=0, atol=1e-6)


# -- currencies --------------------------------------------------------------


def test_converted_column_wins_known_case():
    amounts, currencies = parsing.parse_money(
        ["JPY 1,000,000", "USD 10,000.00", "USD (500.00)"]
    )
    converted = parsing.parse_money(["USD 6,700.00", "USD 10,000.00", "USD (500.00)"])
    result = parsing.convert_currency(amounts, currencies, converted=converted)
    assert result["amount"].sum() == pytest.approx(16_200.0)
    assert result["amount_original"].tolist() == [1_000_000.0, 10_000.0, -500.0]
    assert result["currency"].tolist() == ["JPY", "USD", "USD"]


def test_mixed_currencies_without_rates_refused_with_totals():
    amounts, currencies = parsing.parse_money(
        ["JPY 1,000,000", "USD 10,000.00", "USD (500.00)"]
    )
    with pytest.raises(InputError) as caught:
        parsing.convert_currency(
            amounts, currencies, file="o.csv", column="Amount", line_numbers=[2, 3, 4]
        )
    message = str(caught.value)
    assert "JPY 1,000,000.00" in message and "USD 9,500.00" in message
    assert "--rates" in message and caught.value.line == 2


def test_rates_convert_and_keep_original(tmp_path):
    rates_file = tmp_path / "CurrencyType.csv"
    rates_file.write_text(
        '"IsoCode","ConversionRate","IsCorporate"\n'
        '"USD","1","1"\n"JPY","150","0"\n"EUR","0.8","0"\n'
    )
    assert parsing.read_rates(rates_file) == {"USD": 1.0, "JPY": 150.0, "EUR": 0.8}
    amounts, currencies = parsing.parse_money(["JPY 1,500,000", "EUR 800", "25"])
    result = parsing.convert_currency(amounts, currencies, rates=rates_file)
    assert result["amount"].tolist() == [10_000.0, 1_000.0, 25.0]
    assert result["amount_original"].tolist() == [1_500_000.0, 800.0, 25.0]


def test_missing_rate_names_the_currency():
    amounts, currencies = parsing.parse_money(["CHF 100"])
    with pytest.raises(InputError, match="no exchange rate for CHF"):
        parsing.convert_currency(amounts, currencies, rates={"JPY": 150})


# -- probability, categories, flags, ids -------------------------------------


def test_probability_percent_or_fraction_per_column():
    assert parsing.parse_probability(["50%", "", "10%"]).tolist()[::2] == [0.5, 0.1]
    assert parsing.parse_probability(["50", "10", "100"]).tolist() == [0.5, 0.1, 1.0]
    assert parsing.parse_probability(["0.5", "1", "0"]).tolist() == [0.5, 1.0, 0.0]
    assert math.isnan(parsing.parse_probability([""])[0])
    with pytest.raises(InputError):
        parsing.parse_probability(["150"])


def test_forecast_categories():
    warnings: list[str] = []
    got = parsing.normalise_forecast_category(
        [
            "BestCase",
            "Best Case",
            "best case",
            "Commit",
            "Forecast",
            "Pipeline",
            "Omitted",
            "Closed",
            "",
            "Maybe",
        ],
        column="ForecastCategory",
        warnings=warnings,
    )
    assert got.tolist() == ["best_case"] * 3 + [
        "commit",
        "commit",
        "pipeline",
        "omitted",
        "closed",
        None,
        None,
    ]
    assert len(warnings) == 1 and "'Maybe'" in warnings[0]


def test_bool_and_ids():
    assert parsing.parse_bool(["0", "1", "TRUE", "no", ""]).tolist() == [
        False,
        True,
        True,
        False,
        None,
    ]
    with pytest.raises(InputError):
        parsing.parse_bool(["maybe"], line_numbers=[4])
    assert parsing.clean_id(
        [" 0064600000J5S5TAAV ", "000000000000000AAA", ""]
    ).tolist() == [
        "0064600000J5S5TAAV",
        None,
        None,
    ]
