"""Several connections at once: the columns of a comparison are independent, and chDB releases the GIL.

clickhouse-connect serialises the calls of one client, so each extra worker gets its own connection
(:meth:`monitor.storage.Storage.clone`; on chDB a second handle on this process's engine). Queries of
parallel workers run on one thread each (:func:`single_threaded`): on inputs of a few hundred thousand
rows a two-thread ``GROUP BY`` is slower than a one-thread one (it merges two hash tables), and
two one-thread queries at once keep both cores busy anyway.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from detectors.drift.collect import profile_side
from detectors.drift.sample import NUMERICAL, Kind, Sample
from detectors.references.profile import ColumnSummary
from monitor.storage import Storage

T = TypeVar("T")
R = TypeVar("R")


def single_threaded(sample: Sample) -> Sample:
    """The same rows, every query over them on one ClickHouse thread."""
    return replace(sample, settings={**sample.settings, "max_threads": 1})


def in_parallel(storage: Storage, workers: int, items: list[T], work: Callable[[Storage, T], R]) -> list[R]:
    """``work(connection, item)`` for every item, on up to ``workers`` connections at once; results in order."""
    if workers <= 1 or len(items) <= 1:
        return [work(storage, item) for item in items]
    clones = [storage.clone() for _ in range(min(workers, len(items)) - 1)]
    idle: queue.SimpleQueue[Storage] = queue.SimpleQueue()
    for connection in (storage, *clones):
        idle.put(connection)

    def task(item: T) -> R:
        connection = idle.get()
        try:
            return work(connection, item)
        finally:
            idle.put(connection)

    try:
        with ThreadPoolExecutor(len(clones) + 1, thread_name_prefix="drift") as pool:
            return list(pool.map(task, items))
    finally:
        for connection in clones:
            connection.close()


def profile_in_parallel(
    storage: Storage,
    sample: Sample,
    names: list[str],
    kinds: dict[str, Kind],
    reference: bool,
    workers: int,
    rows: int | None = None,
) -> tuple[int, dict[str, ColumnSummary]]:
    """:func:`profile_side`, its numerical columns split over ``workers`` queries run at once.

    The reference's exact deciles are the expensive part, and ClickHouse finishes each quantile state on
    one thread: two queries of half the columns each take half the time on two cores.
    """
    numeric = [n for n in names if kinds[n] == NUMERICAL]
    if workers <= 1 or len(numeric) < 2 or not reference:
        return profile_side(storage, sample, names, kinds, reference=reference, rows=rows)
    groups = [numeric[i::workers] for i in range(workers)]
    groups[0] += [n for n in names if kinds[n] != NUMERICAL]
    parts = in_parallel(
        storage, workers, groups, lambda connection, group: profile_side(connection, sample, group, kinds, reference)
    )
    merged = {k: v for _, stats in parts for k, v in stats.items()}
    return parts[0][0], {n: merged[n] for n in names}
