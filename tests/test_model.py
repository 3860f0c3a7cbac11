"""Close-likelihood model: exact reasons, calibration, baselines, fallback,
stored runs, and honest figures on the demo company and Maven."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_TODAY

from dealcase import features as feat
from dealcase import model as M
from dealcase import store
from dealcase.model_synthetic import write_synthetic_deals

TODAY = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.duckdb"
    with store.connect(path) as con:
        write_synthetic_deals(con, 900, seed=3, today=TODAY)
    return path


@pytest.fixture(scope="module")
def training(synthetic_db):
    with store.connect(synthetic_db, read_only=True) as con:
        rows = M.training_frame(con, TODAY)
        probes = feat.open_probes(con, TODAY)
        open_rows = feat.snapshot_features(con, probes)
    return rows, open_rows


@pytest.mark.parametrize("kind", ["logistic", "hist_gradient_boosting"])
def test_reasons_sum_exactly_to_the_score(training, kind):
    rows, open_rows = training
    model = M.fit_rows(rows, order=rows["closed_at"], kinds=(kind,))
    assert model.kind == kind and model.note is None

    scored = M.score_rows(model, open_rows)
    assert len(scored) == len(open_rows) > 20
    for reasons, base, score in zip(
        scored["reasons"], scored["base_rate"], scored["close_likelihood"]
    ):
        total = sum(r["effect"] for r in reasons) / 100.0
        assert abs(total + base - score) < 1e-9
        assert all(isinstance(r["text"], str) and r["text"] for r in reasons)
    assert scored["close_likelihood"].between(0, 1).all()
    # the scores are not all the same: the reasons carry something
    assert scored["close_likelihood"].std() > 0.02


def test_reasons_name_the_planted_effect(training):
    """The generator rewards a confirmed compelling event: its reason is
    positive for deals that have one, negative for deals at risk."""
    rows, open_rows = training
    model = M.fit_rows(rows, order=rows["closed_at"], kinds=("logistic",))
    scored = M.score_rows(model, open_rows)

    def effect(reasons, text):
        return sum(r["effect"] for r in reasons if r["text"] == text)

    confirmed = scored["reasons"].map(lambda r: effect(r, "Compelling event confirmed"))
    at_risk = scored["reasons"].map(lambda r: effect(r, "Compelling event at risk"))
    assert confirmed[confirmed != 0].mean() > 1.0
    assert at_risk[at_risk != 0].mean() < -1.0


def test_same_seed_same_model(training):
    rows, open_rows = training
    kinds = ("hist_gradient_boosting",)
    first = M.fit_rows(rows, order=rows["closed_at"], seed=5, kinds=kinds)
    second = M.fit_rows(rows, order=rows["closed_at"], seed=5, kinds=kinds)
    np.testing.assert_array_equal(first.predict(open_rows), second.predict(open_rows))


def test_reliability_and_ece_by_hand():
    y = [0, 0, 1, 1]
    p = [0.1, 0.15, 0.8, 1.0]
    curve = M.reliability(y, p)
    # bins [0.1, 0.2) holds 0.1 and 0.15; 0.8 is in [0.8, 0.9); 1.0 in the last
    assert list(curve["bin"]) == [1, 8, 9]
    assert list(curve["count"]) == [2, 1, 1]
    assert curve["predicted"].tolist() == pytest.approx([0.125, 0.8, 1.0])
    assert curve["observed"].tolist() == [0.0, 1.0, 1.0]
    # (2 * 0.125 + 1 * 0.2 + 1 * 0.0) / 4
    assert M.expected_calibration_error(y, p) == pytest.approx(0.1125)


def test_naive_bayes_by_hand():
    train = pd.DataFrame(
        {"color": ["red", "red", "blue", "blue"], "size": ["s", "l", "s", "s"]}
    )
    y = [1, 0, 1, 1]
    bayes = M.NaiveBayesBaseline(["color", "size"]).fit(train, y)
    p = bayes.predict(pd.DataFrame({"color": ["red", "green"], "size": ["s", "s"]}))

    # won: 3 rows, lost: 1; each field has 2 values + 1 for unseen -> V = 3
    # red,s: P(won) 3/4 * (1.1/3.3) * (3.1/3.3) vs 1/4 * (1.1/1.3) * (0.1/1.3)
    won = 0.75 * (1.1 / 3.3) * (3.1 / 3.3)
    lost = 0.25 * (1.1 / 1.3) * (0.1 / 1.3)
    assert p[0] == pytest.approx(won / (won + lost))
    # green was never seen: count 0 + 0.1 in both classes
    won = 0.75 * (0.1 / 3.3) * (3.1 / 3.3)
    lost = 0.25 * (0.1 / 1.3) * (0.1 / 1.3)
    assert p[1] == pytest.approx(won / (won + lost))


def test_few_deals_fall_back(tmp_path):
    path = tmp_path / "few.duckdb"
    with store.connect(path) as con:
        write_synthetic_deals(con, 160, seed=1, today=TODAY)
        model = M.fit_model(con, TODAY)
        closed = con.execute(
            "SELECT count(*) FROM deals WHERE outcome <> 'open'"
        ).fetchall()[0][0]
        scored = M.score_deals(con, TODAY, model=model)

    assert model.closed_deals <= closed < M.MIN_CLOSED_DEALS
    assert model.kind == "logistic"
    assert model.note.startswith("fallback:")
    assert model.uncertainty_scale == pytest.approx(
        math.sqrt(M.MIN_CLOSED_DEALS / model.closed_deals)
    )
    totals = scored["reasons"].map(lambda r: sum(x["effect"] for x in r) / 100)
    np.testing.assert_allclose(
        totals + scored["base_rate"], scored["close_likelihood"], atol=1e-9
    )


def test_very_few_deals_use_stage_rates(tmp_path):
    path = tmp_path / "tiny.duckdb"
    with store.connect(path) as con:
        write_synthetic_deals(con, 25, seed=2, today=TODAY)
        model = M.fit_model(con, TODAY)
        scored = M.score_deals(con, TODAY, model=model)
    assert model.kind == "stage_prior" and model.note.startswith("fallback:")
    for reasons, base, score in zip(
        scored["reasons"], scored["base_rate"], scored["close_likelihood"]
    ):
        assert abs(sum(r["effect"] for r in reasons) / 100 + base - score) < 1e-9


def test_train_stores_the_model_and_scoring_loads_it(synthetic_db, copy_db):
    path = copy_db(synthetic_db)
    with store.connect(path) as con:
        report = M.train_model(con, as_of=TODAY)
        runs = con.execute("SELECT as_of, kind, metrics FROM model_runs").fetchall()
        stored = M.load_model(con, TODAY)
        assert M.load_model(con, TODAY - dt.timedelta(days=1)) is None
        loaded = M.score_deals(con, TODAY)
        direct = M.score_deals(con, TODAY, model=stored)
        bare = M.score_deals(con, TODAY, model=stored, reasons=False)

    assert runs[0][0] == TODAY and runs[0][1] == report.doc["kind"]
    assert report.doc["closed_deals"] == stored.closed_deals > 300
    pd.testing.assert_series_equal(
        loaded["close_likelihood"], direct["close_likelihood"]
    )
    assert set(loaded.columns) >= {"deal_id", "close_likelihood", "reasons"}
    np.testing.assert_allclose(bare["close_likelihood"], direct["close_likelihood"])
    assert bare["reasons"].map(len).eq(0).all()


def test_evaluate_on_the_demo_company(demo_db):
    with store.connect(demo_db, read_only=True) as con:
        doc = M.evaluate_model(con).doc
        closed = con.execute(
            "SELECT count(*) FROM deals WHERE outcome <> 'open'"
        ).fetchall()[0][0]

    for key in ("rows", "auc", "brier", "log_loss", "ece", "baselines", "reliability"):
        assert key in doc
    assert set(doc["baselines"]) == {
        "stage_probability",
        "forecast_category",
        "naive_bayes",
    }
    for metrics in [doc, *doc["baselines"].values()]:
        assert metrics["rows"] == doc["rows"] > 100
        assert 0.0 <= metrics["brier"] <= 1.0
        assert 0.0 <= metrics["ece"] <= 1.0
    assert sum(b["count"] for b in doc["reliability"]) == doc["rows"]
    # the last quarter of closed deals is the test set
    assert doc["test_deals"] <= 0.3 * closed
    # a useful model on the demo: clearly better than chance and calibrated
    assert doc["auc"] > 0.75
    assert doc["brier"] < 0.2
    assert doc["ece"] < 0.1


def test_maven_holdout_shows_no_leak(maven_db):
    """Maven's fixed attributes carry little signal: a high AUC means a leak."""
    with store.connect(maven_db, read_only=True) as con:
        doc = M.evaluate_model(con, holdout_from=dt.date(2017, 7, 1)).doc
    assert doc["rows"] > 1000
    assert doc["auc"] < 0.65
    assert doc["raw_auc"] < 0.65
    assert doc["baselines"]["naive_bayes"]["auc"] < 0.65


