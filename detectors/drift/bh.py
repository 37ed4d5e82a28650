"""Benjamini-Hochberg: control the false discovery rate across the columns tested with p-values.

With 25 columns tested at 0.05 each, one false alarm per run is to be expected on unchanged data;
adjusting the p-values keeps the expected share of false alarms among the flagged columns at the level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (as ``statsmodels``' ``fdr_bh``), in the input order.

    adjusted p_(i) = min over j ≥ i of (m / j) · p_(j), capped at 1, where p_(1) ≤ ... ≤ p_(m).
    A column is a discovery at level q when its adjusted p-value is at most q.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="mergesort")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted.tolist()
