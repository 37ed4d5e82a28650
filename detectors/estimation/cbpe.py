"""Confidence-based performance estimation: a classifier's metrics from its calibrated probabilities.

With calibrated probabilities each row's label is a draw from them, so the expected confusion matrix is
the sum of the probabilities over the rows of each predicted class, and every metric follows from it
(see :mod:`detectors.estimation.metrics`). The spread of the *realized* metric around that expectation,
the sampling error of the chunk, is measured by drawing labels from the same probabilities a few
hundred times and computing the metric on each draw: it covers every metric, binary or multiclass,
including ROC AUC and the macro/weighted averages, without a formula per metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.estimation.metrics import FloatArray, IntArray, Task, classification_metrics, label_metrics

SIMULATIONS = 100
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
