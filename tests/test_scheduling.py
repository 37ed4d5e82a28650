"""Scheduling: which window is due when (pure, checked against a brute-force cron matcher written here),
and the live APScheduler jobs (on time with a one-second schedule, never twice at once, next/last runs,
catch-up after downtime, failures recorded)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from detectors.report import WindowReport
from monitor.pipeline import WindowPipeline
from monitor.scheduling import DelayedTrigger, DetectionScheduler, due_time, due_window, load_last_runs, make_trigger
from monitor.settings import EverySchedule, ModelSettings, Settings, load_settings
from monitor.storage import Storage

# ---------------------------------------------------------------- an independent cron matcher


def _field_values(field: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in field.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(x) for x in span.split("-"))
        else:
            first = int(span)
            last = high if step else first
        values.update(range(first, last + 1, int(step or 1)))
    return values


def cron_sets(expression: str) -> tuple[set[int], ...]:
    """Vixie-cron semantics for the fields used here (day-of-week 0 and 7 are Sunday)."""
    minute, hour, day, month, dow = expression.split()
    return (
        _field_values(minute, 0, 59),
        _field_values(hour, 0, 23),
        _field_values(day, 1, 31),
        _field_values(month, 1, 12),
        {d % 7 for d in _field_values(dow, 0, 7)},
    )


def brute_force_due(expression: str, tick: datetime) -> datetime:
    minutes, hours, days, months, weekdays = cron_sets(expression)
    moment = tick.replace(second=0, microsecond=0)
    while not (
        moment.minute in minutes
        and moment.hour in hours
        and moment.day in days
        and moment.month in months
        and moment.isoweekday() % 7 in weekdays
    ):
        moment -= timedelta(minutes=1)
    return moment


@pytest.mark.parametrize(
    "expression",
    ["*/5 * * * *", "0 * * * *", "15,45 9-17 * * 1-5", "0 9 * * 1", "30 2 * * 0", "0 0 * * 7", "*/20 6 1 * *"],
)
def test_due_time_of_a_cron_schedule_matches_brute_force(expression: str) -> None:
    rng = random.Random(expression)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(25):
        tick = start + timedelta(seconds=rng.randrange(0, 365 * 86400), microseconds=rng.randrange(0, 10**6))
        assert due_time(expression, tick) == brute_force_due(expression, tick), tick


def test_due_time_of_an_every_schedule_is_aligned_to_the_epoch() -> None:
    every = EverySchedule(every="5m")
    assert due_time(every, datetime(2026, 11, 27, 10, 7, 33, tzinfo=UTC)) == datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    assert due_time(every, datetime(2026, 11, 27, 10, 5, tzinfo=UTC)) == datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    second = EverySchedule(every="1s")
    tick = datetime(2026, 1, 1, 0, 0, 7, 999000, tzinfo=UTC)
    assert due_time(second, tick) == tick.replace(microsecond=0)
    # the trigger APScheduler runs fires on the same grid
    trigger = make_trigger(every)
    now = datetime(2026, 11, 27, 10, 7, 33, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, now) == datetime(2026, 11, 27, 10, 10, tzinfo=UTC)


def test_a_late_run_evaluates_the_window_it_was_due_for() -> None:
    model = ModelSettings(schedule="*/5 * * * *", window="1h")
    on_time = due_window(model, datetime(2026, 11, 27, 10, 5, 0, 20000, tzinfo=UTC))
    late = due_window(model, datetime(2026, 11, 27, 10, 9, 59, tzinfo=UTC))
    expected_end = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    assert on_time == late
    assert (late.start, late.end) == (expected_end - timedelta(hours=1), expected_end)


def test_delay_shifts_runs_but_not_windows() -> None:
    model = ModelSettings(schedule={"every": "1m"}, window="10m")
    delay = timedelta(seconds=5)
    fire = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    # 3 s after 10:05 the 10:05 window is not due yet (events may still be arriving) ...
    assert due_window(model, fire + timedelta(seconds=3), delay).end == fire - timedelta(minutes=1)
    # ... 5 s after it is
    assert due_window(model, fire + delay, delay).end == fire
    trigger = DelayedTrigger(make_trigger(model.schedule), delay)
    assert trigger.get_next_fire_time(None, fire + timedelta(seconds=3)) == fire + delay
    assert trigger.get_next_fire_time(fire + delay, fire + delay) == fire + timedelta(minutes=1) + delay


# ---------------------------------------------------------------- the live scheduler


def scheduler_settings(storage: Storage, schedule: Any, catch_up: bool = False, window: str = "10m") -> Settings:
    return load_settings(
        overrides={
            "clickhouse": {"dsn": storage.dsn, "database": storage.database},
            "models": {"fraud": {"schedule": schedule, "window": window}},
            "scheduler": {"delay": 0, "catch_up": catch_up},
        }
    )


class Recorder:
    """A stand-in for run_detection that records when it ran and for which window."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.calls: list[tuple[datetime, datetime, timedelta]] = []  # (started, window end, window)
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def __call__(self, storage: Storage, settings: Settings, model: str, end: datetime, window: timedelta, _progress):
        started = datetime.now(UTC)
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.calls.append((started, end, window))
        try:
            time.sleep(self.seconds)
            if self.fail:
                raise RuntimeError("detector exploded")
            return WindowReport(model, "1", end - window, end, "ok", 0, 0, ())
        finally:
            with self._lock:
                self.running -= 1


