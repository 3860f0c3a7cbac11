"""Deals and forecast on the Salesforce sample, whose every record carries the
day the data was loaded (2018-10-13 17:16:45) as its created date, after the
close dates of its 18 won deals: nothing was ever seen open before it closed,
and the creation rate of one day is no rate."""

from __future__ import annotations

import datetime as dt

import pytest

from dealcase import store
from dealcase.deals import deal_table
from dealcase.forecast import forecast_quarter

PRESENT = dt.date(2018, 10, 13)


@pytest.fixture(scope="module")
def loaded(salesforce_db):
    return salesforce_db[0]


def test_deals_are_listed_without_a_likelihood_and_say_why(loaded):
    with store.connect(loaded, read_only=True) as con:
        table, notes = deal_table(con, "2018Q4", PRESENT)
    assert len(table) > 0
    assert table["close_likelihood"].isna().all()
    assert any(
        "the 18 deal(s) closed by 2018-10-13 were never recorded open" in note
        for note in notes
    )


def test_forecast_leaves_out_new_business_it_cannot_measure(loaded):
    with store.connect(loaded, read_only=True) as con:
        doc = forecast_quarter(con, "2018Q4", PRESENT, draws=2000)
    # won between 2018-10-01 and 10-13 in Opportunity.csv: 120,000 + 120,000 +
    # 30,000 + 75,000
    assert doc["booked"] == 345_000
    assert doc["new_business"]["expected"] == 0
    assert any("created over only 1 day(s)" in note for note in doc["fallback"])
    # 13 open deals with 2,115,000 in the pipeline: the range cannot exceed it
    assert doc["open_deals"]["count"] == 13
    assert doc["p90"] <= 345_000 + 2_115_000
