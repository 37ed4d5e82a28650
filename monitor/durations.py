"""Human durations (``90s``, ``5m``, ``1h``, ``7d``, ``1h30m``) as used in the configuration and CLI."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

MAX_DURATION = timedelta(days=3650)
"""The longest duration anything accepts (windows, schedules, retention, timeouts): ten years.

Longer ones are mistakes, and past a few thousand years they overflow Python's datetime arithmetic."""


def _bounded(seconds: float, value: object) -> timedelta:
    if not seconds > 0:  # NaN included
        raise ValueError(f"duration must be positive, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {value!r} is too long: at most {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def parse_duration(value: object) -> timedelta:
    """Parse ``1h``, ``30m``, ``1h30m``, ``45s``, ``2d``, ``1w``, a number of seconds, or a timedelta.

    At most :data:`MAX_DURATION`; text and numbers must be positive.
    """
    if isinstance(value, timedelta):
        if value > MAX_DURATION:
            raise ValueError(f"duration {format_duration(value)!r} is too long: at most {MAX_DURATION.days}d")
        return value
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        return _bounded(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: expected text like '5m', '1h' or '7d'")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    pos, seconds = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {value!r}: expected text like '90s', '5m', '1h', '1h30m' or '7d'")
    return _bounded(seconds, value)


def format_duration(value: timedelta) -> str:
    """The shortest text that :func:`parse_duration` reads back as ``value``."""
    total = value.total_seconds()
    if total != int(total):
        return f"{round(total * 1000)}ms"
    total_int = int(total)
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_UNITS[unit])
        if total_int >= size:
            count, total_int = divmod(total_int, size)
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
"""A pydantic field type accepting human durations."""
