"""``chi2``: chi-square test of homogeneity, categorical columns; the score is the p-value.

The 2 x k contingency table is reference vs current counts per category, categories seen only in the
current window included (Evidently's goodness-of-fit variant divides by a zero expectation there and
returns an infinite statistic). As ``scipy.stats.chi2_contingency(correction=False)``: categories with
no count on either side are dropped, and a table with a single category (no degree of freedom) gives
statistic 0 and p-value 1. With ``weights`` (categories grouped by their pair of counts, see
:class:`~detectors.drift.stats.registry.Distribution`) each entry's terms count that many times and so does its
degree of freedom: the same statistic as on the table of every category.
"""

from __future__ import annotations

import numpy as np

from detectors.drift.stats.registry import Method, Summary, Value, register


def chi2_homogeneity(
    reference: np.ndarray, current: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float]:
    table = np.vstack([reference, current]).astype(float)
    kept = table.sum(axis=0) > 0
    table = table[:, kept]
    if weights is None:
        categories = table.shape[1]
        row_totals = table.sum(axis=1)
    else:
        weights = np.asarray(weights, dtype=float)[kept]
        categories = round(float(weights.sum()))
        row_totals = table @ weights
    if categories < 2 or (row_totals == 0).any():
        return 0.0, 1.0
    expected = np.outer(row_totals, table.sum(axis=0)) / row_totals.sum()
    terms = (table - expected) ** 2 / expected
    statistic = float(np.sum(terms)) if weights is None else float(terms.sum(axis=0) @ weights)
    dof = categories - 1
    from scipy.special import chdtrc  # the chi-square survival function, without importing scipy.stats

    return statistic, float(chdtrc(dof, statistic))


def _compute(summary: Summary) -> Value:
    return Value(*chi2_homogeneity(summary.bins.reference, summary.bins.current, summary.bins.weights))


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
        weighted=True,
    )
)
