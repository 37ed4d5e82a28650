"""PCA reconstruction error: how badly a window's rows are rebuilt from the reference's main directions.

Fit on the reference (NannyML's data reconstruction method): encode and standardise
(:mod:`detectors.drift.multivariate.encoding`), keep the fewest principal components whose explained variance
reaches :data:`VARIANCE` (0.65, NannyML's default), and measure each row's reconstruction error, the
Euclidean distance between the standardised row and its projection back from those components. A
window's value is the mean error of its rows. When the relations between columns change (a correlation
flips) rows leave the reference's principal subspace and the error rises, even if every column's own
distribution is unchanged.

Threshold: the spread of the mean error over reference chunks of the window's own size, mean + 3 std.
The reference's per-row errors are computed out of fold (the components refitted without the rows being
scored, :data:`FOLDS` folds), so they are not flattered by having shaped the components. A chunk of m
rows drawn from the reference has a mean error with mean mu and std sigma / sqrt(m) (mu, sigma: of
the per-row errors), which is what chunks give when drawn independently; the fit keeps mu and sigma,
so the threshold for any window size needs no refit. Only the upper side alarms: a window rebuilt
*better* than the reference is not a shift that breaks a model (NannyML also alarms below).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.drift.multivariate.encoding import Encoder, fit_encoder
from detectors.drift.multivariate.rows import Groups, Rows

VARIANCE = 0.65
FOLDS = 5
SIGMAS = 3.0


@dataclass(frozen=True)
class PcaFit:
    """What was fitted on a reference: the encoder, the kept components and the per-row error spread."""

    encoder: Encoder
    center: np.ndarray  # columns' means of the standardised reference
    components: np.ndarray  # k x columns, orthonormal rows
    error_mean: float  # out-of-fold per-row reconstruction error of the reference
    error_std: float
    rows: int

    def errors(self, rows: Rows) -> np.ndarray:
        """Each row's reconstruction error."""
        with _one_blas_thread():
            return _errors(self.encoder.transform(rows), self.center, self.components)

    def value(self, rows: Rows) -> float:
        """The mean reconstruction error of ``rows``."""
        return float(self.errors(rows).mean()) if rows.count else float("nan")

    def group_values(self, groups: Groups) -> list[float]:
        """:meth:`value` of each group, the rows of all groups encoded and scored together."""
        errors = self.errors(groups.rows)
        return [float(errors[start:end].mean()) if end > start else float("nan") for start, end in groups.bounds]

    def threshold(self, window_rows: int) -> float:
        """Upper threshold of a window of ``window_rows`` rows: mean + 3 std of its mean error when nothing
        changed, counting the noise of the reference's own mean (estimated from :attr:`rows` rows) too."""
        spread = np.sqrt(1.0 / max(window_rows, 1) + 1.0 / max(self.rows, 1))
        return float(self.error_mean + SIGMAS * self.error_std * spread)

    def to_json(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.to_json(),
            "center": self.center.tolist(),
            "components": self.components.tolist(),
            "error_mean": self.error_mean,
            "error_std": self.error_std,
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PcaFit:
        columns = len(data["center"])
        return cls(
            Encoder.from_json(data["encoder"]),
            np.asarray(data["center"], dtype=np.float64),
            np.asarray(data["components"], dtype=np.float64).reshape(-1, columns),
            float(data["error_mean"]),
            float(data["error_std"]),
            int(data["rows"]),
        )


def fit(reference: Rows, variance: float = VARIANCE, folds: int = FOLDS, seed: int = 0) -> PcaFit:
    """Fit on the reference rows (at least two); the error spread is out of fold."""
    if reference.count < 2:
        raise ValueError("PCA reconstruction needs at least two reference rows")
    with _one_blas_thread():
        return _fit(reference, variance, folds, seed)


def _fit(reference: Rows, variance: float, folds: int, seed: int) -> PcaFit:
    encoder = fit_encoder(reference)
    matrix = encoder.transform(reference)
    center, components = _components(matrix, variance)
    errors = np.empty(reference.count)
    folds = max(2, min(folds, reference.count))
    assignment = np.random.default_rng(seed).permutation(reference.count) % folds
    # each fold's covariance from the sums over all rows minus the fold's own: no copy of the other rows
    total, scatter = matrix.sum(axis=0), matrix.T @ matrix
    for fold in range(folds):
        held = matrix[assignment == fold]
        rows = reference.count - len(held)
        mean = (total - held.sum(axis=0)) / rows
        covariance = (scatter - held.T @ held - rows * np.outer(mean, mean)) / max(rows - 1, 1)
        # as many components as the full fit keeps: near the variance share, a fold could keep one more or
        # one fewer and its errors would measure something else
        errors[assignment == fold] = _errors(held, mean, _leading(covariance, variance, keep=len(components)))
    return PcaFit(encoder, center, components, float(errors.mean()), float(errors.std(ddof=1)), reference.count)


def _one_blas_thread() -> AbstractContextManager[object]:
    """BLAS on one thread: these matrices are small (rows x tens of columns), and OpenBLAS's worker
    threads spinning beside ClickHouse's doubled the CPU time of a fit and slowed it down."""
    from threadpoolctl import threadpool_limits

    limiter: AbstractContextManager[object] = threadpool_limits(1, user_api="blas")
    return limiter


def _components(matrix: np.ndarray, variance: float, keep: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The centre and the fewest leading components explaining at least ``variance`` of the variance
    (scikit-learn's rule for a float ``n_components``; none when there is no variance), or the ``keep``
    leading ones, from the covariance's eigenvectors."""
    center = matrix.mean(axis=0)
    centered = matrix - center
    covariance = centered.T @ centered / max(len(matrix) - 1, 1)
    return center, _leading(covariance, variance, keep)


def _leading(covariance: np.ndarray, variance: float, keep: int | None = None) -> np.ndarray:
    """The leading eigenvectors of ``covariance`` (as rows), as :func:`_components` chooses them."""
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    total = values.sum()
    if keep is None and total <= 0:
        # a reference without variance (every column constant) has no direction to keep: rows are rebuilt
        # as the reference's one point, so any departure from its constants is an error; keeping an
        # arbitrary eigenvector of the zero matrix rebuilt a change along it perfectly (value 0, no drift)
        keep = 0
    if keep is None:
        keep = int(np.searchsorted(np.cumsum(values) / total, variance, side="right")) + 1
    result: np.ndarray = vectors[:, : min(keep, len(values))].T
    return result


def _errors(matrix: np.ndarray, center: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Each row's distance to its projection on ``components`` (orthonormal rows), worked out on the
    (columns, rows) transpose, where each column is contiguous."""
    centered = np.subtract(matrix.T, center[:, None], order="C")  # (columns, rows)
    centered -= components.T @ (components @ centered)
    if centered.size and max(float(centered.max()), -float(centered.min())) > 1e150:
        # a row far off the reference (a value of 1e300 where the reference's std is 1): its squares would
        # overflow to inf, so each row is divided by its largest coordinate first
        scale = np.abs(centered).max(axis=0)
        scale[scale == 0] = 1.0
        centered /= scale
        centered *= centered
        scaled: np.ndarray = np.sqrt(centered.sum(axis=0)) * scale
        return scaled
    centered *= centered
    result: np.ndarray = np.sqrt(centered.sum(axis=0))
    return result
