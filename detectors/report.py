"""What one detection run over one window produces: flat, typed, one-to-one with ``detector_results``.

This module is the interface between the detectors (which fill it), the alert rules (which read it)
and the API (which serves the stored rows). Keep it free of I/O.

Vocabulary (``detector`` / ``statistic`` / ``column``):

- ``feature_drift``, ``prediction_drift``, ``window_drift`` (against the previous window), ``skew``
  (against the training reference): one row per column and statistic (``ks``, ``ks_p_value``,
  ``wasserstein_norm``, ``psi``, ``js``, ``hellinger``, ``chi2``, ``chi2_p_value``); the row whose
  statistic is the column's deciding ``method`` carries ``threshold`` and ``drift``; others have
  ``drift=None``. One dataset-level row with ``column=""``, ``statistic="drift_share"``,
  ``threshold`` = the configured share and ``drift`` = dataset drift. The prediction is the column
  ``"__prediction__"``.
- ``data_quality``: per column ``missing_share``, ``out_of_range_share``, ``new_categories`` (value
  = how many, ``details["categories"]``), ``absent_key_share``; dataset level ``unexpected_features``
  and ``absent_features`` (value = how many, ``details["features"]``).
- ``volume``: ``count``, ``change_vs_day``, ``change_vs_week`` (relative change, e.g. -0.4).
- ``freshness``: ``seconds_since_last_event``.
- ``performance``: ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc``, ``log_loss``,
  (``class`` predictions also ``precision_macro``, ``precision_weighted``, ``recall_macro``,
  ``recall_weighted``, ``f1_macro``, ``f1_weighted``), ``mae``, ``rmse``, ``mape``, ``r2``,
  ``label_coverage``; ``details["reference"]`` holds the reference's own value where the reference
  carries labels.
- ``estimated_performance`` (before labels arrive; ``probability``, ``class`` with probabilities and
  ``regression`` models whose reference has labels): ``roc_auc``, ``accuracy``, ``precision``,
  ``recall``, ``f1``, ``specificity`` (multiclass: ``_macro``/``_weighted``) or ``mae``, ``mse``,
  ``rmse``, ``mape``; ``drift`` = the estimate left the
  reference band, ``threshold`` = the band's bad side, ``details`` = ``lower``/``upper`` (confidence
  band), ``threshold_lower``/``threshold_upper``, ``reference``, ``calibrated``.

``segment`` is ``""`` for the whole population, else ``"key=value"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

PREDICTION_COLUMN = "__prediction__"
DATASET = ""

Status = Literal["ok", "insufficient_data", "error"]


def sample_status(n: int, min_samples: int) -> Status:
    """The one meaning of ``min_samples``: a statistic needs at least that many values on each side it
    compares, and a window (or segment) with fewer events than that is ``insufficient_data``."""
    return "ok" if n >= min_samples else "insufficient_data"


@dataclass(frozen=True)
class StatResult:
    """One statistic of one column (or of the dataset) in one window: one row of detector_results."""

    detector: str
    column: str
    statistic: str
    value: float | None
    threshold: float | None = None
    drift: bool | None = None
    segment: str = ""
    status: Status = "ok"
    n_reference: int = 0
    n_current: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowReport:
    """Everything one run found for one model and window."""

    model: str
    model_version: str
    window_start: datetime
    window_end: datetime
    status: Status
    n_current: int
    n_reference: int
    results: tuple[StatResult, ...]
    run_id: str = ""
    message: str = ""
    reference_version: str = ""

    def select(
        self,
        detector: str | None = None,
        statistic: str | None = None,
        column: str | None = None,
        segment: str | None = "",
    ) -> list[StatResult]:
        """Rows matching every filter that is not None (``segment=""``: the whole population only)."""
        return [
            r
            for r in self.results
            if (detector is None or r.detector == detector)
            and (statistic is None or r.statistic == statistic)
            and (column is None or r.column == column)
            and (segment is None or r.segment == segment)
        ]

    def dataset_drift(self, detector: str = "feature_drift") -> bool | None:
        rows = self.select(detector=detector, statistic="drift_share", column=DATASET)
        return rows[0].drift if rows else None

    def drifted_columns(self, detector: str = "feature_drift") -> list[StatResult]:
        """The deciding rows of columns that drifted, in stored order (:func:`detectors.evidence.strongest_first`
        orders them by strength: a raw value means opposite things for a p-value and a distance)."""
        return [r for r in self.select(detector=detector) if r.column != DATASET and r.drift]
