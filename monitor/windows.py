"""Window arithmetic: which half-open time range ``[start, end)`` a detection run evaluates.

Pure functions of their arguments (no clock reads except where ``now`` is omitted), so the
scheduler and the tests can reason about windows without time passing. Times are timezone-aware UTC
and truncated to milliseconds, the precision of ``events.ts``, so a window written to
``detector_results`` reads back equal to the one that was evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.errors import InputError

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The times anything accepts from a user (CLI, API, configuration): ClickHouse's DateTime64 holds
# 1900..2299; this is a narrower, sane range, far from where datetime arithmetic overflows.
MIN_TIME = EPOCH
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
TIME_RANGE = "between 1970-01-01 and 2200-01-01"


def as_utc(value: datetime) -> datetime:
    """Aware UTC at full precision; a naive datetime is taken to be UTC already (ClickHouse returns
    DateTime64 values naive, in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_utc(value: datetime) -> datetime:
    """Aware UTC at millisecond precision (what a DateTime64(3, 'UTC') column stores)."""
    aware = as_utc(value)
    return aware.replace(microsecond=aware.microsecond // 1000 * 1000)


def utc_now() -> datetime:
    return to_utc(datetime.now(UTC))


@dataclass(frozen=True, order=True)
class Window:
    """A half-open time range ``[start, end)`` of event timestamps."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError(f"window start {self.start} must be before its end {self.end}")

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def shifted(self, delta: timedelta) -> Window:
        """The same window moved by ``delta`` (negative: earlier), e.g. a day or a week before."""
        return Window(self.start + delta, self.end + delta)

    def previous(self) -> Window:
        """The window of the same length that ends where this one starts."""
        return self.shifted(-self.length)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def resolve_window(
    window_end: datetime | None, window: timedelta | None, default_window: timedelta, now: datetime | None = None
) -> Window:
    """The window a run evaluates: it ends at ``window_end`` (default: ``now``) and lasts ``window``."""
    length = window if window is not None else default_window
    if length <= timedelta(0):
        raise InputError(f"window must be positive, got {length}")
    end = to_utc(window_end) if window_end is not None else to_utc(now) if now is not None else utc_now()
    return Window(end - length, end)


def align_end(moment: datetime, step: timedelta) -> datetime:
    """The latest multiple of ``step`` since the Unix epoch at or before ``moment`` (for scheduled runs).

    Aligned ends make a scheduled run and a rerun of "the same window" the same window exactly.
    """
    moment = to_utc(moment)
    step_ms = int(step.total_seconds() * 1000)
    if step_ms <= 0:
        raise ValueError("step must be positive")
    elapsed_ms = int((moment - EPOCH).total_seconds() * 1000)
    return EPOCH + timedelta(milliseconds=elapsed_ms - elapsed_ms % step_ms)


def in_time_range(value: datetime) -> bool:
    """Whether ``value`` (naive: UTC) lies in ``[MIN_TIME, MAX_TIME)``, the one rule for user-given times."""
    try:
        return MIN_TIME <= as_utc(value) < MAX_TIME
    except OverflowError:  # an offset moving it past year 1 or 9999
        return False


EPOCH_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 timestamp (``2026-11-27T10:00:00Z``; no zone = UTC) or epoch milliseconds,
    :data:`TIME_RANGE` (:class:`InputError` otherwise)."""
    value = text.strip()
    out_of_range = InputError(f"timestamp {text!r} out of range: must be {TIME_RANGE}")
    if EPOCH_NUMBER.match(value):
        milliseconds = float(value)
        if milliseconds >= (MAX_TIME - EPOCH).total_seconds() * 1000:
            raise out_of_range
        return to_utc(EPOCH + timedelta(milliseconds=milliseconds))
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise InputError(
            f"invalid timestamp {text!r}: expected RFC 3339 like 2026-11-27T10:00:00Z or epoch milliseconds"
        ) from exc
    if not in_time_range(parsed):
        raise out_of_range
    return to_utc(parsed)
