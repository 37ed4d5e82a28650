"""The last step of storing events: drop re-sent events, then write ``events`` and ``event_keys``.

Messages ClickHouse parsed are stored straight from the fast path's staging table; events
validated in Python first go to a per-writer Memory table. :meth:`PendingEvents.store` applies the
duplicate rule to either, in fixed statements:

- an event is identified by (model, event_id), whatever its timestamp. ``event_keys`` (sorted by
  model, event_id) holds the first timestamp stored for each; an incoming copy whose key is there
  with another timestamp is dropped, and of several copies in one source the first one read wins
  (the writer stores the fast path's rows before those validated in Python, so across the two
  sources the fast path's copy wins);
- a copy with the *same* timestamp is written again: it collapses with the stored row under
  ``FINAL`` (the sorting key of ``events`` is model, ts, event_id), which keeps a retry after a
  half-finished write harmless;
- ``events`` is written before ``event_keys``: a crash between the two leaves a key missing, and
  the redelivered copy (same timestamp) is written again and collapses.

Keeping ``events`` sorted by time keeps a window one contiguous range for detectors; the cost moves
to the insert, which scans the 8-byte ``key`` hash of ``event_keys`` once per batch and checks
model and event_id only on the rows it finds (see docs/ingestion.md, "Duplicates").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pyarrow as pa

from monitor.ingest.fastpath import one_thread
from monitor.ingest.validation import PredictionEvent
from monitor.ingest.worktables import working_table_name
from monitor.storage import Storage, quote_identifier

_TS = pa.timestamp("ms", tz="UTC")
_MAP_FLOAT = pa.map_(pa.string(), pa.float64())
_MAP_TEXT = pa.map_(pa.string(), pa.string())
_KEYS = pa.list_(pa.string())
NAN = math.nan

# Everything ``events`` receives from ingestion (typed feature columns follow from fnum/fcat).
COLUMNS = [
    "model",
    "event_id",
    "ts",
    "model_version",
    "prediction_num",
    "prediction_cat",
    "probabilities",
    "segment",
    "feature_keys",
    "source",
    "source_partition",
    "source_offset",
    "fnum",
    "fcat",
]


def events_table(events: list[PredictionEvent], sources: list[tuple[str, int, int]], first_seq: int = 0) -> pa.Table:
    """Arrow columns of pending rows for events validated in Python (``seq`` orders them)."""
    n = len(events)
    prediction_num = [NAN] * n
    prediction_cat: list[str | None] = [None] * n
    fnum: list[list[tuple[str, float]]] = []
    fcat: list[list[tuple[str, str]]] = []
    for i, event in enumerate(events):
        numbers: list[tuple[str, float]] = []
        texts: list[tuple[str, str]] = []
        for key, value in event.features.items():
            if value is None:
                continue
            if type(value) is float:
                numbers.append((key, value))
            elif type(value) is bool:
                texts.append((key, "true" if value else "false"))
            else:
                texts.append((key, str(value)))
        fnum.append(numbers)
        fcat.append(texts)
        if type(event.prediction) is float:
            prediction_num[i] = event.prediction
        else:
            prediction_cat[i] = str(event.prediction)
    return pa.table(
        {
            "model": pa.array([e.model for e in events], pa.string()),
            "event_id": pa.array([e.event_id for e in events], pa.string()),
            "ts": pa.array([e.ts_ms for e in events], pa.int64()).cast(_TS),
            "model_version": pa.array([e.model_version for e in events], pa.string()),
            "prediction_num": pa.array(prediction_num, pa.float64()),
            "prediction_cat": pa.array(prediction_cat, pa.string()),
            "probabilities": pa.array([list((e.probabilities or {}).items()) for e in events], _MAP_FLOAT),
            "segment": pa.array([list((e.segment or {}).items()) for e in events], _MAP_TEXT),
            "feature_keys": pa.array([list(e.features) for e in events], _KEYS),
            "source": pa.array([s[0] for s in sources], pa.string()),
            "source_partition": pa.array([s[1] for s in sources], pa.int32()),
            "source_offset": pa.array([s[2] for s in sources], pa.int64()),
            "fnum": pa.array(fnum, _MAP_FLOAT),
            "fcat": pa.array(fcat, _MAP_TEXT),
            "seq": pa.array(range(first_seq, first_seq + n), pa.uint64()),
        }
    )


class PendingEvents:
    """One writer's pending rows (a Memory table) and the duplicate-aware commit of them."""

    def __init__(self, storage: Storage, insert: Callable[[str, pa.Table], None]) -> None:
        self._storage = storage
        self._insert = insert
        self.table_name = working_table_name("pending")
        self.table = storage.table(self.table_name)
        self._dropped_name = self.table_name + "_dropped"
        self._dropped = storage.table(self._dropped_name)
        events = storage.table("events")
        storage.command(
            f"CREATE TABLE IF NOT EXISTS {self.table} ENGINE = Memory AS "
            f"SELECT {', '.join(quote_identifier(c) for c in COLUMNS)}, toUInt64(0) AS seq FROM {events} LIMIT 0"
        )
        storage.command(f"CREATE TABLE IF NOT EXISTS {self._dropped} (seq UInt64) ENGINE = Memory")

    def clear(self) -> None:
        self._storage.command(f"TRUNCATE TABLE {self.table}")

    def add(self, events: list[PredictionEvent], sources: list[tuple[str, int, int]], first_seq: int) -> None:
        if events:
            self._insert(self.table_name, events_table(events, sources, first_seq))

    def store_pending(self) -> tuple[dict[str, int], int]:
        """:meth:`store` the rows added with :meth:`add`."""
        return self.store(self.table, {c: quote_identifier(c) for c in COLUMNS}, "1", "seq")

    def store(self, source: str, columns: dict[str, str], where: str, seq: str) -> tuple[dict[str, int], int]:
        """Store the rows of ``source`` that satisfy ``where`` and are not re-sent copies, with
        ``columns`` (name -> expression over ``source``; model, event_id and ts among them) and
        ``seq`` the expression that orders copies. Returns stored rows per model and the number of
        copies dropped. Every statement has a fixed text."""
        keys = self._storage.table("event_keys")
        model, event_id, ts = columns["model"], columns["event_id"], columns["ts"]
        dropped = self._storage.rows(
            one_thread(
                f"""SELECT seq FROM (
                    SELECT {seq} AS seq, {model} AS model, {event_id} AS event_id, {ts} AS ts,
                           row_number() OVER (PARTITION BY model, event_id ORDER BY seq) AS copy
                    FROM {source} WHERE {where}
                ) AS p
                LEFT ANY JOIN (
                    SELECT model, event_id, min(ts) AS first_ts FROM {keys}
                    WHERE key IN (SELECT cityHash64({model}, {event_id}) FROM {source} WHERE {where})
                      AND (model, event_id) IN (SELECT {model}, {event_id} FROM {source} WHERE {where})
                    GROUP BY model, event_id
                ) AS k USING (model, event_id)
                WHERE copy > 1 OR (isNotNull(k.first_ts) AND k.first_ts != p.ts)""",
                join_use_nulls=1,
            )
        )
        if dropped:
            self._storage.command(f"TRUNCATE TABLE {self._dropped}")
            self._insert(self._dropped_name, pa.table({"seq": pa.array([r[0] for r in dropped], pa.uint64())}))
            where = f"({where}) AND {seq} NOT IN (SELECT seq FROM {self._dropped})"
        names = ", ".join(quote_identifier(c) for c in columns)
        # Copies were dropped above: collapsing the block again at insert (ReplacingMergeTree's
        # default) would only re-sort it, at about the cost of writing it (BENCHMARKS.md); FINAL
        # still collapses whatever a redelivery writes twice (and merges do, within a day of storing).
        self._storage.command(
            one_thread(
                f"INSERT INTO {self._storage.table('events')} ({names}) "
                f"SELECT {', '.join(columns.values())} FROM {source} WHERE {where}",
                optimize_on_insert=0,
            )
        )
        self._storage.command(
            one_thread(
                f"INSERT INTO {keys} (model, event_id, ts) SELECT {model}, {event_id}, {ts} FROM {source} WHERE {where}"
            )
        )
        stored = self._storage.rows(f"SELECT {model}, count() FROM {source} WHERE {where} GROUP BY 1")
        return {str(m): int(c) for m, c in stored}, len(dropped)

    def close(self) -> None:
        self._storage.command(f"DROP TABLE IF EXISTS {self.table}")
        self._storage.command(f"DROP TABLE IF EXISTS {self._dropped}")