def scheduler_with(storage: Storage, settings: Settings, detect: Recorder) -> DetectionScheduler:
    return DetectionScheduler(storage, settings, WindowPipeline(storage, settings, detect=detect))


def test_a_one_second_schedule_runs_on_time(storage: Storage) -> None:
    detect = Recorder()
    scheduler = scheduler_with(storage, scheduler_settings(storage, {"every": "1s"}), detect)
    scheduler.start()
    try:
        time.sleep(3.6)
    finally:
        scheduler.stop()
    assert len(detect.calls) >= 3
    ends = [end for _, end, _ in detect.calls]
    assert all(end.microsecond == 0 for end in ends)
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(ends))  # none missed
    lateness = [(started - end).total_seconds() for started, end, _ in detect.calls]
    assert all(0 <= late < 0.5 for late in lateness), lateness  # shared 2-core machine: generous bound
    assert all(window == timedelta(minutes=10) for _, _, window in detect.calls)


def test_a_model_never_runs_twice_at_once(storage: Storage) -> None:
    detect = Recorder(seconds=2.2)  # slower than its one-second schedule
    scheduler = scheduler_with(storage, scheduler_settings(storage, {"every": "1s"}), detect)
    scheduler.start()
    try:
        time.sleep(1.5)
        assert scheduler.status("fraud").running
        assert scheduler.run_now("fraud") is None  # a manual run while one is in progress is refused
        time.sleep(3.5)
    finally:
        scheduler.stop(timeout=5)
    assert detect.max_running == 1
    assert 2 <= len(detect.calls) <= 3
    starts = [started for started, _, _ in detect.calls]
    assert all((b - a).total_seconds() >= 2.1 for a, b in itertools.pairwise(starts))


def test_next_and_last_runs_are_queryable_and_survive_a_restart(storage: Storage) -> None:
    detect = Recorder()
    settings = scheduler_settings(storage, {"every": "1s"})
    scheduler = scheduler_with(storage, settings, detect)
    assert scheduler.last_run("fraud") is None
    scheduler.start()
    try:
        time.sleep(1.5)
        now = datetime.now(UTC)
        next_run = scheduler.next_run("fraud")
        assert next_run is not None and now < next_run <= now + timedelta(seconds=1.01)
        last = scheduler.last_record("fraud")
        assert last is not None and last.status == "ok" and last.trigger == "schedule"
        assert scheduler.last_run("fraud") == last.started_at
        status = scheduler.status("fraud").as_dict()
        assert status["schedule"] == "every 1s" and status["window"] == "10m" and status["last"]["status"] == "ok"
    finally:
        scheduler.stop()
    assert scheduler.next_run("fraud") is None
    stored = load_last_runs(storage)["fraud"]
    assert stored.due_at >= last.due_at and stored.finished_at is not None
    again = scheduler_with(storage, settings, detect)
    again.start()
    try:
        assert again.last_record("fraud") is not None
    finally:
        again.stop()


