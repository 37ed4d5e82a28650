"""``chi2``: chi-square test of homogeneity, categorical columns; the score is the p-value.

The 2 x k contingency table is reference vs current counts per category, categories seen only in the
current window included (Evidently's goodness-of-fit variant divides by a zero expectation there and
returns an infinite statistic). As ``scipy.stats.chi2_contingency(correction=False)``: categories with
no count on either side are dropped, and a table with a single category (no degree of freedom) gives
statistic 0 and p-value 1.
"""

from __future__ import annotations

import numpy as np

from detectors.drift.stats.registry import Method, Summary, Value, register


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    table = np.vstack([reference, current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    from scipy.special import chdtrc  # the chi-square survival function, without importing scipy.stats

    return statistic, float(chdtrc(dof, statistic))


def _compute(summary: Summary) -> Value:
    return Value(*chi2_homogeneity(summary.bins.reference, summary.bins.current))


CHI2 = register(
    Method(
        name="chi2",
        kinds=frozenset({"categorical"}),
        score="p_value",
        default_threshold=0.05,
        compute=_compute,
        description="chi-square test of homogeneity, as scipy.stats.chi2_contingency without correction",
        stat_key="chi2_p_value",
        report_key="chi2",
    )
)
