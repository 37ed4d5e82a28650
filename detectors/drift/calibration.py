"""Thresholds calibrated to the window: what a distance reads when nothing has changed.

A fixed threshold (0.1 for Wasserstein, PSI, Jensen-Shannon, Hellinger) means different things at
different window sizes: the distance between two samples of the *same* distribution shrinks like
1/sqrt(n), so 0.1 alarms on noise in a window of a few hundred rows and misses real shifts in a window
of a million. A calibrated threshold is measured instead: the statistic between reference-sized and
window-sized samples both drawn (with replacement) from the reference's own values, repeated
:data:`REPLICATES` times; the threshold is their mean + 3 std on the log scale. Drawing both sides reproduces both
sources of noise of the real comparison (the reference is a sample too: its decile edges and std move),
which comparing reference chunks with the whole reference (that contains them) would understate.

Why on the log scale: these distances are positive and right-skewed (PSI is chi-square-like; a
Wasserstein distance on heavy-tailed data has a long tail), so mean + 3 std of the raw replicates let
1-2.4% of same-distribution windows alarm (bench/calibration.py), ten times a normal tail's 0.13%. Their
logarithm is close to normal: the threshold is exp(mean + 3 std) of the log replicates. An empirical
quantile was the other option, but the 99.9% quantile of 100 replicates is their maximum, a noisy
estimate, and more replicates cost every calibration. Measured rates are in docs/drift.md. Methods
that already give a p-value (ks, chi2, z) are calibrated by construction and
keep their thresholds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from detectors.drift.collect import categorical_value, numeric_value
from detectors.drift.large import numpy_column
from detectors.drift.sample import CATEGORICAL, NUMERICAL, Kind, Sample
from detectors.drift.stats.hellinger import hellinger
from detectors.drift.stats.jensen_shannon import js_distance
from detectors.drift.stats.psi import psi
from detectors.drift.stats.wasserstein import normalised
from monitor.storage import Storage

CALIBRATED_METHODS = frozenset({"wasserstein_norm", "psi", "jensen_shannon", "hellinger"})
REPLICATES = 100
SIGMAS = 3.0
POOL = 50_000  # reference values drawn from ClickHouse to resample from
MAX_SIDE = 200_000  # a side larger than this is simulated at this size (its noise is negligible by then)
FEW_VALUES = 5  # a numerical column with at most this many values is compared as categories (as the engine does)
STEPS_PER_DOUBLING = 4
TINY = 1e-12  # floor of a replicate before its logarithm (two identical category counts give 0)
ThresholdSource = Literal["default", "configured", "calibrated"]


@dataclass(frozen=True)
class Calibration:
    """The null distribution of ``method`` between ``n_reference`` and ``n_current`` values: the mean and
    std of the statistic's natural logarithm over ``replicates`` draws."""

    method: str
    n_reference: int
    n_current: int
    mean: float
    std: float
    replicates: int

    @property
    def threshold(self) -> float:
        return math.exp(self.mean + SIGMAS * self.std)


CalibrationKey = tuple[str, str, str, int]  # column, its expression, method, window size (bucketed)


class CalibrationCache(Protocol):
    """Where calibrations of a registered reference are kept (the service: ``reference_sides``).

    A run asks for all its columns at once and stores what it calibrated at once: one round trip
    each, not one per column.
    """

    def get_many(self, keys: list[CalibrationKey]) -> dict[CalibrationKey, Calibration]: ...

    def put_many(self, found: list[tuple[str, str, Calibration]]) -> None: ...


def window_bucket(n: int) -> int:
    """The window size calibrated for ``n`` rows: the grid point at or below it, a quarter of a doubling
    apart (so windows of 1,480 and 1,512 rows share one calibration; the smaller size is the stricter
    side, its threshold slightly higher)."""
    if n <= 16:
        return max(n, 1)
    return int(2 ** (math.floor(STEPS_PER_DOUBLING * math.log2(n)) / STEPS_PER_DOUBLING))


