"""Window reports and settings for the alerting tests (reports built directly, as the detectors would)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.report import DATASET, PREDICTION_COLUMN, StatResult, WindowReport
from monitor.settings import Settings, load_settings

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
FAST_DELIVERY = {
    "backoff_initial": "50ms",
    "backoff_max": "200ms",
    "poll_interval": "50ms",
    "request_timeout": "2s",
}
PD_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, like a PagerDuty integration key


def window_end(index: int) -> datetime:
    return T0 + index * STEP


def drift_report(
    model: str,
    end: datetime,
    drifted: dict[str, float] | None = None,
    features: tuple[str, ...] = ("amount", "country", "age"),
    status: str = "ok",
    threshold: float = 0.1,
    share_threshold: float = 0.5,
    extra: tuple[StatResult, ...] = (),
    version: str = "3",
) -> WindowReport:
    """A feature-drift report: ``drifted`` maps feature -> deciding statistic (above ``threshold``)."""
    drifted = drifted or {}
    rows: list[StatResult] = []
    if status == "ok":
        for name in features:
            value = drifted.get(name, threshold / 10)
            rows += [
                StatResult("feature_drift", name, "wasserstein_norm", value, threshold, value > threshold),
                StatResult("feature_drift", name, "ks", min(value, 1.0)),
                StatResult("feature_drift", name, "ks_p_value", 1e-9 if name in drifted else 0.4),
                StatResult("feature_drift", name, "psi", value * 2),
            ]
        share = sum(1 for f in features if drifted.get(f, 0) > threshold) / len(features)
        verdict = share >= share_threshold
        rows.append(StatResult("feature_drift", DATASET, "drift_share", share, share_threshold, verdict))
    else:
        rows.append(StatResult("feature_drift", DATASET, "drift_share", None, share_threshold, None, status=status))
    return WindowReport(
        model=model,
        model_version=version,
        window_start=end - timedelta(hours=1),
        window_end=end,
        status=status,  # type: ignore[arg-type]
        n_current=900 if status == "ok" else 3,
        n_reference=1000,
        results=(*rows, *extra),
        message="" if status == "ok" else "3 events < min_samples 500",
    )


def report_with(model: str, end: datetime, rows: list[StatResult], status: str = "ok") -> WindowReport:
    return WindowReport(model, "3", end - timedelta(hours=1), end, status, 900, 1000, tuple(rows))  # type: ignore[arg-type]


def prediction_rows(value: float, threshold: float = 0.1) -> list[StatResult]:
    return [StatResult("prediction_drift", PREDICTION_COLUMN, "js", value, threshold, value > threshold)]


def make_settings(
    channels: dict[str, Any] | None = None,
    models: dict[str, Any] | None = None,
    alerting: dict[str, Any] | None = None,
    **extra: Any,
) -> Settings:
    overrides: dict[str, Any] = {
        "channels": channels or {},
        "models": models or {},
        "alerting": {**FAST_DELIVERY, **(alerting or {})},
        **extra,
    }
    return load_settings(overrides=overrides)
