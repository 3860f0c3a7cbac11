"""Close likelihood: the chance that an open deal is won, with its reasons.

Training rows are weekly snapshots of deals as they stood on past dates
(:mod:`dealcase.features`), labelled by how they ended; each deal counts
once (row weight 1 / its number of snapshots). Two candidates are compared
on a later time fold (the snapshots of the last quarter of deals to close):
a histogram gradient-boosted tree model and a regularised logistic
regression (one-hot and scaling in a pipeline). The one with the lower log
loss on that fold is refitted on every row and calibrated with a sigmoid
(Platt) map, ``p = 1 / (1 + exp(-(a * raw_logit + b)))``, fitted on
out-of-fold log-odds from three folds grouped by deal.

With under :data:`MIN_CLOSED_DEALS` closed deals the model falls back to the
regularised logistic regression alone (under :data:`MIN_DEALS_FOR_MODEL`, to
each stage's historical win rate), records a ``fallback`` note and an
``uncertainty_scale`` above 1 for the forecast to widen its ranges.

Reasons are additive per feature group and exact. Contributions are first
computed in raw log-odds against a stated background:

- logistic regression: ``coef * (x - mean)`` per one-hot or scaled column,
  summed per group (exact: they add up to ``logit(x) - logit(mean)``; these
  are the interventional Shapley values of a linear model);
- gradient boosting: exact interventional Shapley values of the groups,
  averaged over a seeded background sample of :data:`BACKGROUND_DEALS`
  deals (:mod:`dealcase.model_shapley`); they add up exactly to
  ``logit(x) - mean(logit(background))``.

They are then scaled by one common factor, ``(score - base) / sum``, so the
effects in points of probability sum exactly to ``score - base``, where
``base`` is the calibrated probability of the background's mean log-odds.
The factor is positive (the calibration is increasing), so signs and
proportions of the log-odds contributions are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import pickle
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from dealcase import features as feat
from dealcase.errors import NotEnoughDataError
from dealcase.model_reasons import group_of, reason_lists
from dealcase.model_shapley import tree_group_shapley
from dealcase.periods import fiscal_start_month, parse_date, quarter_of, resolve_as_of
from dealcase.report import Report
from dealcase.store import Remembered

logger = logging.getLogger(__name__)

MIN_CLOSED_DEALS = 300
# Threads (OpenMP and BLAS) for fitting and prediction. One by default: on a
# shared machine, busy-waiting threads slow fitting down up to
# twentyfold, while a second thread gains at most a factor of two.
THREADS = 1
MIN_DEALS_FOR_MODEL = 30
KINDS = ("hist_gradient_boosting", "logistic", "stage_prior")
# Columns that identify a row or carry its label; never features.
NOT_FEATURES = {"deal_id", "as_of", "won", "closed_at", "owner"} | set(
    feat.CASE_DESCRIPTIVE
)
# A categorical level seen fewer times than this is grouped into "other".
MIN_LEVEL_ROWS = 20
MAX_LEVELS = 40
# Deals in the background sample of the tree model's reasons.
BACKGROUND_DEALS = 200


# --------------------------------------------------------------------------
# Feature specification: which columns, which levels, how to encode them


@dataclass
class FeatureSpec:
    """The columns a model reads, fixed when it is fitted.

    ``categorical`` maps a column to its levels (rare levels and levels not
    seen in training become ``"other"``); ``numeric`` columns are floats, an
    empty value replaced by the training median in ``fill``.
    """

    numeric: list[str]
    categorical: dict[str, list[str]]
    fill: dict[str, float] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return self.numeric + list(self.categorical)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input frame: floats, and categoricals with fixed levels."""
        out = {}
        for name in self.numeric:
            values = frame[name] if name in frame else pd.Series(np.nan, frame.index)
            values = pd.to_numeric(values, errors="coerce").astype(float)
            out[name] = values.fillna(self.fill.get(name, 0.0)).to_numpy()
        for name, levels in self.categorical.items():
            values = frame[name] if name in frame else pd.Series(None, frame.index)
            text = values.astype("str").fillna("none")
            codes = pd.Index(levels).get_indexer(text)  # -1: not a level
            if "other" in levels:
                codes = np.where(codes < 0, levels.index("other"), codes)
            out[name] = pd.Categorical.from_codes(codes, categories=levels)
        return pd.DataFrame(out, index=frame.index)


