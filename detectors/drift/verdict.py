"""The drift engine's options and results: what :func:`detectors.drift.engine.compare` takes and returns.

:class:`DatasetDrift` renders exactly the contract's ``monitor drift --format json`` document
(:meth:`DatasetDrift.to_contract`) and the ``detector_results`` rows (:meth:`DatasetDrift.to_results`),
so the CLI, the service and the API all speak about the same numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from detectors.drift.calibration import ThresholdSource
from detectors.drift.methods import get_method
from detectors.drift.multivariate.result import METHODS as MULTIVARIATE_METHODS
from detectors.drift.multivariate.result import MultivariateDrift
from detectors.drift.multivariate.rows import DEFAULT_ROWS
from detectors.drift.sample import CATEGORICAL, Kind
from detectors.drift.stats import REGISTRY
from detectors.report import DATASET, StatResult
from monitor.errors import InputError

ColumnStatus = Literal["ok", "insufficient_data", "error"]
# How distance thresholds are set: "fixed" (the method's default or a configured number), "calibrated"
# (measured for the window's size, :mod:`detectors.drift.calibration`), "auto" (calibrated, but never below the
# default: only ever fewer alarms than the fixed default; the service's choice).
Calibrate = Literal["fixed", "calibrated", "auto"]
CALIBRATE_MODES: tuple[Calibrate, ...] = ("fixed", "calibrated", "auto")
MAX_WORKERS = 4


@dataclass(frozen=True)
class ColumnOptions:
    """Per-column override of the deciding method and/or its threshold (a number, or ``calibrated``)."""

    method: str | None = None
    threshold: float | None = None
    calibrated: bool = False


@dataclass(frozen=True)
class DriftOptions:
    """How verdicts are reached. Defaults are Evidently's (see :mod:`detectors.drift.methods`).

    ``method``/``threshold`` apply to every column the method accepts; ``columns`` overrides per column.
    ``fdr``: Benjamini-Hochberg adjustment across the columns decided by a p-value (each compared with
    its threshold after adjustment). ``min_samples``: a column with fewer non-missing values on either
    side gets ``insufficient_data`` instead of a verdict. ``exact_limit``: up to this many values of a
    column (both sides together) KS and Wasserstein are exact. ``workers``: columns computed at once, each
    on its own connection (0: one per CPU, at most :data:`MAX_WORKERS`; 1: one after the other).
    ``calibrate``: how distance thresholds are set where no number is configured (:data:`Calibrate`).
    ``multivariate``: the multivariate methods to run as well, on at most ``multivariate_rows`` rows per side.
    """

    threshold_share: float = 0.5
    method: str | None = None
    threshold: float | None = None
    columns: Mapping[str, ColumnOptions] = field(default_factory=dict)
    fdr: bool = False
    min_samples: int = 1
    exact_limit: int = 200_000
    max_listed_categories: int = 1_000
    workers: int = 0
    calibrate: Calibrate = "fixed"
    multivariate: tuple[str, ...] = ()
    multivariate_rows: int = DEFAULT_ROWS

    def calibrated(self, column: str) -> Calibrate:
        """How ``column``'s distance threshold is set: a per-column ``calibrated`` wins, then a configured
        number (fixed), then the global mode."""
        override = self.columns.get(column)
        if override is not None and override.calibrated:
            return "calibrated"
        if override is not None and override.threshold is not None:
            return "fixed"
        return self.calibrate

    def parallelism(self) -> int:
        """How many columns are computed at once."""
        return self.workers if self.workers > 0 else max(1, min(os.cpu_count() or 1, MAX_WORKERS))

    def validate(self) -> None:
        if not 0 < self.threshold_share <= 1:
            raise InputError(f"threshold share must be in (0, 1], got {self.threshold_share}")
        if self.min_samples < 1:
            raise InputError(f"min_samples must be at least 1, got {self.min_samples}")
        if self.workers < 0:
            raise InputError(f"workers must be 0 (one per CPU) or more, got {self.workers}")
        if self.method is not None:
            get_method(self.method)
        if self.calibrate not in CALIBRATE_MODES:
            raise InputError(f"calibrate must be one of {', '.join(CALIBRATE_MODES)}, got {self.calibrate!r}")
        unknown = [m for m in self.multivariate if m not in MULTIVARIATE_METHODS]
        if unknown:
            raise InputError(
                f"unknown multivariate method {unknown[0]!r}; expected one of {', '.join(MULTIVARIATE_METHODS)}"
            )
        for column, override in self.columns.items():
            if override.method is not None:
                get_method(override.method)
            if override.threshold is not None and not math.isfinite(override.threshold):
                raise InputError(f"threshold for {column!r} must be a finite number")


@dataclass(frozen=True)
class ColumnDrift:
    """One column's comparison: the deciding method and verdict, every statistic, missing shares."""

    column: str
    kind: Kind
    status: ColumnStatus
    n_reference: int  # non-missing values
    n_current: int
    missing_reference: float | None
    missing_current: float | None
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    drift: bool | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)
    new_categories: tuple[str, ...] = ()
    vanished_categories: tuple[str, ...] = ()
    p_value_adjusted: float | None = None  # Benjamini-Hochberg, when DriftOptions.fdr
    approximate: bool = False  # KS/Wasserstein from the large-window histogram (within the contract's bounds)
    message: str = ""
    threshold_source: ThresholdSource = "default"

    def to_contract(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.kind,
            "method": self.method,
            "statistic": _clean(self.statistic),
            "p_value": _clean(self.p_value),
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "drift": self.drift,
            "status": self.status,
            "stats": _clean(dict(self.stats)),
            "missing_share": {"reference": self.missing_reference, "current": self.missing_current},
            "n_reference": self.n_reference,
            "n_current": self.n_current,
        }
        if self.kind == CATEGORICAL:
            doc["new_categories"] = list(self.new_categories)
            doc["vanished_categories"] = list(self.vanished_categories)
        if self.p_value_adjusted is not None:
            doc["p_value_adjusted"] = _clean(self.p_value_adjusted)
        if self.approximate:
            doc["approximate"] = True
        if self.message:
            doc["message"] = self.message
        return doc


