"""Five-field cron expressions (minute hour day month day-of-week) in UTC, with the standard meaning.

Settings validate a model's ``schedule`` with :func:`cron_trigger` and the scheduler builds its jobs
from it, so the parsing lives here, below both.
"""

from __future__ import annotations

from datetime import UTC

from apscheduler.triggers.cron import CronTrigger

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
