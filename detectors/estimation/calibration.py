"""Map a classifier's scores to calibrated probabilities, fitted on the labelled reference.

Confidence-based estimation is only as good as the probabilities it sums: a score of 0.8 must mean
"positive four times in five". Scores that already are calibrated are used as they are (isotonic
regression would only add noise); others (over-confident models, scores outside [0, 1], margins) get
an isotonic map per class, one-vs-rest, with multiclass rows renormalised to sum to 1. The decision is
made on held-out folds of the reference: calibrate when the isotonic map lowers the Brier score there.

The isotonic fit is the pool-adjacent-violators algorithm written here (it matches scikit-learn's
``IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")``, which the tests check), so estimating a
classifier does not pay for importing scikit-learn. A fitted map is its breakpoints (the first and last
score of each constant block), applied with linear interpolation and clamped at the ends, so it
serialises to two short lists per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.estimation.metrics import FloatArray, IntArray

FOLDS = 5


@dataclass(frozen=True)
class Calibration:
    """Per class (x breakpoints, y values); ``maps`` empty when the scores are used as they are."""

    maps: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()

    @property
    def applied(self) -> bool:
        return bool(self.maps)

    def apply(self, scores: FloatArray) -> FloatArray:
        """(n, C) probabilities from (n, C) raw scores (rows sum to 1).

        Binary (two columns, one map): the map is the positive class's, the other column its complement.
        """
        if not self.maps:
            return _normalise(np.clip(scores, 0.0, 1.0))
        if len(self.maps) == 1 and scores.shape[1] == 2:
            positive = np.interp(scores[:, 1], *self.maps[0])
            return np.column_stack([1.0 - positive, positive])
        mapped = np.column_stack([np.interp(scores[:, k], x, y) for k, (x, y) in enumerate(self.maps)])
        return _normalise(mapped)

    def to_dict(self) -> dict[str, list[list[list[float]]]]:
        return {"maps": [[list(x), list(y)] for x, y in self.maps]}

    @classmethod
    def from_dict(cls, data: dict[str, list[list[list[float]]]]) -> Calibration:
        return cls(tuple((tuple(x), tuple(y)) for x, y in data["maps"]))


def _normalise(probabilities: FloatArray) -> FloatArray:
    if probabilities.shape[1] == 1:
        return probabilities
    total = probabilities.sum(axis=1, keepdims=True)
    even = np.full_like(probabilities, 1.0 / probabilities.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, probabilities / np.where(total > 0, total, 1.0), even)


def isotonic(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Non-decreasing least-squares fit of ``y`` on ``x`` (values clipped to [0, 1]) as breakpoints."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    distinct, start = np.unique(xs, return_index=True)
    weights = np.diff(np.r_[start, xs.size]).astype(np.float64)
    sums = np.add.reduceat(ys, start)
    # Adjacent points with equal means always share a level (averaging two unequal fitted values of equal
    # targets keeps the order and lowers the loss), so runs of them are pooled before the loop.
    means = sums / weights
    runs = np.flatnonzero(np.r_[True, means[1:] != means[:-1]])
    run_len = np.diff(np.r_[runs, means.size])
    sums, weights = np.add.reduceat(sums, runs), np.add.reduceat(weights, runs)
    block_sum: list[float] = []
    block_weight: list[float] = []
    block_len: list[int] = []
    for total, weight, length in zip(sums.tolist(), weights.tolist(), run_len.tolist(), strict=True):
        while block_sum and block_sum[-1] * weight >= total * block_weight[-1]:  # previous mean >= this one
            total += block_sum.pop()
            weight += block_weight.pop()
            length += block_len.pop()
        block_sum.append(total)
        block_weight.append(weight)
        block_len.append(length)
    fitted = np.clip(np.asarray(block_sum) / np.asarray(block_weight), 0.0, 1.0)
    ends = np.cumsum(block_len)
    firsts, lasts = ends - np.asarray(block_len), ends - 1
    index = np.unique(np.r_[firsts, lasts])
    values = np.repeat(fitted, block_len)
    return distinct[index], values[index]


def _fit_maps(scores: FloatArray, labels: IntArray) -> Calibration:
    maps = []
    for k in [1] if scores.shape[1] == 2 else range(scores.shape[1]):
        x, y = isotonic(scores[:, k], (labels == k).astype(np.float64))
        maps.append((tuple(x.tolist()), tuple(y.tolist())))
    return Calibration(tuple(maps))


def _brier(probabilities: FloatArray, labels: IntArray) -> float:
    truth = np.zeros_like(probabilities)
    truth[np.arange(labels.size), labels] = 1.0
    return float(np.mean(np.sum((probabilities - truth) ** 2, axis=1)))


def fit_calibration(scores: FloatArray, labels: IntArray, seed: int = 0) -> Calibration:
    """Isotonic maps when they calibrate better on held-out reference folds (always when scores leave [0, 1]).

    ``scores``: (n, C) the raw score of each class (binary: both columns, ``1 - s`` and ``s``);
    ``labels``: (n,) class codes.
    """
    if scores.min() < 0.0 or scores.max() > 1.0:
        return _fit_maps(scores, labels)
    order = np.random.default_rng(seed).permutation(labels.size)
    folds = np.array_split(order, FOLDS)
    raw_loss = calibrated_loss = 0.0
    for i, held in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        if np.unique(labels[train]).size < 2:
            return Calibration()
        maps = _fit_maps(scores[train], labels[train])
        raw_loss += _brier(Calibration().apply(scores[held]), labels[held]) * held.size
        calibrated_loss += _brier(maps.apply(scores[held]), labels[held]) * held.size
    return _fit_maps(scores, labels) if calibrated_loss < raw_loss else Calibration()
