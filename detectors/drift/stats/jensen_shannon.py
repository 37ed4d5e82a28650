"""``jensen_shannon``: Jensen-Shannon *distance* with log base 2 (0..1), numerical or categorical.

JS = sqrt((KL(p‖m) + KL(q‖m)) / 2) with m = (p + q) / 2, on the raw proportions of the decile bins
(numerical) or categories (categorical). Base 2 bounds it by 1; scipy's default base e would make the
same data read 1/sqrt(ln 2) ≈ 1.2 times smaller, which is why the base is fixed here.
"""

from __future__ import annotations

import numpy as np

from detectors.drift.stats.registry import Method, Summary, Value, register


def _kl(p: np.ndarray, m: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Σ p·ln(p/m) over p > 0 (scipy's ``rel_entr`` convention: 0·ln 0 = 0; m > 0 wherever p > 0)."""
    mask = p > 0
    terms = p[mask] * np.log(p[mask] / m[mask])
    return float(np.sum(terms)) if weights is None else float(terms @ weights[mask])


def js_distance(p: np.ndarray, q: np.ndarray, weights: np.ndarray | None = None) -> float:
    """JS distance of two aligned proportion arrays; ``weights``: how many bins each entry stands for."""
    m = (p + q) / 2.0
    divergence = (_kl(p, m, weights) + _kl(q, m, weights)) / 2.0 / np.log(2.0)
    return float(np.sqrt(max(divergence, 0.0)))


def _compute(summary: Summary) -> Value:
    return Value(js_distance(*summary.bins.proportions(), summary.bins.weights))


JENSEN_SHANNON = register(
    Method(
        name="jensen_shannon",
        kinds=frozenset({"numerical", "categorical"}),
        score="distance",
        default_threshold=0.1,
        compute=_compute,
        description="Jensen-Shannon distance, log base 2, on raw proportions",
        stat_key="js",
        report_key="js",
        weighted=True,
    )
)