def calibrate(
    pool: np.ndarray,
    kind: Kind,
    method: str,
    n_reference: int,
    n_current: int,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> Calibration:
    """Resample ``pool`` (the reference's non-missing values, sorted here) ``replicates`` times into a
    reference of ``n_reference`` and a window of ``n_current`` values and measure ``method`` between them.

    Each replicate draws row positions into the sorted pool (``rng.integers``, exactly what
    ``rng.choice(sorted_pool, n)`` draws) and works on the count of each pool value on each side, so it
    costs O(pool) whatever the window's size, with no sort: the same statistics as on the drawn values.
    """
    if method not in CALIBRATED_METHODS:
        raise ValueError(f"method {method!r} is not a distance that can be calibrated")
    if len(pool) == 0:
        raise ValueError("no reference values to calibrate from")
    rng = np.random.default_rng(seed)
    as_categories = kind == CATEGORICAL or len(np.unique(pool)) <= FEW_VALUES
    if as_categories:
        values = np.sort(pool.astype(str)) if kind == CATEGORICAL else np.sort(pool)
        _, codes = np.unique(values, return_inverse=True)
        statistic = _categorical(method, codes)
    else:
        statistic = _numerical(method, np.sort(pool.astype(np.float64)))
    size = len(pool)
    sizes = (min(n_reference, MAX_SIDE), min(n_current, MAX_SIDE))
    found = np.empty(replicates)
    for index in range(replicates):
        ref = np.bincount(rng.integers(0, size, sizes[0]), minlength=size)
        cur = np.bincount(rng.integers(0, size, sizes[1]), minlength=size)
        found[index] = statistic(ref, cur)
    logs = np.log(np.maximum(found, TINY))
    return Calibration(method, n_reference, n_current, float(logs.mean()), float(logs.std(ddof=1)), replicates)


Counts = Callable[[np.ndarray, np.ndarray], float]  # (reference counts, current counts) per pool position


def _numerical(method: str, values: np.ndarray) -> Counts:
    """The statistic between two samples given as counts of each value of the sorted ``values``."""
    gaps = np.diff(values)
    if method == "wasserstein_norm":

        def wasserstein(ref: np.ndarray, cur: np.ndarray) -> float:
            n_ref, n_cur = ref.sum(), cur.sum()
            between = np.abs(np.cumsum(ref)[:-1] / n_ref - np.cumsum(cur)[:-1] / n_cur)
            mean = float(ref @ values) / n_ref
            std = float(np.sqrt(ref @ (values - mean) ** 2 / n_ref))
            return normalised(float(between @ gaps), std)

        return wasserstein
    measure = _MEASURES[method]

    def binned(ref: np.ndarray, cur: np.ndarray) -> float:
        ref_cum, cur_cum = np.cumsum(ref), np.cumsum(cur)
        edges = np.unique(_quantiles(values, ref_cum, np.arange(1, 10) / 10))
        below = np.searchsorted(values, edges, side="left")  # pool positions holding values < each edge
        r = np.diff(np.concatenate([[0], np.where(below > 0, ref_cum[below - 1], 0), [ref_cum[-1]]]))
        c = np.diff(np.concatenate([[0], np.where(below > 0, cur_cum[below - 1], 0), [cur_cum[-1]]]))
        return measure(r / ref_cum[-1], c / cur_cum[-1])

    return binned


def _quantiles(values: np.ndarray, cumulative: np.ndarray, q: np.ndarray) -> np.ndarray:
    """numpy.quantile's default (linear) of the sample holding ``values[i]`` cumulative[i] - cumulative[i-1]
    times, from its order statistics."""
    position = (cumulative[-1] - 1) * q
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, cumulative[-1] - 1)
    below = values[np.searchsorted(cumulative, low, side="right")]
    above = values[np.searchsorted(cumulative, high, side="right")]
    result: np.ndarray = below + (position - low) * (above - below)
    return result


def _categorical(method: str, codes: np.ndarray) -> Counts:
    if method == "wasserstein_norm":
        raise ValueError("wasserstein_norm does not apply to categories")
    measure = _MEASURES[method]
    categories = int(codes.max()) + 1

    def shares(counts: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.bincount(codes, weights=counts, minlength=categories) / counts.sum()
        return result

    return lambda ref, cur: measure(shares(ref), shares(cur))


_MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "psi": psi,
    "jensen_shannon": js_distance,
    "hellinger": hellinger,
}


def reference_pool(storage: Storage, sample: Sample, column: str, limit: int = POOL) -> np.ndarray:
    """At most ``limit`` non-missing values of ``column`` of ``sample``, drawn uniformly inside ClickHouse
    (all of them, sorted, when there are no more than ``limit``)."""
    spec = sample.columns[column]
    if spec.kind == NUMERICAL:
        value, keep = numeric_value(spec.expr), "isFinite(v)"
    else:
        value, keep = categorical_value(spec.expr), f"{spec.expr} IS NOT NULL"
    settings = dict(sample.settings) or None
    sql = f"SELECT {value} AS v FROM {sample.from_sql} WHERE ({sample.where_sql}) AND {keep}"
    total = int(storage.rows(f"SELECT count() FROM ({sql})", settings=settings)[0][0])
    # Every value when they fit, sorted (a reproducible pool, whatever order the storage returns them in)
    order = f" ORDER BY rand64() LIMIT {int(limit)}" if total > limit else " ORDER BY v"
    column_values = storage.arrow(sql + order, settings=settings).column("v")
    if spec.kind == NUMERICAL:
        return numpy_column(column_values).astype(np.float64)  # no pandas import (pyarrow's to_numpy has one)
    return np.asarray(column_values.to_pylist(), dtype=object)


def seed_of(column: str, n_current: int) -> int:
    """A fixed seed per column and window size, so a calibration is reproducible."""
    return zlib.crc32(f"{column}\x00{n_current}".encode())
