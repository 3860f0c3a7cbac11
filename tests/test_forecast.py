"""Forecast: a hand-computed case, determinism, roll-ups, what-ifs, the fast
path against a plain Monte Carlo, timing and new business by hand, and the
Maven import end to end."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from dealcase import store
from dealcase.forecast import (
    _histogram,
    _percentiles,
    exact_distribution,
    exact_quantile,
    forecast_quarter,
    forecast_report,
    forecast_trend,
    quarter_distribution,
)
from dealcase.newbusiness import NewBusinessPart, estimate_new_business
from dealcase.periods import Quarter
from dealcase.timing import AgeHazards, CloseDateTiming, open_deal_state

AS_OF = dt.date(2024, 8, 15)
HISTORY_INSERT = (
    "INSERT INTO deal_history (deal_id, valid_from, stage, amount, close_date, "
    "forecast_category, probability, outcome, source) "
)


def _add_deal(
    con,
    deal_id,
    *,
    team,
    owner,
    amount,
    created,
    outcome="open",
    closed_on=None,
    close_date=None,
    category=None,
    segment="mid",
):
    con.execute(
        """
        INSERT INTO deals (deal_id, name, account, owner, team, segment, stage,
            forecast_category, amount, created_on, close_date, closed_on, outcome)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            deal_id,
            f"Deal {deal_id}",
            f"Acme {deal_id}",
            owner,
            team,
            segment,
            "Proposal",
            category,
            amount,
            created,
            close_date or closed_on,
            closed_on,
            outcome,
        ],
    )
    con.execute(
        HISTORY_INSERT + "VALUES (?, ?, 'Proposal', ?, ?, ?, NULL, 'open', 'test')",
        [
            deal_id,
            dt.datetime.combine(created, dt.time(9)),
            amount,
            close_date,
            category,
        ],
    )
    if outcome != "open":
        con.execute(
            HISTORY_INSERT + "VALUES (?, ?, 'Closed', ?, ?, 'closed', NULL, ?, 'test')",
            [
                deal_id,
                dt.datetime.combine(closed_on, dt.time(17)),
                amount,
                closed_on,
                outcome,
            ],
        )


@pytest.fixture
def hand_db(tmp_path):
    """Three open deals, one won in the quarter (1,000), one won last quarter."""
    path = tmp_path / "hand.duckdb"
    with store.connect(path) as con:
        store.set_meta(con, "today", AS_OF.isoformat())
        store.set_meta(con, "currency", "EUR")
        old = dt.date(2024, 1, 10)
        _add_deal(
            con,
            "A",
            team="North",
            owner="Ada Quill",
            amount=100,
            created=old,
            close_date=dt.date(2024, 9, 1),
            category="commit",
        )
        _add_deal(
            con,
            "B",
            team="North",
            owner="Ben Roe",
            amount=300,
            created=old,
            close_date=dt.date(2024, 9, 20),
            category="best_case",
        )
        _add_deal(
            con,
            "C",
            team="South",
            owner="Cy Vale",
            amount=50,
            created=old,
            close_date=dt.date(2024, 9, 5),
            category="pipeline",
        )
        _add_deal(
            con,
            "W",
            team="South",
            owner="Cy Vale",
            amount=1000,
            created=old,
            outcome="won",
            closed_on=dt.date(2024, 8, 15),
        )
        _add_deal(
            con,
            "P",
            team="North",
            owner="Ada Quill",
            amount=700,
            created=old,
            outcome="won",
            closed_on=dt.date(2024, 6, 30),
        )
        con.execute("INSERT INTO targets VALUES ('2024Q3', NULL, NULL, 1300)")
        con.execute("INSERT INTO targets VALUES ('2024Q3', 'North', NULL, 250)")
    return path


HAND_SCORES = pd.DataFrame(
    {
        "deal_id": ["A", "B", "C"],
        "close_likelihood": [0.5, 0.2, 1.0],
        "p_in_quarter": [0.5, 0.2, 1.0],
    }
)


