"""An existing database (schema of migration 0001, typed columns filled directly) moves to the fleet
layout: typed columns then follow the maps, event_keys is filled, an event stored under two
timestamps keeps the first, and the retention TTLs are set."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from monitor.ingest.batch import Batch
from monitor.ingest.validation import parse_prediction
from monitor.ingest.writer import BatchWriter
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import FeatureColumns
from monitor.storage.migrations import apply_migrations, available_migrations
from monitor.storage.retention import current_ttls
from tests.ingest.kafka_helpers import event


def old_database(storage: Storage) -> None:
    """The database as the code before the fleet layout left it."""
    storage.command(f"DROP DATABASE {quote_identifier(storage.database)}")
    storage.command(f"CREATE DATABASE {quote_identifier(storage.database)}")
    storage.command(
        f"CREATE TABLE {storage.table('schema_migrations')} (version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    first = available_migrations()[0]
    assert first.version == 1
    for statement in first.statements(storage.database):
        storage.command(statement)
    storage.insert_rows("schema_migrations", [(1, first.name, first.checksum)], ["version", "name", "checksum"])
    storage.command(f"ALTER TABLE {storage.table('events')} ADD COLUMN n__amount Float64 DEFAULT nan")
    storage.insert_rows(
        "feature_columns", [("fraud", "amount", "numerical", "n__amount")], ["model", "feature", "kind", "column"]
    )
    t0, t1 = datetime(2026, 11, 27, 10, tzinfo=UTC), datetime(2026, 11, 27, 11, tzinfo=UTC)
    storage.insert_arrow(
        "events",
        pa.table(
            {
                "model": ["fraud"] * 3,
                "event_id": ["a", "b", "a"],  # "a" stored twice, under two timestamps
                "ts": pa.array([t0, t0, t1], pa.timestamp("ms", tz="UTC")),
                "n__amount": [1.0, 2.0, 3.0],
            }
        ),
    )


def create_query(storage: Storage, table: str) -> str:
    return str(
        storage.rows(
            "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": storage.database, "t": table},
        )[0][0]
    )


def insert_peak(storage: Storage, table: str, select: str) -> int:
    """The engine's tracked memory above its starting level during ``INSERT INTO table select``,
    sampled from a second connection every few milliseconds."""
    other = storage.clone()
    level = "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'"
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], int(other.rows(level)[0][0]))
            time.sleep(0.002)

    storage.release_memory()
    start = int(other.rows(level)[0][0])
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        storage.command(f"INSERT INTO {table} {select}", settings={"optimize_on_insert": 0})
        time.sleep(0.02)
    finally:
        done.set()
        sampler.join()
        other.close()
    return peak[0] - start


def test_a_new_database_writes_events_with_small_compression_buffers(storage: Storage) -> None:
    """Writing a part holds one buffer per column stream: 64 KiB each in `events` (migration 0003, in
    effect at once), against 1 MiB in a copy left with ClickHouse's default."""
    assert "max_compress_block_size = 65536" in create_query(storage, "events")
    FeatureColumns(storage).ensure(
        [("m", f"x{j}", "numerical") for j in range(30)] + [("m", f"c{j}", "categorical") for j in range(5)]
    )
    events, default = storage.table("events"), storage.table("events_default_buffers")
    storage.command(f"CREATE TABLE {default} AS {events}")
    storage.command(f"ALTER TABLE {default} MODIFY SETTING max_compress_block_size = 1048576")
    # A table made with CREATE ... AS may not apply a copied setting until it is attached again.
    storage.command(f"DETACH TABLE {default}")
    storage.command(f"ATTACH TABLE {default}")
    numbers = ", ".join(f"'x{j}', rand({j}) / 1e9" for j in range(30))
    texts = ", ".join(f"'c{j}', toString(number % 7)" for j in range(5))
    select = (
        "SELECT 'm' AS model, toString(number) AS event_id, now64(3) AS ts, "
        f"map({numbers}) AS fnum, map({texts}) AS fcat FROM numbers(20000)"
    )
    small = insert_peak(storage, f"{events} (model, event_id, ts, fnum, fcat)", select)
    large = insert_peak(storage, f"{default} (model, event_id, ts, fnum, fcat)", select)
    assert small < large / 2, (small >> 20, large >> 20)


