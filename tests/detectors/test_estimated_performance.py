"""The ``estimated_performance`` detector in a real detection run on embedded ClickHouse: estimates of a
shifted window against the realized metrics of its (later) labels, the fitted state stored once, and
the alert rule on the stored report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from alerts.rules import evaluate_rule
from detectors.estimation_state import STATE_TABLE
from detectors.registration import add_file
from detectors.runner import run_detection
from monitor.settings import AlertRule
from monitor.storage import Storage
from tests.detectors.event_rows import T0, Rows, settings_for, spread, write_events, write_labels


def _logistic(rng: np.random.Generator, n: int, scale: float) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    x1, x2 = rng.normal(0, scale, n), rng.normal(0, scale, n)
    p = 1 / (1 + np.exp(-(2 * x1 - 1.5 * x2 + 0.3)))
    return {"x1": x1, "x2": x2}, p, (rng.random(n) < p).astype(int)


def _rows(report, detector: str) -> dict:
    return {r.statistic: r for r in report.select(detector=detector)}


def test_binary_window_estimated_stored_and_alerted(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(31)
    features, p, y = _logistic(rng, 20_000, 1.0)
    pd.DataFrame({**features, "prediction": p, "label": y}).to_parquet(tmp_path / "ref.parquet")
    add_file(storage, "est", tmp_path / "ref.parquet")
    model = {
        "prediction": {"type": "probability", "threshold": 0.5, "positive_label": 1},
        "features": {"x1": "numerical", "x2": "numerical"},
        "min_samples": 100,
    }
    settings = settings_for(storage, tmp_path, {"est": model})
    n = 6000
    window_features, window_p, window_y = _logistic(rng, n, 0.4)  # inputs shift: the model gets worse
    ids = write_events(storage, Rows("est", spread(n), window_features, prediction=window_p))

    report = run_detection(storage, settings, "est", window_end=T0, now=T0)
    estimated = _rows(report, "estimated_performance")
    assert set(estimated) == {"roc_auc", "accuracy", "precision", "recall", "f1", "specificity"}
    predicted = window_p >= 0.5
    realized = {"roc_auc": skm.roc_auc_score(window_y, window_p), "accuracy": skm.accuracy_score(window_y, predicted)}
    for name, value in realized.items():
        row = estimated[name]
        assert row.status == "ok" and row.n_current == n and row.n_reference == 20_000
        assert abs(row.value - value) < 0.02
        assert row.details["lower"] <= value <= row.details["upper"]
        assert row.drift is True and row.value < row.threshold  # well below the reference band
    states = storage.rows(f"SELECT count() FROM {storage.table(STATE_TABLE)} FINAL WHERE model = 'est'")[0][0]
    assert states == 1

    from monitor.commands.detect import summary_lines

    summary = "\n".join(summary_lines(report))
    assert "estimated performance (no labels needed): roc_auc" in summary and "OUTSIDE the reference band" in summary

    rule = AlertRule(when="estimated_performance", metric="roc_auc", below=0.8)
    assert evaluate_rule(rule, report).outcome == "triggered"
    band_rule = AlertRule(when="estimated_performance", metric="accuracy")
    assert evaluate_rule(band_rule, report).outcome == "triggered"
    with pytest.raises(ValueError, match="needs metric"):
        AlertRule(when="estimated_performance")

    # Labels arrive: the performance detector's realized values sit inside the estimate's band; the
    # stored state is reused (still one), and the estimate does not change.
    write_labels(storage, "est", ids, window_y)
    again = run_detection(storage, settings, "est", window_end=T0, now=T0)
    performance = _rows(again, "performance")
    assert performance["accuracy"].value == pytest.approx(realized["accuracy"])
    assert _rows(again, "estimated_performance")["accuracy"].value == estimated["accuracy"].value
    assert storage.rows(f"SELECT count() FROM {storage.table(STATE_TABLE)} WHERE model = 'est'")[0][0] == 1
    stored = storage.rows(
        f"SELECT value FROM {storage.table('detector_results')} FINAL "
        "WHERE model = 'est' AND detector = 'estimated_performance' AND statistic = 'roc_auc'"
    )
    assert stored and stored[0][0] == pytest.approx(estimated["roc_auc"].value)


def test_regression_and_models_without_labels(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(32)
    n_ref = 6000
    x = rng.normal(0, 1, n_ref)
    mean = 10 + 2 * x
    reference = pd.DataFrame({"x": x, "prediction": mean, "label": mean + rng.normal(0, 1, n_ref) * (0.5 + np.abs(x))})
    reference.to_parquet(tmp_path / "reg.parquet")
    add_file(storage, "reg", tmp_path / "reg.parquet")
    pd.DataFrame({"x": x, "prediction": mean}).to_parquet(tmp_path / "nolabel.parquet")
    add_file(storage, "nolabel", tmp_path / "nolabel.parquet")
    common = {"features": {"x": "numerical"}, "min_samples": 100}
    settings = settings_for(
        storage,
        tmp_path,
        {
            "reg": {**common, "prediction": {"type": "regression"}},
            "nolabel": {**common, "prediction": {"type": "regression"}},
        },
    )
    n = 3000
    wx = rng.choice([-1.0, 1.0], n) * rng.uniform(1.0, 2.5, n)  # harder inputs
    wmean = 10 + 2 * wx
    wy = wmean + rng.normal(0, 1, n) * (0.5 + np.abs(wx))
    write_events(storage, Rows("reg", spread(n), {"x": wx}, prediction=wmean))
    write_events(storage, Rows("nolabel", spread(n), {"x": wx}, prediction=wmean))
    report = run_detection(storage, settings, "reg", window_end=T0, now=T0)
    estimated = _rows(report, "estimated_performance")
    assert set(estimated) == {"mae", "mse", "rmse", "mape"}
    real_mae = float(np.mean(np.abs(wy - wmean)))
    assert abs(estimated["mae"].value - real_mae) / real_mae < 0.1
    assert estimated["mae"].drift is True and estimated["mae"].value > estimated["mae"].threshold
    assert not _rows(run_detection(storage, settings, "nolabel", window_end=T0, now=T0), "estimated_performance")


def test_class_model_with_probabilities_multiclass(storage: Storage, tmp_path: Path) -> None:
    """A ``class`` model whose events carry probabilities, its reference copied from labelled events."""
    from datetime import timedelta

    from detectors.registration import add_events

    rng = np.random.default_rng(33)
    classes = np.array(["bird", "cat", "dog"])

    def traffic(n: int, scale: float) -> tuple[dict, list, list, np.ndarray]:
        x = rng.normal(0, scale, (n, 2))
        logits = np.column_stack([2 * x[:, 0], -1.5 * x[:, 0] + 1.5 * x[:, 1], -1.5 * x[:, 1] + 0.2])
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        drawn = (rng.random((n, 1)) > np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1)
        maps = [{c: float(v) for c, v in zip(classes, row, strict=True)} for row in probs]
        return {"x1": x[:, 0], "x2": x[:, 1]}, list(classes[np.argmax(probs, axis=1)]), maps, classes[drawn]

    features, predicted, maps, truth = traffic(8000, 1.0)
    start = T0 - timedelta(hours=3)
    ids = write_events(
        storage,
        Rows("mc", spread(8000, end=start + timedelta(hours=1)), features, prediction=predicted, probabilities=maps),
    )
    write_labels(storage, "mc", ids, list(truth))
    add_events(storage, "mc", start, start + timedelta(hours=1))
    model = {
        "prediction": {"type": "class", "positive_label": "cat"},
        "features": {"x1": "numerical", "x2": "numerical"},
        "min_samples": 100,
    }
    settings = settings_for(storage, tmp_path, {"mc": model})
    n = 5000
    w_features, w_predicted, w_maps, w_truth = traffic(n, 0.4)
    write_events(storage, Rows("mc", spread(n), w_features, prediction=w_predicted, probabilities=w_maps))
    report = run_detection(storage, settings, "mc", window_end=T0, now=T0)
    estimated = _rows(report, "estimated_performance")
    assert "accuracy" in estimated and "f1_macro" in estimated and "roc_auc_macro" in estimated
    assert abs(estimated["accuracy"].value - skm.accuracy_score(w_truth, w_predicted)) < 0.03
    real_f1 = skm.f1_score(w_truth, w_predicted, average="macro")
    assert estimated["f1_macro"].details["lower"] <= real_f1 <= estimated["f1_macro"].details["upper"]
    assert estimated["accuracy"].drift is True