def test_hand_computed_forecast(hand_db):
    # Outcomes: 1000 booked + 50 (C, certain) + 100 w.p. 0.5 + 300 w.p. 0.2:
    # 1050: 0.4, 1150: 0.4, 1350: 0.1, 1450: 0.1.
    with store.connect(hand_db, read_only=True) as con:
        doc = forecast_quarter(con, "2024Q3", AS_OF, scores=HAND_SCORES)
    assert doc["booked"] == 1000
    assert doc["expected"] == pytest.approx(1000 + 50 + 0.5 * 100 + 0.2 * 300)
    assert doc["method"] == "exact"
    assert (doc["p10"], doc["p50"], doc["p90"]) == (1050, 1150, 1350)
    assert doc["target"] == 1300
    assert doc["p_reach_target"] == pytest.approx(0.2)
    assert doc["currency"] == "EUR"
    assert doc["open_deals"]["count"] == 3
    # the reps' call: booked + commit (A), + best case (B), + pipeline (C)
    assert doc["reps_call"] == {
        "commit": 1100.0,
        "best_case": 1400.0,
        "pipeline": 1450.0,
    }
    # variance a^2 p (1-p): A 2500, B 14400, C 0
    shares = {row["deal_id"]: row["share_of_spread"] for row in doc["swing_deals"]}
    assert shares == pytest.approx({"B": 14400 / 16900, "A": 2500 / 16900})


def test_simulation_matches_exact_distribution():
    exact = exact_distribution([100, 300, 50], [0.5, 0.2, 1.0], booked=1000)
    assert exact.to_dict() == pytest.approx(
        {1050: 0.4, 1150: 0.4, 1350: 0.1, 1450: 0.1}
    )
    assert exact_quantile(exact, 0.5) == 1150
    draws = quarter_distribution(
        [100, 300, 50], [0.5, 0.2, 1.0], booked=1000, draws=40_000, seed=3
    ).company
    assert np.quantile(draws, 0.1, method="inverted_cdf") == 1050
    assert np.quantile(draws, 0.5, method="inverted_cdf") == 1150
    # P(total <= 1150) = 0.8; 40,000 draws give a standard error of 0.002
    assert np.mean(draws <= 1150) == pytest.approx(0.8, abs=0.01)
    assert draws.mean() == pytest.approx(1160, abs=3)


def test_groups_and_targets(hand_db):
    with store.connect(hand_db, read_only=True) as con:
        doc = forecast_quarter(con, "2024Q3", AS_OF, by="team", scores=HAND_SCORES)
    groups = {g["name"]: g for g in doc["groups"]}
    assert set(groups) == {"North", "South"}
    assert groups["South"]["booked"] == 1000
    assert groups["North"]["expected"] == pytest.approx(0.5 * 100 + 0.2 * 300)
    assert groups["North"]["target"] == 250
    assert groups["South"]["target"] is None
    # North reaches 250 only when B (300) is won: 0.2 (simulated)
    assert groups["North"]["p_reach_target"] == pytest.approx(0.2, abs=0.02)
    assert sum(g["expected"] for g in doc["groups"]) == pytest.approx(doc["expected"])
    # each group's swing deals are its own, as shares of its own spread:
    # North A (2,500) and B (14,400); South C is certain (no spread)
    north = {r["deal_id"]: r["share_of_spread"] for r in groups["North"]["swing_deals"]}
    assert north == pytest.approx({"B": 14400 / 16900, "A": 2500 / 16900})
    assert groups["South"]["swing_deals"] == []


