"""`events` is partitioned by the day a row was stored (migration 0005), not by the day producers
put in an event's timestamp: events scattered over many days cost one part, an existing table is
rebuilt with every row, column, TTL and setting it had, and copies stored on different days still
count once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pytest

from monitor.ingest.batch import Batch
from monitor.ingest.writer import BatchWriter
from monitor.settings import RetentionSettings
from monitor.storage import Storage
from monitor.storage.events import FeatureColumns
from monitor.storage.migrations import apply_migrations
from monitor.storage.repartition import SCRATCH_PREFIX, STORED_DAY, partition_key, repartition_events
from monitor.storage.retention import apply_retention, current_ttls

OLD_KEY = "toYYYYMMDD(ts)"


def active_partitions(storage: Storage) -> list[str]:
    rows = storage.rows(
        "SELECT DISTINCT partition FROM system.parts WHERE active AND database = {db:String} AND table = 'events'",
        parameters={"db": storage.database},
    )
    return sorted(str(r[0]) for r in rows)


def copies(storage: Storage) -> list[str]:
    """The rebuild's own tables left in the database."""
    rows = storage.rows(
        "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": storage.database}
    )
    return [str(r[0]) for r in rows if str(r[0]).startswith(SCRATCH_PREFIX)]


def partitioned_by_event_day(storage: Storage) -> None:
    """`events` as a database migrated before 0005 has it: partitioned by the event's own day."""
    events, old = storage.table("events"), storage.table("events_by_event_day")
    storage.command(
        f"CREATE TABLE {old} AS {events} ENGINE = ReplacingMergeTree PARTITION BY {OLD_KEY} "
        "ORDER BY (model, ts, event_id) SETTINGS max_compress_block_size = 65536"
    )
    storage.command(f"ALTER TABLE {old} MODIFY TTL {current_ttls(storage)['events']}")
    storage.command(f"EXCHANGE TABLES {events} AND {old}")
    storage.command(f"DROP TABLE {old} SYNC")
    storage.command(f"DELETE FROM {storage.table('schema_migrations')} WHERE version = 5")
    assert partition_key(storage, "events") == OLD_KEY


def insert_events(storage: Storage, rows: list[tuple[str, datetime, float, datetime]]) -> None:
    """Events (event_id, ts, amount, ingested_at) of model "m", amount in the map."""
    storage.insert_arrow(
        "events",
        pa.table(
            {
                "model": ["m"] * len(rows),
                "event_id": [r[0] for r in rows],
                "ts": pa.array([r[1] for r in rows], pa.timestamp("ms", tz="UTC")),
                "fnum": pa.array([[("amount", r[2])] for r in rows], pa.map_(pa.string(), pa.float64())),
                "ingested_at": pa.array([r[3] for r in rows], pa.timestamp("ms", tz="UTC")),
            }
        ),
    )


def everything(storage: Storage) -> list[str]:
    """Every stored row, every column (as repr: NaN, the missing number, equals itself there)."""
    return [repr(r) for r in storage.rows(f"SELECT * FROM {storage.table('events')} ORDER BY event_id, ingested_at")]


# Within the retention the tests set (rows past their TTL may be dropped by any insert or merge).
STORED = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=3)


