"""Alerting wired together, for ``monitor up`` (service) and ``monitor detect`` (one-shot).

``monitor up``::

    alerting = Alerting(storage, settings)      # validates channels (templates) now: ConfigError early
    for component in alerting.components:       # [scheduler, delivery worker]; start(), stop(t), healthy()
        component.start()
    alerting.scheduler.next_run("fraud"), alerting.scheduler.last_run("fraud"), alerting.scheduler.status("fraud")
    alerting.engine.evaluate(report)            # after an API-triggered run_detection (wakes the worker)

``monitor detect``: :func:`evaluate_and_deliver` evaluates the rules on the report, delivers this run's
notifications for at most ``wait`` seconds and leaves the rest queued for the service.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.channels import build_channels, missing_secrets
from alerts.delivery import DeliveryWorker, WaitResult, wait_for_deliveries
from alerts.engine import AlertEngine, Evaluation
from detectors.report import WindowReport
from monitor.logs import get_logger
from monitor.scheduling import DetectionScheduler
from monitor.settings import Settings
from monitor.storage import Storage

log = get_logger(__name__)


class Alerting:
    """The alert engine, delivery worker and detection scheduler of one process, sharing one storage."""

    def __init__(self, storage: Storage, settings: Settings, scheduler: bool = True) -> None:
        build_channels(settings)  # a template that does not parse stops start-up here
        for name in missing_secrets(settings):
            log.warning("a channel's environment variable is not set; its notifications will fail", variable=name)
        self.worker = DeliveryWorker(storage, settings)
        self.engine = AlertEngine(storage, settings, on_enqueued=self.worker.wake)
        self.scheduler = DetectionScheduler(storage, settings, engine=self.engine) if scheduler else None

    @property
    def components(self) -> list[DetectionScheduler | DeliveryWorker]:
        """Start in this order, stop in reverse (the worker outlives the last run's notifications)."""
        return [self.worker] + ([self.scheduler] if self.scheduler is not None else [])


@dataclass(frozen=True)
class OneShot:
    """What ``monitor detect`` reports about alerts after one run."""

    evaluation: Evaluation
    deliveries: WaitResult | None


def evaluate_and_deliver(storage: Storage, settings: Settings, report: WindowReport, wait: float = 30.0) -> OneShot:
    """Evaluate the model's rules on ``report``; deliver its notifications, waiting at most ``wait`` seconds.

    Deliveries still pending afterwards stay in the outbox for ``monitor up`` (retried, never lost).
    """
    evaluation = AlertEngine(storage, settings).evaluate(report)
    if not evaluation.delivery_ids:
        return OneShot(evaluation, None)
    worker = DeliveryWorker(storage, settings, event_ids=evaluation.event_ids)
    worker.start()
    try:
        result = wait_for_deliveries(storage, evaluation.event_ids, timeout=wait)
    finally:
        worker.stop(timeout=settings.alerting.request_timeout.total_seconds() + 1)
    return OneShot(evaluation, result)
