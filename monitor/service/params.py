"""Query parameters shared by several endpoints, validated once so handlers get clean values."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator

from monitor import windows
from monitor.ingest.validation import MAX_MODEL_LENGTH
from monitor.service.errors import ApiError

# The range every user-given time must lie in (monitor.windows: the CLI and the configuration share it).
MIN_TIME = windows.MIN_TIME
MAX_TIME = windows.MAX_TIME

# Model names are free text in events, except control characters (C0, DEL, C1) and '/', which the
# validator refuses (model_name_problem, docs/ingestion.md): every stored model can be addressed here.
ModelName = Annotated[
    str,
    Path(min_length=1, max_length=MAX_MODEL_LENGTH, pattern=r"^[^\x00-\x1f\x7f-\x9f/]+$", description="model name"),
]
# An offset written as "+02:00" in a query string that was not percent-encoded arrives as " 02:00"
# ('+' means a space in a query string): the space before a trailing offset is read as the '+' it was.
_SPACED_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def _plus_offset(value: Any) -> Any:
    if isinstance(value, str) and (match := _SPACED_OFFSET.match(value)):
        return f"{match.group(1)}+{match.group(2)}"
    return value


QueryTime = Annotated[datetime | None, BeforeValidator(_plus_offset)]
Start = Annotated[QueryTime, Query(description="window start (RFC 3339; default: end minus the window)")]
End = Annotated[QueryTime, Query(description="window end, exclusive (RFC 3339; default: now)")]
ResultsStart = Annotated[
    QueryTime,
    Query(description="list windows ending after this time (RFC 3339; default: a day ago)"),
]
ResultsEnd = Annotated[
    QueryTime,
    Query(
        description="list windows ending at or before this time (RFC 3339; default: no limit, so the newest run "
        "is always listed)"
    ),
]


def utc_times(value: Any) -> Any:
    """``value`` with every naive datetime inside (ClickHouse returns DateTime64 values naive, in UTC)
    made aware, so that every time in a response is written with its offset (``Z``)."""
    if isinstance(value, datetime):
        return windows.as_utc(value)
    if isinstance(value, dict):
        return {key: utc_times(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [utc_times(item) for item in value]
    return value


def api_time(value: datetime, name: str) -> datetime:
    if not windows.in_time_range(value):
        raise ApiError(422, "invalid_request", f"{name}: must be {windows.TIME_RANGE}")
    return windows.as_utc(value)


def resolve_window(
    start: datetime | None,
    end: datetime | None,
    default_length: timedelta,
    now: datetime | None = None,
    open_end: bool = False,
) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC: end defaults to now, start to end minus ``default_length``.

    ``open_end``: an omitted end means no upper limit (:data:`MAX_TIME`) and start defaults to now minus
    ``default_length``. For listings of stored results: a run asked for a window ending a moment from now
    (``POST .../detect`` with ``end`` just ahead of the clock) must still be among "the latest results".
    """
    current = now or datetime.now(UTC)
    if end is None:
        end_utc = MAX_TIME if open_end else current
        start_utc = api_time(start, "start") if start is not None else max(MIN_TIME, current - default_length)
    else:
        end_utc = api_time(end, "end")
        start_utc = api_time(start, "start") if start is not None else max(MIN_TIME, end_utc - default_length)
    if start_utc >= end_utc:
        raise ApiError(422, "invalid_request", "start must be before end")
    return start_utc, end_utc
