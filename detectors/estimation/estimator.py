"""Fit on a labelled reference once, then estimate any number of unlabelled chunks.

:func:`fit` returns a :class:`Fitted` state: the calibration maps (classifiers) or loss models
(regressors), each metric's reference band and the reference's own metrics. It serialises to a JSON
object (:meth:`Fitted.to_dict`), so a service fits once per reference and stores it.
:func:`estimate` never sees labels; :func:`realized` computes the true metrics when labels exist.

Each estimate carries a confidence band of :data:`BAND_SIGMAS` sampling standard deviations and
alerts when the estimate leaves the reference band of the chunk's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.estimation import cbpe
from detectors.estimation.calibration import Calibration, fit_calibration
from detectors.estimation.dle import LossModels, fit_loss_models
from detectors.estimation.metrics import (
    BOUNDS,
    FloatArray,
    IntArray,
    Task,
    label_metrics,
    regression_metrics,
)
from detectors.estimation.thresholds import Band, fit_bands

BAND_SIGMAS = 3.0
STATE_VERSION = 3  # 3: loss spreads pooled (2 divided by predicted losses near 0); 2: our own boosters (1: pickles)


@dataclass(frozen=True)
class ClassifierInputs:
    """What a classifier logged, without labels: raw scores (n, C) and predicted class codes (n,).

    Binary: two columns, ``1 - score`` and ``score`` of the positive class (code 1).
    """

    scores: FloatArray
    predicted: IntArray

    @property
    def rows(self) -> int:
        return int(self.predicted.size)

    def take(self, start: int, end: int) -> ClassifierInputs:
        return ClassifierInputs(self.scores[start:end], self.predicted[start:end])

    def where(self, keep: NDArray[np.bool_]) -> ClassifierInputs:
        return ClassifierInputs(self.scores[keep], self.predicted[keep])


@dataclass(frozen=True)
class RegressorInputs:
    """What a regressor logged, without labels: feature columns and the prediction (n,)."""

    columns: Mapping[str, NDArray[Any]]
    prediction: FloatArray

    @property
    def rows(self) -> int:
        return int(self.prediction.size)

    def take(self, start: int, end: int) -> RegressorInputs:
        return RegressorInputs({k: v[start:end] for k, v in self.columns.items()}, self.prediction[start:end])

    def where(self, keep: NDArray[np.bool_]) -> RegressorInputs:
        return RegressorInputs({k: v[keep] for k, v in self.columns.items()}, self.prediction[keep])


Inputs = ClassifierInputs | RegressorInputs


@dataclass(frozen=True)
class Estimate:
    """One metric of one chunk: the estimate, its confidence band, the reference band and the verdict."""

    value: float | None
    lower: float | None
    upper: float | None
    alert: bool
    threshold_lower: float | None = None
    threshold_upper: float | None = None


@dataclass(frozen=True)
class Fitted:
    """Everything estimation needs from the reference; small and serialisable."""

    task: Task
    metrics: tuple[str, ...]
    classes: tuple[str, ...]
    reference_rows: int
    reference: Mapping[str, float | None]
    bands: Mapping[str, Band]
    calibration: Calibration | None = None
    loss: LossModels | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "task": self.task,
            "metrics": list(self.metrics),
            "classes": list(self.classes),
            "reference_rows": self.reference_rows,
            "reference": dict(self.reference),
            "bands": {name: band.to_dict() for name, band in self.bands.items()},
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "loss": None if self.loss is None else self.loss.to_dict(),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fitted:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"fitted estimation state version {data.get('version')!r} is not {STATE_VERSION}")
        return cls(
            task=data["task"],
            metrics=tuple(data["metrics"]),
            classes=tuple(data["classes"]),
            reference_rows=int(data["reference_rows"]),
            reference=dict(data["reference"]),
            bands={name: Band.from_dict(b) for name, b in data["bands"].items()},
            calibration=None if data["calibration"] is None else Calibration.from_dict(data["calibration"]),
            loss=None if data["loss"] is None else LossModels.from_dict(data["loss"]),
            meta=dict(data.get("meta") or {}),
        )


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _classification_realized(
    task: Task, metrics: Sequence[str], n_classes: int, inputs: ClassifierInputs, labels: IntArray
) -> dict[str, float | None]:
    keep = labels >= 0
    if not keep.any():
        return dict.fromkeys(metrics)
    known = inputs.where(keep)
    values = label_metrics(labels[keep][None, :], known.predicted, known.scores, task, metrics)
    return {name: _finite(float(v[0])) for name, v in values.items()}


def realized(fitted: Fitted, inputs: Inputs, labels: NDArray[Any]) -> dict[str, float | None]:
    """The true metrics of rows whose label is known (class code >= 0, or a finite regression target)."""
    if isinstance(inputs, ClassifierInputs):
        return _classification_realized(fitted.task, fitted.metrics, len(fitted.classes), inputs, labels)
    truth = np.asarray(labels, dtype=np.float64)
    keep = np.isfinite(truth)
    values = regression_metrics(truth[keep], inputs.prediction[keep], fitted.metrics)
    return {name: _finite(v) for name, v in values.items()}


def fit(
    task: Task,
    inputs: Inputs,
    labels: NDArray[Any],
    classes: Sequence[str],
    metrics: Sequence[str],
    chunk_rows: int,
    seed: int = 0,
) -> Fitted:
    """Fit on a labelled reference; bands are measured at ``chunk_rows`` (see :mod:`thresholds`)."""
    calibration: Calibration | None = None
    loss: LossModels | None = None
    if isinstance(inputs, ClassifierInputs):
        calibration = fit_calibration(inputs.scores, labels, seed)
    else:
        truth = np.asarray(labels, dtype=np.float64)
        loss = fit_loss_models(inputs.columns, inputs.prediction, truth, metrics, seed)
    partial = Fitted(task, tuple(metrics), tuple(classes), inputs.rows, {}, {}, calibration, loss)

    def metric_of(start: int, end: int) -> dict[str, float]:
        values = realized(partial, inputs.take(start, end), labels[start:end])
        return {k: float("nan") if v is None else v for k, v in values.items()}

    bands = fit_bands(inputs.rows, chunk_rows, metric_of, BOUNDS[task])
    meta = {"calibrated": bool(calibration and calibration.applied)}
    own = realized(partial, inputs, labels)
    return Fitted(task, tuple(metrics), tuple(classes), inputs.rows, own, bands, calibration, loss, meta)


def estimate(fitted: Fitted, inputs: Inputs, seed: int = 0) -> dict[str, Estimate]:
    """Each metric's estimate over all rows of ``inputs`` (one chunk), with band and alert."""
    return estimate_chunks(fitted, inputs, [(0, inputs.rows)], first_seed=seed)[0]


