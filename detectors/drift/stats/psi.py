"""``psi``: population stability index on the decile bins (numerical) or categories (categorical).

PSI = Σ (c - r) · ln(c / r) over bins, on each side's proportions, where a proportion of 0 is replaced by
1e-4 and nothing is renormalised. Bins of a numerical column come from the reference's deciles, so they
never move with the current data.
"""

from __future__ import annotations

import numpy as np

from detectors.drift.stats.registry import Method, Summary, Value, register

ZERO_PROPORTION = 1e-4


def psi(reference: np.ndarray, current: np.ndarray, weights: np.ndarray | None = None) -> float:
    """PSI of two aligned proportion arrays; ``weights``: how many bins each entry stands for."""
    r = np.where(reference == 0, ZERO_PROPORTION, reference)
    c = np.where(current == 0, ZERO_PROPORTION, current)
    terms = (c - r) * np.log(c / r)
    return float(np.sum(terms)) if weights is None else float(terms @ weights)


def _compute(summary: Summary) -> Value:
    return Value(psi(*summary.bins.proportions(), summary.bins.weights))


PSI = register(
    Method(
        name="psi",
        kinds=frozenset({"numerical", "categorical"}),
        score="distance",
        default_threshold=0.1,
        compute=_compute,
        description="population stability index, zero proportions replaced by 1e-4",
        stat_key="psi",
        report_key="psi",
        weighted=True,
    )
)