def test_a_missed_window_is_caught_up_once_at_start(storage: Storage) -> None:
    detect = Recorder()
    yearly = "0 0 1 1 *"  # the latest due window is the one ending on January 1st; the next is months away
    settings = scheduler_settings(storage, yearly, catch_up=True, window="1h")
    for _ in range(2):
        scheduler = scheduler_with(storage, settings, detect)
        scheduler.start()
        time.sleep(0.8)
        scheduler.stop()
    expected = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    assert [end for _, end, _ in detect.calls] == [expected]  # caught up on the first start only
    assert load_last_runs(storage)["fraud"].trigger == "catch_up"


def test_a_failing_run_is_recorded_and_scheduling_continues(storage: Storage) -> None:
    detect = Recorder(fail=True)
    before = (
        REGISTRY.get_sample_value("monitor_detector_run_failures_total", {"model": "fraud", "trigger": "schedule"})
        or 0.0
    )
    scheduler = scheduler_with(storage, scheduler_settings(storage, {"every": "1s"}), detect)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(detect.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert len(detect.calls) >= 2  # kept running after the first failure
    last = scheduler.last_record("fraud")
    assert last is not None and last.status == "error" and "detector exploded" in last.error
    after = REGISTRY.get_sample_value("monitor_detector_run_failures_total", {"model": "fraud", "trigger": "schedule"})
    assert after == before + len(detect.calls)


def test_the_next_due_gauge_advances_with_successful_runs_only(storage: Storage) -> None:
    """monitor_detection_next_due_timestamp_seconds: the fire time after the latest successful run,
    plus the delay (what the "runs missed" alerting rule compares with time()). Real detection runs:
    one model with a reference (an empty window is a run that succeeds), one without (it fails)."""
    reference = Path(__file__).resolve().parents[1] / "deploy" / "references" / "fraud_reference.csv"
    yearly = "0 0 1 1 *"
    settings = load_settings(
        overrides={
            "clickhouse": {"dsn": storage.dsn, "database": storage.database},
            "models": {
                "nextdue-ok": {
                    "schedule": yearly,
                    "window": "1h",
                    "features": {"amount": "numerical", "country": "categorical"},
                    "reference": {"file": str(reference)},
                },
                "nextdue-failing": {"schedule": yearly, "window": "1h"},
            },
            "scheduler": {"delay": 2, "catch_up": True},
        }
    )

    def gauge(model: str) -> float | None:
        return REGISTRY.get_sample_value("monitor_detection_next_due_timestamp_seconds", {"model": model})

    now = datetime.now(UTC)
    scheduler = DetectionScheduler(storage, settings)
    scheduler.start()
    try:  # the catch-up runs of January 1st: one succeeds, one fails
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(scheduler.last_record(m) for m in settings.models):
            time.sleep(0.1)
    finally:
        scheduler.stop()
    ok, failing = scheduler.last_record("nextdue-ok"), scheduler.last_record("nextdue-failing")
    assert ok is not None and ok.status != "error", ok
    assert failing is not None and failing.status == "error"
    # succeeded: the next run due is next year's; failed: January 1st is still due, so it shows overdue
    assert gauge("nextdue-ok") == datetime(now.year + 1, 1, 1, tzinfo=UTC).timestamp() + 2
    assert gauge("nextdue-failing") == datetime(now.year, 1, 1, tzinfo=UTC).timestamp() + 2 < time.time()