def estimate_chunks(
    fitted: Fitted, inputs: Inputs, bounds: Sequence[tuple[int, int]], first_seed: int = 0
) -> list[dict[str, Estimate]]:
    """:func:`estimate` for each ``(start, end)`` run of rows (chunk i seeded ``first_seed + i``).

    Calibration and loss models run once over all rows, then each chunk only sums its slice: a model's
    ``predict`` has a fixed cost per call that would otherwise be paid per chunk.
    """
    out: list[dict[str, Estimate]] = []
    if isinstance(inputs, ClassifierInputs):
        if fitted.calibration is None:
            raise ValueError("a classifier's inputs need a state fitted on a classifier")
        probabilities = fitted.calibration.apply(inputs.scores)
        for i, (start, end) in enumerate(bounds):
            p, chunk = probabilities[start:end], inputs.take(start, end)
            values = cbpe.estimate_values(p, chunk.predicted, chunk.scores, fitted.task, fitted.metrics)
            spread = cbpe.sampling_sd(p, chunk.predicted, chunk.scores, fitted.task, fitted.metrics, first_seed + i)
            out.append(_verdicts(fitted, {n: (values[n], spread[n]) for n in fitted.metrics}, end - start))
        return out
    if fitted.loss is None:
        raise ValueError("a regressor's inputs need a state fitted on a regressor")
    per_row = fitted.loss.row_losses(inputs.columns, inputs.prediction)
    for start, end in bounds:
        pairs = fitted.loss.summarise({k: v[start:end] for k, v in per_row.items()}, fitted.metrics)
        out.append(_verdicts(fitted, pairs, end - start))
    return out


def _verdicts(fitted: Fitted, pairs: Mapping[str, tuple[float, float]], rows: int) -> dict[str, Estimate]:
    low, high = BOUNDS[fitted.task]
    out: dict[str, Estimate] = {}
    for name, (value, sd) in pairs.items():
        band = fitted.bands.get(name)
        t_low, t_high = band.at(rows) if band is not None else (None, None)
        if not np.isfinite(value):
            out[name] = Estimate(None, None, None, False, t_low, t_high)
            continue
        margin = BAND_SIGMAS * sd if np.isfinite(sd) else 0.0
        alert = band is not None and not (t_low <= value <= t_high)  # type: ignore[operator]
        out[name] = Estimate(value, max(low, value - margin), min(high, value + margin), alert, t_low, t_high)
    return out
