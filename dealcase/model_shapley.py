"""Exact interventional Shapley values of feature groups for gradient-boosted
trees, against a background sample of deals.

For one tree and one background deal ``z``, the tree's output at a deal
``x`` is a sum over leaves of ``value * [x reaches the leaf]``. Mixing the
features of ``x`` (the groups in a coalition ``S``) with those of ``z`` (the
others), a leaf is reached exactly when every group on its path satisfies
the path's conditions with the values it takes. Per leaf the groups on the
path fall into three kinds: satisfied by both ``x`` and ``z`` (no effect),
by neither (the leaf is never reached: no effect on any group), by ``x``
only (set ``P``) or by ``z`` only (set ``N``). The leaf then pays ``value``
exactly when ``P`` is in the coalition and ``N`` is not, a game with a
closed-form Shapley value:

- a group of ``P`` gets ``value * (|P| - 1)! |N|! / (|P| + |N|)!``,
- a group of ``N`` gets ``-value * |P|! (|N| - 1)! / (|P| + |N|)!``.

Summing over leaves and trees and averaging over the background deals gives
the interventional Shapley values of the groups, which add up exactly to
``f(x) - mean f(z)`` (raw log-odds). The background only enters through the
share of its deals with each pattern of satisfied groups per leaf, so the
cost grows with the number of scored deals and leaves, hardly with the
size of the background.

The tree traversal mirrors scikit-learn's ``HistGradientBoosting`` raw
prediction (numeric thresholds, categorical bitsets, missing values and
unknown categories sent the missing-value way); tests check that it
reproduces ``decision_function``. It reads private attributes of the fitted
estimator (``_predictors``, ``_preprocessor``, ``_bin_mapper``,
``_baseline_prediction``), tested with scikit-learn 1.9.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Paths with more distinct groups than this enumerate only the patterns
# that occur, instead of all 2**m of them.
_FULL_TABLE_GROUPS = 10


def _encoded(estimator, X: pd.DataFrame) -> np.ndarray:
    """The rows as the trees read them (categoricals first, as codes)."""
    if getattr(estimator, "_preprocessor", None) is None:
        return np.asarray(X, dtype=float)
    return np.asarray(estimator._preprocess_X(X, reset=False), dtype=float)


def _encoded_columns(estimator, n_columns: int) -> np.ndarray:
    """For each encoded column, the index of the input column it comes from."""
    if getattr(estimator, "_preprocessor", None) is None:
        return np.arange(n_columns)
    categorical = np.asarray(estimator.is_categorical_, dtype=bool)
    return np.r_[np.flatnonzero(categorical), np.flatnonzero(~categorical)]


def _in_bitset(bitset: np.ndarray, codes: np.ndarray) -> np.ndarray:
    words = bitset[codes >> 5].astype(np.int64)
    return ((words >> (codes & 31)) & 1).astype(bool)


def _goes_left(node, values: np.ndarray, tree, known, f_idx_map) -> np.ndarray:
    """Whether each value is sent to the left child of a split node."""
    missing_left = bool(node["missing_go_to_left"])
    if node["is_categorical"]:
        missing = np.isnan(values) | (values < 0)
        codes = np.where(missing, 0, values).astype(np.int64).clip(0, 255)
        left = _in_bitset(tree.raw_left_cat_bitsets[node["bitset_idx"]], codes)
        seen = _in_bitset(known[f_idx_map[node["feature_idx"]]], codes)
        missing |= ~left & ~seen
        return np.where(missing, missing_left, left)
    with np.errstate(invalid="ignore"):
        left = values <= node["num_threshold"]  # false for a missing value
    if missing_left:
        left |= np.isnan(values)
    return left


def _leaves(nodes) -> list[tuple[int, list[tuple[int, bool]]]]:
    """Every leaf with its path: ``(leaf, [(split node, went left), ...])``."""
    out, stack = [], [(0, [])]
    while stack:
        index, path = stack.pop()
        node = nodes[index]
        if node["is_leaf"]:
            out.append((index, path))
            continue
        stack.append((int(node["left"]), path + [(index, True)]))
        stack.append((int(node["right"]), path + [(index, False)]))
    return out


def _leaf_table(value: float, x_codes, z_codes, m: int, factorial: np.ndarray):
    """Shapley values per x pattern and path group, averaged over z.

    Returns ``(table, index)``: ``table[index[i], j]`` is the value of the
    ``j``-th group of the path for row ``i``.
    """
    patterns, counts = np.unique(z_codes, return_counts=True)
    share = counts / counts.sum()
    if m <= _FULL_TABLE_GROUPS:
        x_patterns, index = np.arange(2**m), x_codes
    else:
        x_patterns, index = np.unique(x_codes, return_inverse=True)
    bits = np.arange(m)
    a = ((x_patterns[:, None] >> bits) & 1).astype(bool)[:, None, :]
    b = ((patterns[:, None] >> bits) & 1).astype(bool)[None, :, :]
    only_x, only_z = a & ~b, ~a & b
    dead = (~a & ~b).any(axis=2)
    p, n = only_x.sum(axis=2), only_z.sum(axis=2)
    total = factorial[p + n]
    weight_x = np.where(p > 0, factorial[np.maximum(p - 1, 0)] * factorial[n], 0.0)
    weight_z = np.where(n > 0, factorial[p] * factorial[np.maximum(n - 1, 0)], 0.0)
    phi = (
        only_x * (weight_x / total)[..., None] - only_z * (weight_z / total)[..., None]
    )
    phi[dead] = 0.0
    table = value * np.einsum("uwm,w->um", phi, share)
    return table, index


def tree_group_shapley(
    estimator,
    X: pd.DataFrame,
    background: pd.DataFrame,
    column_groups: list[int],
    n_groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interventional Shapley values of feature groups, in raw log-odds.

    Parameters
    ----------
    estimator
        A fitted binary ``HistGradientBoostingClassifier``.
    X, background
        Encoded model inputs (the estimator's columns) of the scored deals
        and of the background deals.
    column_groups
        For each column of ``X``, the index of its group (0..n_groups-1).

    Returns
    -------
    (values, raw_x, raw_background)
        ``values`` of shape ``(len(X), n_groups)``; ``raw_background`` the
        raw log-odds of the background deals replayed from the trees, and
        ``raw_x = values.sum(1) + raw_background.mean()``. Both equal the
        estimator's ``decision_function`` when the replay is exact (tested).
    """
    # one row per column: a split reads a contiguous array
    ex = np.ascontiguousarray(_encoded(estimator, X).T)
    ez = np.ascontiguousarray(_encoded(estimator, background).T)
    source = _encoded_columns(estimator, ex.shape[0])
    group_of_encoded = np.asarray(column_groups)[source]
    known, f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
    baseline = float(np.ravel(estimator._baseline_prediction)[0])
    # one row per group: adding a leaf's values to a group is contiguous
    values = np.zeros((n_groups, ex.shape[1]))
    raw_z = np.full(ez.shape[1], baseline)
    depth = max(
        int(tree.nodes["depth"].max())
        for trees in estimator._predictors
        for tree in trees
    )
    factorial = np.array([float(math.factorial(k)) for k in range(depth + 2)])

    for trees in estimator._predictors:
        tree = trees[0]
        nodes = tree.nodes
        split_x, split_z = {}, {}
        for index in np.flatnonzero(nodes["is_leaf"] == 0):
            node = nodes[index]
            column = int(node["feature_idx"])
            split_x[index] = _goes_left(node, ex[column], tree, known, f_idx_map)
            split_z[index] = _goes_left(node, ez[column], tree, known, f_idx_map)
        for leaf, path in _leaves(nodes):
            value = float(nodes[leaf]["value"])
            groups: list[int] = []
            sat_x, sat_z = [], []
            for index, went_left in path:
                group = int(group_of_encoded[int(nodes[index]["feature_idx"])])
                ok_x = split_x[index] if went_left else ~split_x[index]
                ok_z = split_z[index] if went_left else ~split_z[index]
                if group in groups:
                    j = groups.index(group)
                    sat_x[j] = sat_x[j] & ok_x
                    sat_z[j] = sat_z[j] & ok_z
                else:
                    groups.append(group)
                    sat_x.append(ok_x)
                    sat_z.append(ok_z)
            if not groups:  # a tree that is a single leaf
                raw_z += value
                continue
            raw_z[np.logical_and.reduce(sat_z)] += value
            x_codes = _codes(sat_x)
            z_codes = _codes(sat_z)
            table, index = _leaf_table(value, x_codes, z_codes, len(groups), factorial)
            for j, group in enumerate(groups):
                values[group] += table[:, j].take(index)
    raw_x = values.sum(axis=0) + raw_z.mean()
    return values.T.copy(), raw_x, raw_z


def _codes(satisfied: list[np.ndarray]) -> np.ndarray:
    """The pattern of satisfied path groups of each row, as an integer."""
    dtype = np.uint8 if len(satisfied) <= 8 else np.int64
    codes = satisfied[0].astype(dtype)
    for j in range(1, len(satisfied)):
        codes |= satisfied[j].astype(dtype) << dtype(j)
    return codes.astype(np.intp) if dtype is np.int64 else codes
