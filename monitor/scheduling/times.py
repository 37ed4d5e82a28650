"""Which window a scheduled run evaluates: pure functions of the schedule and the time, no clock.

The latest fire time of a model's schedule at or before ``tick - delay`` is the window's end, and the
window is ``[end - window, end)``. Cron expressions are five fields in UTC with the standard meaning
(day-of-week 0 and 7 = Sunday); ``{every: ...}`` schedules fire on multiples of their period since the
Unix epoch, so ``every: 5m`` fires at :00, :05, ... like ``*/5 * * * *``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.durations import format_duration
from monitor.errors import InputError
from monitor.settings import EverySchedule, ModelSettings, Schedule

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(moment: datetime) -> datetime:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(microsecond=aware.microsecond // 1000 * 1000)


def schedule_text(schedule: Schedule) -> str:
    return schedule if isinstance(schedule, str) else f"every {format_duration(schedule.every)}"


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_days(field: str) -> str:
    """A standard cron day-of-week field (0 or 7 = Sunday) as APScheduler day names.

    APScheduler 3 numbers days from Monday = 0, so ``from_crontab("0 9 * * 1")`` would fire on
    Tuesdays; expanding the field to names keeps the standard meaning, steps and ranges included.
    """
    if field == "*":
        return field

    def number(text: str) -> int:
        text = text.lower()
        if text[:3] in _DAY_NAMES:
            return _DAY_NAMES.index(text[:3])
        value = int(text)
        if not 0 <= value <= 7:
            raise ValueError(f"day of week {value} is outside 0-7")
        return value

    days: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"invalid step in {item!r}")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, last_text = span.split("-", 1)
            first, last = number(first_text), number(last_text)
        else:
            first = number(span)
            last = 6 if step_text else first
        if last < first:
            raise ValueError(f"invalid range {item!r}")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def cron_trigger(expression: str) -> CronTrigger:
    """A five-field cron expression (minute hour day month day-of-week, standard meaning) in UTC."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month day-of-week), got {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_cron_days(day_of_week), timezone=UTC
    )


def make_trigger(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of a schedule (UTC; ``every`` aligned to the epoch)."""
    if isinstance(schedule, EverySchedule):
        return IntervalTrigger(seconds=schedule.every.total_seconds(), start_date=EPOCH, timezone=UTC)
    return cron_trigger(schedule)


def due_time(schedule: Schedule, tick: datetime) -> datetime:
    """The latest fire time of ``schedule`` at or before ``tick``: the end of the window due at ``tick``."""
    tick = utc(tick)
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
        return utc(last)
    while (high - low) > timedelta(seconds=1):
        middle = low + timedelta(seconds=int((high - low).total_seconds()) // 2)
        fire = next_from(middle)
        if fire is not None and fire <= tick:
            low = middle
        else:
            high = middle
    result = next_from(low)
    assert result is not None
    return utc(result)


@dataclass(frozen=True)
class DueWindow:
    """The window a run at some moment evaluates: ``[start, end)``, ``end`` being the due time."""

    start: datetime
    end: datetime


def due_window(model: ModelSettings, tick: datetime, delay: timedelta = timedelta(0)) -> DueWindow:
    """Which window is due at ``tick`` for a model: ends at the latest fire time <= ``tick - delay``."""
    end = due_time(model.schedule, utc(tick) - delay)
    return DueWindow(end - model.window, end)


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
