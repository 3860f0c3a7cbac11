"""Coaching: where a rep's or a team's business cases are thin, what that
puts at stake, and which questions to ask next on each deal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import duckdb
import pandas as pd

from dealcase.case_quality import question_states
from dealcase.case_questions import DIMENSION_LABELS, DIMENSIONS, current_questions
from dealcase.history import deals_as_of
from dealcase.periods import Quarter, fiscal_start_month, parse_quarter, resolve_as_of

logger = logging.getLogger(__name__)

LACKING_BELOW = 0.5
QUESTIONS_PER_DEAL = 3

COACHING_DEFINITION = f"""\
A deal lacks a dimension when it earns less than half of that dimension's
weight: nothing better than an assumption, or an assumption gone stale.
Value at stake is the amount of the open deals that lack it, weighted by
their close likelihood when one is given. The next questions for a deal are
the questions of the set with the largest weight x gap, where the gap is
1 minus the credit the current answer earns (confirmed 1, assumed 0.5,
unknown and risk 0, halved when stale); up to {QUESTIONS_PER_DEAL} per deal."""


def _likelihoods(likelihood, deal_ids) -> pd.Series:
    if likelihood is None:
        return pd.Series(1.0, index=deal_ids)
    if isinstance(likelihood, pd.DataFrame):
        values = likelihood.set_index("deal_id")["close_likelihood"]
    elif isinstance(likelihood, Mapping):
        values = pd.Series(dict(likelihood), dtype="float64")
    else:
        values = pd.Series(likelihood)
    return values.reindex(deal_ids).astype("float64").fillna(1.0).clip(0.0, 1.0)


def coaching(
    con: duckdb.DuckDBPyConnection,
    as_of=None,
    *,
    owner: str | None = None,
    team: str | None = None,
    quarter: Quarter | str | None = None,
    by: str = "owner",
    likelihood=None,
    questions_per_deal: int = QUESTIONS_PER_DEAL,
) -> dict:
    """Case gaps per rep or team and the next questions per deal.

    Parameters
    ----------
    as_of
        A date; None means meta ``today``.
    owner, team
        Only that rep's or team's open deals.
    quarter
        Only deals expected to close in that quarter (name or Quarter).
    by
        ``owner`` or ``team``: the grouping of ``gaps``.
    likelihood
        Optional close likelihood (0..1) per deal: a DataFrame with
        ``deal_id, close_likelihood`` (as from ``score_deals``) or a mapping;
        missing deals count in full.

    Returns
    -------
    dict
        ``as_of, quarter, by, definition`` and two DataFrames:
        ``gaps`` with ``group, dimension, label, deals_lacking, open_deals,
        value_at_stake`` (money in the reporting currency), largest stake
        first; ``deals`` with ``deal_id, name, owner, team, amount, value,
        case_score, weakest_dimension, next_questions`` (a list of dicts
        ``question_id, dimension, text, status, stale, priority``), highest
        value first.
    """
    if by not in ("owner", "team"):
        raise ValueError("by must be 'owner' or 'team'")
    day = resolve_as_of(con, as_of)
    if isinstance(quarter, str):
        quarter = parse_quarter(quarter, fiscal_start_month(con))

    deals = deals_as_of(con, day)
    deals = deals[deals["outcome"] == "open"]
    if owner is not None:
        deals = deals[deals["owner"] == owner]
    if team is not None:
        deals = deals[deals["team"] == team]
    if quarter is not None:
        close = pd.to_datetime(deals["close_date"])
        deals = deals[
            (close >= pd.Timestamp(quarter.start))
            & (close <= pd.Timestamp(quarter.end))
        ]
    deals = deals.reset_index(drop=True)

    result = {
        "as_of": day,
        "quarter": quarter.name if quarter is not None else None,
        "by": by,
        "definition": COACHING_DEFINITION,
    }
    ids = deals["deal_id"].tolist()
    questions = current_questions(con)
    states = question_states(
        con, pd.DataFrame({"deal_id": ids, "as_of": [day] * len(ids)}), questions
    )
    deals["amount"] = deals["amount"].astype("float64").fillna(0.0)
    deals["likelihood"] = _likelihoods(likelihood, ids).to_numpy()
    deals["value"] = deals["amount"] * deals["likelihood"]
    deals["group"] = deals[by].astype("str").fillna("(none)")

    # Dimension ratio per deal, then the gaps per group and dimension.
    states["earned"] = states["weight"] * states["credit"]
    per_dim = states.groupby(["deal_id", "dimension"], as_index=False)[
        ["earned", "weight"]
    ].sum()
    per_dim["ratio"] = per_dim["earned"] / per_dim["weight"]
    per_dim["lacking"] = per_dim["ratio"] < LACKING_BELOW
    per_dim = per_dim.merge(deals[["deal_id", "group", "value"]], on="deal_id")
    per_dim["stake"] = per_dim["value"].where(per_dim["lacking"], 0.0)
    gaps = per_dim.groupby(["group", "dimension"], as_index=False).agg(
        deals_lacking=("lacking", "sum"),
        open_deals=("deal_id", "nunique"),
        value_at_stake=("stake", "sum"),
    )
    gaps["label"] = gaps["dimension"].map(DIMENSION_LABELS)
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    gaps["_order"] = gaps["dimension"].map(order)
    gaps = gaps.sort_values(
        ["value_at_stake", "group", "_order"], ascending=[False, True, True]
    )
    gaps["deals_lacking"] = gaps["deals_lacking"].astype("int64")
    result["gaps"] = gaps[
        ["group", "dimension", "label", "deals_lacking", "open_deals", "value_at_stake"]
    ].reset_index(drop=True)

    # Next questions: largest weight x gap first, then question order.
    texts = dict(zip(questions.ids, (q.text for q in questions)))
    states["priority"] = states["weight"] * (1.0 - states["credit"])
    ranked = states[states["priority"] > 0].sort_values(
        ["deal_id", "priority", "sort_order"], ascending=[True, False, True]
    )
    ranked = ranked[ranked.groupby("deal_id").cumcount() < questions_per_deal]
    asks: dict[str, list[dict]] = {}
    for deal_id, question_id, dimension, status, stale, priority in zip(
        ranked["deal_id"],
        ranked["question_id"],
        ranked["dimension"],
        ranked["status"],
        ranked["stale"],
        ranked["priority"],
    ):
        asks.setdefault(deal_id, []).append(
            {
                "question_id": question_id,
                "dimension": dimension,
                "text": texts[question_id],
                "status": status,
                "stale": bool(stale),
                "priority": float(priority),
            }
        )
    totals = states.groupby("deal_id").agg(
        earned=("earned", "sum"), weight=("weight", "sum")
    )
    score = 100.0 * totals["earned"] / totals["weight"]
    per_dim["_order"] = per_dim["dimension"].map(order)
    weakest = per_dim.sort_values(
        ["deal_id", "ratio", "weight", "_order"], ascending=[True, True, False, True]
    )
    weakest = weakest.groupby("deal_id")["dimension"].first()

    table = deals[["deal_id", "name", "owner", "team", "amount", "value"]].copy()
    table["case_score"] = table["deal_id"].map(score).astype("float64")
    table["weakest_dimension"] = table["deal_id"].map(weakest)
    table["next_questions"] = [asks.get(d, []) for d in table["deal_id"]]
    table = table.sort_values(["value", "deal_id"], ascending=[False, True])
    result["deals"] = table.reset_index(drop=True)
    return result
