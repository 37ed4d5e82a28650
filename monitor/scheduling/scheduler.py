"""Scheduled detection: one APScheduler job per model, each run evaluating the window it was due for.

Which window a run evaluates is a pure function of the schedule and the time (:func:`due_time`,
:func:`due_window`), testable without a clock: the latest fire time of the model's schedule at or
before ``tick - delay`` is the window's end, and the window is ``[end - window, end)``. A run that
starts late (a busy thread pool, a slow previous run) therefore evaluates exactly the window it was due
for, and a run after downtime evaluates the latest due window once (APScheduler's ``coalesce``;
plus a catch-up run at start-up when the latest due window was never run).

Schedules (``models.<m>.schedule``) are a five-field cron expression in UTC or ``{every: 5m}``; an
``every`` schedule fires on multiples of its period since the Unix epoch, so ``every: 5m`` fires at
:00, :05, ... like the cron ``*/5 * * * *``. ``scheduler.delay`` (default 5 s) shifts every run after
its due time so that events still in flight from Kafka land before their window is read.

Each model's job runs at most once at a time (``max_instances=1`` and a per-model lock shared with
:meth:`DetectionScheduler.run_now`); runs are recorded in ``schedule_runs``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.durations import format_duration
from monitor.errors import InputError, StorageError
from monitor.logs import get_logger
from monitor.pipeline import Trigger, WindowPipeline
from monitor.scheduling.times import DelayedTrigger, due_time, make_trigger, schedule_text
from monitor.settings import Settings
from monitor.storage import Storage
from monitor.windows import to_utc

log = get_logger(__name__)


# ---------------------------------------------------------------- run records


@dataclass(frozen=True)
class RunRecord:
    """One detection run of one model (scheduled, catch-up or manual)."""

    model: str
    due_at: datetime
    window_start: datetime
    window_end: datetime
    trigger: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    error: str = ""
    run_id: str = ""
    alert_events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSchedule:
    """What the API shows about one model's schedule."""

    model: str
    schedule: str
    window: str
    next_run: datetime | None
    last: RunRecord | None
    running: bool

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last"] = self.last.as_dict() if self.last else None
        return data


_RUN_COLUMNS = (
    "model",
    "due_at",
    "window_start",
    "window_end",
    "trigger",
    "started_at",
    "finished_at",
    "status",
    "error",
    "run_id",
    "alert_events",
    "version",
)


def load_last_runs(storage: Storage) -> dict[str, RunRecord]:
    """The latest recorded run of every model (from ``schedule_runs``)."""
    rows = storage.dicts(
        f"SELECT {', '.join(c for c in _RUN_COLUMNS if c != 'version')} FROM {storage.table('schedule_runs')} FINAL "
        "ORDER BY model, due_at DESC LIMIT 1 BY model"
    )
    result = {}
    for row in rows:
        for key in ("due_at", "window_start", "window_end", "started_at", "finished_at"):
            if row[key] is not None:
                row[key] = to_utc(row[key])
        row["alert_events"] = int(row["alert_events"])
        result[row["model"]] = RunRecord(**row)
    return result


# ---------------------------------------------------------------- the scheduler


