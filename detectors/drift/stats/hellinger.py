"""``hellinger``: Hellinger distance between the binned (numerical) or categorical distributions (0..1).

H = sqrt(Σ (√p - √q)² / 2) on the raw proportions (the same bins as PSI and JS).
"""

from __future__ import annotations

import numpy as np

from detectors.drift.stats.registry import Method, Summary, Value, register


def hellinger(p: np.ndarray, q: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Hellinger distance of two aligned proportion arrays; ``weights``: how many bins each entry stands for."""
    terms = (np.sqrt(p) - np.sqrt(q)) ** 2
    return float(np.sqrt((np.sum(terms) if weights is None else terms @ weights) / 2.0))


def _compute(summary: Summary) -> Value:
    return Value(hellinger(*summary.bins.proportions(), summary.bins.weights))


HELLINGER = register(
    Method(
        name="hellinger",
        kinds=frozenset({"numerical", "categorical"}),
        score="distance",
        default_threshold=0.1,
        compute=_compute,
        description="Hellinger distance on raw proportions",
        stat_key="hellinger",
        report_key="hellinger",
        weighted=True,
    )
)