def _exact_group_shapley(model, x, background, active):
    """Interventional Shapley values of the groups by the definition: every
    coalition of the ``active`` groups (the others are never split on, so
    they are dummies with value 0), averaged over the background rows."""
    groups, columns = model.groups, model.spec.columns
    k = len(active)
    masks = np.arange(2**k)
    inside = (masks[:, None] >> np.arange(k)) & 1
    values = np.zeros(len(groups))
    for i in range(len(background)):
        mixed = background.iloc[[i] * len(masks)].reset_index(drop=True)
        for c in columns:
            g = groups.index(M.group_of(c))
            if g in active:
                take = inside[:, active.index(g)].astype(bool)
                mixed.loc[take, c] = x[c].iloc[0]
        v = model.raw_logit(mixed)
        size = inside.sum(axis=1)
        for j, g in enumerate(active):
            without = masks[inside[:, j] == 0]
            weight = np.array(
                [
                    math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k)
                    for s in size[without]
                ]
            )
            values[g] += (weight * (v[without | (1 << j)] - v[without])).sum()
    return values / len(background)


def test_tree_reasons_are_exact_interventional_shapley(training):
    """The closed form per leaf equals brute-force Shapley values over every
    coalition of groups, for a few deals and a three-deal background; the
    replayed trees equal decision_function."""
    from dealcase.model_shapley import _encoded_columns, tree_group_shapley

    rows, open_rows = training
    kinds = ("hist_gradient_boosting",)
    model = M.fit_rows(rows, order=rows["closed_at"], kinds=kinds)
    small = M.fit_rows(rows, order=rows["closed_at"], kinds=kinds)
    small.estimator.set_params(max_iter=3)
    X = small.spec.transform(rows)
    M._fit(small.estimator, X, rows["won"].to_numpy(), np.ones(len(rows)))
    background = X.iloc[[3, 400, 2000]].reset_index(drop=True)
    source = _encoded_columns(small.estimator, len(small.spec.columns))
    groups = small.groups
    column_groups = [groups.index(M.group_of(c)) for c in small.spec.columns]
    scored = small.spec.transform(open_rows.iloc[:4])
    fast, raw_x, raw_z = tree_group_shapley(
        small.estimator, scored, background, column_groups, len(groups)
    )
    np.testing.assert_allclose(raw_x, small.estimator.decision_function(scored))
    np.testing.assert_allclose(raw_z, small.estimator.decision_function(background))
    active = sorted(
        {
            column_groups[source[f]]
            for trees in small.estimator._predictors
            for f in trees[0].nodes["feature_idx"][trees[0].nodes["is_leaf"] == 0]
        }
    )
    assert 2 <= len(active) <= 9
    for i in range(len(scored)):
        exact = _exact_group_shapley(small, scored.iloc[[i]], background, active)
        np.testing.assert_allclose(fast[i], exact, atol=1e-12)

    # the full model replays exactly too, on every open deal
    X_open = model.spec.transform(open_rows)
    _, raw_x, _ = tree_group_shapley(
        model.estimator,
        X_open,
        model.background,
        [model.groups.index(M.group_of(c)) for c in model.spec.columns],
        len(model.groups),
    )
    np.testing.assert_allclose(raw_x, model.estimator.decision_function(X_open))


