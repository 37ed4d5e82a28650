"""Migration 0005: ``events`` partitioned by the day a row was stored, not by the event's own time.

An event's timestamp is the producer's to choose. With one partition per event day, one batch of
events scattered over N days wrote N parts in one insert, and every part stayed on disk (tens of
files each) and weighed on the engine's memory in every later process until retention removed it
(BENCHMARKS.md, "Events scattered over many days"). The day a row is stored is the
service's own clock, so partitions grow with the days of operation within the retention, whatever
producers send; and retention, which counts from ``ingested_at`` (:mod:`monitor.storage.retention`),
now expires partitions whole. Windows are still found by the sorting key ``(model, ts, event_id)``,
and ``FINAL`` still collapses copies stored on different days (ClickHouse merges across partitions
when the partition key is not part of the sorting key).

ClickHouse cannot change a table's partition key, so the table is rebuilt: an empty copy with the new
key (same columns, typed columns and settings included), the rows copied, the two exchanged
atomically, the old one dropped. Rows that a process still running older code wrote into the old
table during the copy are carried over after the exchange. The step is idempotent: a table that
already has the new key is left alone, so a crash anywhere is repaired by running it again. Each run
copies into a table of its own name, so processes that start together (the pods of an upgrade) do
not drop each other's copies; a copy left by a crash is dropped by a later start once it is an hour old.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from monitor.storage.client import Storage, quote_identifier
from monitor.storage.cluster import for_cluster
from monitor.storage.retention import current_ttls

log = logging.getLogger(__name__)

STORED_DAY = "toYYYYMMDD(ingested_at)"
SCRATCH_PREFIX = "events_by_stored_day_"
STALE = timedelta(hours=1)
# Copying a table whose rows span many days writes many partitions in one insert.
_COPY = "SETTINGS max_partitions_per_insert_block = 0"
# Migration 0003's setting, which always ran before this one.
COMPRESS_BLOCK = "max_compress_block_size = 65536"


def partition_key(storage: Storage, table: str) -> str:
    """The partition key of ``table`` as ClickHouse prints it ('' if the table does not exist)."""
    rows = storage.rows(
        "SELECT partition_key FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": storage.database, "t": table},
    )
    return str(rows[0][0]) if rows else ""


def repartition_events(storage: Storage, cluster: str | None = None, stale_after: timedelta = STALE) -> None:
    """Rebuild ``events`` partitioned by :data:`STORED_DAY`, keeping every row, column and setting."""

    def ddl(statement: str) -> None:
        storage.command(for_cluster(statement, cluster) if cluster else statement)

    if partition_key(storage, "events") == STORED_DAY:
        for name in _scratch_tables(storage, older_than=stale_after):
            ddl(f"DROP TABLE IF EXISTS {storage.table(name)} SYNC")
        return
    events, scratch = storage.table("events"), storage.table(SCRATCH_PREFIX + secrets.token_hex(4))
    ddl(
        f"CREATE TABLE IF NOT EXISTS {scratch} AS {events} ENGINE = ReplacingMergeTree "
        f"PARTITION BY {STORED_DAY} ORDER BY (model, ts, event_id) SETTINGS {COMPRESS_BLOCK}"
    )
    ttl = current_ttls(storage).get("events", "")
    if ttl:
        storage.command(f"ALTER TABLE {scratch} MODIFY TTL {ttl}")
    rows = storage.rows(f"SELECT count() FROM {events}")[0][0]
    if rows:
        log.info("rebuilding events partitioned by the day rows were stored: copying %d rows once", rows)
    storage.command(f"INSERT INTO {scratch} SELECT * FROM {events} {_COPY}")
    copied_until = storage.rows(f"SELECT max(ingested_at) FROM {scratch}")[0][0]
    ddl(f"EXCHANGE TABLES {events} AND {scratch}")
    # What older code stored meanwhile (ingested_at is the server's clock at each insert), in the
    # columns the new table has: a typed column added to the old one meanwhile follows its map anyway.
    columns = ", ".join(quote_identifier(c) for c in stored_columns(storage, "events"))
    storage.command(
        f"INSERT INTO {events} ({columns}) SELECT {columns} FROM {scratch} "
        f"WHERE ingested_at > {{since:DateTime64(3, 'UTC')}} {_COPY}",
        parameters={"since": copied_until},
    )
    ddl(f"DROP TABLE IF EXISTS {scratch} SYNC")


def _scratch_tables(storage: Storage, older_than: timedelta) -> list[str]:
    rows = storage.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, {prefix:String}) "
        "AND metadata_modification_time <= now() - toIntervalSecond({age:UInt32})",
        parameters={"db": storage.database, "prefix": SCRATCH_PREFIX, "age": int(older_than.total_seconds())},
    )
    return [str(r[0]) for r in rows]


def stored_columns(storage: Storage, table: str) -> list[str]:
    """The columns of ``table`` that an insert may write, in table order."""
    rows = storage.rows(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
        "AND default_kind IN ('', 'DEFAULT') ORDER BY position",
        parameters={"db": storage.database, "t": table},
    )
    return [str(r[0]) for r in rows]