def test_reps_call_counts_only_deals_expected_in_the_quarter(hand_db):
    """A commit deal the rep dates in the next quarter (Q, 2024-10-15) and a
    best-case deal with no date (N) are not in 2024Q3's call; once 2024Q3
    has ended the call is what was booked (1,000)."""
    with store.connect(hand_db) as con:
        old = dt.date(2024, 1, 10)
        for deal_id, close_date, category in [
            ("Q", dt.date(2024, 10, 15), "commit"),
            ("N", None, "best_case"),
        ]:
            _add_deal(
                con,
                deal_id,
                team="North",
                owner="Ada Quill",
                amount=5000,
                created=old,
                close_date=close_date,
                category=category,
            )
        scores = pd.concat(
            [
                HAND_SCORES,
                pd.DataFrame(
                    {
                        "deal_id": ["Q", "N"],
                        "close_likelihood": [0.5, 0.5],
                        "p_in_quarter": [0.1, 0.1],
                    }
                ),
            ]
        )
        doc = forecast_quarter(con, "2024Q3", AS_OF, scores=scores)
        ended = forecast_quarter(con, "2024Q3", dt.date(2024, 9, 30), scores=scores)
    assert doc["reps_call"] == {
        "commit": 1100.0,
        "best_case": 1400.0,
        "pipeline": 1450.0,
    }
    assert ended["reps_call"] == {
        "commit": 1000.0,
        "best_case": 1000.0,
        "pipeline": 1000.0,
    }


def test_same_seed_same_output_other_seed_differs():
    rng = np.random.default_rng(11)
    amounts = rng.lognormal(9, 1, 400)
    probs = rng.uniform(0, 1, 400)
    part = NewBusinessPart("company", 12.0, rng.lognormal(9, 1, 50))
    first = quarter_distribution(
        amounts, probs, new_business=[part], sigma=0.1, seed=5, draws=5000
    ).company
    again = quarter_distribution(
        amounts, probs, new_business=[part], sigma=0.1, seed=5, draws=5000
    ).company
    other = quarter_distribution(
        amounts, probs, new_business=[part], sigma=0.1, seed=6, draws=5000
    ).company
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.median(other) == pytest.approx(np.median(first), rel=0.02)


def test_forecast_document_is_reproducible(hand_db):
    with store.connect(hand_db, read_only=True) as con:
        first = forecast_quarter(con, "2024Q3", AS_OF, by="owner", seed=4, draws=3000)
        again = forecast_quarter(con, "2024Q3", AS_OF, by="owner", seed=4, draws=3000)
    assert json.dumps(first, default=str) == json.dumps(again, default=str)


def test_rollups_sum_to_company_draws():
    rng = np.random.default_rng(2)
    amounts = rng.lognormal(8, 1, 3000)
    probs = rng.uniform(0, 0.8, 3000)
    groups = rng.integers(0, 4, 3000)
    parts = [NewBusinessPart(n, 5.0, rng.lognormal(8, 1, 30)) for n in "abcd"]
    for exact_deals in (None, 100):
        result = quarter_distribution(
            amounts,
            probs,
            group_index=groups,
            group_names=list("abcd"),
            booked_by_group=[10.0, 20.0, 0.0, 5.0],
            new_business=parts,
            sigma=0.2,
            draws=2000,
            seed=1,
            exact_deals=exact_deals,
        )
        np.testing.assert_allclose(result.groups.sum(axis=0), result.company)
        assert result.groups.shape == (4, 2000)


def test_draws_do_not_depend_on_the_order_of_new_business_parts():
    """A query returns groups in no guaranteed order; the same seed must
    give the same draws whichever order the parts come in."""
    rng = np.random.default_rng(3)
    parts = [NewBusinessPart(n, 4.0, rng.lognormal(8, 1, 20)) for n in "abc"]
    runs = [
        quarter_distribution(
            [100.0, 200.0],
            [0.5, 0.5],
            group_index=[0, 2],
            group_names=list("abc"),
            new_business=listed,
            sigma=0.1,
            draws=500,
            seed=7,
        )
        for listed in (parts, parts[::-1])
    ]
    np.testing.assert_array_equal(runs[0].groups, runs[1].groups)