@pytest.mark.parametrize("kind", ["logistic", "hist_gradient_boosting"])
def test_demo_gaps_lower_the_score_on_average(demo_db, kind):
    """On the demo company, deals whose compelling event (economic buyer) is
    not confirmed get on average a negative compelling-event (economic-buyer)
    effect, and deals where it is confirmed a positive one."""
    with store.connect(demo_db, read_only=True) as con:
        rows = M.training_frame(con, DEMO_TODAY)
        open_rows = feat.snapshot_features(con, feat.open_probes(con, DEMO_TODAY))
    model = M.fit_rows(rows, order=rows["closed_at"], kinds=(kind,))
    scores, effects, base = model.explain(open_rows)
    np.testing.assert_allclose(effects.sum(axis=1) / 100 + base, scores, atol=1e-12)
    for dimension in ("compelling_event", "economic_buyer"):
        effect = effects[:, model.groups.index(f"case:{dimension}")]
        confirmed = (open_rows[f"status_{dimension}"] == "confirmed").to_numpy()
        assert 20 < (~confirmed).sum() < len(open_rows)
        assert effect[~confirmed].mean() < -0.5
        assert effect[confirmed].mean() > 0.5

    scored = M.score_rows(model, open_rows)
    texts = {r["text"] for reasons in scored["reasons"] for r in reasons}
    assert "Economic buyer not met" in texts or "No compelling event recorded" in texts


def test_training_before_any_history_says_so(maven_db):
    from dealcase import store
    from dealcase.errors import NotEnoughDataError
    from dealcase.model import fit_model

    with store.connect(maven_db) as con:
        with pytest.raises(NotEnoughDataError, match="no deal had closed by 2010"):
            fit_model(con, dt.date(2010, 1, 1))


def test_a_past_date_uses_its_quarter_fit_and_the_present_its_own(maven_db):
    """No model is stored in the Maven import: the present (2017-12-31) gets
    a fit of that day; every past date of 2017Q3 the one fit on 2017-07-01,
    shared with that quarter's weekly trend, so a view and the trend's point
    of the same day agree."""
    from dealcase.forecast import forecast_quarter
    from dealcase.model import cached_fit, model_for_date

    with store.connect(maven_db, read_only=True) as con:
        quarter_fit = cached_fit(con, dt.date(2017, 7, 1))
        assert model_for_date(con, dt.date(2017, 8, 15)) is quarter_fit
        assert model_for_date(con, "2017-09-30") is quarter_fit
        present = model_for_date(con, dt.date(2017, 12, 31))
        assert present is cached_fit(con, dt.date(2017, 12, 31))
        assert present.as_of == dt.date(2017, 12, 31)

        day = dt.date(2017, 8, 15)
        view = forecast_quarter(con, "2017Q3", day, draws=2000)
        trend_point = forecast_quarter(
            con, "2017Q3", day, draws=2000, model=quarter_fit
        )
    assert view["p50"] == trend_point["p50"]
