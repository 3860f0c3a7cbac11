"""Feature groups and the sentences that explain a score.

Every model feature belongs to one group (stage, pushes, compelling event,
...). A score's reasons are one additive effect per group, in points of
probability, and one sentence per group describing the deal's value, so a
manager reads "No compelling event recorded" next to "-9 points".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealcase.features import DIMENSIONS, ROLES

DIMENSION_LABELS = {
    "pain": "pain",
    "impact": "business impact",
    "budget": "budget",
    "economic_buyer": "economic buyer",
    "champion": "champion",
    "stakeholders": "stakeholder coverage",
    "decision_process": "decision process",
    "paper_process": "paper process and security review",
    "compelling_event": "compelling event",
    "competition": "competition",
    "metrics": "success metrics",
    "decision_criteria": "decision criteria",
}

_FIXED_GROUPS = {
    "stage": "stage",
    "stage_order": "stage",
    "stage_probability": "stage",
    "age_days": "age",
    "days_in_stage": "days_in_stage",
    "days_to_close": "close_date",
    "pushes": "pushes",
    "push_days": "pushes",
    "pulls": "pushes",
    "log_amount": "amount",
    "amount_change": "amount",
    "amount_changes": "amount",
    "forecast_category": "forecast_category",
    "owner_win_rate": "owner_record",
    "team_win_rate": "team_record",
    "team": "team",
    "segment": "segment",
    "has_case": "case_coverage",
    "days_since_answer": "case_freshness",
    "stakeholder_count": "buying_influences",
    "stakeholders_in_trouble": "buying_influences",
    "economic_attitude": "buying_influences",
    **{f"has_{role}": "buying_influences" for role in ROLES},
    **{f"status_{d}": f"case:{d}" for d in DIMENSIONS},
}

# Reasons smaller than this (in points), and any beyond the largest
# TOP_REASONS, are summed into "Other factors".
MINOR_POINTS = 0.5
TOP_REASONS = 6


def group_of(feature: str) -> str:
    """The reason group of a feature column."""
    if feature.startswith("attr:"):
        return feature
    return _FIXED_GROUPS.get(feature, feature)


def _times(count: pd.Series) -> pd.Series:
    return np.where(count == 1, "once", count.astype(int).astype(str) + " times")


def describe(group: str, frame: pd.DataFrame) -> pd.Series:
    """One sentence per row describing the deal's value for ``group``."""
    index = frame.index

    def col(name, default=np.nan):
        if name in frame:
            return frame[name]
        return pd.Series(default, index=index)

    if group == "stage":
        return "In stage " + col("stage", "unknown").astype(str)
    if group == "age":
        return "Open for " + _days(col("age_days"))
    if group == "days_in_stage":
        stage = col("stage", "unknown").astype(str)
        return _days(col("days_in_stage")) + " in " + stage
    if group == "close_date":
        days = col("days_to_close").round().astype(int)
        ahead = "Expected to close in " + _days(days)
        behind = "Close date " + _days(-days) + " overdue"
        return pd.Series(np.where(days >= 0, ahead, behind), index=index)
    if group == "pushes":
        pushes, pulls = col("pushes", 0.0), col("pulls", 0.0)
        days = col("push_days", 0.0).round().astype(int).astype(str)
        pushed = "Pushed " + _times(pushes) + " (" + days + " days in all)"
        pulled = "Close date pulled in " + _times(pulls)
        text = np.where(pushes > 0, pushed, "Close date never pushed")
        text = np.where((pushes == 0) & (pulls > 0), pulled, text)
        return pd.Series(text, index=index)
    if group == "amount":
        amount = np.expm1(col("log_amount", 0.0)).round()
        change = col("amount_change", 0.0)
        text = "Amount " + amount.map("{:,.0f}".format)
        up = (
            " (up "
            + (change * 100).round().astype(int).astype(str)
            + "% since created)"
        )
        down = (
            " (down "
            + (-change * 100).round().astype(int).astype(str)
            + "% since created)"
        )
        suffix = np.where(change > 0.005, up, np.where(change < -0.005, down, ""))
        return text + suffix
    if group == "forecast_category":
        category = col("forecast_category", "none").astype(str)
        named = "Forecast as " + category.str.replace("_", " ")
        return pd.Series(
            np.where(category == "none", "No forecast category set", named),
            index=index,
        )
    if group in ("owner_record", "team_record"):
        who = "Owner" if group == "owner_record" else "Team"
        rate = col(f"{who.lower()}_win_rate")
        return (
            f"{who} wins "
            + (rate * 100).round().astype(int).astype(str)
            + "% of closed deals"
        )
    if group in ("team", "segment"):
        return group.capitalize() + " " + col(group, "none").astype(str)
    if group.startswith("case:"):
        return _describe_dimension(group[5:], col(f"status_{group[5:]}", "unknown"))
    if group == "case_coverage":
        share = (col("case_coverage", 0.0) * 100).round().astype(int).astype(str)
        started = "Business case " + share + "% answered"
        return pd.Series(
            np.where(
                col("has_case", 0.0) > 0, started, "Business case never filled in"
            ),
            index=index,
        )
    if group == "case_freshness":
        days = col("days_since_answer", 0.0)
        fresh = np.where(
            days >= 14,
            "Business case not updated for " + _days(days),
            "Business case updated " + _days(days) + " ago",
        )
        return pd.Series(
            np.where(col("has_case", 0.0) > 0, fresh, "Business case never filled in"),
            index=index,
        )
    if group == "buying_influences":
        return _describe_stakeholders(frame, col)
    if group.startswith("attr:"):
        values = col(group, None).astype(object).where(col(group, None).notna())
        return group[5:] + " " + values.fillna("not given").astype(str)
    return pd.Series(group, index=index)