def test_overrides_change_range_and_write_nothing(hand_db):
    with store.connect(hand_db, read_only=True) as con:
        before = con.execute("SELECT * FROM deals ORDER BY deal_id").df()
        won = forecast_quarter(
            con, "2024Q3", AS_OF, scores=HAND_SCORES, overrides={"B": "won"}
        )
        dropped = forecast_quarter(
            con,
            "2024Q3",
            AS_OF,
            scores=HAND_SCORES,
            overrides={"C": "drop", "A": "next_quarter"},
        )
        after = con.execute("SELECT * FROM deals ORDER BY deal_id").df()
    pd.testing.assert_frame_equal(before, after)
    # B won: 1350 + A (100 w.p. 0.5)
    assert won["expected"] == pytest.approx(1400)
    assert (won["p10"], won["p50"], won["p90"]) == (1350, 1350, 1450)
    # A and C out: 1000 + B (300 w.p. 0.2)
    assert dropped["expected"] == pytest.approx(1060)
    assert (dropped["p10"], dropped["p90"]) == (1000, 1300)


def test_fast_path_agrees_with_reference_monte_carlo():
    rng = np.random.default_rng(8)
    n = 20_000
    amounts = rng.lognormal(9, 1.2, n)
    probs = rng.beta(1, 3, n)
    kwargs = dict(booked=1e6, sigma=0.05, draws=10_000, seed=9)
    fast = quarter_distribution(amounts, probs, exact_deals=256, **kwargs).company
    reference = quarter_distribution(amounts, probs, exact_deals=None, **kwargs).company
    expected = 1e6 + (amounts * probs).sum()
    spread = reference.std()
    standard_error = spread / np.sqrt(10_000)
    assert fast.mean() == pytest.approx(expected, abs=5 * standard_error)
    assert reference.mean() == pytest.approx(expected, abs=5 * standard_error)
    assert fast.std() == pytest.approx(spread, rel=0.05)
    for q in (0.1, 0.5, 0.9):
        assert np.quantile(fast, q) == pytest.approx(
            np.quantile(reference, q), abs=0.05 * spread
        )


def test_age_hazards_match_closed_form():
    # constant daily hazards: win 1%, loss 1%
    hazards = AgeHazards(
        win=np.full(400, 0.01),
        loss=np.full(400, 0.01),
        window_start=None,
        won=1,
        lost=1,
    )
    within_10 = 0.01 * (1 - 0.98**10) / 0.02
    assert hazards.won_within([0], [10])[0] == pytest.approx(within_10)
    # memoryless: the same from any age
    assert hazards.won_within([100], [10])[0] == pytest.approx(within_10)
    assert hazards.closed_within([5], [10])[0] == pytest.approx(1 - 0.98**10)
    assert hazards.won_share([0])[0] == pytest.approx(0.5, abs=1e-3)
    eventually = 0.01 * (1 - 0.98**400) / 0.02
    assert hazards.timing([0], [10])[0] == pytest.approx(within_10 / eventually)


def test_close_date_timing_by_hand():
    # cell (overdue, no push): wins after 5, 10 and 40 days, all followed 200
    # days; cell (overdue, pushed once): one win after 100 days.
    follow = np.full(3, 200.0)
    timing = CloseDateTiming(
        cells={
            (0, 0): (np.array([5.0, 10.0, 40.0]), follow),
            (0, 1): (np.array([100.0]), np.array([200.0])),
        },
        observations=4,
    )
    pooled = 2 / 4
    coarse = (2 + 20 * pooled) / (4 + 20)
    no_push = (2 + 20 * coarse) / (3 + 20)
    pushed = (0 + 20 * coarse) / (1 + 20)
    result = timing.timing([0, 0], [0, 1], days_left=30)
    assert result == pytest.approx([no_push, pushed])


def _share_by_definition(cells, days_left, prior, slack):
    """The share of a cell's snapshots that closed in time, one snapshot at
    a time, as :meth:`CloseDateTiming.timing` defines it."""
    hits = seen = 0
    for closed, follow, expected, won in cells:
        for c, f, e, w in zip(closed, follow, expected, won, strict=True):
            if np.isnan(slack):
                limit, counted = days_left, True
            else:
                limit, counted = max(e + slack, 0.0), bool(w)
            if counted and f >= limit:
                seen += 1
                hits += c <= limit
    if prior is None:
        return hits / seen if seen else 0.5
    return (hits + 20 * prior) / (seen + 20)


