"""Map a classifier's scores to calibrated probabilities, fitted on the labelled reference.

Confidence-based estimation is only as good as the probabilities it sums: a score of 0.8 must mean
"positive four times in five". Scores that already are calibrated are used as they are (isotonic
regression would only add noise); others (over-confident models, scores outside [0, 1], margins) get
an isotonic map per class, one-vs-rest, with multiclass rows renormalised to sum to 1. The decision is
made on held-out folds of the reference: calibrate when the isotonic map lowers the Brier score there.

A fitted map is its breakpoints, applied with linear interpolation and clamped at the ends (what
scikit-learn's ``IsotonicRegression(out_of_bounds="clip").predict`` does), so it serialises to two
short lists per class.
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
        """(n, C) probabilities from (n, C) raw scores (rows sum to 1)."""
        if not self.maps:
            return _normalise(np.clip(scores, 0.0, 1.0))
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


def _fit_maps(scores: FloatArray, labels: IntArray) -> Calibration:
    from sklearn.isotonic import IsotonicRegression

    maps = []
    for k in range(scores.shape[1]):
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(scores[:, k], (labels == k).astype(np.float64))
        maps.append((tuple(map(float, model.X_thresholds_)), tuple(map(float, model.y_thresholds_))))
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