# Sentences for a dimension's status where the generic ones read badly.
_STATUS_TEXTS = {
    ("economic_buyer", "unknown"): "Economic buyer not met",
    ("economic_buyer", "assumed"): "Economic buyer named but not met",
    ("economic_buyer", "confirmed"): "Economic buyer met and on board",
    ("champion", "unknown"): "No champion identified",
    ("champion", "assumed"): "Champion not yet tested",
    ("stakeholders", "unknown"): "Buying group not mapped",
    ("competition", "unknown"): "Competition unknown",
}


def _days(days) -> pd.Series:
    """``"1 day"``, ``"12 days"``."""
    days = pd.Series(days).round().astype(int)
    return days.astype(str) + np.where(days.abs() == 1, " day", " days")


def _describe_dimension(dimension: str, status: pd.Series) -> pd.Series:
    label = DIMENSION_LABELS.get(dimension, dimension.replace("_", " "))
    title = label[0].upper() + label[1:]
    texts = {
        "unknown": f"No {label} recorded",
        "confirmed": f"{title} confirmed",
        "assumed": f"{title} assumed, not confirmed",
        "risk": f"{title} at risk",
    }
    texts.update(
        {st: text for (dim, st), text in _STATUS_TEXTS.items() if dim == dimension}
    )
    return status.astype(str).map(texts).fillna(f"{title}: " + status.astype(str))


def _describe_stakeholders(frame: pd.DataFrame, col) -> pd.Series:
    attitude = col("economic_attitude", "none").astype(str).str.replace("_", " ")
    has_economic = col("has_economic", 0.0) > 0
    text = pd.Series(
        np.where(
            has_economic,
            "Economic buyer's attitude: " + attitude,
            "Economic buyer not among the stakeholders",
        ),
        index=frame.index,
    )
    missing = pd.Series("", index=frame.index)
    for role in ("user", "technical", "coach"):
        absent = col(f"has_{role}", 0.0) <= 0
        missing = missing.where(
            ~absent, missing + np.where(missing == "", "", ", ") + role
        )
    return text + np.where(missing == "", "", "; no " + missing + " contact")


def reason_lists(
    frame: pd.DataFrame, effects: np.ndarray, groups: list[str]
) -> list[list[dict]]:
    """Per row, the reasons ``{"text", "effect"}``, largest first.

    ``effects`` has one column per group (points of probability). The
    :data:`TOP_REASONS` largest effects of at least :data:`MINOR_POINTS` are
    kept; the rest are summed into one "Other factors" reason, so the effects
    of a row still add up to its score minus the base.
    """
    rows, width = effects.shape
    keep_count = min(TOP_REASONS, width)
    order = np.argsort(-np.abs(effects), axis=1, kind="stable")[:, :keep_count]
    top = np.take_along_axis(effects, order, axis=1)
    kept = np.abs(top) >= MINOR_POINTS
    other = effects.sum(axis=1) - np.where(kept, top, 0.0).sum(axis=1)
    lumped = width - kept.sum(axis=1)

    # sentences only for the groups some row keeps
    texts = np.empty((rows, keep_count), dtype=object)
    for k in np.unique(order[kept]):
        mask = (order == k) & kept
        hit = mask.any(axis=1)
        sentences = describe(groups[k], frame.iloc[np.flatnonzero(hit)]).to_numpy(
            dtype=object
        )
        row_of = np.full(rows, -1)
        row_of[hit] = np.arange(hit.sum())
        where = np.nonzero(mask)
        texts[where] = sentences[row_of[where[0]]]

    result = []
    for text_row, effect_row, kept_row, rest, n_rest in zip(
        texts.tolist(), top.tolist(), kept.tolist(), other.tolist(), lumped.tolist()
    ):
        reasons = [
            {"text": t, "effect": e}
            for t, e, k in zip(text_row, effect_row, kept_row)
            if k
        ]
        if n_rest:
            reasons.append({"text": "Other factors", "effect": rest})
        result.append(reasons)
    return result
