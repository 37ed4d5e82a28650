"""The drift methods, registered by name and column kind, and the summaries they work on.

A method is a pure function of a :class:`Summary`: small numbers computed inside ClickHouse (counts per
bin or category, the KS statistic, the Wasserstein distance, the reference std). It never sees raw
values, so the same method serves a 100-row file and a 10-million-row window.

Every method says which way is bad: a ``p_value`` method drifts when its p-value is *below* the
threshold, a ``distance`` method when its statistic is *at or above* it (Evidently's conventions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

Kind = Literal["numerical", "categorical"]
Score = Literal["p_value", "distance"]
KINDS: tuple[Kind, ...] = ("numerical", "categorical")


@dataclass(frozen=True)
class Distribution:
    """Counts of the same bins (numerical) or categories (categorical) on both sides, aligned.

    ``weights``: None, or how many categories each entry stands for. A column with very many categories
    (an ID) arrives grouped by its pair of counts: every category counted r times in the reference and c
    times in the current side is one entry (r, c) weighing the number of such categories. Every
    statistic over categories is a sum of per-category terms that depend on that pair and the totals
    alone, so the grouped form gives the same numbers from a few hundred entries instead of a million;
    its labels then only name the pairs.
    """

    labels: tuple[str, ...]
    reference: np.ndarray
    current: np.ndarray
    weights: np.ndarray | None = None

    def totals(self) -> tuple[float, float]:
        """Each side's number of values."""
        if self.weights is None:
            return float(self.reference.sum()), float(self.current.sum())
        return float(self.reference @ self.weights), float(self.current @ self.weights)

    def proportions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each side's counts divided by that side's total (no smoothing, no renormalisation)."""
        ref_total, cur_total = self.totals()
        return self.reference / ref_total, self.current / cur_total

    def expanded(self) -> Distribution:
        """One entry per category (a grouped distribution repeated by its weights; labels made up)."""
        if self.weights is None:
            return self
        counts = self.weights.astype(np.int64)
        labels = tuple(f"{label}#{i}" for label, n in zip(self.labels, counts, strict=True) for i in range(n))
        return Distribution(labels, np.repeat(self.reference, counts), np.repeat(self.current, counts))


@dataclass(frozen=True)
class Summary:
    """What ClickHouse computed for one column: enough for every registered method.

    ``bins`` holds the contract's decile bins for a numerical column and the categories for a
    categorical one. ``ks_exact`` is False when the KS statistic came from the large-window histogram
    (then only the asymptotic p-value is meaningful).
    """

    kind: Kind
    n_reference: int
    n_current: int
    bins: Distribution
    ks_statistic: float | None = None
    ks_exact: bool = True
    wasserstein: float | None = None
    reference_std: float | None = None

    def expanded(self) -> Summary:
        """The same summary with one bin per category (for a method that does not take weights)."""
        return self if self.bins.weights is None else replace(self, bins=self.bins.expanded())


@dataclass(frozen=True)
class Value:
    """A method's result: its statistic and, for tests, its p-value."""

    statistic: float
    p_value: float | None = None


@dataclass(frozen=True)
class Method:
    """A named drift method: which kinds it accepts, how to compute it, and which way is drift."""

    name: str
    kinds: frozenset[Kind]
    score: Score
    default_threshold: float
    compute: Callable[[Summary], Value]
    description: str
    stat_key: str  # the statistic's name in detector_results (``ks_p_value``, ``js``, ...)
    # Its key in the ``stats`` block of ``monitor drift``, where every column of a kind the method
    # accepts reports it whichever method decides (``ks``, ``js``, ...); None: reported only when deciding.
    report_key: str | None = None
    # Whether ``compute`` honours ``Distribution.weights`` (categories grouped by their counts); a method
    # that does not is given the expanded distribution, one entry per category.
    weighted: bool = False

    def evaluate(self, summary: Summary) -> Value:
        """``compute`` on ``summary``, expanded first where the method does not take weights."""
        return self.compute(summary if self.weighted else summary.expanded())

    def decisive(self, value: Value) -> float:
        """The number compared with the threshold: the p-value of a test, else the statistic."""
        if self.score == "p_value":
            if value.p_value is None:
                raise ValueError(f"method {self.name} returned no p-value")
            return value.p_value
        return value.statistic

    def drifted(self, decisive: float, threshold: float) -> bool:
        """Drift when a p-value is below the threshold, or a distance at or above it."""
        return decisive < threshold if self.score == "p_value" else decisive >= threshold

    @property
    def direction(self) -> str:
        return "drift when below" if self.score == "p_value" else "drift when at or above"


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise RuntimeError(f"drift method {method.name!r} registered twice")
    if method.report_key is not None and any(m.report_key == method.report_key for m in REGISTRY.values()):
        raise RuntimeError(f"two drift methods report {method.report_key!r}")
    REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    """Forget a method (tests that register one of their own)."""
    REGISTRY.pop(name, None)


def reported(kind: Kind) -> tuple[Method, ...]:
    """The methods every column of ``kind`` reports in its ``stats`` block."""
    return tuple(m for m in REGISTRY.values() if m.report_key is not None and kind in m.kinds)