def build_spec(frame: pd.DataFrame) -> FeatureSpec:
    """Decide the columns from training rows.

    Source attributes (``attr:`` columns) whose values are numbers in at least
    98% of the filled rows and take more than 10 distinct values are numeric;
    the others are categorical with rare levels grouped. Constant columns and
    identifier-like attributes (a distinct value in most rows) are dropped.
    """
    numeric, categorical, fill = [], {}, {}
    rows = len(frame)
    for name in frame.columns:
        if name in NOT_FEATURES:
            continue
        values = frame[name]
        if name.startswith("attr:"):
            filled = values.dropna()
            if filled.empty:
                continue
            numbers = pd.to_numeric(filled, errors="coerce")
            if numbers.notna().mean() >= 0.98 and numbers.nunique() > 10:
                numbers = pd.to_numeric(values, errors="coerce")
                if numbers.nunique() > 1:
                    numeric.append(name)
                    fill[name] = float(numbers.median())
                continue
            if filled.nunique() > 0.5 * rows and rows > 50:
                continue
        if pd.api.types.is_numeric_dtype(values) and not name.startswith("attr:"):
            if values.nunique(dropna=True) > 1:
                numeric.append(name)
                fill[name] = float(values.median()) if values.notna().any() else 0.0
            continue
        text = values.astype(object).where(values.notna(), "none").astype(str)
        counts = text.value_counts()
        threshold = min(MIN_LEVEL_ROWS, max(2, rows // 100))
        kept = [lvl for lvl, n in counts.items() if n >= threshold][:MAX_LEVELS]
        if len(kept) < len(counts):
            kept.append("other")
        if len(kept) > 1:
            categorical[name] = kept
    return FeatureSpec(numeric=numeric, categorical=categorical, fill=fill)


# --------------------------------------------------------------------------
# The fitted model


@dataclass
class CloseModel:
    """A fitted close-likelihood model, picklable into ``model_runs``.

    ``predict(frame)`` takes rows of :func:`dealcase.features.snapshot_features`
    and returns probabilities; ``explain(frame)`` also returns the additive
    effects per reason group (points of probability) and the base rate.
    """

    kind: str
    spec: FeatureSpec
    estimator: object
    calibration: tuple[float, float]
    background: pd.DataFrame
    base_rate: float
    as_of: dt.date | None = None
    case_features: bool = True
    note: str | None = None
    uncertainty_scale: float = 1.0
    closed_deals: int = 0
    rows: int = 0
    choice: dict = field(default_factory=dict)
    stage_rates: dict[str, float] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(group_of(c) for c in self.spec.columns))

    def raw_logit(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of the estimator for encoded rows ``X``."""
        if self.kind == "stage_prior":
            rate = X["stage"].astype(str).map(self.stage_rates)
            p = rate.astype(float).fillna(self.base_rate).to_numpy()
            p = np.clip(p, 1e-6, 1 - 1e-6)
            return np.log(p / (1 - p))
        with threadpool_limits(THREADS):
            return np.asarray(self.estimator.decision_function(X), dtype=float)

    def _calibrate(self, logit: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return 1.0 / (1.0 + np.exp(-(a * logit + b)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Close likelihood (0..1) of each row of snapshot features."""
        return self._calibrate(self.raw_logit(self.spec.transform(frame)))

    def explain(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, float]:
        """Scores, effects and base: ``effects.sum(1) / 100 + base == scores``.

        Returns ``(scores, effects, base)``; ``effects`` has one column per
        entry of :attr:`groups`, in points of probability.
        """
        X = self.spec.transform(frame)
        logit = self.raw_logit(X)
        scores = self._calibrate(logit)
        base = float(self.base_rate)
        contributions = self._contributions(X, logit)
        total = contributions.sum(axis=1)
        # one common factor per row turns log-odds into probability points
        a, _ = self.calibration
        slope = a * scores * (1 - scores)
        tiny = np.abs(total) < 1e-12
        factor = np.where(tiny, slope, (scores - base) / np.where(tiny, 1.0, total))
        effects = contributions * factor[:, None]
        # the residual of floating point sums goes to the largest effect
        residual = (scores - base) - effects.sum(axis=1)
        largest = np.argmax(np.abs(effects), axis=1)
        effects[np.arange(len(effects)), largest] += residual
        return scores, effects * 100.0, base

    def _contributions(self, X: pd.DataFrame, logit: np.ndarray) -> np.ndarray:
        groups = self.groups
        if self.kind == "stage_prior":
            out = np.zeros((len(X), len(groups)))
            reference = self.raw_logit(self.background)[0]
            out[:, groups.index("stage")] = logit - reference
            return out
        if self.kind == "logistic":
            return self._linear_contributions(X, groups)
        return self._grouped_shapley(X, groups)

    def _linear_contributions(self, X: pd.DataFrame, groups: list[str]) -> np.ndarray:
        encoder = self.estimator.named_steps["encode"]
        coef = self.estimator.named_steps["fit"].coef_[0]
        Z = encoder.transform(X)
        Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
        centre = self.choice["encoded_mean"]
        terms = (Z - centre) * coef
        out = np.zeros((len(X), len(groups)))
        for name, part in encoder.output_indices_.items():
            if name == "remainder" or part.stop == part.start:
                continue
            out[:, groups.index(group_of(name))] += terms[:, part].sum(axis=1)
        return out

    def _grouped_shapley(self, X: pd.DataFrame, groups: list[str]) -> np.ndarray:
        column_groups = [groups.index(group_of(c)) for c in self.spec.columns]
        with threadpool_limits(THREADS):
            values, _, _ = tree_group_shapley(
                self.estimator, X, self.background, column_groups, len(groups)
            )
        return values


# --------------------------------------------------------------------------
# Fitting


def _candidates(
    seed: int, spec: FeatureSpec, small: bool, snapshots: bool = True
) -> dict[str, object]:
    """The candidate estimators, unfitted.

    ``snapshots`` says the rows are weekly snapshots (several per deal): the
    trees are then shallow and strongly regularised, without early stopping,
    whose random validation rows would share deals with the training rows.
    With one row per deal, larger trees stop early on a validation tenth.
    """
    steps = [
        (name, OneHotEncoder(handle_unknown="ignore"), [name])
        for name in spec.categorical
    ] + [(name, StandardScaler(), [name]) for name in spec.numeric]
    logistic = Pipeline(
        [
            ("encode", ColumnTransformer(steps, sparse_threshold=0.0)),
            ("fit", LogisticRegression(C=0.05, max_iter=2000)),
        ]
    )
    if small:
        return {"logistic": logistic}
    if snapshots:
        shape = {
            "learning_rate": 0.05,
            "max_iter": 150,
            "max_depth": 3,
            "min_samples_leaf": 300,
            "l2_regularization": 5.0,
            "early_stopping": False,
            # 63 bins are plenty for depth-3 trees and make binning with
            # row weights (a weighted percentile per bin edge) 4x cheaper
            "max_bins": 63,
        }
    else:
        shape = {
            "learning_rate": 0.05,
            "max_iter": 1000,
            "max_leaf_nodes": 63,
            "min_samples_leaf": 20,
            "early_stopping": True,
            "validation_fraction": 0.1,
            "n_iter_no_change": 20,
        }
    boosting = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=seed, **shape
    )
    return {"hist_gradient_boosting": boosting, "logistic": logistic}


def _fit_calibration(logit: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    platt = LogisticRegression(C=1e4, max_iter=1000)
    platt.fit(logit.reshape(-1, 1), y)
    slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    if slope <= 0:
        # the ranking does not hold out of fold: score every deal the same
        rate = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
        return 0.0, math.log(rate / (1 - rate))
    return slope, intercept


def _background_sample(
    X: pd.DataFrame, deals: pd.Series, seed: int, size: int = BACKGROUND_DEALS
) -> pd.DataFrame:
    """One random snapshot of each of up to ``size`` random deals (drawn with
    ``seed``): the background of the tree model's reasons. Every deal counts
    once, as in fitting, so the stated base is about the likelihood of a
    typical deal."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(X))
    codes = deals.to_numpy()[shuffled]
    _, first = np.unique(codes, return_index=True)
    picked = shuffled[first]
    picked = picked[rng.permutation(len(picked))[:size]]
    return X.iloc[np.sort(picked)].reset_index(drop=True)


def _background(X: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """A reference deal: median of every number, most common level."""
    row = {}
    for name in spec.numeric:
        row[name] = [float(np.median(X[name]))]
    for name, levels in spec.categorical.items():
        row[name] = pd.Categorical([X[name].mode().iloc[0]], categories=levels)
    return pd.DataFrame(row)[X.columns]


def fit_rows(
    frame: pd.DataFrame,
    *,
    order: pd.Series | None = None,
    seed: int = 0,
    stage_rates: dict[str, float] | None = None,
    kinds: tuple[str, ...] | None = None,
) -> CloseModel:
    """Fit the close-likelihood model on labelled feature rows.

    Parameters
    ----------
    frame
        Feature rows with a ``won`` column (1/0) and a ``deal_id`` column.
    order
        When each row's deal closed (timestamps); the rows of the last 25% of
        deals to close form the selection and calibration fold. Without it
        (data without dates) the fold is a stratified random quarter of the
        deals, drawn with ``seed``.
    kinds
        Only these candidates (default: all that the amount of data allows).
    """
    y = frame["won"].to_numpy(dtype=int)
    deals = frame["deal_id"].astype(str)
    closed_deals = int(deals.nunique())
    if closed_deals < MIN_DEALS_FOR_MODEL or len(np.unique(y)) < 2:
        return _stage_prior(frame, closed_deals, stage_rates)

    spec = build_spec(frame)
    X = spec.transform(frame)
    small = closed_deals < MIN_CLOSED_DEALS
    snapshots = bool(deals.duplicated().any())
    candidates = _candidates(seed, spec, small, snapshots)
    if kinds is not None:
        candidates = {k: v for k, v in candidates.items() if k in kinds}
    late = _late_fold(frame, order, seed)
    choice: dict = {"fold_rows": int(late.sum()), "candidates": {}}

    weight = _deal_weights(frame)
    best, best_loss = None, math.inf
    for name, estimator in candidates.items():
        with threadpool_limits(THREADS):
            _fit(estimator, X[~late], y[~late], weight[~late])
            logit = np.asarray(estimator.decision_function(X[late]), dtype=float)
        metrics = _metrics(y[late], 1 / (1 + np.exp(-logit)))
        choice["candidates"][name] = metrics
        if metrics["log_loss"] < best_loss:
            best, best_loss = name, metrics["log_loss"]
    choice["chosen"] = best

    estimator = candidates[best]
    calibration = _cross_fitted_calibration(estimator, X, y, weight, deals, seed)
    with threadpool_limits(THREADS):
        _fit(estimator, X, y, weight)
    model = CloseModel(
        kind=best,
        spec=spec,
        estimator=estimator,
        calibration=calibration,
        background=_background(X, spec),
        base_rate=0.0,
        closed_deals=closed_deals,
        rows=len(frame),
        choice=choice,
    )
    if best == "logistic":
        Z = estimator.named_steps["encode"].transform(X)
        model.choice["encoded_mean"] = np.asarray(Z).mean(axis=0)
        coef = estimator.named_steps["fit"].coef_[0]
        intercept = estimator.named_steps["fit"].intercept_[0]
        centre_logit = np.array([intercept + model.choice["encoded_mean"] @ coef])
        model.base_rate = float(model._calibrate(centre_logit)[0])
    else:
        model.background = _background_sample(X, deals, seed)
        mean_logit = model.raw_logit(model.background).mean()
        model.base_rate = float(model._calibrate(np.array([mean_logit]))[0])
    if small:
        model.note = (
            f"fallback: only {closed_deals} closed deals (under "
            f"{MIN_CLOSED_DEALS}); a regularised logistic model is used and "
            "its uncertainty is wider"
        )
        model.uncertainty_scale = float(
            min(3.0, math.sqrt(MIN_CLOSED_DEALS / closed_deals))
        )
    return model


def _deal_weights(frame: pd.DataFrame) -> np.ndarray:
    """Row weights that make every deal count once, however many weekly
    snapshots it has (a long deal would otherwise dominate)."""
    counts = frame.groupby(frame["deal_id"].astype(str))["deal_id"].transform("count")
    weight = 1.0 / counts.to_numpy(dtype=float)
    return weight * len(weight) / weight.sum()


def _fit(estimator, X: pd.DataFrame, y: np.ndarray, weight: np.ndarray) -> None:
    if isinstance(estimator, Pipeline):
        estimator.fit(X, y, fit__sample_weight=weight)
    else:
        estimator.fit(X, y, sample_weight=weight)


def _cross_fitted_calibration(estimator, X, y, weight, deals, seed: int):
    """Platt map fitted on out-of-fold log-odds, folds grouped by deal.

    Each row's log-odds come from a copy of the estimator fitted without any
    snapshot of its deal (three folds), so the map corrects the over- or
    under-confidence of the final estimator, fitted on every row. The map
    is fitted unweighted: it calibrates snapshots, which is what is scored.
    """
    # integer codes in the sorted order of the ids: the same folds as the ids
    # themselves, without slow membership tests on strings
    groups, _ = pd.factorize(deals, sort=True)
    folds = min(3, len(np.unique(groups)))
    if folds < 2:
        return 1.0, 0.0
    logit = np.zeros(len(y))
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(THREADS):
        for train_idx, test_idx in splitter.split(X, y, groups):
            if len(np.unique(y[train_idx])) < 2:
                return 1.0, 0.0
            copy = clone(estimator)
            _fit(copy, X.iloc[train_idx], y[train_idx], weight[train_idx])
            logit[test_idx] = copy.decision_function(X.iloc[test_idx])
    return _fit_calibration(logit, y)


def _late_fold(frame: pd.DataFrame, order: pd.Series | None, seed: int) -> np.ndarray:
    """Rows of the selection fold: the last quarter of deals to close."""
    deals = frame["deal_id"].astype(str)
    if order is not None:
        closed = pd.Series(pd.to_datetime(order).to_numpy(), index=frame.index)
        per_deal = closed.groupby(deals).max().sort_values()
        late_deals = set(per_deal.index[int(len(per_deal) * 0.75) :])
    else:
        labels = frame["won"].groupby(deals).max()
        _, test = train_test_split(
            labels.index.to_numpy(dtype=object),
            test_size=0.25,
            stratify=labels.to_numpy(),
            random_state=seed,
        )
        late_deals = set(test)
    late = deals.isin(late_deals).to_numpy()
    y = frame["won"].to_numpy()
    if len(np.unique(y[late])) < 2 or len(np.unique(y[~late])) < 2:
        rng = np.random.default_rng(seed)
        late = rng.random(len(frame)) < 0.25
    return late


def _stage_prior(
    frame: pd.DataFrame, closed_deals: int, stage_rates: dict[str, float] | None
) -> CloseModel:
    """Too little history: each stage's win rate (or its default probability)."""
    y = frame["won"].to_numpy(dtype=float)
    overall = float((y.sum() + 1) / (len(y) + 2))
    rates = dict(stage_rates or {})
    if "stage" in frame:
        grouped = frame.groupby(frame["stage"].astype(str))["won"].agg(["sum", "count"])
        for stage, row in grouped.iterrows():
            # smoothed toward the overall rate with five pseudo-rows
            rates[stage] = float((row["sum"] + 5 * overall) / (row["count"] + 5))
    levels = sorted(set(rates) | {"other"})
    spec = FeatureSpec(numeric=[], categorical={"stage": levels})
    background = pd.DataFrame({"stage": pd.Categorical(["other"], categories=levels)})
    return CloseModel(
        kind="stage_prior",
        spec=spec,
        estimator=None,
        calibration=(1.0, 0.0),
        background=background,
        base_rate=overall,
        note=(
            f"fallback: only {closed_deals} closed deals; scores are each "
            "stage's win rate and carry wide uncertainty"
        ),
        uncertainty_scale=3.0,
        closed_deals=closed_deals,
        rows=len(frame),
        stage_rates=rates,
    )


def _stage_defaults(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    rows = con.execute(
        "SELECT stage, default_probability FROM stages "
        "WHERE default_probability IS NOT NULL"
    ).fetchall()
    return {str(stage): float(p) for stage, p in rows}


def training_frame(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    *,
    case_features: bool = True,
    step_days: int = 7,
) -> pd.DataFrame:
    """Labelled snapshot features known at the end of ``as_of``.

    Returns the feature rows with ``won`` and ``closed_at``; deals still open
    at ``as_of`` are left out.
    """
    snapshots = feat.labelled_snapshots(con, as_of, step_days=step_days)
    if snapshots.empty:
        return snapshots
    rows = feat.snapshot_features(con, snapshots, case_features=case_features)
    rows["won"] = snapshots["won"].to_numpy()
    rows["closed_at"] = snapshots["closed_at"].to_numpy()
    return _drop_empty_case(rows)


def _drop_empty_case(rows: pd.DataFrame) -> pd.DataFrame:
    """Without any business case recorded, its columns say nothing: drop them."""
    if "has_case" in rows and rows["has_case"].max() == 0:
        case = feat.CASE_NUMERIC + feat.CASE_CATEGORICAL + feat.CASE_DESCRIPTIVE
        rows = rows.drop(columns=[c for c in case if c in rows])
    if "stakeholder_count" in rows and rows["stakeholder_count"].max() == 0:
        people = feat.STAKEHOLDER_NUMERIC + feat.STAKEHOLDER_CATEGORICAL
        rows = rows.drop(columns=[c for c in people if c in rows])
    return rows


def fit_model(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    *,
    case_features: bool = True,
    seed: int = 0,
) -> CloseModel:
    """A model fitted only on what was known at the end of ``as_of``.

    Training rows are weekly snapshots of deals that had closed by then
    (:func:`training_frame`); later history, answers and outcomes are not
    read. ``case_features=False`` leaves the business case out (to measure
    what it adds). Raises :class:`NotEnoughDataError` without closed deals.
    """
    as_of = parse_date(as_of)
    rows = training_frame(con, as_of, case_features=case_features)
    if rows.empty:
        raise NotEnoughDataError(_no_training_rows(con, as_of))
    model = fit_rows(
        rows, order=rows["closed_at"], seed=seed, stage_rates=_stage_defaults(con)
    )
    model.as_of = as_of
    model.case_features = case_features
    logger.info(
        "fitted %s on %d rows of %d closed deals",
        model.kind,
        model.rows,
        model.closed_deals,
    )
    return model


# --------------------------------------------------------------------------
# Scoring


def load_model(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> CloseModel | None:
    """The latest stored model whose ``as_of`` is on or before ``as_of``."""
    rows = con.execute(
        """
        SELECT model FROM model_runs
        WHERE as_of <= ? AND list_contains(?, kind) AND model IS NOT NULL
        ORDER BY as_of DESC, run_id DESC LIMIT 1
        """,
        [as_of, list(KINDS)],
    ).fetchall()
    if not rows:
        return None
    return pickle.loads(rows[0][0])


def score_deals(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date | None,
    deal_ids=None,
    *,
    model: CloseModel | None = None,
    reasons: bool = True,
) -> pd.DataFrame:
    """Close likelihood of the deals open at the end of ``as_of``.

    Returns ``deal_id, close_likelihood`` (0..1), ``reasons`` (list of
    ``{"text", "effect"}``, effect in points of probability) and ``base_rate``
    (0..1), with ``sum(effect) / 100 + base_rate == close_likelihood``.
    Without ``model``, :func:`model_for_date` chooses it.
    ``reasons=False`` leaves the reason lists empty: scores alone are fully
    vectorised; reasons add a pass over every leaf of every tree (a few
    seconds of CPU for 100,000 deals, well under one for a page).
    """
    as_of = resolve_as_of(con, as_of)
    probes = feat.open_probes(con, as_of, deal_ids)
    if probes.empty:
        return pd.DataFrame(
            {
                "deal_id": pd.Series([], dtype=str),
                "close_likelihood": pd.Series([], dtype=float),
                "reasons": pd.Series([], dtype=object),
                "base_rate": pd.Series([], dtype=float),
            }
        )
    if model is None:
        model = model_for_date(con, as_of)
    rows = feat.snapshot_features(con, probes, case_features=model.case_features)
    return score_rows(model, rows, reasons=reasons)


_FITTED = Remembered(size=16)


def model_for_date(con: duckdb.DuckDBPyConnection, as_of) -> CloseModel:
    """The close-likelihood model used for a view as of ``as_of``.

    The latest stored model valid then (``train`` stores one); else, for the
    data's present, one fitted on everything known then; for a past date,
    the one fitted at the first day of that date's quarter, so that every
    date of a quarter, its weekly trend and its backtest share one fit
    (fitted on less than was known: leak-free) instead of fitting once per
    date. Fits are remembered by :func:`cached_fit`.
    """
    as_of = parse_date(as_of)
    stored = load_model(con, as_of)
    if stored is not None:
        return stored
    if as_of >= resolve_as_of(con, None):
        return cached_fit(con, as_of)
    start = quarter_of(as_of, fiscal_start_month(con)).start
    try:
        return cached_fit(con, min(start, as_of))
    except NotEnoughDataError:
        # Nothing had closed by the quarter's first day: learn from later.
        return cached_fit(con, as_of)


def _no_training_rows(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> str:
    """Why there is nothing to learn from at ``as_of``, in a sentence."""
    closed = con.execute(
        "SELECT count(*) FROM deals WHERE outcome IN ('won', 'lost') "
        "AND closed_on <= ?",
        [as_of],
    ).fetchone()[0]
    if not closed:
        return (
            f"no deal had closed by {as_of}; import deals with their outcomes "
            "or choose a later date"
        )
    return (
        f"the {closed:,} deal(s) closed by {as_of} were never recorded open "
        "before they closed (their history starts after their close date, as "
        "in an export whose created dates are the day the data was loaded), "
        "so there is nothing to learn from yet; exports taken while deals are "
        "open, or a history with its original dates, give it some"
    )


def cached_fit(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> CloseModel:
    """:func:`fit_model` at ``as_of``, remembered while the data it reads is
    unchanged (keyed on :func:`dealcase.store.data_fingerprint`), so that a
    backtest, a trend or repeated scoring fits each date once."""
    return _FITTED.get(con, (as_of,), lambda: fit_model(con, as_of))


def score_rows(
    model: CloseModel, rows: pd.DataFrame, *, reasons: bool = True
) -> pd.DataFrame:
    """Scores and reasons of feature rows (vectorised apart from the lists)."""
    if reasons:
        scores, effects, base = model.explain(rows)
        lists = reason_lists(rows, effects, model.groups)
    else:
        scores, base = model.predict(rows), model.base_rate
        lists = [[] for _ in range(len(rows))]
    return pd.DataFrame(
        {
            "deal_id": rows["deal_id"].astype(str).to_numpy(),
            "close_likelihood": scores,
            "reasons": lists,
            "base_rate": base,
        }
    )


# --------------------------------------------------------------------------
# Training run and evaluation


def train_model(con: duckdb.DuckDBPyConnection, *, as_of=None) -> Report:
    """Fit the model on what was known at ``as_of`` and store it.

    The fitted model is pickled into ``model_runs`` with its kind, the
    selection-fold metrics and its parameters. Returns a report with
    ``as_of, kind, rows, closed_deals, base_rate, fallback`` and the
    candidates' fold metrics.
    """
    as_of = resolve_as_of(con, as_of)
    model = fit_model(con, as_of)
    doc = {
        "as_of": as_of,
        "kind": model.kind,
        "rows": model.rows,
        "closed_deals": model.closed_deals,
        "base_rate": model.base_rate,
        "fallback": model.note,
        "uncertainty_scale": model.uncertainty_scale,
        "candidates": model.choice.get("candidates", {}),
        "features": model.spec.columns,
    }
    params = {
        "target": "close_likelihood",
        "calibration": list(model.calibration),
        "case_features": model.case_features,
        "features": model.spec.columns,
    }
    con.execute(
        "INSERT INTO model_runs (as_of, kind, metrics, params, model) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            as_of,
            model.kind,
            json.dumps(_plain(doc["candidates"])),
            json.dumps(params),
            pickle.dumps(model),
        ],
    )
    notes = [model.note] if model.note else []
    notes += [
        f"{name}: fold AUC {m['auc']:.3f}, log loss {m['log_loss']:.4f}"
        for name, m in doc["candidates"].items()
    ]
    table = pd.DataFrame(
        [
            {"field": k, "value": v}
            for k, v in doc.items()
            if k not in ("features", "candidates")
        ]
    )
    return Report(doc=doc, table=table, title="Close-likelihood model", notes=notes)


def _plain(value):
    from dealcase.report import to_jsonable

    return to_jsonable(value)


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    return {
        "rows": int(len(y)),
        "auc": float(auc),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }


def reliability(y, p, bins: int = 10) -> pd.DataFrame:
    """Reliability curve: ``bin, low, high, predicted, observed, count``.

    Equal-width bins of predicted probability (the last one includes 1);
    ``predicted`` is the mean prediction in the bin, ``observed`` its won
    share. Empty bins are left out.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for k in range(bins):
        mask = index == k
        if mask.any():
            rows.append(
                {
                    "bin": k,
                    "low": k / bins,
                    "high": (k + 1) / bins,
                    "predicted": float(p[mask].mean()),
                    "observed": float(y[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return pd.DataFrame(
        rows, columns=["bin", "low", "high", "predicted", "observed", "count"]
    )


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between predicted and observed rates
    over the :func:`reliability` bins."""
    curve = reliability(y, p, bins)
    if curve.empty:
        return float("nan")
    weights = curve["count"] / curve["count"].sum()
    return float((weights * (curve["predicted"] - curve["observed"]).abs()).sum())


class NaiveBayesBaseline:
    """Odoo-style predictive lead scoring over field values.

    ``P(won | fields) ∝ P(won) * Π_f P(value_f | won)``, likewise for lost,
    normalised over the two. Each ``P(value | class)`` is
    ``(count(value, class) + 0.1) / (count(class) + 0.1 * V_f)`` where ``V_f``
    is the number of distinct values of field ``f`` in training plus one for
    values not seen there.
    """

    SMOOTHING = 0.1

    def __init__(self, fields: list[str]):
        self.fields = list(fields)

    def fit(self, frame: pd.DataFrame, y) -> NaiveBayesBaseline:
        y = np.asarray(y, dtype=int)
        self.class_counts_ = np.array([(y == 0).sum(), (y == 1).sum()], dtype=float)
        self.tables_ = {}
        for name in self.fields:
            values = frame[name].astype(object).where(frame[name].notna(), "none")
            values = values.astype(str).to_numpy()
            levels = pd.unique(values)
            counts = {}
            for cls in (0, 1):
                found = pd.Series(values[y == cls]).value_counts()
                counts[cls] = {lvl: float(found.get(lvl, 0)) for lvl in levels}
            self.tables_[name] = (counts, len(levels) + 1)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """P(won) of each row."""
        log_odds = np.full(len(frame), math.log(self.class_counts_[1]))
        log_odds -= math.log(self.class_counts_[0])
        s = self.SMOOTHING
        for name in self.fields:
            counts, n_values = self.tables_[name]
            values = frame[name].astype(object).where(frame[name].notna(), "none")
            values = values.astype(str)
            for cls, sign in ((1, 1.0), (0, -1.0)):
                n = values.map(counts[cls]).astype(float).fillna(0.0).to_numpy()
                log_odds += sign * np.log(
                    (n + s) / (self.class_counts_[cls] + s * n_values)
                )
        return 1.0 / (1.0 + np.exp(-log_odds))


def _baseline_fields(frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if c not in NOT_FEATURES
        and not pd.api.types.is_numeric_dtype(frame[c])
        and frame[c].astype(object).nunique(dropna=False) > 1
    ] + (["owner"] if "owner" in frame else [])


def _category_baseline(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray | None:
    if "forecast_category" not in train:
        return None
    if (train["forecast_category"] == "none").all():
        return None
    overall = float(train["won"].mean())
    grouped = train.groupby("forecast_category")["won"].agg(["sum", "count"])
    rates = (grouped["sum"] + overall) / (grouped["count"] + 1)
    return test["forecast_category"].map(rates).astype(float).fillna(overall).to_numpy()


def evaluate_model(
    con: duckdb.DuckDBPyConnection,
    *,
    cv: int | None = None,
    holdout_from=None,
    case_features: bool = True,
    seed: int = 0,
) -> Report:
    """Model quality against baselines, on later deals or by K-fold.

    By default a time-based holdout: the model is fitted on what was known
    the day before ``holdout_from`` (default: the day that leaves the last
    25% of closed deals for testing) and tested on weekly snapshots, from
    ``holdout_from`` on, of the deals that closed from then. With ``cv=K`` a
    stratified K-fold over closed deals, one row per deal from its amount,
    team, segment and attributes (for data without dates).

    Returns a report whose doc has ``rows, auc, brier, log_loss, ece``,
    ``baselines`` (name -> the same metrics), ``reliability`` (bins with
    ``predicted, observed, count``) and ``model`` (kind, candidates' fold
    metrics, fallback note).
    """
    if cv:
        doc = _evaluate_cv(con, int(cv), seed)
    else:
        doc = _evaluate_holdout(con, holdout_from, case_features, seed)
    rows = [
        {
            "model": "model",
            **{k: doc[k] for k in ("rows", "auc", "brier", "log_loss", "ece")},
        }
    ]
    rows += [{"model": name, **m} for name, m in doc["baselines"].items()]
    notes = [doc["model"]["fallback"]] if doc["model"].get("fallback") else []
    return Report(
        doc=doc,
        table=pd.DataFrame(rows),
        title=f"Close-likelihood model vs baselines ({doc['method']})",
        notes=notes,
    )


def _document(y, p, baselines: dict, model_info: dict, method: str) -> dict:
    doc = {"method": method, **_metrics(y, p)}
    doc["baselines"] = {name: _metrics(y, q) for name, q in baselines.items()}
    doc["reliability"] = reliability(y, p).to_dict(orient="records")
    doc["model"] = model_info
    return doc


def _model_info(model: CloseModel) -> dict:
    return {
        "kind": model.kind,
        "candidates": model.choice.get("candidates", {}),
        "calibration": {
            "method": "sigmoid",
            "a": model.calibration[0],
            "b": model.calibration[1],
        },
        "closed_deals": model.closed_deals,
        "training_rows": model.rows,
        "fallback": model.note,
        "uncertainty_scale": model.uncertainty_scale,
        "case_features": model.case_features,
    }


def default_holdout(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The close day that leaves the last 25% of closed deals for testing."""
    rows = con.execute(
        """
        SELECT quantile_disc(day, 0.75) FROM (
            SELECT coalesce(CAST(min(h.valid_from) AS DATE), any_value(d.closed_on))
                AS day
            FROM deals d LEFT JOIN deal_history h
              ON h.deal_id = d.deal_id AND h.outcome <> 'open'
            WHERE d.outcome IN ('won', 'lost') GROUP BY d.deal_id
        )
        """
    ).fetchall()
    if not rows or rows[0][0] is None:
        raise NotEnoughDataError("no closed deals to evaluate the model on")
    return rows[0][0]


def _evaluate_holdout(con, holdout_from, case_features: bool, seed: int) -> dict:
    start = default_holdout(con) if holdout_from is None else parse_date(holdout_from)
    train_end = start - dt.timedelta(days=1)
    end_row = con.execute(
        "SELECT max(CAST(valid_from AS DATE)) FROM deal_history"
    ).fetchall()
    end = (
        max(end_row[0][0], resolve_as_of(con, None))
        if end_row[0][0]
        else resolve_as_of(con, None)
    )

    train = training_frame(con, train_end, case_features=case_features)
    if train.empty:
        raise NotEnoughDataError(f"no deal had closed before {start}")
    model = fit_rows(
        train, order=train["closed_at"], seed=seed, stage_rates=_stage_defaults(con)
    )
    model.as_of, model.case_features = train_end, case_features

    snapshots = feat.labelled_snapshots(con, end, start=start, closed_from=start)
    snapshots = snapshots[snapshots["as_of"] >= start].reset_index(drop=True)
    if snapshots.empty:
        raise NotEnoughDataError(f"no deal closed on or after {start} to test on")
    test = feat.snapshot_features(con, snapshots, case_features=case_features)
    y = snapshots["won"].to_numpy()
    p = model.predict(test)
    raw = model.raw_logit(model.spec.transform(test))

    baselines = {}
    stage_p = test["stage_probability"].astype(float).to_numpy()
    baselines["stage_probability"] = np.clip(stage_p, 0.0, 1.0)
    category = _category_baseline(train, test)
    if category is not None:
        baselines["forecast_category"] = category
    fields = _owner_fields(con, train, test)
    bayes = NaiveBayesBaseline(_baseline_fields(fields[0])).fit(fields[0], train["won"])
    baselines["naive_bayes"] = bayes.predict(fields[1])

    doc = _document(y, p, baselines, _model_info(model), "time holdout")
    doc.update(
        {
            "raw_auc": _metrics(y, 1 / (1 + np.exp(-raw)))["auc"],
            "holdout_from": start,
            "train_closed_deals": model.closed_deals,
            "test_deals": int(snapshots["deal_id"].nunique()),
        }
    )
    return doc


def _owner_fields(con, train: pd.DataFrame, test: pd.DataFrame):
    """Train and test rows with the owner added (a naive Bayes field)."""
    owners = dict(con.execute("SELECT deal_id, owner FROM deals").fetchall())
    out = []
    for frame in (train, test):
        frame = frame.copy()
        frame["owner"] = frame["deal_id"].map(owners).astype(object)
        out.append(frame)
    return out


def _evaluate_cv(con, folds: int, seed: int) -> dict:
    rows = feat.deal_rows(con)
    if rows["deal_id"].nunique() < folds * 2 or rows["won"].nunique() < 2:
        raise NotEnoughDataError("too few closed deals for cross-validation")
    y = rows["won"].to_numpy()
    p = np.zeros(len(rows))
    bayes_p = np.zeros(len(rows))
    prior_p = np.zeros(len(rows))
    infos = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    owners = dict(con.execute("SELECT deal_id, owner FROM deals").fetchall())
    rows["owner"] = rows["deal_id"].map(owners).astype(object)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(rows, y)):
        train, test = rows.iloc[train_idx], rows.iloc[test_idx]
        model = fit_rows(train.drop(columns=["owner"]), seed=seed + fold)
        p[test_idx] = model.predict(test)
        bayes = NaiveBayesBaseline(_baseline_fields(train)).fit(train, train["won"])
        bayes_p[test_idx] = bayes.predict(test)
        prior_p[test_idx] = train["won"].mean()
        infos.append(_model_info(model))
    info = {**infos[0], "folds": [i["kind"] for i in infos]}
    baselines = {"base_rate": prior_p, "naive_bayes": bayes_p}
    return _document(y, p, baselines, info, f"{folds}-fold cross-validation")
