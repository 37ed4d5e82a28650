"""SQL literals for the few values the detectors embed in generated SQL.

``Sample`` carries its FROM and WHERE as text (the engine composes them into its own queries), so
values that end up there are rendered as literals here, escaped once, in one place.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.windows import as_utc

if TYPE_CHECKING:
    from monitor.windows import Window


def sql_string(value: str) -> str:
    """A single-quoted ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_float(value: float) -> str:
    """A Float64 literal that round-trips exactly (``nan`` and ``inf`` included)."""
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return f"toFloat64({number!r})"


def sql_datetime(moment: datetime, precision: int = 3) -> str:
    """A ClickHouse DateTime64(precision, 'UTC') literal (precision 3 or 6)."""
    utc = as_utc(moment)
    fraction = f"{utc.microsecond:06d}"[:precision]
    return f"toDateTime64('{utc.strftime('%Y-%m-%d %H:%M:%S')}.{fraction}', {precision}, 'UTC')"


def datetime_param(moment: datetime) -> str:
    """A DateTime64(3) query parameter: text in UTC with millisecond precision (``{x:String}``)."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def sql_string_array(values: list[str]) -> str:
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


def window_condition(window: Window, column: str = "ts") -> str:
    """SQL that is true for timestamps inside the half-open window."""
    return f"{column} >= {sql_datetime(window.start)} AND {column} < {sql_datetime(window.end)}"
