"""The demo company: a seeded synthetic B2B software seller.

:func:`build_demo` fills an empty database with about three years of deals of
an invented company whose present is ``today``: teams and reps, deals with
their full stage, amount, close-date and forecast-category history, the
business case as reps learned it (answers and stakeholders appended over
time) and quarterly targets.

The data is generated from hidden truths about each deal (does the rep really
reach the economic buyer, is there a compelling event, is a security review
needed), and the documented effects below are built into the generator so the
analyses can be tested against known causes (see ``docs/demo.md``):

- no access to the economic buyer lowers the win rate (:data:`WIN_EFFECTS`);
- no compelling event makes a close-date push at each close date
  :data:`PUSH_NO_EVENT_FACTOR` times as likely;
- a security review that is needed but never asked about (status unknown)
  surfaces in the final two weeks before the close date of a late-stage deal
  and pushes it (:data:`SECURITY_SLIP_PROBABILITY`);
- a next step left blank in the last weeks before a close date
  (:data:`NEXT_STEP_LAPSE_PROBABILITY`) makes a push of that date
  :data:`NO_NEXT_STEP_PUSH_FACTOR` times as likely;
- some reps (:data:`OPTIMIST_SHARE`) mark weak answers "confirmed";
- half of all close dates are set to the last three weeks of a quarter
  (:data:`RUSH_SHARE`);
- whether ``competition`` is answered has no effect at all.

What a rep records is what the rep knew at that moment: answers are written
when learned, and nothing written before a deal closes depends on how it
closes, only on the hidden truths that also drive the outcome.

The same ``seed``, ``scale`` and ``today`` give the same database, row for
row: every random step draws from generators derived from ``seed``, and every
timestamp comes from the synthetic calendar, never from the wall clock.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dealcase import demo_words as words
from dealcase.errors import DealCaseError
from dealcase.periods import parse_date
from dealcase.report import Report
from dealcase.store import set_meta, transaction

logger = logging.getLogger(__name__)

QUESTIONS_FILE = Path(__file__).resolve().parent.parent / "data" / "questions.toml"

# Size and shape of the company.
FULL_SCALE_DEALS = 11_000
MAX_SCALE = 10.0
HISTORY_YEARS = 3
CREATION_GROWTH_PER_YEAR = 0.08
AMOUNT_GROWTH_PER_YEAR = 0.04
SEASONALITY = 0.12  # relative amplitude of the yearly cycle in deal creation
WEEKEND_CREATION = 0.15  # weekend creation rate relative to a weekday


@dataclass(frozen=True)
class Segment:
    name: str
    amount_median: float  # USD
    amount_sigma: float  # of the log amount
    cycle_median_days: float
    cycle_sigma: float
    win_base: float  # logit of the win rate before the case effects


SEGMENTS = [
    Segment("SMB", 14_000, 0.40, 40, 0.35, -2.6),
    Segment("Mid-Market", 45_000, 0.40, 75, 0.35, -2.8),
    Segment("Enterprise", 115_000, 0.40, 130, 0.35, -3.0),
]


@dataclass(frozen=True)
class Team:
    name: str
    region: str
    reps: int
    segment_mix: tuple[float, float, float]  # SMB, Mid-Market, Enterprise


TEAMS = [
    Team("East", "North America East", 7, (0.55, 0.35, 0.10)),
    Team("West", "North America West", 7, (0.55, 0.35, 0.10)),
    Team("Central", "North America Central", 6, (0.60, 0.32, 0.08)),
    Team("EMEA", "Europe", 6, (0.50, 0.38, 0.12)),
    Team("Strategic", "Global", 6, (0.00, 0.50, 0.50)),
]

# name, sort_order, default_probability, is_closed, is_won
STAGES = [
    ("Qualify", 1, 0.10, False, False),
    ("Discover", 2, 0.20, False, False),
    ("Propose", 3, 0.40, False, False),
    ("Negotiate", 4, 0.60, False, False),
    ("Commit", 5, 0.80, False, False),
    ("Closed Won", 6, 1.00, True, True),
    ("Closed Lost", 7, 0.00, True, False),
]
OPEN_STAGES = 5
WON_STAGE, LOST_STAGE = 5, 6
# Share of the planned cycle at which a deal reaches Discover .. Commit.
STAGE_FRACTIONS = (0.12, 0.30, 0.55, 0.80)
# Where lost deals stop: the last stage they reached (Qualify .. Commit).
LOSS_STAGE_SHARES = (0.22, 0.30, 0.26, 0.14, 0.08)

CATEGORIES = ("pipeline", "best_case", "commit", "closed", "omitted")
PIPELINE, BEST_CASE, COMMIT, CLOSED, OMITTED = range(5)

# Reps: skill moves the win logit; diligence is the chance to ask a question.
OPTIMIST_SHARE = 0.30
REP_SKILL_SIGMA = 0.25
REP_DILIGENCE = (0.60, 0.92)

# The hidden truth behind each question: base rate of "true", loading on the
# deal's overall quality, and when in the planned cycle the rep learns it
# (fractions of the cycle) and how easily (times the rep's diligence).
QUESTION_TRUTH = {
    "pain": (0.70, 0.8, 0.00, 0.25, 1.00),
    "root_cause": (0.55, 0.8, 0.05, 0.40, 0.85),
    "impact": (0.60, 0.8, 0.05, 0.40, 0.90),
    "metrics": (0.50, 0.8, 0.10, 0.50, 0.80),
    "budget": (0.55, 0.8, 0.10, 0.60, 0.90),
    "economic_buyer": (0.55, 0.0, 0.03, 0.25, 1.10),
    "champion": (0.50, 0.8, 0.05, 0.50, 0.90),
    "stakeholders": (0.50, 0.8, 0.20, 0.70, 0.80),
    "decision_criteria": (0.60, 0.8, 0.10, 0.50, 0.85),
    "decision_process": (0.50, 0.8, 0.20, 0.70, 0.80),
    "paper_process": (0.60, 0.6, 0.40, 0.90, 0.75),
    "security_review": (0.50, 0.0, 0.20, 0.50, 0.90),
    "compelling_event": (0.45, 0.4, 0.00, 0.20, 1.10),
    "competition": (0.50, 0.0, 0.00, 0.00, 1.00),
}
# A question added to data/questions.toml that the generator does not know
# gets this truth (an ordinary part of the case, no effect of its own).
OTHER_QUESTION_TRUTH = (0.55, 0.8, 0.10, 0.60, 0.85)
COMPETITION_ANSWERED = 0.45
# Share of true answers a rep records "confirmed" (the rest "assumed"): 0.7,
# except where the truth is a plain fact (a meeting held, a date set).
CONFIRM_SHARE = {"economic_buyer": 0.85, "compelling_event": 0.85}
# Effect on the win logit of each truth being true (competition: none).
WIN_EFFECTS = {
    "economic_buyer": 1.80,
    "budget": 0.45,
    "champion": 0.45,
    "pain": 0.30,
    "decision_process": 0.25,
    "metrics": 0.20,
    "compelling_event": 0.20,
}
LEAD_SOURCE_EFFECTS = {
    "Inbound": 0.0,
    "Outbound": -0.25,
    "Partner": 0.15,
    "Event": 0.0,
    "Referral": 0.35,
}
LEAD_SOURCE_SHARES = (0.35, 0.25, 0.15, 0.12, 0.13)

# Close-date pushes: chance per close date, by segment, for a deal with a
# compelling event; without one it is PUSH_NO_EVENT_FACTOR times higher.
# Each push makes the next one less likely (PUSH_DECAY) for a deal with an
# event; without one the rep keeps missing dates (PUSH_DECAY_NO_EVENT).
PUSH_BASE = {"SMB": 0.06, "Mid-Market": 0.08, "Enterprise": 0.10}
PUSH_NO_EVENT_FACTOR = 5.0
PUSH_DECAY = 0.6
PUSH_DECAY_NO_EVENT = 0.9
MAX_PUSHES = 5
PULL_IN_PROBABILITY = 0.06
# Security review needed, by segment; when needed and never asked about, it
# surfaces in the last SECURITY_SLIP_WINDOW days before the close date.
SECURITY_REQUIRED = {"SMB": 0.25, "Mid-Market": 0.50, "Enterprise": 0.80}
SECURITY_SLIP_PROBABILITY = 0.85
SECURITY_SLIP_WINDOW = 14
# Next steps: every version carries the next step as the rep had it then.
# A new one is written at creation, at each stage move and at each close-date
# change, left blank BLANK_NEXT_STEP of the time (no effect of its own). Before
# each close date the rep lets the next step lapse (blank from a day drawn in
# the last NEXT_STEP_WINDOW days before it) with NEXT_STEP_LAPSE_PROBABILITY;
# a close date whose next step has lapsed is pushed NO_NEXT_STEP_PUSH_FACTOR
# times as likely, and the push comes after the lapse. The lapse is drawn
# independently of the deal's truths and of how it ends.
BLANK_NEXT_STEP = 0.10
NEXT_STEP_LAPSE_PROBABILITY = 0.15
NEXT_STEP_WINDOW = (14, 42)
NO_NEXT_STEP_PUSH_FACTOR = 2.0
MAX_PUSH_CHANCE = 0.95
# Share of closing versions that keep a next step (hand-over, loss survey).
CLOSED_NEXT_STEP = 0.5
# Quarter-end rush: share of close dates set to the last RUSH_WINDOW days of
# their quarter.
RUSH_SHARE = 0.5
RUSH_WINDOW = 20
AMOUNT_CHANGE_PROBABILITY = 0.4
# Quotas: each team's target is its expected bookings times a factor drawn
# uniformly from this range.
TARGET_STRETCH = (1.00, 1.15)

STATUSES = ("confirmed", "assumed", "unknown", "risk")
CONFIRMED, ASSUMED, UNKNOWN, RISK = range(4)
ROLES = ("economic", "user", "technical", "coach")
ATTITUDES = ("growth", "trouble", "even_keel", "overconfident")
INFLUENCES = ("high", "medium", "low")

EPOCH = np.datetime64("1970-01-01", "D")


def load_question_file(path: Path | None = None) -> list[dict]:
    """The question set of ``path`` (default :data:`QUESTIONS_FILE`,
    ``data/questions.toml``) as a list of dicts with ``question_id,
    dimension, text, weight, sort_order``."""
    with open(QUESTIONS_FILE if path is None else path, "rb") as handle:
        document = tomllib.load(handle)
    return [
        {
            "question_id": q["id"],
            "dimension": q["dimension"],
            "text": q["text"],
            "weight": float(q.get("weight", 1.0)),
            "sort_order": number,
        }
        for number, q in enumerate(document["question"], start=1)
    ]


def demo_roster(seed: int = 7) -> pd.DataFrame:
    """The demo company's reps and their hidden traits.

    Returns one row per rep: ``owner, team, optimistic`` (marks weak answers
    confirmed), ``skill`` (added to the win logit) and ``diligence`` (chance
    to ask a question). The same ``seed`` gives the roster :func:`build_demo`
    uses; the traits are not written to the database.
    """
    return _draw_roster(np.random.default_rng(_seeds(seed)[0]))


def build_demo(con, *, seed: int = 7, scale: float = 1.0, today=None) -> Report:
    """Fill an empty database with the demo company.

    Parameters
    ----------
    con
        An open connection (``dealcase.store.connect``) to a database with no
        deals.
    seed
        Seed of every random step; the same seed, scale and today give the
        same database.
    scale
        Multiplies the number of deals (1.0 is about 11,000 deals).
    today
        The company's present (date or ISO text; default the current date).
        Deals are created over the three years before it; open deals close
        in its quarter or the next.

    Returns
    -------
    Report
        ``doc`` with ``seed, today, deals, won, lost, open, teams, reps,
        history_rows, answers, stakeholders, seconds`` (build time).

    Raises
    ------
    DealCaseError
        When the database already holds deals, history or targets, or
        ``scale`` is not in (0, 10], or ``seed`` is negative.
    """
    started = time.perf_counter()
    today = dt.date.today() if today is None else parse_date(today)
    if not math.isfinite(scale) or not 0 < scale <= MAX_SCALE:
        raise DealCaseError(
            f"scale must be a number above 0 and at most {MAX_SCALE}, not {scale}"
        )
    if int(seed) != seed or seed < 0:
        raise DealCaseError(f"seed must be a whole number of 0 or more, not {seed}")
    held = con.execute(
        "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM deal_history),"
        " (SELECT count(*) FROM targets)"
    ).fetchall()[0]
    if held[0] or held[1] or held[2]:
        raise DealCaseError(
            "the database already holds deals, history or targets; the demo "
            "company is built only into an empty database (use a new --db file)"
        )

    questions = load_question_file()
    roster_seed, deal_seed, path_seed, case_seed = _seeds(seed)
    roster = _draw_roster(np.random.default_rng(roster_seed))
    calendar = _Calendar(today)
    deals = _draw_deals(np.random.default_rng(deal_seed), roster, calendar, scale)
    question_ids = [q["question_id"] for q in questions]
    truth = _draw_truth(
        np.random.default_rng(deal_seed + 1), deals, roster, question_ids
    )
    paths = _simulate_paths(
        random.Random(path_seed),
        random.Random(path_seed + 1),
        deals,
        truth,
        roster,
        calendar,
    )
    answers = _answer_rows(
        np.random.default_rng(case_seed),
        deals,
        truth,
        roster,
        paths,
        calendar,
        question_ids,
    )
    stakeholders = _stakeholder_rows(
        np.random.default_rng(case_seed + 1),
        deals,
        truth,
        answers,
        roster,
        paths,
        calendar,
    )
    targets = _target_rows(
        np.random.default_rng(case_seed + 2), deals, truth, paths, calendar
    )
    frames = _frames(deals, paths, roster)

    with transaction(con):
        _write(con, frames, answers, stakeholders, targets, questions)
        for key, value in {
            "dataset": "demo",
            "currency": "USD",
            "fiscal_year_start_month": "1",
            "today": today.isoformat(),
            "seed": str(seed),
            "scale": str(scale),
        }.items():
            set_meta(con, key, value)

    deal_frame = frames["deals"]
    doc = {
        "seed": seed,
        "today": today.isoformat(),
        "deals": len(deal_frame),
        "won": int((deal_frame["outcome"] == "won").sum()),
        "lost": int((deal_frame["outcome"] == "lost").sum()),
        "open": int((deal_frame["outcome"] == "open").sum()),
        "teams": len(TEAMS),
        "reps": len(roster),
        "history_rows": len(frames["history"]),
        "answers": len(answers),
        "stakeholders": len(stakeholders),
        "seconds": round(time.perf_counter() - started, 2),
    }
    logger.info("built the demo company: %s", doc)
    table = pd.DataFrame({"item": list(doc), "value": [str(v) for v in doc.values()]})
    return Report(doc, table=table, title="Demo company")


# --- drawing the company ------------------------------------------------------


def _seeds(seed: int) -> list[int]:
    children = np.random.SeedSequence(seed).spawn(4)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]


def _draw_roster(rng: np.random.Generator) -> pd.DataFrame:
    total = sum(team.reps for team in TEAMS)
    firsts = rng.permutation(len(words.FIRST_NAMES))[:total]
    lasts = rng.permutation(len(words.LAST_NAMES))[:total]
    optimists = np.zeros(total, dtype=bool)
    optimists[rng.permutation(total)[: round(OPTIMIST_SHARE * total)]] = True
    return pd.DataFrame(
        {
            "owner": [
                f"{words.FIRST_NAMES[f]} {words.LAST_NAMES[last]}"
                for f, last in zip(firsts, lasts)
            ],
            "team": [team.name for team in TEAMS for _ in range(team.reps)],
            "optimistic": optimists,
            "skill": rng.normal(0.0, REP_SKILL_SIGMA, total).round(3),
            "diligence": rng.uniform(*REP_DILIGENCE, total).round(3),
        }
    )


class _Calendar:
    """Day numbers (days since 1970-01-01) and quarter lookups around today."""

    def __init__(self, today: dt.date):
        self.today = _day(today)
        try:
            first = today.replace(year=today.year - HISTORY_YEARS)
        except ValueError:  # 29 February
            first = today.replace(year=today.year - HISTORY_YEARS, day=28)
        self.first = _day(first)
        self.low = self.first - 400
        # Deals created up to next quarter's end can be pushed five times by
        # at most two quarters each; the table reaches well beyond that.
        span = np.arange(self.low, self.today + 2000)
        months = (EPOCH + span).astype("datetime64[M]")
        quarter_start = months - (months.astype(int) % 3)
        next_start = (quarter_start + 3).astype("datetime64[D]")
        self._qend = (next_start - EPOCH).astype(int) - 1
        self.qend_list = self._qend.tolist()
        # The last day a deal created so far can be planned to close.
        self.horizon = int(self.quarter_end(self.quarter_end(self.today) + 1))

    def quarter_end(self, day):
        """Last day of the quarter of ``day`` (int or array)."""
        return self._qend[np.asarray(day) - self.low]

    def quarter_name(self, day) -> np.ndarray:
        dates = (EPOCH + np.asarray(day)).astype("datetime64[M]").astype(int)
        years = 1970 + dates // 12
        numbers = dates % 12 // 3 + 1
        return np.char.add(np.char.add(years.astype(str), "Q"), numbers.astype(str))


def _day(date: dt.date) -> int:
    return int((np.datetime64(date, "D") - EPOCH).astype(int))


def _draw_deals(rng, roster: pd.DataFrame, calendar: _Calendar, scale: float):
    """Deal-level draws for deals created from three years ago up to the end of
    next quarter (the later ones only feed the targets)."""
    days = np.arange(calendar.first, calendar.horizon + 1)
    years = (days - calendar.first) / 365.25
    dates = EPOCH + days
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(int)
    weekday = (days + 3) % 7  # 0 = Monday
    rate = (1 + CREATION_GROWTH_PER_YEAR) ** years
    rate *= 1 + SEASONALITY * np.sin(2 * np.pi * (day_of_year - 60) / 365.25)
    rate *= np.where(weekday >= 5, WEEKEND_CREATION, 1.0)
    past = days <= calendar.today
    n_past = max(1, round(FULL_SCALE_DEALS * scale))
    n_future = round(n_past * rate[~past].sum() / rate[past].sum())
    created = np.concatenate(
        [
            np.sort(rng.choice(days[past], n_past, p=rate[past] / rate[past].sum())),
            np.sort(
                rng.choice(days[~past], n_future, p=rate[~past] / rate[~past].sum())
            ),
        ]
    )
    n = len(created)

    owner = rng.integers(0, len(roster), n)
    team_index = np.array([t for t, team in enumerate(TEAMS) for _ in range(team.reps)])
    team = team_index[owner]
    mix = np.array([team.segment_mix for team in TEAMS])[team]
    segment = (rng.random(n)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1)
    segment = np.minimum(segment, len(SEGMENTS) - 1)
    growth = (1 + AMOUNT_GROWTH_PER_YEAR) ** ((created - calendar.first) / 365.25)
    median = np.array([s.amount_median for s in SEGMENTS])[segment]
    sigma = np.array([s.amount_sigma for s in SEGMENTS])[segment]
    amount = median * growth * np.exp(rng.normal(0, 1, n) * sigma)
    amount = np.round(amount / 100) * 100
    cycle_median = np.array([s.cycle_median_days for s in SEGMENTS])[segment]
    cycle_sigma = np.array([s.cycle_sigma for s in SEGMENTS])[segment]
    cycle = cycle_median * np.exp(rng.normal(0, 1, n) * cycle_sigma)
    cycle = np.clip(np.round(cycle), 14, 365).astype(int)

    n_accounts = max(40, n // 3)
    combos = len(words.ACCOUNT_FIRST) * len(words.ACCOUNT_SECOND)
    pool = rng.permutation(combos)[: min(n_accounts, combos)]
    account_code = pool[rng.integers(0, len(pool), n)]
    account = np.array(
        [
            f"{words.ACCOUNT_FIRST[c // len(words.ACCOUNT_SECOND)]} "
            f"{words.ACCOUNT_SECOND[c % len(words.ACCOUNT_SECOND)]}"
            for c in range(combos)
        ],
        dtype=object,
    )[account_code]
    return {
        "n": n,
        "n_past": n_past,
        "created": created,
        "owner": owner,
        "team": team,
        "segment": segment,
        "amount": amount,
        "cycle": cycle,
        "account": account,
        "lead_source": rng.choice(len(words.LEAD_SOURCES), n, p=LEAD_SOURCE_SHARES),
        "product": rng.integers(0, len(words.PRODUCTS), n),
        "kind": rng.choice(len(words.DEAL_KINDS), n, p=(0.6, 0.3, 0.1)),
    }


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _question_truths(question_ids) -> dict[str, tuple]:
    """The truth parameters of every question: the known ones, then any other
    question of the set."""
    truths = dict(QUESTION_TRUTH)
    for question in question_ids:
        truths.setdefault(question, OTHER_QUESTION_TRUTH)
    return truths


def _draw_truth(rng, deals, roster: pd.DataFrame, question_ids):
    """The hidden truth of every deal: which answers are really true, whether
    the rep learns them, and whether the deal is won."""
    n = deals["n"]
    quality = rng.normal(0, 1, n)
    truth = {}
    truths = _question_truths(question_ids)
    for question, (base, loading, *_rest) in truths.items():
        logit = math.log(base / (1 - base)) + loading * quality
        truth[question] = rng.random(n) < _sigmoid(logit)
    segment_names = np.array([s.name for s in SEGMENTS])[deals["segment"]]
    required = np.array([SECURITY_REQUIRED[name] for name in segment_names])
    truth["security_required"] = rng.random(n) < required
    diligence = roster["diligence"].to_numpy()[deals["owner"]]
    learned = {}
    for question, (*_head, ease) in truths.items():
        learned[question] = rng.random(n) < diligence * ease
    # Whether competition gets answered is a coin flip, independent of the
    # rep and of everything that drives the outcome.
    learned["competition"] = rng.random(n) < COMPETITION_ANSWERED

    logit = np.array([s.win_base for s in SEGMENTS])[deals["segment"]]
    logit = logit + roster["skill"].to_numpy()[deals["owner"]]
    for question, effect in WIN_EFFECTS.items():
        logit = logit + effect * truth[question]
    lead_effects = np.array([LEAD_SOURCE_EFFECTS[s] for s in words.LEAD_SOURCES])
    logit = logit + lead_effects[deals["lead_source"]]
    win_probability = _sigmoid(logit)
    won = rng.random(n) < win_probability
    loss_stage = rng.choice(OPEN_STAGES, n, p=LOSS_STAGE_SHARES)
    return {
        "quality": quality,
        "truth": truth,
        "learned": learned,
        "win_probability": win_probability,
        "won": won,
        "loss_stage": loss_stage,
        "security_trap": truth["security_required"] & ~learned["security_review"],
    }


# --- the life of each deal ----------------------------------------------------


def _reschedule(times, loss_time, at, old_close, new_close):
    """Stretch the planned moves after ``at`` to the new close date."""
    ratio = (new_close - at) / max(old_close - at, 0.5)
    times = [t if t <= at else at + (t - at) * ratio for t in times]
    if loss_time is not None and loss_time > at:
        loss_time = at + (loss_time - at) * ratio
    return times, loss_time


def _category(stage, in_quarter, optimistic, tilt, pushes, omit) -> int:
    """The forecast category a rep sets for an open deal."""
    if omit and pushes >= 2:
        return OMITTED
    if stage <= 1:
        return PIPELINE
    if stage == 2:
        return BEST_CASE if in_quarter and (optimistic or tilt) else PIPELINE
    if stage == 3:
        if not in_quarter:
            return PIPELINE
        return COMMIT if optimistic else BEST_CASE
    return COMMIT if in_quarter else BEST_CASE


def _lapse_extra(chance: float) -> float:
    """The chance of a push a lapsed next step adds to a date not pushed
    anyway, so that the push chance becomes ``NO_NEXT_STEP_PUSH_FACTOR`` times
    ``chance`` (at most ``MAX_PUSH_CHANCE``)."""
    total = min(chance * NO_NEXT_STEP_PUSH_FACTOR, MAX_PUSH_CHANCE)
    if chance >= 1.0 or total <= chance:
        return 0.0
    return (total - chance) / (1.0 - chance)


def _simulate_paths(
    r: random.Random, steps: random.Random, deals, truth, roster, calendar
):
    """Walk every deal from creation to its close: stage moves, close-date
    pushes and pull-ins, amount changes, category reviews, next steps, and the
    outcome.

    ``steps`` draws the next steps (which text, blank or not, lapses before a
    close date). Deals are simulated to their end even past today; what
    happens after today is cut off, so an open deal shows only its past.
    Returns the history rows (versions) and per-deal arrays.
    """
    n, today, low = deals["n"], calendar.today, calendar.low
    qend = calendar.qend_list
    created = deals["created"].tolist()
    cycle = deals["cycle"].tolist()
    segment = deals["segment"].tolist()
    amount0 = deals["amount"].tolist()
    optimistic = roster["optimistic"].to_numpy()[deals["owner"]].tolist()
    has_event = truth["truth"]["compelling_event"].tolist()
    trap_flags = truth["security_trap"].tolist()
    won = truth["won"].tolist()
    loss_stage = truth["loss_stage"].tolist()
    push_base = [PUSH_BASE[s.name] for s in SEGMENTS]

    end = np.zeros(n, dtype=np.int64)
    planned_close = np.zeros(n, dtype=np.int64)
    final_close = np.zeros(n, dtype=np.int64)
    trap_day = np.full(n, -1, dtype=np.int64)
    columns = ("deal", "day", "secs", "stage", "amount", "close", "category")
    rows = {column: [] for column in (*columns, "outcome", "step")}

    def quarter_end(day):
        return qend[day - low]

    def snap(day):
        if r.random() < RUSH_SHARE:
            return max(day, quarter_end(day) - r.randint(0, RUSH_WINDOW))
        return day

    def destination(at, close, security):
        u = r.random()
        if u < 0.45 and not security:
            new = snap(close + r.randint(21, 45))
        elif u < 0.9:
            new = quarter_end(quarter_end(close) + 1) - r.randint(0, RUSH_WINDOW)
        else:
            later = quarter_end(quarter_end(close) + 1) + 1
            new = quarter_end(later) - r.randint(0, RUSH_WINDOW)
        return min(new, quarter_end(quarter_end(at) + 1))

    def lapse_day(close, last):
        """The day the next step lapses before ``close``, or -1."""
        if steps.random() >= NEXT_STEP_LAPSE_PROBABILITY:
            return -1
        day = max(close - steps.randint(*NEXT_STEP_WINDOW), last + 1)
        return day if day < close else -1

    def new_step():
        """A fresh next step: a text number, or -1 for blank."""
        return -1 if steps.random() < BLANK_NEXT_STEP else steps.randrange(3)

    for i in range(n):
        t0 = created[i]
        close = min(max(snap(t0 + cycle[i]), t0 + 7), quarter_end(quarter_end(t0) + 1))
        planned_close[i] = close
        span = close - t0
        stage_times = [
            t0 + (f + r.uniform(-0.04, 0.04)) * span for f in STAGE_FRACTIONS
        ]
        last_stage = 4 if won[i] else loss_stage[i]
        loss_time = None
        if not won[i] and last_stage <= 2:
            before = t0 if last_stage == 0 else stage_times[last_stage - 1]
            loss_time = before + r.uniform(0.3, 1.0) * (
                stage_times[last_stage] - before
            )
            loss_time = max(loss_time, t0 + 7)
        events = []  # (day, kind, value): 0 stage, 1 close date, 2 amount, 3 review
        last = t0

        if r.random() < PULL_IN_PROBABILITY and span > 30:
            at = int(t0 + r.uniform(0.2, 0.5) * span)
            new = max(at + 10, close - r.randint(10, 40))
            if new < close:
                stage_times, loss_time = _reschedule(
                    stage_times, loss_time, at, close, new
                )
                events.append((at, 1, new))
                close, last = new, at

        pushes, tried_trap = 0, False
        lapses = []  # days the next step lapsed (before the close date then)
        while pushes < MAX_PUSHES:
            at, security = -1, False
            lapsed = lapse_day(close, last)
            if trap_flags[i] and not tried_trap:
                candidate = close - r.randint(0, SECURITY_SLIP_WINDOW)
                if candidate > last and stage_times[2] <= candidate:
                    tried_trap = True
                    if r.random() < SECURITY_SLIP_PROBABILITY:
                        at, security = candidate, True
            if at < 0:
                if has_event[i]:
                    chance = push_base[segment[i]] * PUSH_DECAY**pushes
                else:
                    chance = push_base[segment[i]] * PUSH_NO_EVENT_FACTOR
                    chance *= PUSH_DECAY_NO_EVENT**pushes
                if r.random() < chance:
                    at = min(max(close - r.randint(3, 40), last + 1), close)
                elif lapsed >= 0 and steps.random() < _lapse_extra(chance):
                    # the extra push a lapsed next step causes comes after it
                    at = steps.randint(lapsed + 1, close)
            # (a security review that surfaces first leaves no lapse)
            if lapsed >= 0 and (at < 0 or at > lapsed):
                lapses.append(lapsed)
            if at < 0:
                break
            new = destination(at, close, security)
            if new <= close:
                break
            stage_times, loss_time = _reschedule(stage_times, loss_time, at, close, new)
            events.append((at, 1, new))
            if security:
                trap_day[i] = at
            close, last = new, at
            pushes += 1
        else:
            lapsed = lapse_day(close, last)
            if lapsed >= 0:
                lapses.append(lapsed)
        final_close[i] = close

        if won[i]:
            end_day = max(close - r.randint(0, 3), last)
        elif loss_time is not None:
            end_day = int(loss_time)
        else:
            end_day = max(close - r.randint(0, 7), last)
        end[i] = end_day
        if t0 > today:
            continue

        for k in range(1, last_stage + 1):
            events.append((min(int(stage_times[k - 1]), end_day), 0, k))
        if r.random() < AMOUNT_CHANGE_PROBABILITY:
            for _ in range(1 + (r.random() < 0.3)):
                at = int(t0 + r.uniform(0.2, 0.9) * span)
                events.append((at, 2, math.exp(r.gauss(0.0, 0.2))))
        review = quarter_end(t0) + 1
        while review <= end_day:
            events.append((review + r.randint(0, 6), 3, 0))
            review = quarter_end(review) + 1
        events.extend((day, 4, 0) for day in lapses)
        events.sort()
        omit, tilt = r.random() < 0.35, r.random() < 0.3

        stage, amount, close, pushes = 0, amount0[i], planned_close[i], 0
        category = _category(0, False, optimistic[i], tilt, 0, omit)
        day, secs = t0, 8 * 3600 + r.randint(0, 9 * 3600)
        limit = min(end_day, today)
        step, lapsed = new_step(), False
        versions = [(day, secs, stage, amount, close, category, 0, step)]
        for day, kind, value in events:
            if day > limit:
                break
            if kind == 0:
                stage = value
                step = -1 if lapsed else new_step()
            elif kind == 1:
                pushes += value > close
                close = value
                step, lapsed = new_step(), False
            elif kind == 2:
                amount = max(100.0, round(amount * value / 100) * 100)
            elif kind == 4:
                was_blank, lapsed = step < 0, True
                if was_blank:
                    continue
                step = -1
            new_category = _category(
                stage,
                quarter_end(day) == quarter_end(close),
                optimistic[i],
                tilt,
                pushes,
                omit,
            )
            if kind == 3 and new_category == category:
                continue
            category = new_category
            versions.append((day, 0, stage, amount, close, category, 0, step))
        if end_day <= today:
            outcome = 1 if won[i] else 2
            final_stage = WON_STAGE if won[i] else LOST_STAGE
            kept = steps.random() < CLOSED_NEXT_STEP
            versions.append(
                (
                    end_day,
                    0,
                    final_stage,
                    amount,
                    end_day,
                    CLOSED if won[i] else OMITTED,
                    outcome,
                    steps.randrange(2) if kept else -1,
                )
            )

        previous_day, previous_secs = -1, 0
        for day, _secs, stage, amount, close, category, outcome, step in versions:
            if day == previous_day:
                secs = previous_secs + r.randint(1, 600)
            else:
                secs = _secs or 8 * 3600 + r.randint(0, 9 * 3600)
            previous_day, previous_secs = day, secs
            rows["deal"].append(i)
            rows["day"].append(day)
            rows["secs"].append(secs)
            rows["stage"].append(stage)
            rows["amount"].append(amount)
            rows["close"].append(close)
            rows["category"].append(category)
            rows["outcome"].append(outcome)
            rows["step"].append(step)

    history = {k: np.asarray(v) for k, v in rows.items()}
    return {
        "history": history,
        "end": end,
        "planned_close": planned_close,
        "final_close": final_close,
        "trap_day": trap_day,
    }


# --- the business case --------------------------------------------------------


def _pick(rng, choices, n):
    """``n`` texts drawn uniformly from ``choices`` (an object array)."""
    return np.asarray(choices, dtype=object)[rng.integers(0, len(choices), n)]


def _time_of_day(rng, n):
    return rng.integers(8 * 3600, 18 * 3600, n)


def _answer_rows(
    rng, deals, truth, roster, paths, calendar, question_ids
) -> pd.DataFrame:
    """Answers as the reps recorded them: unknown until learned, then the
    status the rep believed, sometimes revised later (upgraded when verified,
    turned to risk when a weakness shows)."""
    n = deals["n_past"]
    created = deals["created"][:n]
    span = np.maximum(paths["planned_close"][:n] - created, 1)
    limit = np.minimum(paths["end"][:n], calendar.today)
    optimistic = roster["optimistic"].to_numpy()[deals["owner"][:n]]
    owners = roster["owner"].to_numpy(dtype=object)[deals["owner"][:n]]
    parts = []

    def add(mask, question, status, day):
        keep = mask & (day <= limit)
        index = np.flatnonzero(keep)
        parts.append(
            pd.DataFrame(
                {
                    "deal": index,
                    "question_id": question,
                    "status": status[index] if np.ndim(status) else status,
                    "day": day[index],
                }
            )
        )

    truths = _question_truths(question_ids)
    for question in question_ids:
        _base, _loading, start, stop, _ease = truths[question]
        good = truth["truth"][question][:n]
        learned = truth["learned"][question][:n]
        u = rng.random(n)
        if question == "competition":
            day = created + rng.integers(0, 4, n)
            status = np.where(u < 0.6, CONFIRMED, ASSUMED)
            add(learned, question, status, day)
            continue
        day = created + np.floor(rng.uniform(start, stop, n) * span).astype(int)
        if question == "security_review":
            required = truth["truth"]["security_required"][:n]
            status = np.where(
                ~required,
                CONFIRMED,
                np.where(u < 0.3, CONFIRMED, np.where(u < 0.8, ASSUMED, RISK)),
            )
            add(learned, question, status, day)
            trap = paths["trap_day"][:n]
            raised = np.where(rng.random(n) < 0.5, RISK, ASSUMED)
            add(trap >= 0, question, raised, trap)
            continue
        confirm_share = CONFIRM_SHARE.get(question, 0.7)
        status = np.where(
            good,
            np.where(u < confirm_share, CONFIRMED, ASSUMED),
            np.where(
                optimistic,
                np.where(u < 0.5, CONFIRMED, np.where(u < 0.9, ASSUMED, RISK)),
                np.where(u < 0.55, ASSUMED, RISK),
            ),
        )
        add(learned, question, status, day)
        later = day + np.ceil(rng.uniform(0.1, 0.4, n) * span).astype(int)
        revise = rng.random(n)
        add(
            learned & good & (status == ASSUMED) & (revise < 0.5),
            question,
            CONFIRMED,
            later,
        )
        add(learned & ~good & (status != RISK) & (revise < 0.3), question, RISK, later)

    answers = pd.concat(parts, ignore_index=True)
    count = len(answers)
    lag = rng.choice([0, 0, 0, 1, 2], count)
    recorded = np.minimum(answers["day"].to_numpy() + lag, limit[answers["deal"]])
    status = answers["status"].to_numpy()
    evidence = np.full(count, None, dtype=object)
    for code, name in ((CONFIRMED, "confirmed"), (ASSUMED, "assumed"), (RISK, "risk")):
        mask = status == code
        evidence[mask] = _pick(rng, words.EVIDENCE[name], int(mask.sum()))
    evidence[rng.random(count) < 0.3] = None
    frame = pd.DataFrame(
        {
            "deal": answers["deal"].to_numpy(),
            "question_id": answers["question_id"].astype(str),
            "status": np.asarray(STATUSES, dtype=object)[status],
            "evidence": evidence,
            "learned_on": EPOCH + answers["day"].to_numpy(),
            "answered_by": owners[answers["deal"].to_numpy()],
            "recorded_at": (EPOCH + recorded).astype("datetime64[s]")
            + _time_of_day(rng, count).astype("timedelta64[s]"),
        }
    )
    order = np.lexsort(
        (
            frame["question_id"].to_numpy(),
            frame["deal"].to_numpy(),
            frame["recorded_at"].to_numpy(),
        )
    )
    return frame.iloc[order].reset_index(drop=True)


def _stakeholder_rows(rng, deals, truth, answers, roster, paths, calendar):
    """Buying influences, added as the rep meets them; an economic buyer
    appears once the rep believes to have met one. Some change attitude
    later; a few leave the deal."""
    n = deals["n_past"]
    created = deals["created"][:n]
    span = np.maximum(paths["planned_close"][:n] - created, 1)
    limit = np.minimum(paths["end"][:n], calendar.today)
    quality = truth["quality"][:n]
    owners = roster["owner"].to_numpy(dtype=object)[deals["owner"][:n]]
    low_high = {0: (1, 3), 1: (2, 4), 2: (3, 6)}
    segment = deals["segment"][:n]
    lows = np.array([low_high[s][0] for s in range(3)])[segment]
    highs = np.array([low_high[s][1] for s in range(3)])[segment]
    count = rng.integers(lows, highs + 1)
    slots = 6

    deal = np.repeat(np.arange(n), slots)
    slot = np.tile(np.arange(slots), n)
    keep = slot < count[deal]
    deal, slot = deal[keep], slot[keep]
    m = len(deal)
    role = rng.choice([1, 2, 3], m, p=(0.45, 0.35, 0.20))
    role[slot == 0] = rng.choice([1, 3], int((slot == 0).sum()))
    added = created[deal] + np.where(
        slot == 0, 0, np.floor(rng.uniform(0.05, 0.7, m) * span[deal]).astype(int)
    )

    # The economic buyer, once the rep records having met (or found) one.
    first_eb = answers[answers["question_id"] == "economic_buyer"]
    first_eb = first_eb[first_eb["status"].isin(["confirmed", "assumed"])]
    first_eb = first_eb.groupby("deal", sort=True)["learned_on"].min()
    eb_deal = first_eb.index.to_numpy()
    eb_day = (first_eb.to_numpy().astype("datetime64[D]") - EPOCH).astype(int)
    deal = np.concatenate([deal, eb_deal])
    slot = np.concatenate([slot, np.full(len(eb_deal), slots)])
    role = np.concatenate([role, np.zeros(len(eb_deal), dtype=int)])
    added = np.concatenate([added, eb_day])
    m = len(deal)

    influence = np.where(
        role == 0, 0, np.where(role == 2, rng.choice([0, 1], m), rng.choice([1, 2], m))
    )
    z = quality[deal]

    def attitude(shift):
        growth = np.clip(0.35 + 0.15 * (z + shift), 0.05, 0.8)
        trouble = np.clip(0.15 - 0.10 * (z + shift), 0.02, 0.5)
        u = rng.random(m)
        return np.where(
            u < growth,
            0,
            np.where(
                u < growth + trouble, 1, np.where(u < growth + trouble + 0.1, 3, 2)
            ),
        )

    first_names = _pick(rng, words.FIRST_NAMES, m)
    last_names = _pick(rng, words.LAST_NAMES, m)
    names = np.char.add(
        np.char.add(first_names.astype(str), " "), last_names.astype(str)
    )
    titles = np.empty(m, dtype=object)
    for code, role_name in enumerate(ROLES):
        mask = role == code
        titles[mask] = _pick(rng, words.TITLES[role_name], int(mask.sum()))
    base = {
        "deal": deal,
        "slot": slot,
        "name": names.astype(object),
        "title": titles,
        "role": role,
        "influence": influence,
    }
    first = dict(base, attitude=attitude(0.0), day=added, removed=False)
    change_day = added + np.ceil(rng.uniform(0.1, 0.5, m) * span[deal]).astype(int)
    changed = rng.random(m) < 0.3
    second = dict(base, attitude=attitude(-0.5), day=change_day, removed=False)
    gone_day = change_day + np.ceil(rng.uniform(0.05, 0.3, m) * span[deal]).astype(int)
    gone = (rng.random(m) < 0.05) & (slot > 0)
    third = dict(base, attitude=second["attitude"], day=gone_day, removed=True)
    versions = []
    for part, mask in ((first, np.ones(m, bool)), (second, changed), (third, gone)):
        frame = pd.DataFrame(part)
        frame = frame[mask & (frame["day"].to_numpy() <= limit[deal])]
        versions.append(frame)
    rows = pd.concat(versions, ignore_index=True)
    days = rows["day"].to_numpy()
    rows = pd.DataFrame(
        {
            "deal": rows["deal"].to_numpy(),
            "slot": rows["slot"].to_numpy(),
            "name": rows["name"].to_numpy(),
            "title": rows["title"].to_numpy(),
            "role": np.asarray(ROLES, dtype=object)[rows["role"].to_numpy()],
            "influence": np.asarray(INFLUENCES, dtype=object)[
                rows["influence"].to_numpy()
            ],
            "attitude": np.asarray(ATTITUDES, dtype=object)[
                rows["attitude"].to_numpy()
            ],
            "last_contact": EPOCH + days,
            "removed": rows["removed"].to_numpy(dtype=bool),
            "recorded_by": owners[rows["deal"].to_numpy()],
            "recorded_at": (EPOCH + days).astype("datetime64[s]")
            + _time_of_day(rng, len(rows)).astype("timedelta64[s]"),
        }
    )
    order = np.lexsort(
        (
            rows["slot"].to_numpy(),
            rows["deal"].to_numpy(),
            rows["recorded_at"].to_numpy(),
        )
    )
    return rows.iloc[order].reset_index(drop=True)


# --- targets and tables -------------------------------------------------------


def _target_rows(rng, deals, truth, paths, calendar) -> pd.DataFrame:
    """Quarterly quotas per team and for the company: the bookings each team's
    pipeline is expected to deliver (win probability times amount, in the
    quarter the deal would close), stretched by :data:`TARGET_STRETCH`."""
    quarter = calendar.quarter_name(paths["final_close"])
    frame = pd.DataFrame(
        {
            "quarter": quarter,
            "team": np.array([t.name for t in TEAMS], dtype=object)[deals["team"]],
            "expected": truth["win_probability"] * deals["amount"],
        }
    )
    wanted = calendar.quarter_name(
        np.arange(calendar.first, calendar.horizon + 1, 28).tolist()
        + [calendar.horizon]
    )
    wanted = sorted(set(wanted.tolist()))
    expected = frame.groupby(["quarter", "team"])["expected"].sum()
    rows = []
    for name in wanted:
        total = 0.0
        for team in TEAMS:
            value = float(expected.get((name, team.name), 0.0))
            stretch = rng.uniform(*TARGET_STRETCH)
            amount = max(10_000.0, round(value * stretch, -4))
            total += amount
            rows.append((name, team.name, None, amount))
        rows.append((name, None, None, total))
    return pd.DataFrame(rows, columns=["quarter", "team", "owner", "amount"])


def _next_step_texts(stage: np.ndarray, step: np.ndarray) -> np.ndarray:
    """The next step texts of versions: text number ``step`` of the stage's
    list in :data:`demo_words.NEXT_STEPS`, None where ``step`` is -1."""
    texts = np.full(len(stage), None, dtype=object)
    for code, (name, *_rest) in enumerate(STAGES):
        choices = np.asarray(words.NEXT_STEPS[name], dtype=object)
        mask = (stage == code) & (step >= 0)
        texts[mask] = choices[step[mask] % len(choices)]
    return texts


def _frames(deals, paths, roster) -> dict[str, pd.DataFrame]:
    """The ``deals`` and ``deal_history`` tables."""
    history = paths["history"]
    n = deals["n_past"]
    deal_ids = np.array([f"D-{i + 1:05d}" for i in range(n)], dtype=object)
    stage_names = np.array([s[0] for s in STAGES], dtype=object)
    stage_probability = np.array([s[2] for s in STAGES])
    outcomes = np.array(["open", "won", "lost"], dtype=object)
    valid_from = (EPOCH + history["day"]).astype("datetime64[s]") + history[
        "secs"
    ].astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "deal_id": deal_ids[history["deal"]],
            "valid_from": valid_from,
            "stage": stage_names[history["stage"]],
            "amount": history["amount"].astype(float),
            "close_date": EPOCH + history["close"],
            "forecast_category": np.array(CATEGORIES, dtype=object)[
                history["category"]
            ],
            "probability": stage_probability[history["stage"]],
            "outcome": outcomes[history["outcome"]],
            "next_step": _next_step_texts(history["stage"], history["step"]),
            "source": "demo",
        }
    )
    last = np.r_[np.flatnonzero(np.diff(history["deal"])), len(history["deal"]) - 1]
    current = frame.iloc[last].reset_index(drop=True)
    index = history["deal"][last]
    assert (index == np.arange(n)).all()

    team_names = np.array([t.name for t in TEAMS], dtype=object)
    regions = [t.region for t in TEAMS]
    segment_names = np.array([s.name for s in SEGMENTS], dtype=object)
    products = np.array(words.PRODUCTS, dtype=object)[deals["product"][:n]]
    kinds = np.array(words.DEAL_KINDS, dtype=object)[deals["kind"][:n]]
    names = [
        f"{account} - {product} {kind}"
        for account, product, kind in zip(deals["account"][:n], products, kinds)
    ]
    attributes = [
        json.dumps(
            {
                "lead_source": words.LEAD_SOURCES[source],
                "region": regions[team],
                "product": product,
                "deal_type": kind,
            },
            sort_keys=True,
        )
        for source, team, product, kind in zip(
            deals["lead_source"][:n].tolist(),
            deals["team"][:n].tolist(),
            products,
            kinds,
        )
    ]
    stage = current["stage"].to_numpy(dtype=object)
    next_step = current["next_step"].to_numpy(dtype=object)
    outcome = current["outcome"].to_numpy(dtype=object)
    closed_on = np.where(
        outcome == "open",
        np.datetime64("NaT"),
        (EPOCH + paths["end"][:n]).astype("datetime64[D]"),
    )
    owners = roster["owner"].to_numpy(dtype=object)
    deal_frame = pd.DataFrame(
        {
            "deal_id": deal_ids,
            "name": np.array(names, dtype=object),
            "account": deals["account"][:n],
            "owner": owners[deals["owner"][:n]],
            "team": team_names[deals["team"][:n]],
            "segment": segment_names[deals["segment"][:n]],
            "stage": stage,
            "forecast_category": current["forecast_category"].to_numpy(),
            "amount": current["amount"].to_numpy(),
            "amount_original": current["amount"].to_numpy(),
            "currency": "USD",
            "amount_estimated": False,
            "probability": current["probability"].to_numpy(),
            "created_on": EPOCH + deals["created"][:n],
            "close_date": current["close_date"].to_numpy(),
            "closed_on": closed_on,
            "outcome": outcome,
            "next_step": next_step,
            "source": "demo",
            "attributes": np.array(attributes, dtype=object),
            "updated_at": current["valid_from"].to_numpy(),
        }
    )
    return {"deals": deal_frame, "history": frame}


def _insert(con, table: str, frame: pd.DataFrame, casts: dict[str, str]) -> None:
    """Bulk-insert ``frame`` into ``table`` (columns by name, with casts)."""
    columns = list(frame.columns)
    select = ", ".join(f"CAST({c} AS {casts[c]})" if c in casts else c for c in columns)
    con.register("demo_frame", frame)
    try:
        con.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {select} FROM demo_frame"
        )
    finally:
        con.unregister("demo_frame")


def _reserve_ids(con, sequence: str, count: int) -> np.ndarray:
    """Take ``count`` consecutive values of ``sequence`` for explicit ids, so
    the ids do not depend on the order a parallel insert assigns them."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    first = con.execute(
        f"SELECT min(nextval('{sequence}')) FROM range(?)", [count]
    ).fetchall()[0][0]
    return first + np.arange(count, dtype=np.int64)


