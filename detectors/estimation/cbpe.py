"""Confidence-based performance estimation: a classifier's metrics from its calibrated probabilities.

With calibrated probabilities each row's label is a draw from them, so the expected confusion matrix is
the sum of the probabilities over the rows of each predicted class, and every metric follows from it
(see :mod:`detectors.estimation.metrics`).

The confidence band is the spread of the *realized* metric around that expectation (the chunk's
sampling error). Every metric, binary or multiclass, macro or weighted, ROC AUC included, is a function
of a few sums over the rows: the confusion counts ``N[k, j] = Σ_{ŷ=j} [y=k]`` and per class the rank sum
``R[k] = Σ r_k·[y=k]`` (r_k: a row's mid-rank by the score of class k). Each row adds a linear image
of its one-hot label, whose mean is ``p_i`` and covariance ``diag(p_i) − p_i p_iᵀ``; so the sums'
mean and covariance are exact sums over the rows, and by the central limit theorem the
sums are jointly normal. :data:`DRAWS` draws of the sums from that law, each turned into every metric,
give each metric's standard deviation at O(rows) cost instead of simulating every label (the tests
compare both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.estimation.metrics import FloatArray, IntArray, Task, classification_metrics, metrics_from, mid_ranks

DRAWS = 400


def estimate_values(
    probabilities: FloatArray, predicted: IntArray, scores: FloatArray, task: Task, names: Sequence[str]
) -> dict[str, float]:
    """Each metric on the expected confusion matrix (NaN where undefined)."""
    values = classification_metrics(probabilities[None, :, :], predicted, scores, task, names)
    return {name: float(v[0]) for name, v in values.items()}


def _moments(probabilities: FloatArray, predicted: IntArray, ranks: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and covariance of the sums (N flattened as k*C + j, then R) under independent labels.

    With ``Cov(y_k, y_l) = p_k δ_kl − p_k p_l`` per row: ``Cov(N[k,j], N[l,j'])`` is nonzero only for
    j = j' (rows predicted j), ``Cov(N[k,j], R[l])`` sums over rows predicted j weighted by r_l, and
    ``Cov(R[k], R[l])`` weights by r_k r_l. Built per predicted class, O(rows × classes²) memory-free.
    """
    n_classes = probabilities.shape[1]
    cells = n_classes * n_classes
    weighted = probabilities * ranks  # p_k r_k per row
    mean = np.zeros(cells + n_classes)
    covariance = np.zeros((cells + n_classes, cells + n_classes))
    for j in range(n_classes):
        rows = predicted == j
        p, pr = probabilities[rows], weighted[rows]
        block = np.arange(n_classes) * n_classes + j  # positions of N[:, j]
        mean[block] = p.sum(axis=0)
        covariance[np.ix_(block, block)] = np.diag(p.sum(axis=0)) - p.T @ p
        cross = np.diag(pr.sum(axis=0)) - p.T @ pr  # [k, l] = Σ r_l (p_k δ_kl − p_k p_l)
        covariance[np.ix_(block, cells + np.arange(n_classes))] = cross
        covariance[np.ix_(cells + np.arange(n_classes), block)] = cross.T
    mean[cells:] = weighted.sum(axis=0)
    covariance[cells:, cells:] = np.diag((weighted * ranks).sum(axis=0)) - weighted.T @ weighted
    return mean, covariance


def sampling_sd(
    probabilities: FloatArray,
    predicted: IntArray,
    scores: FloatArray,
    task: Task,
    names: Sequence[str],
    seed: int,
    draws: int = DRAWS,
) -> dict[str, float]:
    """Standard deviation of each realized metric when labels are drawn from ``probabilities``."""
    rows, n_classes = probabilities.shape
    ranks = np.column_stack([mid_ranks(scores[:, k]) for k in range(n_classes)])
    mean, covariance = _moments(probabilities, predicted, ranks)
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))  # the sums are tied (columns of N add up): rank-deficient
    sample = mean + np.random.default_rng(seed).standard_normal((draws, mean.size)) @ root.T
    conf = np.clip(sample[:, : n_classes * n_classes], 0.0, None).reshape(draws, n_classes, n_classes)
    rank_sums = sample[:, n_classes * n_classes :]

    def auc() -> FloatArray:
        positives = conf.sum(axis=2)  # (draws, C): rows whose true class is k
        pairs = positives * (rows - positives)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = (rank_sums - positives * (positives + 1) / 2) / pairs
        per_class = np.clip(np.where(pairs > 0, value, np.nan), 0.0, 1.0)
        return per_class[:, -1:] if task == "binary" else per_class

    out: dict[str, float] = {}
    for name, values in metrics_from(conf, auc, task, names).items():
        finite = values[np.isfinite(values)]
        out[name] = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
    return out
