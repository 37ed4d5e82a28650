"""Performance estimation against the truth on generated data, and its metrics against scikit-learn.

The data come from known models (a logistic model, a softmax model, a regression with input-dependent
noise); part-way through the current data the inputs shift so that the model gets worse. Labels are
drawn, then kept apart: the estimator is handed scores, predictions and features only, and its
estimates are compared with the realized metrics of each chunk.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from detectors.estimation.calibration import isotonic
from detectors.estimation.chunks import chunk_bounds
from detectors.estimation.estimator import (
    ClassifierInputs,
    Fitted,
    RegressorInputs,
    estimate,
    fit,
    realized,
)
from detectors.estimation.metrics import (
    classification_metrics,
    label_metrics,
    one_hot,
    regression_metrics,
    resolve_metrics,
)
from detectors.estimation.thresholds import Band

CHUNK = 5000


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _binary(
    rng: np.random.Generator, n: int, scale: float, sharpen: float = 1.0
) -> tuple[ClassifierInputs, np.ndarray]:
    """A logistic model's true probabilities (``sharpen`` > 1: over-confident scores) and drawn labels."""
    x = rng.normal(0.0, scale, (n, 2))
    logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.3
    truth = _sigmoid(logit)
    labels = (rng.random(n) < truth).astype(np.int64)
    score = _sigmoid(sharpen * logit)
    return ClassifierInputs(np.column_stack([1 - score, score]), (score >= 0.5).astype(np.int64)), labels


def _multiclass(rng: np.random.Generator, n: int, scale: float) -> tuple[ClassifierInputs, np.ndarray]:
    x = rng.normal(0.0, scale, (n, 2))
    logits = np.column_stack([2 * x[:, 0], -1.5 * x[:, 0] + 1.5 * x[:, 1], -1.5 * x[:, 1] + 0.2])
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = (rng.random((n, 1)) > np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1).astype(np.int64)
    return ClassifierInputs(probs, np.argmax(probs, axis=1).astype(np.int64)), labels


def _concat(parts: list[tuple[ClassifierInputs, np.ndarray]]) -> tuple[ClassifierInputs, np.ndarray]:
    scores = np.concatenate([p[0].scores for p in parts])
    predicted = np.concatenate([p[0].predicted for p in parts])
    return ClassifierInputs(scores, predicted), np.concatenate([p[1] for p in parts])


def _run(fitted: Fitted, current, labels: np.ndarray, chunk: int = CHUNK) -> list[tuple[dict, dict]]:
    out = []
    for i, (start, end) in enumerate(chunk_bounds(current.rows, chunk)):
        part = current.take(start, end)
        out.append((estimate(fitted, part, seed=i), realized(fitted, part, labels[start:end])))
    return out


def _check_accuracy(results: list[tuple[dict, dict]], metrics: list[str], mae_limit: float | None) -> None:
    for name in metrics:
        errors = [abs(e[name].value - r[name]) for e, r in results]
        covered = [e[name].lower <= r[name] <= e[name].upper for e, r in results]
        if mae_limit is not None:
            assert np.mean(errors) <= mae_limit, (name, errors)
        assert np.mean(covered) >= 0.8, (name, covered)


def _check_follows_drop(results: list[tuple[dict, dict]], name: str, lower_is_worse: bool = True) -> None:
    before = [e[name].value for e, _ in results[:5]]
    after = [e[name].value for e, _ in results[5:]]
    real_before = [r[name] for _, r in results[:5]]
    real_after = [r[name] for _, r in results[5:]]
    sign = 1 if lower_is_worse else -1
    real_drop = sign * (np.mean(real_before) - np.mean(real_after))
    est_drop = sign * (np.mean(before) - np.mean(after))
    assert real_drop > 0.05
    assert est_drop == pytest.approx(real_drop, rel=0.25)
    assert sum(e[name].alert for e, _ in results[:5]) <= 1  # three sigmas: rare false alarms
    assert all(e[name].alert for e, _ in results[5:])


def test_binary_calibrated_scores_track_a_shift() -> None:
    rng = np.random.default_rng(1)
    reference, ref_labels = _binary(rng, 50_000, 1.0)
    current, labels = _concat([_binary(rng, 25_000, 1.0), _binary(rng, 25_000, 0.4)])
    names = resolve_metrics("binary", [])
    fitted = fit("binary", reference, ref_labels, ("0", "1"), names, CHUNK)
    assert fitted.meta["calibrated"] is False  # true probabilities: left as they are
    results = _run(fitted, current, labels)
    _check_accuracy(results, ["roc_auc", "accuracy"], 0.01)
    _check_accuracy(results, ["precision", "recall", "f1", "specificity"], 0.015)
    _check_follows_drop(results, "roc_auc")
    _check_follows_drop(results, "accuracy")


