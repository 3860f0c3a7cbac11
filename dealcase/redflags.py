"""Red flags: plain rules that combine a deal's mechanics with its case.

Each rule in :data:`RULES` has an id, a title and an explanation a manager
can read; :func:`red_flags` returns one row per open deal and rule that
fires, with a sentence about that deal. Rules look only at what was known at
the end of the as-of day; the next step too is the one of the deal's version
then (see :func:`red_flags` for sources that do not version it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import pandas as pd

from dealcase.case_capture import all_stakeholders_as_of
from dealcase.case_quality import question_states
from dealcase.changes import next_steps_versioned
from dealcase.history import deals_as_of
from dealcase.periods import (
    end_of_day,
    fiscal_start_month,
    parse_quarter,
    quarter_of,
    resolve_as_of,
)

logger = logging.getLogger(__name__)

AMOUNT_MULTIPLE = 3.0
MIN_WON_FOR_USUAL = 3
PUSH_LIMIT = 3


@dataclass(frozen=True)
class Rule:
    rule_id: str
    title: str
    explanation: str


RULES: tuple[Rule, ...] = (
    Rule(
        "no_economic_buyer",
        "Closing this quarter without the economic buyer",
        "The deal is expected to close in the quarter, but access to the economic "
        "buyer (the person who can say yes when others say no) is not confirmed.",
    ),
    Rule(
        "commit_paper_unknown",
        "Commit with paper process or security review unknown",
        "The rep calls the deal commit, yet nobody knows the legal and "
        "procurement steps or where the security review stands; these steps "
        "are the usual reason a committed deal slips.",
    ),
    Rule(
        "no_compelling_event",
        "No compelling event",
        "No event is known that makes the buyer need this by the close date, or "
        "the one known is at risk, so the date is the seller's wish rather than "
        "the buyer's deadline.",
    ),
    Rule(
        "single_threaded",
        "Single-threaded",
        "At most one buying influence is recorded; if that person leaves or "
        "loses interest the deal stalls.",
    ),
    Rule(
        "no_coach",
        "No coach or champion",
        "Nobody inside the account sells for us when we are not there: no "
        "stakeholder has the coach role and the champion is not confirmed or "
        "assumed.",
    ),
    Rule(
        "economic_buyer_mode",
        "Economic buyer sees no need to change",
        "The economic buyer is recorded as even keel or overconfident: they see "
        "no gap between where they are and where they want to be, and such "
        "buyers rarely buy.",
    ),
    Rule(
        "amount_above_usual",
        "Far larger than the owner's usual deal",
        f"The amount is more than {AMOUNT_MULTIPLE:g} times the median amount of "
        "the owner's won deals (owners with at least "
        f"{MIN_WON_FOR_USUAL} won deals); unusually large deals take longer "
        "and close less often.",
    ),
    Rule(
        "pushed_repeatedly",
        f"Pushed {PUSH_LIMIT} times or more",
        f"The expected close date moved later {PUSH_LIMIT} times or more; a "
        "date that keeps moving says the buyer has not committed to it.",
    ),
    Rule(
        "no_next_step",
        "No next step",
        "The deal has no next step recorded, so nothing is scheduled to move it "
        "forward.",
    ),
)

RULE_TITLES = {rule.rule_id: rule.title for rule in RULES}
_MISSING = ("unknown",)


def rules_frame() -> pd.DataFrame:
    """:data:`RULES` as a table: ``flag, title, explanation``."""
    return pd.DataFrame(
        {
            "flag": [r.rule_id for r in RULES],
            "title": [r.title for r in RULES],
            "explanation": [r.explanation for r in RULES],
        }
    ).astype("str")


def close_date_pushes(
    con: duckdb.DuckDBPyConnection, as_of, deal_ids=None
) -> pd.DataFrame:
    """How often each deal's expected close date moved later, counting the
    versions known at the end of ``as_of``.

    Returns
    -------
    DataFrame
        ``deal_id, pushes, days_pushed`` (days between the first and last
        close date of the pushes, summed); deals never pushed have 0.
    """
    day = resolve_as_of(con, as_of)
    params: list = [end_of_day(day)]
    clause = ""
    if deal_ids is not None:
        clause = "AND list_contains(?, deal_id)"
        params.append([str(d) for d in deal_ids])
    return con.execute(
        f"""
        WITH versions AS (
            SELECT deal_id, close_date,
                   lag(close_date) OVER (PARTITION BY deal_id ORDER BY valid_from)
                       AS previous_close
            FROM deal_history
            WHERE valid_from < ? {clause}
        )
        SELECT deal_id,
               count(*) FILTER (WHERE close_date > previous_close) AS pushes,
               coalesce(sum(date_diff('day', previous_close, close_date))
                   FILTER (WHERE close_date > previous_close), 0) AS days_pushed
        FROM versions
        GROUP BY deal_id
        ORDER BY deal_id
        """,
        params,
    ).df()


def _next_steps(con, day, deals: pd.DataFrame) -> dict | None:
    """Each deal's next step at the end of ``day`` (``deals`` as of then), or
    None when it is not known (see :func:`red_flags`)."""
    if next_steps_versioned(con):
        return dict(zip(deals["deal_id"], deals["next_step"]))
    if day < resolve_as_of(con, None):
        return None
    return dict(
        con.execute(
            "SELECT deal_id, next_step FROM deals WHERE list_contains(?, deal_id)",
            [deals["deal_id"].tolist()],
        ).fetchall()
    )


def _blank(step) -> bool:
    return step is None or pd.isna(step) or not str(step).strip()


def _owner_usual(deals: pd.DataFrame) -> pd.Series:
    won = deals[deals["outcome"] == "won"]
    counts = won.groupby("owner")["amount"].count()
    medians = won.groupby("owner")["amount"].median()
    return medians[counts >= MIN_WON_FOR_USUAL]


def _money(amount: float) -> str:
    return f"{amount:,.0f}"


def red_flags(
    con: duckdb.DuckDBPyConnection,
    as_of=None,
    deal_ids=None,
    *,
    quarter=None,
) -> pd.DataFrame:
    """The red flags of open deals as they stood at the end of ``as_of``.

    Parameters
    ----------
    as_of
        A date; None means meta ``today``.
    deal_ids
        Only these deals (default: every deal open on ``as_of``).
    quarter
        The quarter "this quarter" means for the economic-buyer rule, a
        :class:`~dealcase.periods.Quarter` or its name; default the quarter
        that contains ``as_of``.

    Returns
    -------
    DataFrame
        ``deal_id, flag, text``: one row per deal and rule that fires, in the
        order of :data:`RULES`; ``flag`` is the rule id, ``text`` says why for
        that deal.

    Notes
    -----
    "No next step" reads the next step of the deal's version in force at the
    end of ``as_of`` (``deal_history.next_step``). When no version in the
    history carries a next step (a source that keeps only the current one),
    the deal's current next step is used for ``as_of`` on or after the data's
    present (meta ``today``), and the rule is not applied to an earlier
    ``as_of``: the next step then is not known, and today's would tell how
    the deal went on.
    """
    day = resolve_as_of(con, as_of)
    start_month = fiscal_start_month(con)
    if quarter is None:
        quarter = quarter_of(day, start_month)
    elif isinstance(quarter, str):
        quarter = parse_quarter(quarter, start_month)

    everything = deals_as_of(con, day)
    usual = _owner_usual(everything)
    deals = everything[everything["outcome"] == "open"]
    if deal_ids is not None:
        deals = deals[deals["deal_id"].isin([str(d) for d in deal_ids])]
    columns = ["deal_id", "flag", "text"]
    if deals.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    ids = deals["deal_id"].tolist()

    # The case, the buying influences, the pushes and the next step.
    states = question_states(
        con, pd.DataFrame({"deal_id": ids, "as_of": [day] * len(ids)})
    )
    people = all_stakeholders_as_of(con, day, ids)
    pushes = close_date_pushes(con, day, ids).set_index("deal_id")["pushes"]
    next_steps = _next_steps(con, day, deals)

    status = {
        (deal_id, question_id): value
        for deal_id, question_id, value in zip(
            states["deal_id"], states["question_id"], states["status"]
        )
    }

    def answer(deal_id: str, question_id: str) -> str:
        return status.get((deal_id, question_id), "unknown")

    # Per deal: everyone on it, and who plays which role with which attitude.
    people_by_deal: dict[str, list[tuple[str, str, str]]] = {}
    for deal_id, name, role, attitude in zip(
        people["deal_id"], people["name"], people["role"], people["attitude"]
    ):
        people_by_deal.setdefault(deal_id, []).append((name, role, attitude))

    rows: list[tuple[str, str, str]] = []
    for deal in deals.itertuples(index=False):
        deal_id = deal.deal_id
        mine = people_by_deal.get(deal_id, [])
        roles = {role for _, role, _ in mine}
        unmoved = [
            (name, attitude)
            for name, role, attitude in mine
            if role == "economic" and attitude in ("even_keel", "overconfident")
        ]

        closes_in_quarter = pd.notna(deal.close_date) and quarter.contains(
            pd.Timestamp(deal.close_date).date()
        )
        eb_status = answer(deal_id, "economic_buyer")
        if closes_in_quarter and eb_status != "confirmed":
            rows.append(
                (
                    deal_id,
                    "no_economic_buyer",
                    f"Expected to close {pd.Timestamp(deal.close_date).date()} in "
                    f"{quarter.name}; economic buyer access is {eb_status}.",
                )
            )

        if deal.forecast_category == "commit":
            missing = [
                label
                for qid, label in (
                    ("paper_process", "paper process"),
                    ("security_review", "security review"),
                )
                if answer(deal_id, qid) in _MISSING
            ]
            if missing:
                rows.append(
                    (
                        deal_id,
                        "commit_paper_unknown",
                        f"In commit, but the {' and the '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} unknown.",
                    )
                )

        event = answer(deal_id, "compelling_event")
        if event in ("unknown", "risk"):
            rows.append(
                (
                    deal_id,
                    "no_compelling_event",
                    "No compelling event is known."
                    if event == "unknown"
                    else "The compelling event is at risk.",
                )
            )

        if len(mine) <= 1:
            rows.append(
                (
                    deal_id,
                    "single_threaded",
                    f"Only one buying influence is recorded: {mine[0][0]}."
                    if mine
                    else "No buying influence is recorded.",
                )
            )

        champion = answer(deal_id, "champion")
        if "coach" not in roles and champion not in ("confirmed", "assumed"):
            rows.append(
                (
                    deal_id,
                    "no_coach",
                    f"No stakeholder has the coach role and the champion is "
                    f"{champion}.",
                )
            )

        if unmoved:
            who = ", ".join(
                f"{name} ({attitude.replace('_', ' ')})" for name, attitude in unmoved
            )
            rows.append((deal_id, "economic_buyer_mode", f"Economic buyer: {who}."))

        owner_usual = usual.get(deal.owner)
        if (
            owner_usual is not None
            and pd.notna(deal.amount)
            and deal.amount > AMOUNT_MULTIPLE * owner_usual
        ):
            rows.append(
                (
                    deal_id,
                    "amount_above_usual",
                    f"Amount {_money(deal.amount)} is "
                    f"{deal.amount / owner_usual:.1f} times {deal.owner}'s median "
                    f"won deal ({_money(owner_usual)}).",
                )
            )

        pushed = int(pushes.get(deal_id, 0))
        if pushed >= PUSH_LIMIT:
            rows.append(
                (
                    deal_id,
                    "pushed_repeatedly",
                    f"The close date moved later {pushed} times.",
                )
            )

        if next_steps is not None and _blank(next_steps.get(deal_id)):
            rows.append((deal_id, "no_next_step", "No next step is recorded."))

    order = {rule.rule_id: i for i, rule in enumerate(RULES)}
    flags = pd.DataFrame(rows, columns=columns).astype("str")
    flags["_order"] = flags["flag"].map(order)
    flags = flags.sort_values(["deal_id", "_order"], kind="stable")
    return flags[columns].reset_index(drop=True)