@dataclass(frozen=True)
class DatasetDrift:
    """Every column's comparison and the dataset verdict (drifted share of decided columns ≥ threshold_share)."""

    columns: Mapping[str, ColumnDrift]
    n_reference: int
    n_current: int
    threshold_share: float
    fdr: bool = False
    multivariate: tuple[MultivariateDrift, ...] | None = None  # None: not asked for

    @property
    def decided(self) -> list[ColumnDrift]:
        return [c for c in self.columns.values() if c.drift is not None]

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns.values() if c.drift]

    @property
    def drift_share(self) -> float:
        decided = self.decided
        return len(self.drifted) / len(decided) if decided else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.decided) and self.drift_share >= self.threshold_share

    def to_contract(self) -> dict[str, Any]:
        """The contract's ``monitor drift --format json`` document."""
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "threshold_share": self.threshold_share,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_columns": len(self.columns),
            "n_drifted": len(self.drifted),
            "fdr": self.fdr,
            "columns": {name: column.to_contract() for name, column in self.columns.items()},
        } | ({"multivariate": [m.to_contract() for m in self.multivariate]} if self.multivariate is not None else {})

    def to_results(self, detector: str, segment: str = "") -> list[StatResult]:
        """``detector_results`` rows (vocabulary of :mod:`detectors.report`): one per column and statistic."""
        rows: list[StatResult] = []
        for col in self.columns.values():
            common: dict[str, Any] = {"detector": detector, "column": col.column, "segment": segment}
            sizes: dict[str, Any] = {"n_reference": col.n_reference, "n_current": col.n_current}
            if col.status != "ok" and not col.stats:
                # nothing computed: one row saying why ("error" rows as the other detectors write them)
                key = "error" if col.status == "error" else "insufficient_data"
                detail = {"error": col.message} if col.status == "error" else {"message": col.message}
                rows.append(StatResult(**common, statistic=key, value=None, status=col.status, **sizes, details=detail))
                continue
            deciding = REGISTRY[col.method].stat_key if col.method else None
            for key, value in _flat_stats(col).items():
                decides = key == deciding
                rows.append(
                    StatResult(
                        **common,
                        statistic=key,
                        value=_clean(value),
                        threshold=col.threshold if decides else None,
                        drift=col.drift if decides else None,
                        status=col.status,
                        **sizes,
                        details=_details(col, decides),
                    )
                )
            if deciding is not None and deciding not in _flat_stats(col):
                rows.append(
                    StatResult(
                        **common,
                        statistic=deciding,
                        value=_clean(_decisive(col)),
                        threshold=col.threshold,
                        drift=col.drift,
                        status=col.status,
                        **sizes,
                        details=_details(col, True),
                    )
                )
        rows.append(
            StatResult(
                detector=detector,
                column=DATASET,
                statistic="drift_share",
                value=self.drift_share,
                threshold=self.threshold_share,
                drift=self.dataset_drift if self.decided else None,
                segment=segment,
                status="ok" if self.decided else "insufficient_data",
                n_reference=self.n_reference,
                n_current=self.n_current,
                details={"drifted": [c.column for c in self.drifted], "decided": len(self.decided)},
            )
        )
        return rows


def _decisive(col: ColumnDrift) -> float | None:
    return col.p_value if col.method and REGISTRY[col.method].score == "p_value" else col.statistic


def _details(col: ColumnDrift, decides: bool) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if decides:
        details["method"] = col.method
        details["threshold_source"] = col.threshold_source
        if col.approximate:
            details["approximate"] = True
    if col.new_categories:
        details["new_categories"] = list(col.new_categories)
    return details


def _flat_stats(col: ColumnDrift) -> dict[str, float | None]:
    flat: dict[str, float | None] = {}
    for key, value in col.stats.items():
        if isinstance(value, Mapping):
            flat[key] = value.get("statistic")
            flat[f"{key}_p_value"] = value.get("p_value")
        else:
            flat[key] = value
    return flat


def _clean(value: Any) -> Any:
    """JSON-safe numbers: NaN/inf become None, numpy scalars Python floats."""
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    number = float(value)
    return number if math.isfinite(number) else None