def test_binary_overconfident_scores_are_calibrated_on_the_reference() -> None:
    rng = np.random.default_rng(2)
    reference, ref_labels = _binary(rng, 50_000, 1.0, sharpen=2.5)
    current, labels = _concat([_binary(rng, 25_000, 1.0, 2.5), _binary(rng, 25_000, 0.4, 2.5)])
    names = resolve_metrics("binary", [])
    fitted = fit("binary", reference, ref_labels, ("0", "1"), names, CHUNK)
    assert fitted.meta["calibrated"] is True
    results = _run(fitted, current, labels)
    _check_accuracy(results, ["roc_auc", "accuracy"], 0.01)
    _check_follows_drop(results, "accuracy")
    # Without calibration the same scores overstate the accuracy after the shift.
    raw = Fitted(**{**fitted.__dict__, "calibration": type(fitted.calibration)()})
    uncalibrated = _run(raw, current.take(25_000, 50_000), labels[25_000:])
    assert np.mean([abs(e["accuracy"].value - r["accuracy"]) for e, r in uncalibrated]) > 0.03


def test_multiclass_track_a_shift() -> None:
    rng = np.random.default_rng(3)
    reference, ref_labels = _multiclass(rng, 50_000, 1.0)
    current, labels = _concat([_multiclass(rng, 25_000, 1.0), _multiclass(rng, 25_000, 0.4)])
    names = resolve_metrics("multiclass", [])
    fitted = fit("multiclass", reference, ref_labels, ("a", "b", "c"), names, CHUNK)
    results = _run(fitted, current, labels)
    _check_accuracy(results, ["roc_auc_macro", "roc_auc_weighted", "accuracy"], 0.01)
    _check_accuracy(results, [n for n in names if not n.startswith("roc") and n != "accuracy"], 0.015)
    _check_follows_drop(results, "roc_auc_macro")
    _check_follows_drop(results, "accuracy")


def _regression(rng: np.random.Generator, n: int, shifted: bool = False) -> tuple[RegressorInputs, np.ndarray]:
    """After the shift, inputs move to harder regions the reference also covers (loss models, like any
    trees, cannot extrapolate beyond the reference's inputs)."""
    if shifted:
        x1 = rng.choice([-1.0, 1.0], n) * rng.uniform(1.0, 2.5, n)
        group = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.2, 0.2, 0.6])
    else:
        x1 = rng.normal(0.0, 1.0, n)
        group = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    x2 = rng.normal(0.0, 1.0, n)
    mean = 30.0 + 3.0 * x1 + x2 + np.where(group == "b", 4.0, 0.0)
    noise = 0.5 + np.abs(x1) + np.where(group == "c", 1.0, 0.0)  # harder far from 0 and in group c
    target = mean + rng.normal(0.0, 1.0, n) * noise
    return RegressorInputs({"x1": x1, "x2": x2, "group": group}, mean), target


def test_regression_direct_loss_estimation_tracks_a_shift() -> None:
    rng = np.random.default_rng(4)
    reference, ref_target = _regression(rng, 20_000)
    first, first_target = _regression(rng, 15_000)
    second, second_target = _regression(rng, 15_000, shifted=True)
    current = RegressorInputs(
        {k: np.concatenate([first.columns[k], second.columns[k]]) for k in first.columns},
        np.concatenate([first.prediction, second.prediction]),
    )
    target = np.concatenate([first_target, second_target])
    names = resolve_metrics("regression", [])
    fitted = fit("regression", reference, ref_target, (), names, 3000)
    results = _run(fitted, current, target, 3000)
    _check_accuracy(results, names, None)
    for name in names:  # within 5% of the realized value on average
        relative = [abs(e[name].value - r[name]) / r[name] for e, r in results]
        assert np.mean(relative) <= 0.05, (name, relative)
    _check_follows_drop(results, "mae", lower_is_worse=False)
    _check_follows_drop(results, "rmse", lower_is_worse=False)


def test_regression_bands_match_the_spread_between_chunks() -> None:
    """A chunk's band is 3 sd of its realized metric. Here errors are small in much of the input space,
    so the boosted model of squared errors predicts below zero for some rows; the band of MSE was
    then ±10¹³ wide (one row's loss divided by a predicted loss of 0 set the spread)."""
    rng = np.random.default_rng(3)

    def draw(n: int) -> tuple[RegressorInputs, np.ndarray]:
        x1, x2 = rng.normal(0.0, 1.0, n), rng.uniform(0.0, 1.0, n)
        group = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
        mean = 20.0 + 3.0 * x1 + 2.0 * x2
        noise = 0.5 + np.abs(x1) + np.where(group == "c", 2.0, 0.0)
        return RegressorInputs({"x1": x1, "x2": x2, "group": group}, mean), mean + rng.normal(0.0, 1.0, n) * noise

    reference, ref_target = draw(20_000)
    names = ("mae", "mse", "rmse")
    fitted = fit("regression", reference, ref_target, (), names, 1000)
    results = _run(fitted, *draw(40_000), 1000)
    for name in names:
        band_sd = np.mean([(e[name].upper - e[name].lower) / 6 for e, _ in results])
        between = np.std([r[name] for _, r in results], ddof=1)
        assert 0.6 < band_sd / between < 1.5, (name, band_sd, between)