def test_close_date_timing_counts_every_slack_as_defined():
    rng = np.random.default_rng(5)
    cells = {}
    for key in [(0, 0), (0, 1), (1, 0), (2, 2)]:
        n = int(rng.integers(5, 60))
        closed = rng.integers(-5, 120, n).astype(float)
        closed[rng.random(n) < 0.3] = np.inf  # still open at the as-of date
        cells[key] = (
            closed,
            rng.integers(0, 150, n).astype(float),
            rng.integers(-20, 90, n).astype(float),
            rng.random(n) < 0.6,
        )
    timing = CloseDateTiming(cells=cells, observations=0)
    close_bucket = np.array([0, 0, 1, 2, 3, 0, 1])
    push_bucket = np.array([0, 1, 0, 2, 0, 2, 1])
    days_to_close = np.array([10.0, -4.0, 60.0, 35.0, 5.0, np.nan, 10.0])
    days_left = 45

    expected = []
    for cb, pb, to_close in zip(close_bucket, push_bucket, days_to_close, strict=True):
        slack = days_left - to_close
        pooled = _share_by_definition(cells.values(), days_left, None, slack)
        row = [v for (c, _), v in cells.items() if c == cb]
        coarse = _share_by_definition(row, days_left, pooled, slack)
        own = [cells[(cb, pb)]] if (cb, pb) in cells else []
        expected.append(_share_by_definition(own, days_left, coarse, slack))
    result = timing.timing(close_bucket, push_bucket, days_left, days_to_close)
    assert result == pytest.approx(expected, rel=1e-12)


def test_new_business_rate_by_hand(tmp_path):
    path = tmp_path / "nb.duckdb"
    as_of = dt.date(2024, 3, 31)
    with store.connect(path) as con:
        # 28 deals created over the last 28 days in team East: one a day
        for i in range(28):
            _add_deal(
                con,
                f"E{i}",
                team="East",
                owner="Eve Stone",
                amount=10,
                created=as_of - dt.timedelta(days=i),
            )
        for i in range(40):
            _add_deal(
                con,
                f"X{i}",
                team="East",
                owner="Eve Stone",
                amount=200,
                created=dt.date(2023, 6, 1),
                outcome="won",
                closed_on=dt.date(2023, 12, 1) + dt.timedelta(days=i),
            )
        hazards = AgeHazards(
            win=np.full(400, 0.01),
            loss=np.full(400, 0.01),
            window_start=None,
            won=40,
            lost=0,
        )
        quarter_end = dt.date(2024, 4, 10)  # ten days left
        parts, _ = estimate_new_business(con, as_of, quarter_end, hazards)
    chance = [0.01 * (1 - 0.98**d) / 0.02 for d in range(10, 0, -1)]
    assert len(parts) == 1 and parts[0].name == "East"
    assert parts[0].expected_count == pytest.approx(sum(chance))
    assert parts[0].mean_amount == 200
    assert parts[0].expected_value == pytest.approx(200 * sum(chance))


def test_open_deal_state_counts_pushes(tmp_path):
    path = tmp_path / "push.duckdb"
    with store.connect(path) as con:
        _add_deal(
            con,
            "Q",
            team="West",
            owner="Ida Moor",
            amount=5,
            created=dt.date(2024, 1, 1),
            close_date=dt.date(2024, 3, 1),
        )
        for day, close in [
            (dt.date(2024, 2, 1), dt.date(2024, 4, 1)),
            (dt.date(2024, 3, 1), dt.date(2024, 3, 20)),
            (dt.date(2024, 3, 10), dt.date(2024, 6, 30)),
        ]:
            con.execute(
                HISTORY_INSERT + "VALUES ('Q', ?, 'Proposal', 5, ?, NULL, "
                "NULL, 'open', 'test')",
                [dt.datetime.combine(day, dt.time(8)), close],
            )
        state = open_deal_state(con, dt.date(2024, 3, 5))
        later = open_deal_state(con, dt.date(2024, 3, 15))
    row = state.iloc[0]
    assert (row["pushes"], row["push_days"]) == (1, 31)  # the pull-in is no push
    assert row["days_to_close"] == 15  # 2024-03-20
    assert row["age_days"] == 64
    assert (later.iloc[0]["pushes"], later.iloc[0]["push_days"]) == (2, 31 + 102)


