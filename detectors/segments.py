"""Segments: the ``segment`` map of events broken down by the configured keys.

Every detector runs for the whole population and then once per segment value found in the window
(the :data:`MAX_SEGMENT_VALUES` most frequent values per key, so a key with unbounded values cannot
multiply the work without limit). A segment is ``(key, value)``; its label in ``detector_results``
is ``key=value`` and ``""`` is the whole population. The reference is filtered to the same segment
when its rows carry the key (a file column named like the key, or the logged events' map), and is
used whole otherwise.

One scan per run (:func:`census`) counts the window's events per segment and notes what the
predictions look like, which the runner needs before any detector runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string

Segment = tuple[str, str] | None
"""``None`` for the whole population, else (segment key, value)."""

MAX_SEGMENT_VALUES = 20


def segment_label(segment: Segment) -> str:
    return "" if segment is None else f"{segment[0]}={segment[1]}"


def segment_condition(segment: Segment, column: str = "segment") -> str:
    """SQL (starting with `` AND``) restricting rows to a segment; empty for the whole population."""
    if segment is None:
        return ""
    return f" AND {column}[{sql_string(segment[0])}] = {sql_string(segment[1])}"


@dataclass(frozen=True)
class Census:
    """What one scan of the window found: events overall and per segment, and the predictions' shape."""

    total: int
    model_version: str
    segments: dict[tuple[str, str], int] = field(default_factory=dict)
    text_predictions: int = 0
    prediction_min: float | None = None
    prediction_max: float | None = None

    def count(self, segment: Segment) -> int:
        return self.total if segment is None else self.segments.get(segment, 0)


def census(storage: Storage, from_sql: str, where: str, keys: list[str], limit: int = MAX_SEGMENT_VALUES) -> Census:
    """Count the window's events (overall, per model version, per value of each segment key)."""
    rows = storage.rows(
        f"SELECT model_version, count() AS n, countIf(prediction_cat IS NOT NULL), "
        f"minIf(prediction_num, isFinite(prediction_num)), maxIf(prediction_num, isFinite(prediction_num)), "
        f"countIf(isFinite(prediction_num)) FROM {from_sql} WHERE {where} GROUP BY model_version ORDER BY n DESC"
    )
    numeric = [(lo, hi) for *_, lo, hi, k in rows if k]
    found: dict[tuple[str, str], int] = {}
    for key in keys:
        for value, n in storage.rows(
            f"SELECT segment[{sql_string(key)}] AS v, count() AS n FROM {from_sql} WHERE {where} "
            f"AND mapContains(segment, {sql_string(key)}) GROUP BY v ORDER BY n DESC, v LIMIT {int(limit)}"
        ):
            found[(key, str(value))] = int(n)
    return Census(
        total=sum(int(r[1]) for r in rows),
        model_version=str(rows[0][0]) if rows else "",
        segments=found,
        text_predictions=sum(int(r[2]) for r in rows),
        prediction_min=min(float(lo) for lo, _ in numeric) if numeric else None,
        prediction_max=max(float(hi) for _, hi in numeric) if numeric else None,
    )
