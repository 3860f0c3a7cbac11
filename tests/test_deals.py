"""The deal table behind the Pipeline page and ``python -m dealcase deals``."""

import datetime as dt

import pytest

from dealcase import case, store
from dealcase.deals import DEAL_FIELDS, deal_table, quarter_pipeline
from tests.conftest import DEMO_TODAY

QUARTER = "2025Q4"


def _open_deals_by_hand(con, as_of: dt.date, quarter_end: dt.date) -> set[str]:
    """The same pipeline by a second route: the latest version per deal with
    a window function instead of the ASOF join."""
    rows = con.execute(
        """
        WITH latest AS (
            SELECT deal_id, outcome, close_date,
                   row_number() OVER (
                       PARTITION BY deal_id ORDER BY valid_from DESC
                   ) AS newest
            FROM deal_history
            WHERE valid_from < CAST(? AS DATE) + INTERVAL 1 DAY
        )
        SELECT deal_id FROM latest
        WHERE newest = 1 AND outcome = 'open'
          AND (close_date IS NULL OR close_date <= ?)
        """,
        [as_of, quarter_end],
    ).fetchall()
    return {row[0] for row in rows}


@pytest.fixture(scope="module")
def table(demo_db):
    with store.connect(demo_db) as con:
        frame, notes = deal_table(con, QUARTER, DEMO_TODAY)
        by_hand = _open_deals_by_hand(con, DEMO_TODAY, dt.date(2025, 12, 31))
        flags = case.red_flags(con, DEMO_TODAY, frame["deal_id"].tolist())
        pipeline = quarter_pipeline(con, QUARTER, DEMO_TODAY)
    return frame, by_hand, flags, pipeline


def test_every_open_deal_of_the_quarter_is_listed_once(table):
    frame, by_hand, _, pipeline = table

    assert list(frame.columns) == DEAL_FIELDS
    assert frame["deal_id"].is_unique
    assert set(frame["deal_id"]) == by_hand
    assert len(pipeline) == len(by_hand)


def test_scores_are_probabilities_and_reasons_sum_to_them(table):
    frame, *_ = table

    assert frame["close_likelihood"].between(0, 1).all()
    assert frame["slip_risk"].between(0, 1).all()
    assert frame["case_score"].between(0, 100).all()
    for _, row in frame.head(20).iterrows():
        assert row["reasons"], row["deal_id"]
        assert all({"text", "effect"} <= set(r) for r in row["reasons"])


def test_red_flags_are_those_of_the_rules(table):
    frame, _, flags, _ = table

    expected = flags.groupby("deal_id")["text"].agg(list).to_dict()
    for deal_id, shown in zip(frame["deal_id"], frame["red_flags"]):
        assert shown == expected.get(deal_id, [])


def test_sorted_by_amount_at_stake(table):
    frame, *_ = table

    at_stake = (frame["amount"] * frame["close_likelihood"]).tolist()
    assert at_stake == sorted(at_stake, reverse=True)
