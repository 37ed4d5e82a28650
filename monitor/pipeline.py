"""One pipeline step for one model and one window: detect, store, evaluate alert rules, enqueue
notifications, count metrics.

Every way a window gets evaluated goes through :class:`WindowPipeline`: the scheduler (and so the
demo), the API's "detect now" and ``monitor detect``. They differ only in who delivers the queued
notifications afterwards: the service's delivery worker (woken by the engine), or, for the one-shot
command, :func:`alerts.delivery.deliver_now`. Keeping the step in one place keeps the metrics, the
alert evaluation and the stored results the same whichever door a run came in by.

This floor sits above ``detectors`` and ``alerts`` and below the shell (scheduling, service,
commands, demo).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from alerts.delivery import WaitResult, deliver_now
from alerts.engine import AlertEngine, Evaluation
from detectors.report import WindowReport
from monitor import metrics
from monitor.settings import Settings
from monitor.storage import Storage

Progress = Callable[[str], None]
Trigger = Literal["schedule", "catch_up", "api", "cli", "manual"]
DetectFn = Callable[[Storage, Settings, str, "datetime | None", "timedelta | None", Progress], WindowReport]


def _quiet(_: str) -> None:
    return None


def default_detect(
    storage: Storage,
    settings: Settings,
    model: str,
    end: datetime | None,
    window: timedelta | None,
    progress: Progress = _quiet,
) -> WindowReport:
    """Every configured detector over ``[end - window, end)``, stored (see :mod:`detectors.runner`)."""
    from detectors.runner import run_detection

    return run_detection(storage, settings, model, window_end=end, window=window, progress=progress)


@dataclass(frozen=True)
class StepResult:
    """What one step did: the stored report and, when rules were evaluated, what changed in the alerts."""

    report: WindowReport
    evaluation: Evaluation | None


class WindowPipeline:
    """Detect, store, evaluate rules, enqueue notifications and count metrics for one window.

    ``engine`` evaluates the model's alert rules on each report and queues notifications (``None``:
    detection only). ``detect`` replaces :func:`default_detect` (tests).
    """

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        engine: AlertEngine | None = None,
        detect: DetectFn | None = None,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.engine = engine
        self.detect = detect or default_detect

    def run(
        self,
        model: str,
        window_end: datetime | None,
        window: timedelta | None,
        trigger: Trigger,
        progress: Progress = _quiet,
    ) -> StepResult:
        """One window of one model. Raises what detection raises (an unknown model, no reference, an
        unreachable ClickHouse); a failing detector is an error row in the report, not an exception."""
        metric_trigger = "schedule" if trigger in ("schedule", "catch_up") else trigger
        started = time.perf_counter()
        try:
            report = self.detect(self.storage, self.settings, model, window_end, window, progress)
        except Exception:
            metrics.DETECTOR_RUN_FAILURES.labels(model, metric_trigger).inc()
            raise
        finally:
            metrics.DETECTOR_RUN_SECONDS.labels(model, metric_trigger).observe(time.perf_counter() - started)
        evaluation = self.engine.evaluate(report) if self.engine is not None else None
        return StepResult(report, evaluation)


@dataclass(frozen=True)
class OneShot:
    """What ``monitor detect`` reports after one step: the step and how its notifications ended up."""

    step: StepResult
    deliveries: WaitResult | None


def run_once(
    storage: Storage,
    settings: Settings,
    model: str,
    window_end: datetime | None,
    window: timedelta | None,
    wait: float,
    progress: Progress = _quiet,
) -> OneShot:
    """One step outside the service, then deliver this step's notifications for at most ``wait`` seconds.

    Notifications still pending afterwards stay in the outbox for ``monitor up`` (retried, never lost).
    """
    step = WindowPipeline(storage, settings, AlertEngine(storage, settings)).run(
        model, window_end, window, "cli", progress
    )
    event_ids = step.evaluation.event_ids if step.evaluation is not None and step.evaluation.delivery_ids else []
    return OneShot(step, deliver_now(storage, settings, event_ids, wait) if event_ids else None)
