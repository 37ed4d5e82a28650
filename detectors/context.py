"""What every detector of one run needs to know: model, window, reference, features, and the SQL to read them.

Built once per run by the runner and passed to each detector, so the detectors stay small functions
of (context, segment) and all "which rows of ``events`` are this window" SQL lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from detectors.references.profile import ColumnSummary, Kind
from detectors.references.store import Reference
from detectors.report import DATASET, PREDICTION_COLUMN, StatResult, Status, sample_status
from detectors.segments import Census, Segment, segment_condition, segment_label
from monitor.settings import ModelSettings, PredictionSettings
from monitor.storage import Storage
from monitor.storage.events import feature_expr
from monitor.storage.sqlfmt import sql_string, window_condition
from monitor.windows import Window


@dataclass(frozen=True)
class RunContext:
    storage: Storage
    model: str
    settings: ModelSettings
    prediction: PredictionSettings
    window: Window
    reference: Reference
    training: Reference
    features: dict[str, Kind]
    events_columns: frozenset[str]
    now: datetime
    census: Census = field(default_factory=lambda: Census(0, ""))

    @property
    def segments(self) -> list[Segment]:
        """The whole population, then each segment value found in the window."""
        return [None, *self.census.segments]

    @property
    def model_version(self) -> str:
        """The model version seen most in the window."""
        return self.census.model_version

    # ------------------------------------------------------------------ events SQL

    @property
    def events_from(self) -> str:
        return f"{self.storage.table('events')} FINAL"

    def events_where(self, window: Window | None = None, segment: Segment = None) -> str:
        return f"model = {sql_string(self.model)} AND {window_condition(window or self.window)}" + segment_condition(
            segment
        )

    def event_expr(self, feature: str) -> str:
        """The feature's typed column in ``events`` or, where it has none (not created yet, or beyond the
        typed-column limits), the same values read from the event's map: a feature is never read as
        missing because its column does not exist. Never logged with that kind, the map has no such key
        and every value is missing, as it should be."""
        return feature_expr(feature, self.features[feature], self.events_columns)

    @property
    def prediction_kind(self) -> Kind:
        return "categorical" if self.prediction.type == "class" else "numerical"

    @property
    def prediction_event_expr(self) -> str:
        return "prediction_cat" if self.prediction_kind == "categorical" else "prediction_num"

    def reference_profile(self, feature: str, reference: Reference | None = None) -> ColumnSummary | None:
        """The reference's profile of a feature, if the reference holds it with the same kind."""
        ref = reference or self.reference
        profile = ref.profile.columns.get(feature)
        return profile if profile is not None and profile.kind == self.features[feature] else None

    def count(self, segment: Segment = None) -> int:
        return self.census.count(segment)

    def status_for(self, n: int) -> Status:
        return sample_status(n, self.settings.min_samples)


def short_reason(exc: BaseException) -> str:
    """One readable line from an exception: ClickHouse's code prefix and echoed SQL removed."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    text = text.splitlines()[0].split(" failed: ", 1)[-1]
    text = re.sub(r"Code: \d+\. DB::Exception: ", "", text)
    text = re.split(r":? In scope |\s*\(version \d", text, maxsplit=1)[0]
    return text.strip()[:500]


def error_result(
    detector: str, column: str, segment: Segment, exc: BaseException, statistic: str = "error"
) -> StatResult:
    """The row that records a failing detector (for one column, or the dataset when column is '')."""
    message = short_reason(exc)
    return StatResult(
        detector=detector,
        column=column,
        statistic=statistic,
        value=None,
        segment=segment_label(segment),
        status="error",
        details={"error": message[:2000], "type": type(exc).__name__},
    )


__all__ = ["DATASET", "PREDICTION_COLUMN", "RunContext", "Segment", "error_result", "segment_label", "short_reason"]