class DetectionScheduler:
    """Runs every configured model's detection on its schedule, then its alert rules.

    For ``monitor up``: ``start()``, ``stop(timeout)``, ``healthy()`` (the service's Component
    protocol) and ``next_run(model)`` / ``last_run(model)`` (its ScheduleView), plus
    :meth:`status` for everything the API may show and :meth:`run_now` for a manual run. Each run is
    one :class:`~monitor.pipeline.WindowPipeline` step (detection only when none is given).
    """

    name = "scheduler"

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        pipeline: WindowPipeline | None = None,
        models: Collection[str] | None = None,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.pipeline = pipeline or WindowPipeline(storage, settings)
        self.models = [m for m in (models if models is not None else settings.models) if m in settings.models]
        self.delay = settings.scheduler.delay
        self._locks = {m: threading.Lock() for m in self.models}
        self._last: dict[str, RunRecord] = {}
        self._next_due: dict[str, datetime] = {}  # fire time after the latest run that did not raise
        self._scheduler: BackgroundScheduler | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        policy = self.settings.scheduler
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=policy.max_workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(policy.misfire_grace.total_seconds()),
            },
        )
        try:
            self._last.update(load_last_runs(self.storage))
        except StorageError as exc:
            log.error("cannot read the last scheduled runs; starting without them", error=str(exc))
        now = datetime.now(UTC)
        for model in self.models:
            schedule = self.settings.models[model].schedule
            self._scheduler.add_job(
                self._scheduled,
                trigger=DelayedTrigger(make_trigger(schedule), self.delay),
                id=model,
                name=f"detect {model}",
                kwargs={"model": model, "trigger": "schedule"},
            )
            latest_due = due_time(schedule, now - self.delay)
            last = self._last.get(model)
            if last is not None and last.status != "error":
                self._publish_next_due(model, last.due_at)
            else:  # never ran (or failed last): the catch-up run is due now, else the next fire time
                self._publish_next_due(model, latest_due, inclusive=policy.catch_up)
            if policy.catch_up and (last is None or last.due_at < latest_due):
                self._scheduler.add_job(
                    self._scheduled,
                    trigger="date",
                    run_date=now,
                    id=f"catch-up {model}",
                    kwargs={"model": model, "trigger": "catch_up"},
                )
        self._scheduler.start()
        log.info("scheduler started", models=self.models, delay=self.delay.total_seconds())

    def stop(self, timeout: float = 30.0) -> None:
        """Stop scheduling; wait up to ``timeout`` seconds for runs in progress to finish."""
        if self._scheduler is None:
            return
        self._scheduler.shutdown(wait=False)
        self._scheduler = None
        deadline = time.monotonic() + timeout
        for lock in self._locks.values():
            if lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
                lock.release()

    def healthy(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    # ------------------------------------------------------------ queries

    def next_run(self, model: str) -> datetime | None:
        job = self._scheduler.get_job(model) if self._scheduler is not None else None
        return job.next_run_time.astimezone(UTC) if job is not None and job.next_run_time else None

    def last_run(self, model: str) -> datetime | None:
        """When the last finished run started (None if never)."""
        record = self.last_record(model)
        return record.started_at if record else None

    def last_record(self, model: str) -> RunRecord | None:
        return self._last.get(model)

    def status(self, model: str) -> ModelSchedule:
        settings = self.settings.models[model]
        lock = self._locks.get(model)
        return ModelSchedule(
            model=model,
            schedule=schedule_text(settings.schedule),
            window=format_duration(settings.window),
            next_run=self.next_run(model),
            last=self.last_record(model),
            running=bool(lock and lock.locked()),
        )

    def statuses(self) -> list[ModelSchedule]:
        return [self.status(m) for m in self.models]

    # ------------------------------------------------------------ running

    def _scheduled(self, model: str, trigger: Trigger) -> None:
        due = due_time(self.settings.models[model].schedule, datetime.now(UTC) - self.delay)
        self.run(model, due, trigger)

    def run_now(self, model: str, trigger: Trigger = "manual") -> RunRecord | None:
        """Run the window due now for ``model``, in this thread (None if a run is already in progress)."""
        if model not in self.settings.models:
            raise InputError(f"unknown model {model!r}")
        self._locks.setdefault(model, threading.Lock())
        due = due_time(self.settings.models[model].schedule, datetime.now(UTC) - self.delay)
        return self.run(model, due, trigger)

    def run(self, model: str, due: datetime, trigger: Trigger) -> RunRecord | None:
        """Detect and evaluate alerts for the window ending at ``due``; one run per model at a time."""
        lock = self._locks[model]
        if not lock.acquire(blocking=False):
            log.warning("detection still running; this run is skipped", model=model, due=due.isoformat())
            return None
        try:
            window = self.settings.models[model].window
            record = RunRecord(
                model=model,
                due_at=due,
                window_start=due - window,
                window_end=due,
                trigger=trigger,
                started_at=to_utc(datetime.now(UTC)),
                run_id=uuid.uuid4().hex,
            )
            self._write(record)
            started = time.monotonic()
            try:
                step = self.pipeline.run(model, due, window, trigger)
                record = replace(
                    record,
                    status=step.report.status,
                    run_id=step.report.run_id or record.run_id,
                    alert_events=len(step.evaluation.events) if step.evaluation is not None else 0,
                )
            except Exception as exc:  # recorded and logged with its traceback (the step counted it); retried next time
                log.exception("detection run failed", model=model, due=due.isoformat(), trigger=trigger)
                record = replace(record, status="error", error=f"{type(exc).__name__}: {exc}"[:1000])
            record = replace(record, finished_at=to_utc(datetime.now(UTC)))
            self._last[model] = record
            self._write(record)
            if record.status != "error":
                self._publish_next_due(model, due)
            log.info(
                "detection run finished",
                model=model,
                window_end=due.isoformat(),
                trigger=trigger,
                status=record.status,
                alert_events=record.alert_events,
                seconds=round(time.monotonic() - started, 3),
            )
            return record
        finally:
            lock.release()

    def _publish_next_due(self, model: str, after: datetime, inclusive: bool = False) -> None:
        """Set the next-due gauge: the first fire time after ``after`` (a due time; at or after it when
        ``inclusive``), plus the delay.

        Only moves forward, so a manual run of an older window does not hide missed scheduled runs.
        """
        from monitor.metrics import DETECTION_NEXT_DUE  # local: independent of where run metrics are recorded

        trigger = make_trigger(self.settings.models[model].schedule)
        start = after if inclusive else datetime.fromtimestamp(after.timestamp() + 0.001, UTC)
        following = trigger.get_next_fire_time(None, start)
        if following is None or (model in self._next_due and following <= self._next_due[model]):
            return
        self._next_due[model] = following
        DETECTION_NEXT_DUE.labels(model).set((following + self.delay).timestamp())

    def _write(self, record: RunRecord) -> None:
        row = (*(getattr(record, c) for c in _RUN_COLUMNS if c != "version"), time.time_ns())
        try:
            self.storage.insert_rows("schedule_runs", [row], _RUN_COLUMNS)
        except StorageError as exc:
            log.error("cannot record a scheduled run", model=record.model, error=str(exc))
