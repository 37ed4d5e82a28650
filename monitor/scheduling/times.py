"""Which window a scheduled run evaluates: pure functions of the schedule and the time, no clock.

The latest fire time of a model's schedule at or before ``tick - delay`` is the window's end, and the
window is ``[end - window, end)``. Cron expressions are five fields in UTC with the standard meaning
(day-of-week 0 and 7 = Sunday); ``{every: ...}`` schedules fire on multiples of their period since the
Unix epoch, so ``every: 5m`` fires at :00, :05, ... like ``*/5 * * * *``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.cron import cron_trigger
from monitor.durations import format_duration
from monitor.errors import InputError
from monitor.settings import EverySchedule, ModelSettings, Schedule
from monitor.windows import EPOCH, Window, to_utc


def schedule_text(schedule: Schedule) -> str:
    return schedule if isinstance(schedule, str) else f"every {format_duration(schedule.every)}"


def make_trigger(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of a schedule (UTC; ``every`` aligned to the epoch)."""
    if isinstance(schedule, EverySchedule):
        return IntervalTrigger(seconds=schedule.every.total_seconds(), start_date=EPOCH, timezone=UTC)
    return cron_trigger(schedule)


def due_time(schedule: Schedule, tick: datetime) -> datetime:
    """The latest fire time of ``schedule`` at or before ``tick``: the end of the window due at ``tick``."""
    tick = to_utc(tick)
    if isinstance(schedule, EverySchedule):
        step_ms = round(schedule.every.total_seconds() * 1000)
        elapsed_ms = math.floor((tick - EPOCH).total_seconds() * 1000)
        return EPOCH + timedelta(milliseconds=elapsed_ms - elapsed_ms % step_ms)
    trigger = make_trigger(schedule)
    whole = tick.replace(microsecond=0)

    def next_from(moment: datetime) -> datetime | None:
        return trigger.get_next_fire_time(None, moment)

    # Grow a look-back until some fire time lies in [tick - lookback, tick] ...
    lookback = timedelta(minutes=1)
    while True:
        low = whole - lookback
        first = next_from(low)
        if first is not None and first <= tick:
            break
        if lookback > timedelta(days=3660):
            raise InputError(f"schedule {schedule!r} has no fire time in the ten years before {tick.isoformat()}")
        lookback *= 2
    # ... then bisect (whole seconds) for the latest start whose next fire time is still <= tick.
    high = whole
    last = next_from(high)
    if last is not None and last <= tick:
        return to_utc(last)
    while (high - low) > timedelta(seconds=1):
        middle = low + timedelta(seconds=int((high - low).total_seconds()) // 2)
        fire = next_from(middle)
        if fire is not None and fire <= tick:
            low = middle
        else:
            high = middle
    result = next_from(low)
    assert result is not None
    return to_utc(result)


def due_window(model: ModelSettings, tick: datetime, delay: timedelta = timedelta(0)) -> Window:
    """Which window is due at ``tick`` for a model: ends at the latest fire time <= ``tick - delay``."""
    end = due_time(model.schedule, to_utc(tick) - delay)
    return Window(end - model.window, end)


class DelayedTrigger(BaseTrigger):
    """Fires ``delay`` after each fire time of ``inner`` (so the window's late events can land)."""

    def __init__(self, inner: BaseTrigger, delay: timedelta) -> None:
        self.inner = inner
        self.delay = delay

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        previous = previous_fire_time - self.delay if previous_fire_time is not None else None
        fire = self.inner.get_next_fire_time(previous, now - self.delay)
        return fire + self.delay if fire is not None else None

    def __str__(self) -> str:
        return f"{self.inner} + {self.delay}"
