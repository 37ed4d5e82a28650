"""Confidence-based performance estimation: a classifier's metrics from its calibrated probabilities.

With calibrated probabilities each row's label is a draw from them, so the expected confusion matrix is
the sum of the probabilities over the rows of each predicted class, and every metric follows from it
(see :mod:`detectors.estimation.metrics`). The spread of the *realized* metric around that expectation,
the sampling error of the chunk, is measured by drawing labels from the same probabilities many
times and computing the metric on each draw: it covers every metric, binary or multiclass, including
ROC AUC and the macro/weighted averages, without a formula per metric.

Binary models take a shortcut with the same result for chunks of more than a few dozen rows: every
binary metric is a function of three sums over the rows, TP = sum(a·y), FN = sum((1 - a)·y) and the
rank sum R = sum(r·y) (a: predicted positive, r: the row's rank by score, y: the label). With
independent labels their mean and covariance are exact sums over the rows (``sum p·v`` and
``sum p(1 - p)·v vᵀ`` for v = (a, 1 - a, r)), and by the central limit theorem they are jointly normal;
drawing the three sums instead of every label costs O(rows) instead of O(rows × draws).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.estimation.metrics import (
    FloatArray,
    IntArray,
    Task,
    classification_metrics,
    label_metrics,
    metrics_from,
    mid_ranks,
)

SIMULATIONS = 100
BINARY_DRAWS = 400
_CELLS_PER_BATCH = 4_000_000  # simulated rows held at once


def estimate_values(
    probabilities: FloatArray, predicted: IntArray, scores: FloatArray, task: Task, names: Sequence[str]
) -> dict[str, float]:
    """Each metric on the expected confusion matrix (NaN where undefined)."""
    values = classification_metrics(probabilities[None, :, :], predicted, scores, task, names)
    return {name: float(v[0]) for name, v in values.items()}


def sampling_sd(
    probabilities: FloatArray,
    predicted: IntArray,
    scores: FloatArray,
    task: Task,
    names: Sequence[str],
    seed: int,
    simulations: int = SIMULATIONS,
) -> dict[str, float]:
    """Standard deviation of each realized metric when labels are drawn from ``probabilities``."""
    if task == "binary":
        return _binary_sd(probabilities[:, 1], predicted, scores[:, 1], names, seed)
    rng = np.random.default_rng(seed)
    n, n_classes = probabilities.shape
    cumulative = np.cumsum(probabilities, axis=1)[:, :-1]
    batch = max(1, min(simulations, _CELLS_PER_BATCH // max(1, n)))
    draws: dict[str, list[FloatArray]] = {name: [] for name in names}
    done = 0
    while done < simulations:
        size = min(batch, simulations - done)
        uniform = rng.random((size, n))
        codes = np.zeros((size, n), dtype=np.int64)
        for k in range(n_classes - 1):
            codes += uniform > cumulative[None, :, k]
        for name, values in label_metrics(codes, predicted, scores, task, names).items():
            draws[name].append(values)
        done += size
    out: dict[str, float] = {}
    for name, parts in draws.items():
        values = np.concatenate(parts)
        values = values[np.isfinite(values)]
        out[name] = float(np.std(values, ddof=1)) if values.size > 1 else float("nan")
    return out


def _binary_sd(
    positive: FloatArray, predicted: IntArray, score: FloatArray, names: Sequence[str], seed: int
) -> dict[str, float]:
    """The binary shortcut (see the module docstring): draws of (TP, FN, R) from their normal law."""
    rows = positive.size
    flagged = (predicted == 1).astype(np.float64)
    vectors = np.column_stack([flagged, 1.0 - flagged, mid_ranks(score)])
    mean = positive @ vectors
    covariance = (vectors * (positive * (1.0 - positive))[:, None]).T @ vectors
    draws = np.random.default_rng(seed).multivariate_normal(mean, covariance, size=BINARY_DRAWS, method="eigh")
    n_pp, n_pn = flagged.sum(), rows - flagged.sum()
    tp, fn = np.clip(draws[:, 0], 0.0, n_pp), np.clip(draws[:, 1], 0.0, n_pn)
    conf = np.empty((BINARY_DRAWS, 2, 2))
    conf[:, 1, 1], conf[:, 1, 0] = tp, fn
    conf[:, 0, 1], conf[:, 0, 0] = n_pp - tp, n_pn - fn
    n_pos = tp + fn

    def auc() -> FloatArray:
        pairs = n_pos * (rows - n_pos)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = (draws[:, 2] - n_pos * (n_pos + 1) / 2) / pairs
        return np.clip(np.where(pairs > 0, value, np.nan), 0.0, 1.0)[:, None]

    out: dict[str, float] = {}
    for name, values in metrics_from(conf, auc, "binary", names).items():
        finite = values[np.isfinite(values)]
        out[name] = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
    return out
