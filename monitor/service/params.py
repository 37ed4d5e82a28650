"""Query parameters shared by several endpoints, validated once so handlers get clean values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Path, Query

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
Start = Annotated[datetime | None, Query(description="window start (RFC 3339; default: end minus the window)")]
End = Annotated[datetime | None, Query(description="window end, exclusive (RFC 3339; default: now)")]
ResultsEnd = Annotated[
    datetime | None,
    Query(description="latest window end included (RFC 3339; default: no limit, so the newest run is always listed)"),
]


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
