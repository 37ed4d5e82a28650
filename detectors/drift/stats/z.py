"""``z``: two-proportion z-test for a column with at most two values; the score is the two-sided p-value.

Evidently's default for a small reference (≤ 1,000 values) whose column takes at most two values: the
share of the first value (in sorted order) is compared between the sides with a pooled standard error.
Both sides holding the same single value gives p = 1.
"""

from __future__ import annotations

import math

from detectors.drift.stats.registry import Method, Summary, Value, register


def _compute(summary: Summary) -> Value:
    bins = summary.bins
    present = [i for i in range(len(bins.labels)) if bins.reference[i] + bins.current[i] > 0]
    if len(present) > 2:
        raise ValueError("the z-test compares a column with at most two values")
    n1, n2 = float(bins.reference.sum()), float(bins.current.sum())
    first = sorted(present, key=lambda i: bins.labels[i])[0] if present else 0
    p1 = 1.0 - bins.reference[first] / n1
    p2 = 1.0 - bins.current[first] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return Value(0.0, 1.0)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    from scipy.special import ndtr  # the normal CDF, without importing scipy.stats

    return Value(float(z), float(2 * ndtr(-abs(z))))


Z = register(
    Method(
        name="z",
        kinds=frozenset({"categorical"}),
        score="p_value",
        default_threshold=0.05,
        compute=_compute,
        description="two-proportion z-test (columns with at most two values), as Evidently",
        stat_key="z_p_value",
    )
)