def test_forecast_report_table(hand_db):
    with store.connect(hand_db, read_only=True) as con:
        report = forecast_report(
            con, quarter="2024Q3", as_of=AS_OF, by="team", draws=2000
        )
    assert list(report.table["name"]) == ["North", "South", "company"]
    assert report.table["booked"].tolist() == [0.0, 1000.0, 1000.0]


def test_maven_forecast_fields(maven_db):
    with store.connect(maven_db, read_only=True) as con:
        doc = forecast_quarter(con, "2017Q3", "2017-07-01", by="team", draws=4000)
    for field in (
        "quarter",
        "as_of",
        "currency",
        "booked",
        "expected",
        "p10",
        "p50",
        "p90",
        "target",
        "p_reach_target",
        "open_deals",
        "new_business",
        "groups",
        "swing_deals",
        "reps_call",
        "fallback",
        "quantiles",
        "histogram",
    ):
        assert field in doc
    # percentiles by the same rule as P10/P50/P90, and every draw binned
    assert len(doc["quantiles"]) == 99
    assert doc["quantiles"][9] == doc["p10"]
    assert doc["quantiles"][49] == doc["p50"]
    assert doc["quantiles"][89] == doc["p90"]
    assert doc["quantiles"] == sorted(doc["quantiles"])
    assert sum(doc["histogram"]["counts"]) == 4000
    assert len(doc["histogram"]["edges"]) == len(doc["histogram"]["counts"]) + 1
    # won on 2017-07-01 in sales_pipeline.csv: 29,664
    assert doc["booked"] == pytest.approx(29_664)
    assert doc["booked"] <= doc["p10"] <= doc["p50"] <= doc["p90"]
    assert doc["target"] is None and doc["p_reach_target"] is None
    # Maven open deals have no expected close date: all timed by age
    assert doc["timing"]["by_close_date"] == 0
    assert doc["new_business"]["expected"] > 0
    assert sum(g["booked"] for g in doc["groups"]) == pytest.approx(doc["booked"])


def test_a_second_grouping_reuses_the_open_deals(maven_db, copy_db):
    """The scored and timed open deals are computed once per data, quarter
    and date: a forecast by owner after one by team is the same as one made
    from scratch, and a write to the deals is seen at once."""
    from dealcase import forecast

    db = copy_db(maven_db)
    args = ("2017Q3", "2017-07-01")
    with store.connect(db) as con:
        forecast._OPEN_DEALS.clear()
        fresh = forecast_quarter(con, *args, by="owner", draws=2000)
        forecast._OPEN_DEALS.clear()
        forecast_quarter(con, *args, by="team", draws=2000)
        reused = forecast_quarter(con, *args, by="owner", draws=2000)
        assert len(forecast._OPEN_DEALS) == 1
        assert json.dumps(reused, default=str) == json.dumps(fresh, default=str)

        # HAXMC4IX (Engaging since 2016-11-03, still open) is lost that day
        lost = dt.datetime(2017, 7, 1, 12)
        con.execute(
            HISTORY_INSERT + "SELECT deal_id, ?, stage, amount, close_date, "
            "forecast_category, probability, 'lost', 'test' FROM deal_history "
            "WHERE deal_id = ? ORDER BY valid_from DESC LIMIT 1",
            [lost, "HAXMC4IX"],
        )
        after = forecast_quarter(con, *args, by="owner", draws=2000)
    assert after["open_deals"]["count"] == fresh["open_deals"]["count"] - 1


def test_trend_weekly_as_of_dates(hand_db):
    with store.connect(hand_db, read_only=True) as con:
        trend = forecast_trend(con, "2024Q3", draws=500)
    days = [dt.date(2024, 7, 1) + dt.timedelta(days=7 * i) for i in range(7)]
    assert list(trend["as_of"]) == days  # to 2024-08-12, the last before today
    assert (trend["booked"] == 0).all()  # W is won on 2024-08-15
    assert (trend["target"] == 1300).all()
    assert trend["actual"].isna().all()  # the quarter has not ended


