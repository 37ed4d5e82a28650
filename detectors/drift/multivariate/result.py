"""One multivariate method's verdict on one window, as the contract's JSON entry and a detector_results row."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from detectors.report import DATASET, StatResult

MultivariateMethod = Literal["pca_reconstruction", "domain_classifier"]
METHODS: tuple[MultivariateMethod, ...] = ("pca_reconstruction", "domain_classifier")


@dataclass(frozen=True)
class MultivariateDrift:
    """``value`` above ``threshold`` is drift (both methods grow with the difference)."""

    method: MultivariateMethod
    value: float | None
    threshold: float | None
    drift: bool | None
    n_reference: int = 0  # rows used (at most the per-side limit)
    n_current: int = 0
    status: Literal["ok", "insufficient_data", "error"] = "ok"
    details: dict[str, Any] = field(default_factory=dict)

    def to_contract(self) -> dict[str, Any]:
        return {"method": self.method, "value": _finite(self.value), "threshold": self.threshold, "drift": self.drift}

    def to_result(self, detector: str, segment: str = "") -> StatResult:
        return StatResult(
            detector=detector,
            column=DATASET,
            statistic=self.method,
            value=_finite(self.value),
            threshold=self.threshold,
            drift=self.drift,
            segment=segment,
            status=self.status,
            n_reference=self.n_reference,
            n_current=self.n_current,
            details=dict(self.details),
        )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
