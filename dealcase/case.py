"""The business case of deals: question set, answers and buying influences,
case quality, red flags, coaching and CSV exchange.

This module is the entry point pages and other modules use; the work is
done in ``case_questions``, ``case_capture``, ``case_quality``,
``redflags``, ``coaching`` and ``case_csv``.
"""

from __future__ import annotations

from dealcase.case_capture import (
    ATTITUDES,
    INFLUENCES,
    ROLES,
    Answer,
    EditConflict,
    SavedStakeholder,
    Stakeholder,
    all_stakeholders_as_of,
    case_as_of,
    case_history,
    case_version,
    record_answer,
    record_answers,
    record_stakeholder,
    remove_stakeholder,
    stakeholders_as_of,
)
from dealcase.case_csv import export_case, import_case, stakeholder_file
from dealcase.case_quality import (
    SCORE_DEFINITION,
    STALE_DAYS,
    STATUS_CREDIT,
    case_dimensions_as_of,
    case_scores,
    case_scores_many,
)
from dealcase.case_questions import (
    DEFAULT_QUESTIONS,
    DIMENSION_LABELS,
    DIMENSIONS,
    Question,
    QuestionSet,
    current_questions,
    load_questions,
    load_questions_or_last,
    refresh_questions,
    sync_questions,
)
from dealcase.coaching import COACHING_DEFINITION, coaching
from dealcase.redflags import RULES, Rule, close_date_pushes, red_flags, rules_frame

__all__ = [
    "ATTITUDES",
    "COACHING_DEFINITION",
    "DEFAULT_QUESTIONS",
    "DIMENSIONS",
    "DIMENSION_LABELS",
    "INFLUENCES",
    "ROLES",
    "RULES",
    "SCORE_DEFINITION",
    "STALE_DAYS",
    "STATUS_CREDIT",
    "Answer",
    "EditConflict",
    "Question",
    "QuestionSet",
    "Rule",
    "SavedStakeholder",
    "Stakeholder",
    "all_stakeholders_as_of",
    "case_as_of",
    "case_dimensions_as_of",
    "case_history",
    "case_scores",
    "case_scores_many",
    "case_version",
    "close_date_pushes",
    "coaching",
    "current_questions",
    "export_case",
    "import_case",
    "load_questions",
    "load_questions_or_last",
    "record_answer",
    "record_answers",
    "record_stakeholder",
    "red_flags",
    "refresh_questions",
    "remove_stakeholder",
    "rules_frame",
    "stakeholder_file",
    "stakeholders_as_of",
    "sync_questions",
]
