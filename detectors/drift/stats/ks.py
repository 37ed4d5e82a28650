"""``ks``: two-sample Kolmogorov-Smirnov test, numerical columns; the score is the two-sided p-value.

The statistic D (largest gap between the two empirical CDFs) is computed inside ClickHouse; the p-value
is computed here from D and the two sizes exactly as ``scipy.stats.ks_2samp(method="auto")`` does: the
exact distribution when both samples have at most 10,000 values (D first moved to the nearest multiple
of 1 / lcm(n1, n2), where every statistic of these sizes lies), Smirnov's asymptotic one otherwise and
whenever D came from the large-window histogram (docs/drift.md). Where scipy's exact computation fails
(a floating-point error, or a result outside [0, 1]), scipy switches to the asymptotic p-value of the
moved D, and so does this. Both computations are scipy's own, carried in
:mod:`detectors.drift.kolmogorov`, so neither ``scipy.stats`` (slow to import) nor a private scipy
module is imported.
"""

from __future__ import annotations

from detectors.drift.kolmogorov import ks_2samp_exact, kstwo_sf
from detectors.drift.stats.registry import Method, Summary, Value, register

MAX_EXACT_N = 10_000  # scipy's MAX_AUTO_N


def ks_p_value(d: float, n1: int, n2: int, exact: bool = True) -> float:
    """Two-sided p-value of the two-sample KS statistic ``d`` for sizes ``n1`` and ``n2`` (as scipy)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("KS needs two non-empty samples")
    if exact and max(n1, n2) <= MAX_EXACT_N:
        success, d, prob = ks_2samp_exact(n1, n2, d)
        if success:
            return prob
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(min(max(kstwo_sf(d, round(en)), 0.0), 1.0))


def _compute(summary: Summary) -> Value:
    if summary.ks_statistic is None:
        raise ValueError("KS statistic was not computed for this column")
    p = ks_p_value(summary.ks_statistic, summary.n_reference, summary.n_current, summary.ks_exact)
    return Value(summary.ks_statistic, p)


KS = register(
    Method(
        name="ks",
        kinds=frozenset({"numerical"}),
        score="p_value",
        default_threshold=0.05,
        compute=_compute,
        description="two-sample Kolmogorov-Smirnov test (two-sided), as scipy.stats.ks_2samp",
        stat_key="ks_p_value",
        report_key="ks",
    )
)
