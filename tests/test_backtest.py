"""Backtest: past quarters as they stood, scored against what was won."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from dealcase import store
from dealcase.backtest import backtest_report, past_quarters

TODAY = dt.date(2024, 12, 31)
HISTORY_INSERT = (
    "INSERT INTO deal_history (deal_id, valid_from, stage, amount, close_date, "
    "forecast_category, probability, outcome, source) "
)


@pytest.fixture(scope="module")
def small_company(tmp_path_factory):
    """A seeded year of deals: created every day, about half won, each
    closing 20-120 days after creation; the first close is in February."""
    path = tmp_path_factory.mktemp("backtest") / "company.duckdb"
    rng = np.random.default_rng(21)
    deals = []
    with store.connect(path) as con:
        store.set_meta(con, "today", TODAY.isoformat())
        con.execute(
            "INSERT INTO stages VALUES ('Proposal', 1, 0.3, false, false), "
            "('Won', 2, 1.0, true, true), ('Lost', 3, 0.0, true, false)"
        )
        for i in range(700):
            created = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 366)))
            days = int(rng.integers(20, 121))
            expected = created + dt.timedelta(days=days)
            won = rng.random() < 0.5
            closed = expected + dt.timedelta(days=int(rng.integers(-10, 30)))
            closed = max(closed, created + dt.timedelta(days=1))
            outcome = "open" if closed > TODAY else ("won" if won else "lost")
            amount = float(round(rng.lognormal(9, 0.6)))
            deal_id = f"D{i:04d}"
            team = ["Harbour", "Summit"][i % 2]
            con.execute(
                """
                INSERT INTO deals (deal_id, name, owner, team, segment, stage,
                    amount, created_on, close_date, closed_on, outcome)
                VALUES (?, ?, ?, ?, 'mid', ?, ?, ?, ?, ?, ?)
                """,
                [
                    deal_id,
                    f"Order {i}",
                    f"Rep {i % 5}",
                    team,
                    {"open": "Proposal", "won": "Won", "lost": "Lost"}[outcome],
                    amount,
                    created,
                    expected if outcome == "open" else closed,
                    None if outcome == "open" else closed,
                    outcome,
                ],
            )
            con.execute(
                HISTORY_INSERT + "VALUES (?, ?, 'Proposal', ?, ?, NULL, "
                "NULL, 'open', 'test')",
                [deal_id, dt.datetime.combine(created, dt.time(9)), amount, expected],
            )
            if outcome != "open":
                con.execute(
                    HISTORY_INSERT + "VALUES (?, ?, ?, ?, ?, 'closed', "
                    "NULL, ?, 'test')",
                    [
                        deal_id,
                        dt.datetime.combine(closed, dt.time(16)),
                        "Won" if won else "Lost",
                        amount,
                        closed,
                        outcome,
                    ],
                )
            deals.append((outcome, closed, amount))
    return path, deals


def _won_between(deals, start, end):
    return sum(
        a for outcome, closed, a in deals if outcome == "won" and start <= closed <= end
    )


def test_past_quarters_skip_those_without_history(small_company):
    path, _ = small_company
    with store.connect(path, read_only=True) as con:
        chosen, skipped = past_quarters(con)
    assert [q.name for q in chosen] == ["2024Q2", "2024Q3", "2024Q4"]
    assert skipped == [{"quarter": "2024Q1", "reason": "no closed history before it"}]


@pytest.fixture(scope="module")
def q3_report(small_company):
    path, _ = small_company
    with store.connect(path, read_only=True) as con:
        return backtest_report(con, quarters=["2024Q3"], seed=1)


def test_backtest_rows_and_summary(small_company, q3_report):
    _, deals = small_company
    report = q3_report
    rows = report.doc["quarters"]
    assert [r["as_of"] for r in rows] == ["2024-07-01", "2024-07-22", "2024-08-19"]
    actual = _won_between(deals, dt.date(2024, 7, 1), dt.date(2024, 9, 30))
    previous = _won_between(deals, dt.date(2024, 4, 1), dt.date(2024, 6, 30))
    for row in rows:
        assert row["actual"] == pytest.approx(actual)
        assert row["p10"] <= row["p50"] <= row["p90"]
        assert row["covered"] == (row["p10"] <= actual <= row["p90"])
        assert row["abs_pct_error"] == pytest.approx(abs(row["p50"] - actual) / actual)
        assert row["last_quarter"] == pytest.approx(previous)
        assert row["commit"] is None  # no forecast categories in this source
    summary = report.doc["summary"]
    assert summary["mape"] == pytest.approx(np.mean([r["abs_pct_error"] for r in rows]))
    assert summary["coverage"] == pytest.approx(np.mean([r["covered"] for r in rows]))
    assert summary["baselines"]["last_quarter"]["mape"] == pytest.approx(
        abs(previous - actual) / actual
    )
    assert summary["baselines"]["commit"] == {"mape": None, "rows": 0}
    assert summary["probability_source"].startswith("each stage's default")
    # a regression guard for this small, noisy company (about 150 open deals)
    assert summary["mape"] < 0.35


def test_weighted_pipeline_baseline_by_hand(small_company, q3_report):
    path, deals = small_company
    as_of = dt.date(2024, 7, 1)
    report = q3_report
    with store.connect(path, read_only=True) as con:
        open_value = con.execute(
            """
            SELECT sum(h.amount) FROM deal_history h JOIN deals d USING (deal_id)
            WHERE h.outcome = 'open' AND h.valid_from < ?
              AND (d.closed_on IS NULL OR d.closed_on > ?)
              AND h.close_date <= DATE '2024-09-30'
            """,
            [as_of + dt.timedelta(days=1), as_of],
        ).fetchone()[0]
    # every deal's expected close stays put, so its state on 07-01 is its
    # first version; Proposal's default probability is 0.3
    booked = _won_between(deals, as_of, as_of)
    first = report.doc["quarters"][0]
    assert first["weighted_pipeline"] == pytest.approx(booked + 0.3 * open_value)