def test_percentiles_and_histogram_by_hand():
    draws = np.arange(1.0, 101.0)  # 1..100
    # inverted CDF: the k-th percentile of 1..100 is k
    assert _percentiles(draws) == [float(k) for k in range(1, 100)]
    histogram = _histogram(np.array([0.0, 0.0, 1.0, 3.0]))
    assert histogram["edges"][0] == 0.0 and histogram["edges"][-1] == 3.0
    assert histogram["counts"][0] == 2 and histogram["counts"][-1] == 1
    assert sum(histogram["counts"]) == 4


def test_new_business_replayed_on_past_quarters(tmp_path):
    path = tmp_path / "replay.duckdb"
    quarter = Quarter(2024, 3, 1)  # July to September 2024
    as_of = dt.date(2024, 7, 10)
    with store.connect(path) as con:
        # first recorded close long before: 2023-12-01
        _add_deal(
            con,
            "OLD",
            team="East",
            owner="Eve Stone",
            amount=1,
            created=dt.date(2023, 11, 1),
            outcome="lost",
            closed_on=dt.date(2023, 12, 1),
        )
        # 2024Q2 at the same point (2024-04-10): 56 deals created over the
        # 28 days before (two a day), 40 deals created after it won by
        # 2024-06-30, amount 300 each
        for i in range(56):
            _add_deal(
                con,
                f"R{i}",
                team="East",
                owner="Eve Stone",
                amount=5,
                created=dt.date(2024, 4, 10) - dt.timedelta(days=i // 2),
            )
        for i in range(40):
            _add_deal(
                con,
                f"W{i}",
                team="East",
                owner="Eve Stone",
                amount=300,
                created=dt.date(2024, 4, 20),
                outcome="won",
                closed_on=dt.date(2024, 6, 1),
            )
        # now: 14 deals created over the last 28 days (one every other day)
        for i in range(14):
            _add_deal(
                con,
                f"N{i}",
                team="East",
                owner="Eve Stone",
                amount=5,
                created=as_of - dt.timedelta(days=2 * i),
            )
        hazards = AgeHazards(
            win=np.full(400, 0.01),
            loss=np.full(400, 0.01),
            window_start=None,
            won=40,
            lost=1,
        )
        parts, notes = estimate_new_business(
            con, as_of, quarter.end, hazards, quarter=quarter
        )
    # 2024Q1 starts before the first close's quarter? It starts 2024-01-01,
    # after 2023-12-01, but nothing was created or won then: it adds rate 0
    # and no wins. Wins per unit rate: 40 / (56 / 28) = 20; rate now 14 / 28.
    assert len(parts) == 1 and parts[0].name == "East"
    assert parts[0].expected_count == pytest.approx(14 / 28 * 40 / 2)
    assert parts[0].mean_amount == 300


def test_close_date_timing_respects_the_quarter_end():
    # cell (0-7d, no push): four snapshots 5 days before their expected
    # close; closed after 4, 20, 6 and 3 days; the third was lost.
    timing = CloseDateTiming(
        cells={
            (1, 0): (
                np.array([4.0, 20.0, 6.0, 3.0]),
                np.full(4, 200.0),
                np.full(4, 5.0),
                np.array([True, True, False, True]),
            )
        },
        observations=4,
    )
    # due in 5 days, 10 left: may close 5 days late; of the three won
    # snapshots two closed within 5 + 5 days
    pooled = 2 / 3
    coarse = (2 + 20 * pooled) / (3 + 20)
    cell = (2 + 20 * coarse) / (3 + 20)
    # due in 15 days, 10 left: it must be pulled in 5 days; none was
    result = timing.timing([1, 2], [0, 0], days_left=10, days_to_close=[5, 15])
    assert result == pytest.approx([cell, 0.0])
