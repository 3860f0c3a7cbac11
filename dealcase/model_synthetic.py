"""Synthetic deal histories of any size, for model tests and benchmarks.

Not the demo company: a plain generator with known effects. Each deal has a
hidden quality; its chance to be won rises with the quality, a confirmed
compelling event (+1.0 in log-odds) and a confirmed economic buyer (+0.7),
and falls with every close-date push (-0.4 each). Deals move through four
open stages, may be pushed, and end won or lost; those ending after
``today`` are still open.
"""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb
import numpy as np
import pandas as pd

STAGES = [
    ("Qualify", 1, 0.1, False, False),
    ("Develop", 2, 0.25, False, False),
    ("Propose", 3, 0.5, False, False),
    ("Negotiate", 4, 0.75, False, False),
    ("Won", 5, 1.0, True, True),
    ("Lost", 6, 0.0, True, False),
]


def write_synthetic_deals(
    con: duckdb.DuckDBPyConnection,
    deals: int,
    *,
    seed: int = 0,
    today: dt.date = dt.date(2025, 6, 30),
    years: float = 2.0,
    case: bool = True,
) -> None:
    """Insert ``deals`` synthetic deals with history, case answers and
    stakeholders into an empty database (``meta.today`` is set)."""
    rng = np.random.default_rng(seed)
    n = deals
    span = int(365 * years)
    created = pd.Timestamp(today) - pd.to_timedelta(rng.integers(0, span, n), "D")
    duration = rng.integers(20, 160, n)
    pushes = rng.poisson(0.7, n)
    quality = rng.normal(0.0, 1.0, n)
    event = rng.choice(
        ["confirmed", "assumed", "unknown", "risk"], n, p=[0.35, 0.2, 0.35, 0.1]
    )
    buyer = rng.choice(["confirmed", "assumed", "unknown"], n, p=[0.4, 0.3, 0.3])
    logit = (
        -0.4
        + 0.9 * quality
        + np.where(event == "confirmed", 1.0, 0.0)
        - np.where(event == "risk", 0.6, 0.0)
        + np.where(buyer == "confirmed", 0.7, 0.0)
        - 0.4 * pushes
    )
    won = rng.random(n) < 1 / (1 + np.exp(-logit))
    closed = created + pd.to_timedelta(duration + 15 * pushes, "D")
    is_open = closed.date > np.array(today)
    ids = np.array([f"S{k:07d}" for k in range(n)])
    amount = np.round(np.exp(rng.normal(10, 0.8, n)), -2)
    teams = rng.choice(["North", "South", "East", "West"], n)
    owners = np.char.add(teams.astype(str), rng.integers(0, 6, n).astype(str))
    products = rng.choice(["core", "plus", "suite", "addon"], n, p=[0.4, 0.3, 0.2, 0.1])
    first_close = created + pd.to_timedelta(duration, "D")

    outcome = np.where(is_open, "open", np.where(won, "won", "lost"))
    stage_now = np.where(is_open, "Propose", np.where(won, "Won", "Lost"))
    deal_frame = pd.DataFrame(
        {
            "deal_id": ids,
            "name": ids,
            "owner": owners,
            "team": teams,
            "stage": stage_now,
            "amount": amount,
            "created_on": created.date,
            "close_date": np.where(is_open, closed.date, closed.date),
            "closed_on": np.where(is_open, None, closed.date),
            "outcome": outcome,
            "attributes": [f'{{"product": "{p}"}}' for p in products],
        }
    )

    versions = []
    # creation, three stage steps, pushes, closing
    for step, stage in enumerate(["Qualify", "Develop", "Propose", "Negotiate"]):
        at = created + pd.to_timedelta((duration * step / 4).astype(int), "D")
        at = at + pd.to_timedelta(9 + step, "h")
        versions.append(
            pd.DataFrame(
                {
                    "deal_id": ids,
                    "valid_from": at,
                    "stage": stage,
                    "amount": amount * (0.9 if step < 2 else 1.0),
                    "close_date": first_close.date,
                    "forecast_category": [
                        "pipeline",
                        "pipeline",
                        "best_case",
                        "commit",
                    ][step],
                    "outcome": "open",
                }
            )
        )
    for k in range(int(pushes.max(initial=0))):
        has = pushes > k
        at = first_close[has] - pd.to_timedelta(3, "D") + pd.to_timedelta(15 * k, "D")
        at = at + pd.to_timedelta(14, "h")
        versions.append(
            pd.DataFrame(
                {
                    "deal_id": ids[has],
                    "valid_from": at,
                    "stage": "Negotiate",
                    "amount": amount[has],
                    "close_date": (
                        first_close[has] + pd.to_timedelta(15 * (k + 1), "D")
                    ).date,
                    "forecast_category": "commit",
                    "outcome": "open",
                }
            )
        )
    done = ~is_open
    versions.append(
        pd.DataFrame(
            {
                "deal_id": ids[done],
                "valid_from": closed[done] + pd.to_timedelta(17, "h"),
                "stage": stage_now[done],
                "amount": amount[done],
                "close_date": closed[done].date,
                "forecast_category": np.where(won[done], "closed", "omitted"),
                "outcome": outcome[done],
            }
        )
    )
    history = pd.concat(versions, ignore_index=True)
    history = history[
        history["valid_from"] < pd.Timestamp(today) + pd.Timedelta(days=1)
    ]
    history = history.drop_duplicates(["deal_id", "valid_from"], keep="last")

    answers = pd.DataFrame(
        {
            "deal_id": np.concatenate([ids, ids]),
            "question_id": ["compelling_event"] * n + ["economic_buyer"] * n,
            "status": np.concatenate([event, buyer]),
            "recorded_at": np.concatenate(
                [
                    created + pd.to_timedelta(rng.integers(1, 15, n), "D"),
                    created + pd.to_timedelta(rng.integers(1, 20, n), "D"),
                ]
            ),
        }
    )
    answers = answers[answers["recorded_at"] < pd.Timestamp(today)]
    people = pd.DataFrame(
        {
            "stakeholder_id": [f"P{k}" for k in range(n)],
            "deal_id": ids,
            "role": "economic",
            "influence": "high",
            "attitude": np.where(buyer == "confirmed", "growth", "even_keel"),
            "recorded_at": created + pd.to_timedelta(5, "D"),
        }
    )
    people = people[
        (buyer != "unknown") & (people["recorded_at"] < pd.Timestamp(today))
    ]

    _insert(
        con,
        "stages",
        pd.DataFrame(
            STAGES,
            columns=[
                "stage",
                "sort_order",
                "default_probability",
                "is_closed",
                "is_won",
            ],
        ),
    )
    _insert(con, "deals", deal_frame)
    _insert(con, "deal_history", history)
    if case:
        _insert(con, "case_answers", answers)
        _insert(con, "stakeholders", people)
    con.execute(
        "INSERT OR REPLACE INTO meta VALUES ('today', ?), ('dataset', 'synthetic')",
        [today.isoformat()],
    )


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    name = f"rows_{uuid.uuid4().hex}"
    con.execute("SELECT 1").fetchall()  # close a pending result, if any
    con.register(name, frame)
    try:
        columns = ", ".join(frame.columns)
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {name}")
    finally:
        con.unregister(name)