def test_an_existing_database_moves_to_the_fleet_layout(storage: Storage) -> None:
    old_database(storage)
    applied = [m.version for m in apply_migrations(storage)]
    assert applied[0] == 2 and 400 in applied
    events = storage.table("events")
    rows = storage.rows(f"SELECT event_id, ts, n__amount FROM {events} FINAL ORDER BY event_id")
    assert rows == [("a", datetime(2026, 11, 27, 10), 1.0), ("b", datetime(2026, 11, 27, 10), 2.0)]
    keys = storage.rows(f"SELECT event_id, ts FROM {storage.table('event_keys')} FINAL ORDER BY event_id")
    assert keys == [("a", datetime(2026, 11, 27, 10)), ("b", datetime(2026, 11, 27, 10))]
    assert "ingested_at" in current_ttls(storage)["events"]
    assert "max_compress_block_size = 65536" in create_query(storage, "events")
    # New events carry their features in the maps; the old typed column now follows them.
    new = parse_prediction(orjson.dumps(event(7) | {"event_id": "c"}))
    resent = parse_prediction(orjson.dumps(event(8) | {"event_id": "a"}))  # "a" under a third timestamp
    BatchWriter(storage, retries=0).write(Batch(events=[new, resent], event_sources=[("t", 0, 0), ("t", 0, 1)]))
    rows = storage.rows(f"SELECT event_id, n__amount, fnum['amount'] FROM {events} FINAL ORDER BY event_id")
    assert rows == [("a", 1.0, 0.0), ("b", 2.0, 0.0), ("c", 7.0, 7.0)]


def test_typed_columns_move_to_a_one_scan_lookup_with_their_values(storage: Storage) -> None:
    """Migration 0004: typed columns made with the two-scan DEFAULT (mapContains and []) take the
    one-scan one. Values read the same, present or missing, for rows stored before the column existed
    (read through the DEFAULT), while it had the old one (stored) and after the migration."""
    events = storage.table("events")
    columns = "model, event_id, ts, fnum, fcat"

    def insert(first: int, amount: float, city: str) -> None:
        storage.command(
            f"INSERT INTO {events} ({columns}) SELECT 'm', toString(number + {first}), now64(3), "
            f"if(number = 0, map('amount', {amount}), map()), if(number = 0, map('city', '{city}'), map()) "
            "FROM numbers(2)"
        )

    storage.command(f"DELETE FROM {storage.table('schema_migrations')} WHERE version = 4")
    insert(0, 1.5, "Bern")
    for column, kind, source, type_, missing in (
        ("n__amount", "numerical", "fnum", "Float64", "nan"),
        ("c__city", "categorical", "fcat", "LowCardinality(Nullable(String))", "NULL"),
    ):
        key = column[3:]
        storage.command(
            f"ALTER TABLE {events} ADD COLUMN {column} {type_} "
            f"DEFAULT if(mapContains({source}, '{key}'), {source}['{key}'], {missing})"
        )
        storage.insert_rows("feature_columns", [("m", key, kind, column)], ["model", "feature", "kind", "column"])
    insert(2, 2.5, "Oslo")
    assert [m.version for m in apply_migrations(storage)] == [4]
    defaults = dict(
        storage.rows(
            "SELECT name, default_expression FROM system.columns WHERE database = {db:String} AND table = 'events' "
            "AND name IN ('n__amount', 'c__city')",
            parameters={"db": storage.database},
        )
    )
    assert len(defaults) == 2
    assert all("arrayElementOrNull" in d and "mapContains" not in d for d in defaults.values()), defaults
    insert(4, 4.0, "Lima")
    rows = storage.rows(f"SELECT event_id, n__amount, c__city FROM {events} FINAL ORDER BY event_id")
    assert [(e, None if a != a else a, c) for e, a, c in rows] == [
        ("0", 1.5, "Bern"),
        ("1", None, None),
        ("2", 2.5, "Oslo"),
        ("3", None, None),
        ("4", 4.0, "Lima"),
        ("5", None, None),
    ]
