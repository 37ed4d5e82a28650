"""Thresholds from the spread of a metric between reference chunks (mean plus or minus three standard
deviations, clamped to the metric's range), as NannyML's ``StandardDeviationThreshold`` does.

The spread is measured on reference chunks of the size the current data is cut into, or, when the
reference holds fewer than :data:`MIN_CHUNKS` of them, on smaller chunks and scaled by the square root
of the size ratio (sampling error shrinks as 1/sqrt(rows)). A :class:`Band` therefore serves any chunk
size, which lets the service reuse one fitted state for windows of varying size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

MIN_CHUNKS = 10
SIGMAS = 3.0


@dataclass(frozen=True)
class Band:
    """A metric's reference mean and spread between chunks of ``rows`` rows, and its hard limits."""

    mean: float
    std: float
    rows: int
    minimum: float = 0.0
    maximum: float = 1.0

    def at(self, rows: int) -> tuple[float, float]:
        """(lower, upper) thresholds for a chunk of ``rows`` rows."""
        spread = SIGMAS * self.std * math.sqrt(self.rows / max(rows, 1))
        return max(self.minimum, self.mean - spread), min(self.maximum, self.mean + spread)

    def to_dict(self) -> dict[str, float | None]:
        """JSON-safe: an infinite maximum (error metrics) is None."""
        top = None if math.isinf(self.maximum) else self.maximum
        return {"mean": self.mean, "std": self.std, "rows": self.rows, "minimum": self.minimum, "maximum": top}

    @classmethod
    def from_dict(cls, data: Mapping[str, float | None]) -> Band:
        def number(key: str, default: float) -> float:
            value = data.get(key)
            return default if value is None else float(value)

        return cls(
            number("mean", 0.0),
            number("std", 0.0),
            int(number("rows", 1)),
            number("minimum", 0.0),
            number("maximum", float("inf")),
        )


def reference_chunk_rows(reference_rows: int, chunk_rows: int) -> int:
    """The chunk size to measure the spread at: ``chunk_rows``, or smaller so the reference has enough chunks."""
    return max(1, min(chunk_rows, reference_rows // MIN_CHUNKS))


def fit_bands(
    reference_rows: int,
    chunk_rows: int,
    metric_of: Callable[[int, int], Mapping[str, float]],
    bounds: tuple[float, float],
) -> dict[str, Band]:
    """One :class:`Band` per metric; ``metric_of(start, end)`` gives the realized metrics of reference rows."""
    size = reference_chunk_rows(reference_rows, chunk_rows)
    per_chunk: dict[str, list[float]] = {}
    for start in range(0, reference_rows - size + 1, size):
        for name, value in metric_of(start, start + size).items():
            per_chunk.setdefault(name, []).append(value)
    bands: dict[str, Band] = {}
    for name, values in per_chunk.items():
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size >= 2:
            bands[name] = Band(float(finite.mean()), float(finite.std(ddof=1)), size, bounds[0], bounds[1])
    return bands
