"""Classification and regression metrics from (expected) confusion counts, batched.

One code path serves the realized metrics and the estimates: a row's *mass* for class k is 1 when its
label is k (realized), the calibrated probability of k (estimated), or a simulated label (sampling
error). Expected counts are sums of masses, so the estimate of a metric is that metric computed on the
expected confusion matrix, as confidence-based performance estimation does. ROC AUC is the
Mann-Whitney statistic over expected positive/negative pairs ranked by the model's own scores (ties
count one half); with 0/1 masses it is exactly scikit-learn's ``roc_auc_score``.

Definitions follow scikit-learn: a ratio whose denominator is 0 is 0 (``zero_division``), except ROC
AUC, which is undefined (NaN) without both classes; multiclass ``macro`` is the plain mean over the
reference's classes, ``weighted`` weighs each class by its (expected) number of true rows, ROC AUC
multiclass is one-vs-rest; MAPE divides by ``max(|y|, eps)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Task = Literal["binary", "multiclass", "regression"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

EPS = float(np.finfo(np.float64).eps)
BASE_CLASSIFICATION = ("roc_auc", "accuracy", "precision", "recall", "f1", "specificity")
AVERAGED = ("roc_auc", "precision", "recall", "f1", "specificity")  # per class, then macro / weighted
BINARY_METRICS: tuple[str, ...] = BASE_CLASSIFICATION
MULTICLASS_METRICS: tuple[str, ...] = (
    "roc_auc_macro",
    "roc_auc_weighted",
    "accuracy",
    "precision_macro",
    "precision_weighted",
    "recall_macro",
    "recall_weighted",
    "f1_macro",
    "f1_weighted",
    "specificity_macro",
    "specificity_weighted",
)
REGRESSION_METRICS: tuple[str, ...] = ("mae", "mse", "rmse", "mape")
METRICS: dict[Task, tuple[str, ...]] = {
    "binary": BINARY_METRICS,
    "multiclass": MULTICLASS_METRICS,
    "regression": REGRESSION_METRICS,
}
# Bounds a metric can take: thresholds are clamped to them.
BOUNDS: dict[Task, tuple[float, float]] = {
    "binary": (0.0, 1.0),
    "multiclass": (0.0, 1.0),
    "regression": (0.0, float("inf")),
}


def resolve_metrics(task: Task, wanted: Sequence[str]) -> tuple[str, ...]:
    """The metric names of ``task`` asked for (all when none); for multiclass ``precision`` means both
    ``precision_macro`` and ``precision_weighted``. Raises ValueError naming the valid choices."""
    valid = METRICS[task]
    if not wanted:
        return valid
    out: list[str] = []
    for name in wanted:
        key = name.strip().lower()
        expanded = [key] if key in valid else [m for m in valid if m in (f"{key}_macro", f"{key}_weighted")]
        if not expanded:
            raise ValueError(f"--metric {name!r} is not a {task} metric (choose from {', '.join(valid)})")
        out.extend(m for m in expanded if m not in out)
    return tuple(m for m in valid if m in out)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def expected_auc(scores: FloatArray, masses: FloatArray) -> FloatArray:
    """ROC AUC per batch row: expected (positive, negative) pairs ordered by ``scores`` over expected pairs.

    ``scores``: (n,) the model's score for the positive class; ``masses``: (B, n) each row's probability
    of being positive. Pairs of a row with itself are left out, so 0/1 masses give the exact statistic.
    """
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    mass = masses[:, order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    own = mass * (1.0 - mass)
    pos_g = np.add.reduceat(mass, starts, axis=1)
    neg_g = np.add.reduceat(1.0 - mass, starts, axis=1)
    own_g = np.add.reduceat(own, starts, axis=1)
    neg_below = np.cumsum(neg_g, axis=1) - neg_g
    pairs = (pos_g * neg_below + (pos_g * neg_g - own_g) / 2.0).sum(axis=1)
    positives = mass.sum(axis=1)
    total = positives * (mass.shape[1] - positives) - own.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 1e-12, pairs / np.where(total > 1e-12, total, 1.0), np.nan)


def confusion(masses: FloatArray, predicted: IntArray) -> FloatArray:
    """(B, C, C) expected counts ``[batch, true class, predicted class]`` from (B, n, C) masses."""
    n_classes = masses.shape[2]
    out = np.empty((masses.shape[0], n_classes, n_classes))
    for k in range(n_classes):
        out[:, :, k] = masses[:, predicted == k, :].sum(axis=1)
    return out


def classification_metrics(
    masses: FloatArray, predicted: IntArray, scores: FloatArray, task: Task, names: Sequence[str]
) -> dict[str, FloatArray]:
    """Each metric of ``names`` per batch row.

    ``masses``: (B, n, C); ``predicted``: (n,) class codes; ``scores``: (n, C) the model's raw scores
    (only used to rank rows for ROC AUC). Binary metrics are those of class 1 (the positive class).
    """

    def auc() -> FloatArray:
        classes = [masses.shape[2] - 1] if task == "binary" else range(masses.shape[2])
        return np.stack([expected_auc(scores[:, k], masses[:, :, k]) for k in classes], axis=1)

    return metrics_from(confusion(masses, predicted), auc, task, names)


def label_metrics(
    codes: IntArray, predicted: IntArray, scores: FloatArray, task: Task, names: Sequence[str]
) -> dict[str, FloatArray]:
    """The same metrics for (B, n) class codes, faster than one-hot masses: confusion counts by
    ``bincount`` and ROC AUC by rank sums (Mann-Whitney with mid-ranks for ties)."""
    batch, rows = codes.shape
    n_classes = scores.shape[1]
    cells = (np.arange(batch)[:, None] * n_classes + codes) * n_classes + predicted[None, :]
    conf = np.bincount(cells.ravel(), minlength=batch * n_classes * n_classes).astype(np.float64)
    conf = conf.reshape(batch, n_classes, n_classes)

    def auc() -> FloatArray:
        classes = [n_classes - 1] if task == "binary" else range(n_classes)
        columns = []
        for k in classes:
            positive = codes == k
            n_pos = positive.sum(axis=1).astype(np.float64)
            rank_sum = positive.astype(np.float64) @ mid_ranks(scores[:, k])
            pairs = n_pos * (rows - n_pos)
            with np.errstate(divide="ignore", invalid="ignore"):
                value = (rank_sum - n_pos * (n_pos + 1) / 2) / pairs
            columns.append(np.where(pairs > 0, value, np.nan))
        return np.stack(columns, axis=1)

    return metrics_from(conf, auc, task, names)


def mid_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, ties sharing their mean rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    before = np.cumsum(counts) - counts
    return (before + (counts + 1) / 2.0)[inverse]


def metrics_from(
    conf: FloatArray, auc: Callable[[], FloatArray], task: Task, names: Sequence[str]
) -> dict[str, FloatArray]:
    """Metrics from (B, C, C) confusion counts ``[batch, true, predicted]`` and per-class ROC AUC (B, C')."""
    tp = np.diagonal(conf, axis1=1, axis2=2)
    true_n = conf.sum(axis=2)
    pred_n = conf.sum(axis=1)
    total = conf.sum(axis=(1, 2))[:, None]
    fp, fn = pred_n - tp, true_n - tp
    tn = total - tp - fp - fn
    per_class: dict[str, Callable[[], FloatArray]] = {
        "precision": lambda: _ratio(tp, tp + fp),
        "recall": lambda: _ratio(tp, tp + fn),
        "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
        "specificity": lambda: _ratio(tn, tn + fp),
        "roc_auc": auc,
    }
    out: dict[str, FloatArray] = {}
    for name in names:
        if name == "accuracy":
            out[name] = _ratio(tp.sum(axis=1), total[:, 0])
            continue
        base, _, average = name.rpartition("_") if task == "multiclass" else (name, "", "")
        values = per_class[base]()
        if task == "binary":
            out[name] = values[:, -1]
        elif average == "macro":
            out[name] = values.mean(axis=1)
        else:  # a class without true rows weighs 0, even where its metric is undefined (its ROC AUC)
            weighted = np.where(true_n > 0, values * true_n, 0.0)
            out[name] = _ratio(weighted.sum(axis=1), true_n.sum(axis=1))
    return out


def regression_metrics(truth: FloatArray, predicted: FloatArray, names: Sequence[str]) -> dict[str, float]:
    """Realized MAE, MSE, RMSE and MAPE (NaN for an empty input)."""
    if truth.size == 0:
        return dict.fromkeys(names, float("nan"))
    error = truth - predicted
    mse = float(np.mean(error * error))
    values = {
        "mae": float(np.mean(np.abs(error))),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mape": float(np.mean(np.abs(error) / np.maximum(np.abs(truth), EPS))),
    }
    return {name: values[name] for name in names}


def one_hot(codes: IntArray, n_classes: int) -> FloatArray:
    """(1, n, C) masses of known labels."""
    out = np.zeros((1, codes.size, n_classes))
    out[0, np.arange(codes.size), codes] = 1.0
    return out