def test_fitted_state_round_trips_through_json() -> None:
    rng = np.random.default_rng(5)
    reference, ref_labels = _binary(rng, 10_000, 1.0, sharpen=2.0)
    current, _ = _binary(rng, 2000, 0.5, sharpen=2.0)
    fitted = fit("binary", reference, ref_labels, ("0", "1"), resolve_metrics("binary", []), 1000)
    loaded = Fitted.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert estimate(loaded, current) == estimate(fitted, current)
    reg, target = _regression(rng, 5000)
    fitted_reg = fit("regression", reg, target, (), ("mae", "rmse"), 500)
    loaded_reg = Fitted.from_dict(json.loads(json.dumps(fitted_reg.to_dict())))
    assert estimate(loaded_reg, reg.take(0, 500)) == estimate(fitted_reg, reg.take(0, 500))


def test_realized_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(6)
    inputs, labels = _binary(rng, 3000, 1.0)
    inputs = ClassifierInputs(np.round(inputs.scores, 2), inputs.predicted)  # ties for the AUC
    y, score, pred = labels, inputs.scores[:, 1], inputs.predicted
    names = resolve_metrics("binary", [])
    got = {
        k: float(v[0]) for k, v in classification_metrics(one_hot(y, 2), pred, inputs.scores, "binary", names).items()
    }
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), rel=1e-12)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred), rel=1e-12)
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred), rel=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred), rel=1e-12)
    assert got["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0), rel=1e-12)

    multi, codes = _multiclass(rng, 3000, 1.0)
    scores = np.round(multi.scores, 2)
    mnames = resolve_metrics("multiclass", [])
    mgot = {
        k: float(v[0])
        for k, v in classification_metrics(one_hot(codes, 3), multi.predicted, scores, "multiclass", mnames).items()
    }
    for avg in ("macro", "weighted"):
        args = (codes, multi.predicted)
        assert mgot[f"precision_{avg}"] == pytest.approx(skm.precision_score(*args, average=avg), rel=1e-12)
        assert mgot[f"recall_{avg}"] == pytest.approx(skm.recall_score(*args, average=avg), rel=1e-12)
        assert mgot[f"f1_{avg}"] == pytest.approx(skm.f1_score(*args, average=avg), rel=1e-12)
        assert mgot[f"roc_auc_{avg}"] == pytest.approx(_ovr_auc(codes, scores, avg), rel=1e-12)
        exact = classification_metrics(
            one_hot(codes, 3), multi.predicted, multi.scores, "multiclass", [f"roc_auc_{avg}"]
        )
        sk = skm.roc_auc_score(codes, multi.scores, multi_class="ovr", average=avg)
        assert float(exact[f"roc_auc_{avg}"][0]) == pytest.approx(sk, rel=1e-12)
    spec = [skm.recall_score(codes != k, multi.predicted != k) for k in range(3)]
    assert mgot["specificity_macro"] == pytest.approx(np.mean(spec), rel=1e-12)
    assert mgot["accuracy"] == pytest.approx(skm.accuracy_score(codes, multi.predicted), rel=1e-12)

    # The fast path for simulated labels agrees with the one-hot path.
    draws = rng.integers(0, 3, (4, 3000))
    fast = label_metrics(draws, multi.predicted, scores, "multiclass", mnames)
    for b in range(4):
        slow = classification_metrics(one_hot(draws[b], 3), multi.predicted, scores, "multiclass", mnames)
        for name in mnames:
            assert fast[name][b] == pytest.approx(slow[name][0], rel=1e-12)

    truth = rng.normal(10, 3, 500)
    truth[:2] = 0.0
    guess = truth + rng.normal(0, 1, 500)
    reg = regression_metrics(truth, guess, ("mae", "mse", "rmse", "mape"))
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(truth, guess), rel=1e-12)
    assert reg["mse"] == pytest.approx(skm.mean_squared_error(truth, guess), rel=1e-12)
    assert reg["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, guess)), rel=1e-12)
    assert reg["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, guess), rel=1e-12)


@pytest.mark.filterwarnings("ignore:Only one class is present in y_true")  # scikit-learn, on class 2
def test_weighted_metrics_of_a_chunk_without_one_class_match_scikit_learn() -> None:
    """A class of the reference with no true rows in the chunk weighs 0 in a weighted average, as in
    scikit-learn; its undefined ROC AUC made ``roc_auc_weighted`` null. Macro ROC AUC stays undefined."""
    rng = np.random.default_rng(8)
    multi, codes = _multiclass(rng, 3000, 1.0)
    keep = codes != 2
    scores, predicted, codes = multi.scores[keep], multi.predicted[keep], codes[keep]
    assert (predicted == 2).any()  # still predicted, never true
    names = resolve_metrics("multiclass", [])
    fast = {k: float(v[0]) for k, v in label_metrics(codes[None, :], predicted, scores, "multiclass", names).items()}
    slow = classification_metrics(one_hot(codes, 3), predicted, scores, "multiclass", names)
    labels = [0, 1, 2]
    for got in (fast, {k: float(v[0]) for k, v in slow.items()}):
        sk = skm.roc_auc_score(codes, scores, multi_class="ovr", average="weighted", labels=labels)
        assert got["roc_auc_weighted"] == pytest.approx(sk, rel=1e-12)
        assert np.isnan(got["roc_auc_macro"])
        for metric in (skm.precision_score, skm.recall_score, skm.f1_score):
            sk = metric(codes, predicted, average="weighted", labels=labels, zero_division=0)
            assert got[f"{metric.__name__.split('_')[0]}_weighted"] == pytest.approx(sk, rel=1e-12)


def _ovr_auc(codes: np.ndarray, scores: np.ndarray, average: str) -> float:
    aucs = [skm.roc_auc_score(codes == k, scores[:, k]) for k in range(scores.shape[1])]
    weights = np.bincount(codes, minlength=scores.shape[1]) if average == "weighted" else np.ones(scores.shape[1])
    return float(np.average(aucs, weights=weights))


@pytest.mark.parametrize("n", [7, 1000, 20_000])
def test_isotonic_matches_scikit_learn(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.round(rng.random(n), 3)
    y = (rng.random(n) < x**2).astype(float)
    knots, values = isotonic(x, y)
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    probe = rng.random(5000) * 1.4 - 0.2
    assert np.interp(probe, knots, values) == pytest.approx(model.predict(probe), abs=1e-12)


def test_chunks_and_bands() -> None:
    assert chunk_bounds(10, chunk_size=4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(10, chunks=3) == [(0, 4), (4, 7), (7, 10)]
    assert chunk_bounds(5) == [(i, i + 1) for i in range(5)]
    with pytest.raises(ValueError):
        chunk_bounds(10, chunk_size=2, chunks=2)
    band = Band(0.8, 0.01, 1000)
    assert band.at(1000) == pytest.approx((0.77, 0.83))
    assert band.at(4000) == pytest.approx((0.785, 0.815))  # spread shrinks as 1/sqrt(rows)
    assert Band(0.99, 0.01, 100).at(100)[1] == 1.0
    assert resolve_metrics("multiclass", ["f1"]) == ("f1_macro", "f1_weighted")
    with pytest.raises(ValueError, match="choose from"):
        resolve_metrics("binary", ["mae"])
    assert resolve_metrics("multiclass", ["roc_auc", "accuracy"]) == ("roc_auc_macro", "roc_auc_weighted", "accuracy")
    for task, name in (("binary", "roc"), ("multiclass", "roc"), ("binary", "f1_macro"), ("multiclass", "f1_")):
        with pytest.raises(ValueError, match="choose from"):  # "roc" was taken for roc_auc (binary)
            resolve_metrics(task, [name])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("task", "rows"), [("binary", 300), ("binary", 5000), ("multiclass", 300), ("multiclass", 5000)]
)
def test_band_from_normal_sums_matches_simulating_every_label(task: str, rows: int) -> None:
    """The sampling error drawn from the normal law of the confusion counts and rank sums against 3,000
    full simulations of every label."""
    from detectors.estimation import cbpe

    rng = np.random.default_rng(rows)
    inputs, _ = _binary(rng, rows, 1.0) if task == "binary" else _multiclass(rng, rows, 1.0)
    names = resolve_metrics(task, [])
    fast = cbpe.sampling_sd(inputs.scores, inputs.predicted, inputs.scores, task, names, seed=1)
    cumulative = np.cumsum(inputs.scores, axis=1)[:, :-1]
    draws = (rng.random((3000, rows, 1)) > cumulative[None, :, :]).sum(axis=2)
    full = label_metrics(draws, inputs.predicted, inputs.scores, task, names)
    for name in names:
        assert fast[name] == pytest.approx(float(np.std(full[name], ddof=1)), rel=0.12), name
