"""Performance metrics computed in ClickHouse against scikit-learn on the same joined data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from detectors.checks import performance
from detectors.registration import add_file
from detectors.runner import build_context
from monitor.storage import Storage
from tests.detectors.event_rows import T0, Rows, settings_for, spread, write_events, write_labels


def _metrics(results) -> dict[str, Any]:
    return {r.statistic: r for r in results}


def _setup(storage: Storage, tmp_path: Path, model: str, prediction: dict, frame: pd.DataFrame) -> Any:
    frame.to_parquet(tmp_path / f"{model}.parquet")
    add_file(storage, model, tmp_path / f"{model}.parquet")
    return settings_for(storage, tmp_path, {model: {"prediction": prediction, "min_samples": 50}})


def test_probability_classifier_against_sklearn(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    n = 3000
    score = np.round(rng.random(n), 2)  # heavy ties for the AUC
    score[:5] = [0.0, 1.0, 0.0, 1.0, 0.5]  # log loss clipping at both ends
    y = (rng.random(n) < score).astype(int)
    y[:5] = [1, 0, 0, 1, 1]
    settings = _setup(
        storage,
        tmp_path,
        "p",
        {"type": "probability", "threshold": 0.6, "positive_label": 1},
        pd.DataFrame({"x": rng.random(500), "prediction": rng.random(500), "label": rng.integers(0, 2, 500)}),
    )
    ids = write_events(storage, Rows("p", spread(n), {"x": rng.random(n)}, prediction=score))
    labelled = rng.random(n) < 0.7  # the rest has no label yet
    write_labels(storage, "p", [i for i, k in zip(ids, labelled, strict=True) if k], y[labelled])
    ctx = build_context(storage, settings, "p", window_end=T0, now=T0)
    rows = _metrics(performance.performance(ctx))
    yl, sl = y[labelled], score[labelled]
    predicted = (sl >= 0.6).astype(int)
    assert rows["label_coverage"].value == pytest.approx(labelled.mean())
    assert rows["accuracy"].value == pytest.approx(skm.accuracy_score(yl, predicted), rel=1e-12)
    assert rows["precision"].value == pytest.approx(skm.precision_score(yl, predicted), rel=1e-12)
    assert rows["recall"].value == pytest.approx(skm.recall_score(yl, predicted), rel=1e-12)
    assert rows["f1"].value == pytest.approx(skm.f1_score(yl, predicted), rel=1e-12)
    assert rows["roc_auc"].value == pytest.approx(skm.roc_auc_score(yl, sl), rel=1e-12)
    assert rows["log_loss"].value == pytest.approx(skm.log_loss(yl, sl), rel=1e-9)
    assert rows["accuracy"].n_current == labelled.sum() and rows["accuracy"].status == "ok"


def test_class_predictions_with_text_labels_and_probabilities(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 1200
    p_fraud = rng.random(n)
    predicted = np.where(p_fraud >= 0.5, "fraud", "ok")
    truth = np.where(rng.random(n) < p_fraud * 0.8 + 0.1, "fraud", "ok")
    reference = pd.DataFrame({"x": rng.random(400), "prediction": rng.choice(["fraud", "ok"], 400)})
    reference["label"] = np.where(rng.random(400) < 0.8, reference["prediction"], "ok")
    settings = _setup(storage, tmp_path, "c", {"type": "class", "positive_label": "fraud"}, reference)
    probabilities = [{"fraud": float(p), "ok": float(1 - p)} for p in p_fraud]
    ids = write_events(
        storage, Rows("c", spread(n), {"x": rng.random(n)}, prediction=list(predicted), probabilities=probabilities)
    )
    write_labels(storage, "c", ids, list(truth))
    ctx = build_context(storage, settings, "c", window_end=T0, now=T0)
    ref_metrics = performance.reference_metrics(storage, ctx.reference, ctx.prediction)
    rows = _metrics(performance.performance(ctx, reference=ref_metrics))
    assert rows["accuracy"].value == pytest.approx(skm.accuracy_score(truth, predicted))
    assert rows["precision"].value == pytest.approx(skm.precision_score(truth, predicted, pos_label="fraud"))
    assert rows["recall"].value == pytest.approx(skm.recall_score(truth, predicted, pos_label="fraud"))
    assert rows["f1"].value == pytest.approx(skm.f1_score(truth, predicted, pos_label="fraud"))
    assert rows["roc_auc"].value == pytest.approx(skm.roc_auc_score(truth == "fraud", p_fraud))
    assert rows["log_loss"].value == pytest.approx(skm.log_loss(truth == "fraud", p_fraud), rel=1e-9)
    assert rows["label_coverage"].value == 1.0
    # The reference's own accuracy, from its prediction and label columns.
    expected = skm.accuracy_score(reference["label"], reference["prediction"])
    assert rows["accuracy"].details["reference"] == pytest.approx(expected)


def test_regression_against_sklearn(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 2000
    y = rng.normal(50, 10, n)
    y[:3] = 0.0  # MAPE's epsilon guard
    prediction = y + rng.normal(0, 3, n)
    settings = _setup(storage, tmp_path, "r", {"type": "regression"}, pd.DataFrame({"x": rng.random(100)}))
    ids = write_events(storage, Rows("r", spread(n), {"x": rng.random(n)}, prediction=prediction))
    write_labels(storage, "r", ids, y)
    ctx = build_context(storage, settings, "r", window_end=T0, now=T0)
    rows = _metrics(performance.performance(ctx))
    assert rows["mae"].value == pytest.approx(skm.mean_absolute_error(y, prediction), rel=1e-12)
    assert rows["rmse"].value == pytest.approx(np.sqrt(skm.mean_squared_error(y, prediction)), rel=1e-12)
    assert rows["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y, prediction), rel=1e-9)
    assert rows["r2"].value == pytest.approx(skm.r2_score(y, prediction), rel=1e-12)
    assert "accuracy" not in rows


def test_boolean_labels_and_no_labels(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 400
    score = rng.random(n)
    truth = rng.random(n) < score
    settings = _setup(
        storage, tmp_path, "b", {"type": "probability", "positive_label": True}, pd.DataFrame({"x": [1.0]})
    )
    ids = write_events(storage, Rows("b", spread(n), {"x": np.ones(n)}, prediction=score))
    ctx = build_context(storage, settings, "b", window_end=T0, now=T0)
    before = _metrics(performance.performance(ctx))
    assert before["label_coverage"].value == 0.0
    assert before["accuracy"].value is None and before["accuracy"].status == "insufficient_data"
    write_labels(storage, "b", ids, [bool(t) for t in truth])  # JSON booleans
    after = _metrics(performance.performance(ctx))
    assert after["accuracy"].value == pytest.approx(skm.accuracy_score(truth, score >= 0.5))
    assert after["roc_auc"].value == pytest.approx(skm.roc_auc_score(truth, score))


def test_multiclass_averages_against_sklearn(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    n = 2500
    classes = np.array(["cat", "dog", "bird", "fish"])
    truth = rng.choice(classes, n, p=[0.5, 0.3, 0.15, 0.05])
    predicted = np.where(rng.random(n) < 0.6, truth, rng.choice(classes[:3], n))  # "fish" is never predicted
    reference = pd.DataFrame({"x": rng.random(300), "prediction": rng.choice(classes, 300), "label": "cat"})
    settings = _setup(storage, tmp_path, "m", {"type": "class", "positive_label": "cat"}, reference)
    ids = write_events(storage, Rows("m", spread(n), {"x": rng.random(n)}, prediction=list(predicted)))
    labelled = rng.random(n) < 0.8
    write_labels(storage, "m", [i for i, k in zip(ids, labelled, strict=True) if k], list(truth[labelled]))
    ctx = build_context(storage, settings, "m", window_end=T0, now=T0)
    rows = _metrics(performance.performance(ctx))
    y, p = truth[labelled], predicted[labelled]
    for average in ("macro", "weighted"):
        with np.errstate(all="ignore"):
            expected = {
                "precision": skm.precision_score(y, p, average=average, zero_division=0),
                "recall": skm.recall_score(y, p, average=average, zero_division=0),
                "f1": skm.f1_score(y, p, average=average, zero_division=0),
            }
        for name, value in expected.items():
            assert rows[f"{name}_{average}"].value == pytest.approx(value, rel=1e-12), (name, average)
            assert rows[f"{name}_{average}"].n_current == labelled.sum()
    assert rows["accuracy"].value == pytest.approx(skm.accuracy_score(y, p))
    assert rows["precision"].value == pytest.approx(skm.precision_score(y, p, labels=["cat"], average="micro"))


def test_multiclass_without_the_positive_label_has_no_binary_metrics(storage: Storage, tmp_path: Path) -> None:
    """Three classes, none of them the (default) positive label 1: scikit-learn has no binary precision,
    recall or F1 here; they are no value (insufficient data), not 0, while the averages are computed."""
    rng = np.random.default_rng(4)
    n = 300
    classes = np.array(["cat", "dog", "bird"])
    truth = rng.choice(classes, n)
    predicted = np.where(rng.random(n) < 0.7, truth, rng.choice(classes, n))
    reference = pd.DataFrame({"x": rng.random(100), "prediction": rng.choice(classes, 100), "label": "cat"})
    settings = _setup(storage, tmp_path, "mc", {"type": "class"}, reference)
    ids = write_events(storage, Rows("mc", spread(n), {"x": rng.random(n)}, prediction=list(predicted)))
    write_labels(storage, "mc", ids, list(truth))
    ctx = build_context(storage, settings, "mc", window_end=T0, now=T0)
    rows = _metrics(performance.performance(ctx))
    with pytest.raises(ValueError):
        skm.precision_score(truth, predicted, pos_label=1)
    for name in ("precision", "recall", "f1"):
        assert rows[name].value is None and rows[name].status == "insufficient_data"
        assert "positive_label 1 is not among the 3 classes" in rows[name].details["message"]
        assert rows[f"{name}_macro"].status == "ok"
    assert rows["f1_macro"].value == pytest.approx(skm.f1_score(truth, predicted, average="macro"), rel=1e-12)
    assert rows["accuracy"].value == pytest.approx(skm.accuracy_score(truth, predicted))


def test_averaged_metrics_edge_cases() -> None:
    assert performance.averaged_metrics([]) == dict.fromkeys(performance.AVERAGED_METRICS)
    perfect = performance.averaged_metrics([("a", "a", 3), ("b", "b", 1)])
    assert all(v == 1.0 for v in perfect.values())
    # a class only predicted (never labelled) counts in macro with recall 0 and F1 0, as in sklearn
    y, p = ["a", "a", "b"], ["a", "c", "b"]
    got = performance.averaged_metrics([("a", "a", 1), ("a", "c", 1), ("b", "b", 1)])
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))
    assert got["recall_weighted"] == pytest.approx(skm.recall_score(y, p, average="weighted", zero_division=0))