def test_an_existing_table_is_rebuilt_with_every_row_column_ttl_and_setting(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    partitioned_by_event_day(storage)
    FeatureColumns(storage).ensure([("m", "amount", "numerical")])
    apply_retention(storage, RetentionSettings(models={"m": timedelta(days=7)}))
    ttl = current_ttls(storage)["events"]
    assert "multiIf" in ttl
    insert_events(
        storage,
        [
            ("a", datetime(1950, 1, 1, tzinfo=UTC), 1.0, STORED),
            ("b", datetime(2026, 11, 19, tzinfo=UTC), 2.0, STORED + timedelta(days=1)),
            ("c", datetime(2290, 6, 1, tzinfo=UTC), 3.0, STORED + timedelta(days=2)),
        ],
    )
    before = everything(storage)
    assert len(active_partitions(storage)) == 3  # one per event day

    with caplog.at_level(logging.INFO, logger="monitor.storage"):
        assert [m.version for m in apply_migrations(storage)] == [5]
    assert "copying 3 rows once" in caplog.text
    assert "schema migration 0005 events_by_stored_day applied in" in caplog.text

    assert partition_key(storage, "events") == STORED_DAY
    assert everything(storage) == before
    assert storage.rows(f"SELECT event_id, n__amount FROM {storage.table('events')} FINAL ORDER BY event_id") == [
        ("a", 1.0),
        ("b", 2.0),
        ("c", 3.0),
    ]
    assert current_ttls(storage)["events"] == ttl
    query = str(
        storage.rows(
            "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = 'events'",
            parameters={"db": storage.database},
        )[0][0]
    )
    assert "max_compress_block_size = 65536" in query and "ReplacingMergeTree" in query
    assert active_partitions(storage) == [(STORED + timedelta(days=d)).strftime("%Y%m%d") for d in range(3)]
    assert copies(storage) == []
    repartition_events(storage)  # run again (a crash after the exchange): nothing changes
    assert everything(storage) == before and copies(storage) == []


def test_a_copy_left_by_a_crash_is_dropped_once_stale(storage: Storage) -> None:
    left = storage.table(f"{SCRATCH_PREFIX}crashed")
    storage.command(f"CREATE TABLE {left} AS {storage.table('events')}")
    repartition_events(storage)  # may belong to a rebuild still running: kept
    assert copies(storage) == [f"{SCRATCH_PREFIX}crashed"]
    repartition_events(storage, stale_after=timedelta(0))
    assert copies(storage) == []


def test_rows_older_code_writes_during_the_copy_are_carried_over(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a server, a consumer still on older code may store events while the table is copied."""
    partitioned_by_event_day(storage)
    insert_events(storage, [("early", datetime(2026, 11, 1, tzinfo=UTC), 1.0, STORED)])
    command = storage.command

    def meanwhile(statement: str, *args: object, **kwargs: object) -> object:
        if statement.startswith("EXCHANGE TABLES"):
            insert_events(storage, [("late", datetime(2001, 1, 1, tzinfo=UTC), 2.0, STORED + timedelta(hours=1))])
        return command(statement, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage, "command", meanwhile)
    repartition_events(storage)
    monkeypatch.undo()
    rows = storage.rows(f"SELECT event_id, fnum['amount'] FROM {storage.table('events')} FINAL ORDER BY event_id")
    assert rows == [("early", 1.0), ("late", 2.0)]
    assert partition_key(storage, "events") == STORED_DAY


def test_a_batch_of_events_over_a_thousand_days_writes_one_partition(storage: Storage) -> None:
    day = 86_400_000
    raws = [
        orjson.dumps(
            {
                "event_id": f"e{i}",
                "model": "m",
                "timestamp": 100_000_000_000 + i * 115 * day,  # 1973 to 2288, every 115 days
                "features": {"a": float(i)},
                "prediction": 0.5,
            }
        )
        for i in range(1000)
    ]
    batch = Batch(raw_predictions=raws, raw_sources=[("t", 0, i) for i in range(1000)], messages=1000)
    BatchWriter(storage, retries=0).write(batch)
    stored = storage.rows(f"SELECT count(), uniqExact(toDate(ts)) FROM {storage.table('events')} FINAL")
    assert stored == [(1000, 1000)]
    assert len(active_partitions(storage)) <= 2  # the day it was stored (two only across midnight)


def test_copies_stored_on_different_days_count_once(storage: Storage) -> None:
    """FINAL merges across partitions: a redelivery stored after midnight is still one event."""
    ts = datetime(2026, 11, 19, 23, 59, tzinfo=UTC)
    insert_events(storage, [("a", ts, 1.0, STORED)])
    insert_events(storage, [("a", ts, 1.0, STORED + timedelta(days=1))])
    assert len(active_partitions(storage)) == 2
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0] == 1