def _write(con, frames, answers, stakeholders, targets, questions) -> None:
    deal_ids = frames["deals"]["deal_id"].to_numpy()
    con.executemany(
        "INSERT OR REPLACE INTO stages VALUES (?, ?, ?, ?, ?)",
        [list(s) for s in STAGES],
    )
    con.executemany(
        "INSERT OR REPLACE INTO questions (question_id, dimension, text, weight, "
        "sort_order) VALUES (?, ?, ?, ?, ?)",
        [
            [q["question_id"], q["dimension"], q["text"], q["weight"], q["sort_order"]]
            for q in questions
        ],
    )
    _insert(
        con,
        "deals",
        frames["deals"],
        {"created_on": "DATE", "close_date": "DATE", "closed_on": "DATE"},
    )
    _insert(con, "deal_history", frames["history"], {"close_date": "DATE"})

    case = answers.drop(columns=["deal"])
    case.insert(0, "deal_id", deal_ids[answers["deal"].to_numpy()])
    case.insert(0, "answer_id", _reserve_ids(con, "case_answer_seq", len(case)))
    _insert(con, "case_answers", case, {"learned_on": "DATE"})

    people = stakeholders.drop(columns=["deal", "slot"])
    owner_ids = deal_ids[stakeholders["deal"].to_numpy()]
    people.insert(0, "deal_id", owner_ids)
    people.insert(
        0,
        "stakeholder_id",
        [f"{d}-{s + 1}" for d, s in zip(owner_ids, stakeholders["slot"].tolist())],
    )
    people.insert(
        0, "version_id", _reserve_ids(con, "stakeholder_version_seq", len(people))
    )
    _insert(con, "stakeholders", people, {"last_contact": "DATE"})
    _insert(con, "targets", targets, {})
