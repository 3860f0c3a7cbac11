"""Tiny hand-built databases for the business-case tests (no tests here).

Deals get a creation version in ``deal_history`` and any later versions a
test asks for; answers and stakeholders are inserted as rows, so every
expected value can be computed by hand.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dealcase import store
from dealcase.case_questions import load_questions, sync_questions

TODAY = dt.date(2025, 11, 14)


def new_db(tmp_path: Path, name: str = "case.duckdb") -> Path:
    path = tmp_path / name
    with store.connect(path) as con:
        store.set_meta(con, "today", TODAY.isoformat())
        sync_questions(con, load_questions())
    return path


def add_deal(
    con,
    deal_id: str,
    *,
    owner: str = "Ada Moreno",
    team: str = "East",
    amount: float = 10_000.0,
    close_date: dt.date = dt.date(2025, 12, 15),
    created_on: dt.date = dt.date(2025, 6, 1),
    forecast_category: str = "pipeline",
    outcome: str = "open",
    closed_on: dt.date | None = None,
    next_step: str | None = "Call on Monday",
    stage: str = "Proposal",
    versions: list[dict] | None = None,
) -> None:
    """A deal with its first history row at creation and optional later
    versions (dicts with ``valid_from`` and any changed fields)."""
    con.execute(
        """
        INSERT INTO deals (deal_id, name, account, owner, team, stage,
            forecast_category, amount, created_on, close_date, closed_on,
            outcome, next_step, source)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'test')
        """,
        [
            deal_id,
            f"Deal {deal_id}",
            f"Account {deal_id}",
            owner,
            team,
            stage,
            forecast_category,
            amount,
            created_on,
            close_date,
            closed_on,
            outcome,
            next_step,
        ],
    )
    state = {
        "stage": stage,
        "amount": amount,
        "close_date": close_date,
        "forecast_category": forecast_category,
        "outcome": "open",
    }
    rows = [
        {
            **state,
            "valid_from": dt.datetime.combine(created_on, dt.time(9)),
        }
    ]
    for change in versions or []:
        state = {**state, **{k: v for k, v in change.items() if k != "valid_from"}}
        rows.append({**state, "valid_from": change["valid_from"]})
    if outcome != "open" and not versions:
        rows.append(
            {
                **state,
                "outcome": outcome,
                "valid_from": dt.datetime.combine(closed_on, dt.time(17)),
            }
        )
    for row in rows:
        con.execute(
            """
            INSERT INTO deal_history (deal_id, valid_from, stage, amount,
                close_date, forecast_category, outcome, source)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'test')
            """,
            [
                deal_id,
                row["valid_from"],
                row["stage"],
                row["amount"],
                row["close_date"],
                row["forecast_category"],
                row["outcome"],
            ],
        )


def add_answer(
    con,
    deal_id: str,
    question_id: str,
    status: str,
    recorded_at: dt.datetime,
    *,
    evidence: str | None = None,
    learned_on: dt.date | None = None,
    answered_by: str = "Ada Moreno",
) -> None:
    con.execute(
        """
        INSERT INTO case_answers (deal_id, question_id, status, evidence,
            learned_on, answered_by, recorded_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        [
            deal_id,
            question_id,
            status,
            evidence,
            learned_on,
            answered_by,
            recorded_at,
        ],
    )


def add_stakeholder(
    con,
    deal_id: str,
    stakeholder_id: str,
    *,
    name: str,
    role: str,
    attitude: str = "growth",
    influence: str = "high",
    title: str | None = None,
    recorded_at: dt.datetime = dt.datetime(2025, 10, 1, 10),
    removed: bool = False,
    last_contact: dt.date | None = None,
) -> None:
    con.execute(
        """
        INSERT INTO stakeholders (stakeholder_id, deal_id, name, title, role,
            influence, attitude, last_contact, removed, recorded_by, recorded_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'Ada Moreno', ?)
        """,
        [
            stakeholder_id,
            deal_id,
            name,
            title,
            role,
            influence,
            attitude,
            last_contact,
            removed,
            recorded_at,
        ],
    )
