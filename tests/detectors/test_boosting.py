"""The numpy gradient booster behind direct loss estimation, against scikit-learn and known answers.

scikit-learn's ``HistGradientBoostingRegressor`` runs the same algorithm (binned features, best-first
trees, least squares), so with the same settings both must find the same known structure and be as
accurate on noisy data with a known mean.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from detectors.estimation.boosting import Binning, Booster, fit_binning
from detectors.estimation.boosting_fit import fit_booster, fit_boosters
from detectors.estimation.estimator import STATE_VERSION, Fitted, RegressorInputs, fit

SETTINGS = {"max_iter": 50, "learning_rate": 0.2, "max_leaf_nodes": 15, "min_samples_leaf": 100}


def _fit(matrix: np.ndarray, target: np.ndarray, categorical: list[bool], **settings: float) -> np.ndarray:
    binning = fit_binning(matrix, categorical)
    model = fit_booster(binning.codes(matrix), target, categorical, **{**SETTINGS, **settings})  # type: ignore[arg-type]
    return model.predict(binning.codes(matrix))


def _sklearn(matrix: np.ndarray, target: np.ndarray, categorical: list[bool], **settings: float) -> np.ndarray:
    model = HistGradientBoostingRegressor(
        categorical_features=categorical, early_stopping=False, random_state=0, **{**SETTINGS, **settings}
    )
    return model.fit(matrix, target).predict(matrix)


def test_one_tree_recovers_a_known_step_function_like_scikit_learn() -> None:
    """y = 3 above x = 0.3, plus 5 in categories 1 and 3: one tree of rate 1 finds it exactly.

    x takes 200 values (fewer than the bins), so that a bin edge falls on the step."""
    rng = np.random.default_rng(1)
    x = rng.integers(-100, 100, 5000) / 100
    category = rng.integers(0, 4, 5000).astype(float)
    target = np.where(x > 0.3, 3.0, 0.0) + np.where(np.isin(category, [1, 3]), 5.0, 0.0)
    matrix = np.column_stack([x, category])
    ours = _fit(matrix, target, [False, True], max_iter=1, learning_rate=1.0, max_leaf_nodes=4, min_samples_leaf=20)
    theirs = _sklearn(
        matrix, target, [False, True], max_iter=1, learning_rate=1.0, max_leaf_nodes=4, min_samples_leaf=20
    )
    np.testing.assert_allclose(ours, target, atol=1e-9)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)  # scikit-learn sums float32 gradients


def test_missing_values_get_their_own_side() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(-100, 100, 4000) / 100
    target = np.where(x > 0, 1.0, 0.0)
    x[:500] = np.nan
    target[:500] = 10.0  # a missing value means something else
    ours = _fit(x[:, None], target, [False], max_iter=1, learning_rate=1.0, max_leaf_nodes=3, min_samples_leaf=20)
    np.testing.assert_allclose(ours, target, atol=1e-9)


def test_as_accurate_as_scikit_learn_on_noisy_data_with_a_known_mean() -> None:
    """An absolute error whose mean grows with |x1| and in one category, as DLE's loss models learn."""
    rng = np.random.default_rng(3)
    n = 30_000
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    group = rng.integers(0, 3, n).astype(float)
    x1[rng.random(n) < 0.03] = np.nan
    scale = 0.5 + np.abs(np.nan_to_num(x1, nan=2.0)) + np.where(group == 2, 1.0, 0.0)
    truth = scale * np.sqrt(2 / np.pi)  # E|N(0, scale^2)|
    target = np.abs(rng.normal(0, 1, n)) * scale
    matrix = np.column_stack([x1, x2, group])
    ours = _fit(matrix, target, [False, False, True])
    theirs = _sklearn(matrix, target, [False, False, True])
    ours_error = np.sqrt(np.mean((ours - truth) ** 2))
    theirs_error = np.sqrt(np.mean((theirs - truth) ** 2))
    assert ours_error <= 1.1 * theirs_error, (ours_error, theirs_error)
    assert ours_error < 0.25 * truth.std()  # and it learns the known mean (R² above 0.93)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99
    assert abs(ours.mean() - target.mean()) < 1e-3  # least squares keeps the mean


def test_several_targets_in_step_equal_one_by_one_and_round_trip() -> None:
    rng = np.random.default_rng(4)
    matrix = np.column_stack([rng.normal(0, 1, 3000), rng.integers(0, 5, 3000).astype(float)])
    targets = [matrix[:, 0] ** 2 + rng.normal(0, 0.1, 3000), np.abs(matrix[:, 0]) * (matrix[:, 1] + 1)]
    binning = fit_binning(matrix, [False, True])
    codes = binning.codes(matrix)
    together = fit_boosters(codes, targets, [False, True], max_iter=10)
    for target, model in zip(targets, together, strict=True):
        alone = fit_booster(codes, target, [False, True], max_iter=10)
        np.testing.assert_allclose(model.predict(codes), alone.predict(codes), rtol=0, atol=1e-12)
        loaded = Booster.from_dict(json.loads(json.dumps(model.to_dict())))
        again = Binning.from_dict(json.loads(json.dumps(binning.to_dict())))
        np.testing.assert_array_equal(loaded.predict(again.codes(matrix)), model.predict(codes))


def test_a_state_of_the_old_format_is_not_loaded() -> None:
    """States of version 1 held pickled scikit-learn models, of version 2 loss spreads that could be
    10¹³ wide: refused, so the service fits again."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 2000)
    fitted = fit("regression", RegressorInputs({"x": x}, 2 * x), 2 * x + rng.normal(0, 1, 2000), (), ("mae",), 500)
    state = fitted.to_dict()
    assert state["version"] == STATE_VERSION == 3
    for old in (1, 2):
        with pytest.raises(ValueError, match="version"):
            Fitted.from_dict({**state, "version": old})
