"""``wasserstein_norm``: first Wasserstein distance divided by the reference's population std, numerical.

W1 = ∫|F_ref - F_cur| dx is computed inside ClickHouse (exactly over the merged ECDFs, or from the
large-window histogram within the contract's 1%). Dividing by the reference std makes 0.1 mean "the
distributions are a tenth of a standard deviation apart"; a constant reference (std 0) divides by 1e-3.
"""

from __future__ import annotations

from detectors.drift.stats.registry import Method, Summary, Value, register

ZERO_STD_NORM = 1e-3


def normalised(wasserstein: float, reference_std: float) -> float:
    return wasserstein / (reference_std if reference_std > 0 else ZERO_STD_NORM)


def _compute(summary: Summary) -> Value:
    if summary.wasserstein is None or summary.reference_std is None:
        raise ValueError("Wasserstein distance was not computed for this column")
    return Value(normalised(summary.wasserstein, summary.reference_std))


WASSERSTEIN_NORM = register(
    Method(
        name="wasserstein_norm",
        kinds=frozenset({"numerical"}),
        score="distance",
        default_threshold=0.1,
        compute=_compute,
        description="first Wasserstein distance / reference population std (1e-3 where the std is 0)",
        stat_key="wasserstein_norm",
        report_key="wasserstein_norm",
    )
)
