"""Select a window of ``events`` once per comparison: by row positions instead of by its predicate.

A comparison reads the current window once per column. With the window's predicate (model, time range)
every one of those queries reads ``model`` and ``ts`` of every candidate row again to evaluate it:
over twenty-odd queries, as much again as a plain scan of the window (BENCHMARKS.md). Yet the
predicate selects a *contiguous* run of rows in every part (the sorting key is
``(model, ts, event_id)``), so :func:`pin` asks once which ``(_part, _part_offset)`` ranges it covers
and gives back a sample selected by those ranges. ClickHouse prunes granules by ``_part_offset`` and
evaluates the ranges without reading any column, so each later query reads only the feature column.

Why it stays exact:

- The ranges are taken from the raw rows (no ``FINAL``), and a part is pinned only if its matching rows
  are exactly ``max - min + 1`` contiguous rows; otherwise (any predicate that is not a range of the
  sorting key, e.g. a segment) the sample is left as it is.
- Queries still read ``FINAL``: a redelivered event has the same sorting key as its twin, so both lie
  in the pinned ranges and collapse as before. The ranges are therefore applied as ``PREWHERE``, before
  the ``FINAL`` merge, which is what lets granules be skipped and no filter step run (a plain ``WHERE``
  after ``FINAL`` costs more per histogram query).
- Parts are immutable but can be merged away while a comparison runs (a query over a vanished part
  simply sees fewer rows), and a part that left the active set never comes back. So after the last
  query :meth:`Pin.intact` checks that every pinned part is still active; if not, the engine compares
  again with the unpinned sample. Rows inserted meanwhile are left out, as they would be had the
  comparison started a moment earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from detectors.drift.sample import Sample
from monitor.errors import StorageError
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string

FINAL_SUFFIX = " FINAL"
MAX_PARTS = 32  # more parts: the OR of ranges costs more than the predicate it replaces


@dataclass(frozen=True)
class Pin:
    """A sample selected by part offsets, and what :meth:`intact` needs to check it afterwards."""

    sample: Sample  # the pinned sample, or the original when nothing could be pinned
    table: str = ""
    parts: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        return bool(self.table)

    def intact(self, storage: Storage) -> bool:
        """Every pinned part is still active, so every query since :func:`pin` saw all the pinned rows."""
        if not self.pinned or not self.parts:
            return True
        names = ", ".join(sql_string(p) for p in self.parts)
        found = storage.rows(f"SELECT DISTINCT _part FROM {self.table} WHERE _part IN ({names}) AND _part_offset = 0")
        return {r[0] for r in found} == set(self.parts)


def pin(storage: Storage, sample: Sample) -> Pin:
    """``sample`` selected by part offsets when it reads a MergeTree table ``FINAL`` by a range predicate.

    Anything else (files, Memory tables, predicates that do not select contiguous rows, too many parts)
    comes back unchanged (``Pin.pinned`` False).
    """
    if not sample.from_sql.endswith(FINAL_SUFFIX):
        return Pin(sample)
    table = sample.from_sql[: -len(FINAL_SUFFIX)]
    try:
        ranges = storage.rows(
            f"SELECT _part, min(_part_offset), max(_part_offset), count() FROM {table} "
            f"WHERE {sample.where_sql} GROUP BY _part ORDER BY _part"
        )
    except StorageError:  # not a MergeTree table (no _part_offset): nothing to pin
        return Pin(sample)
    if len(ranges) > MAX_PARTS or any(int(hi) - int(lo) + 1 != int(n) for _, lo, hi, n in ranges):
        return Pin(sample)
    terms = [
        f"(_part = {sql_string(part)} AND _part_offset BETWEEN {int(lo)} AND {int(hi)})" for part, lo, hi, _ in ranges
    ]
    pinned = replace(sample, from_sql=f"{sample.from_sql} PREWHERE {' OR '.join(terms) or '0'}", where_sql="1")
    return Pin(pinned, table, tuple(str(r[0]) for r in ranges))
