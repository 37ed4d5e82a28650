"""The consumer against the real broker and embedded ClickHouse: fields, dead letters, duplicates,
commit-after-store and failing writes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pytest

from monitor.errors import StorageError
from monitor.ingest.batch import Batch
from monitor.ingest.consumer import IngestConsumer
from monitor.ingest.writer import BatchWriter
from monitor.storage import Storage
from tests.ingest.kafka_helpers import committed, end_offsets, event, kafka_settings, produce

pytestmark = pytest.mark.kafka


def test_events_and_labels_land_with_every_field(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap)
    full = event(
        1,
        model_version="7",
        timestamp="2026-11-27T10:00:00.123Z",
        features={"amount": 12.5, "country": "DE", "is_new_user": True, "age": None, "odd name!": 3},
        probabilities={"0": 0.25, "1": 0.75},
        segment={"region": "eu"},
        prediction=0.75,
    )
    produce(kafka_bootstrap, k.predictions_topic, [full, event(2, prediction="fraud")])
    produce(
        kafka_bootstrap,
        k.labels_topic,
        [{"event_id": "e1", "model": "fraud", "label": 1, "timestamp": "2026-11-28T10:00:00Z"}],
    )
    stats = IngestConsumer(k, storage).run(max_messages=3, idle_timeout=30)
    assert (stats.events, stats.labels, stats.dead_letters) == (2, 1, 0)

    row = storage.dicts(f"SELECT * FROM {storage.table('events')} FINAL WHERE event_id = 'e1'")[0]
    assert row["model"] == "fraud" and row["model_version"] == "7"
    assert row["ts"] == datetime(2026, 11, 27, 10, 0, 0, 123000)
    assert row["n__amount"] == 12.5 and row["c__country"] == "DE" and row["c__is_new_user"] == "true"
    assert row["prediction_num"] == 0.75 and row["prediction_cat"] is None
    assert row["probabilities"] == {"0": 0.25, "1": 0.75} and row["segment"] == {"region": "eu"}
    assert row["feature_keys"] == ["amount", "country", "is_new_user", "age", "odd name!"]
    odd = [c for c in row if c.startswith("n__odd_name_")]
    assert len(odd) == 1 and row[odd[0]] == 3.0
    assert row["source"] == k.predictions_topic
    other = storage.dicts(
        f"SELECT prediction_cat, prediction_num FROM {storage.table('events')} FINAL WHERE event_id = 'e2'"
    )[0]
    assert other["prediction_cat"] == "fraud"

    label = storage.dicts(f"SELECT * FROM {storage.table('labels')} FINAL")[0]
    assert (label["event_id"], label["label_num"]) == ("e1", 1.0)
    assert label["ts"] == datetime(2026, 11, 28, 10, 0)


MALFORMED: list[tuple[bytes, str]] = [
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (b"not json at all", "not valid JSON"),
    (b"[1,2,3]", "JSON object"),
    (orjson.dumps({"model": "fraud", "timestamp": 1795773600000, "features": {}, "prediction": 1}), "'event_id'"),
    (orjson.dumps(event(5, prediction=[1])), "'prediction'"),
    (orjson.dumps(event(6, features={"a": {"nested": 1}})), "'features.a'"),
    (orjson.dumps(event(7, timestamp="27/11/2026")), "RFC 3339"),
    (orjson.dumps(event(8, features={"blob": "x" * 5000})), "more than the limit"),
]


def test_every_malformed_message_lands_in_dead_letters(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap, max_message_bytes=4096)
    produce(kafka_bootstrap, k.predictions_topic, [raw for raw, _ in MALFORMED] + [orjson.dumps(event(9))])
    produce(kafka_bootstrap, k.labels_topic, [b'{"event_id": "e9", "model": "fraud"}'])
    stats = IngestConsumer(k, storage).run(max_messages=len(MALFORMED) + 2, idle_timeout=30)
    assert stats.dead_letters == len(MALFORMED) + 1 and stats.events == 1

    rows = storage.dicts(
        f"SELECT topic, partition, offset, raw, reason, error_kind, received_at "
        f"FROM {storage.table('dead_letters')} FINAL",
    )
    raw_rows = storage.rows(f"SELECT hex(raw), reason, raw_size, raw_sha256 FROM {storage.table('dead_letters')} FINAL")
    stored = {bytes.fromhex(h): reason for h, reason, _, _ in raw_rows}
    # A message over the size limit keeps a prefix and the sha256 of the whole, not the whole.
    oversized = MALFORMED[-1][0]
    (prefix, size, digest) = next((bytes.fromhex(h), n, d) for h, _, n, d in raw_rows if d)
    assert oversized.startswith(prefix) and 0 < len(prefix) < len(oversized)
    assert (size, digest) == (len(oversized), hashlib.sha256(oversized).hexdigest())
    stored[oversized] = stored.pop(prefix)
    for raw, words in MALFORMED:
        assert raw in stored, f"missing dead letter for {raw[:30]!r}"
        assert words in stored[raw]
    label_reason = stored[b'{"event_id": "e9", "model": "fraud"}']
    assert "'label'" in label_reason
    assert len(stored) == len(rows) == len(MALFORMED) + 1
    for row in rows:
        assert row["topic"] in (k.predictions_topic, k.labels_topic)
        assert 0 <= row["partition"] < 3 and row["offset"] >= 0 and row["error_kind"]
    # The bytes and positions identify the message in Kafka: partition/offset pairs are unique.
    assert len({(r["topic"], r["partition"], r["offset"]) for r in rows}) == len(rows)


def test_the_same_event_delivered_twice_is_counted_once(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap)
    produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(100)] + [event(3), event(50)])
    IngestConsumer(k, storage).run(max_messages=102, idle_timeout=30)
    # A second group re-reads the whole topic: every event delivered once more.
    again = kafka_settings(kafka_bootstrap, predictions_topic=k.predictions_topic, labels_topic=k.labels_topic)
    IngestConsumer(again, storage).run(max_messages=102, idle_timeout=30)
    events = storage.table("events")
    physical = storage.rows(f"SELECT count() FROM {events}")[0][0]
    assert physical >= 100  # duplicates may or may not have been merged away yet
    assert storage.rows(f"SELECT count(), uniqExact(event_id) FROM {events} FINAL")[0] == (100, 100)


def test_offsets_are_committed_after_the_batch_is_stored(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap, batch_max_messages=50)
    produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(300)])
    IngestConsumer(k, storage).run(max_messages=300, idle_timeout=30)
    assert committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic)
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0] == 300


class FlakyInsert:
    """The storage boundary failing ``failures`` times before it recovers (or forever)."""

    def __init__(self, storage: Storage, failures: int | None) -> None:
        self.storage = storage
        self.failures = failures
        self.calls = 0

    def __call__(self, table: str, data: pa.Table) -> None:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise StorageError("simulated: ClickHouse refused the insert")
        self.storage.insert_arrow(table, data)


def test_failing_writes_commit_nothing_and_lose_nothing(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap)
    produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(200)])

    down = BatchWriter(storage, retries=2, max_backoff_s=0.05, insert=FlakyInsert(storage, failures=None))
    with pytest.raises(StorageError):
        IngestConsumer(k, storage, writer=down).run(max_messages=200, idle_timeout=30)
    assert committed(kafka_bootstrap, k.group_id) == {}  # nothing committed early
    assert storage.rows(f"SELECT count() FROM {storage.table('events')}")[0][0] == 0

    # ClickHouse fails for a while, then recovers within the writer's retries.
    flaky = FlakyInsert(storage, failures=3)
    recovering = BatchWriter(storage, retries=5, max_backoff_s=0.05, insert=flaky)
    stats = IngestConsumer(k, storage, writer=recovering).run(max_messages=200, idle_timeout=30)
    assert flaky.calls > 3 and stats.events == 200
    assert storage.rows(f"SELECT count(), uniqExact(event_id) FROM {storage.table('events')} FINAL")[0] == (200, 200)
    assert committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic)


class CrashAfterInsert(Exception):
    """Stands for the process dying between the insert and the offset commit."""


def test_crash_between_insert_and_commit_neither_loses_nor_duplicates(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap)
    produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(150)])

    class DiesAfterStoring(BatchWriter):
        def write(self, batch: Batch) -> None:
            super().write(batch)
            raise CrashAfterInsert

    with pytest.raises(CrashAfterInsert):
        IngestConsumer(k, storage, writer=DiesAfterStoring(storage)).run(max_messages=150, idle_timeout=30)
    assert committed(kafka_bootstrap, k.group_id) == {}
    stored_once = storage.rows(f"SELECT count() FROM {storage.table('events')}")[0][0]
    assert stored_once > 0

    IngestConsumer(k, storage).run(max_messages=150, idle_timeout=30)
    events = storage.table("events")
    assert storage.rows(f"SELECT count() FROM {events}")[0][0] >= 150
    assert storage.rows(f"SELECT count(), uniqExact(event_id) FROM {events} FINAL")[0] == (150, 150)


def test_ingest_over_http_uses_the_same_rules(storage: Storage) -> None:
    from monitor.ingest.http import ingest_messages

    writer = BatchWriter(storage)
    result = ingest_messages(writer, [orjson.dumps(event(1)), b"{broken", orjson.dumps(event(2, features=3))])
    assert result.accepted == 1
    assert [(r.index, r.kind) for r in result.rejected] == [(1, "not_json"), (2, "wrong_type")]
    letters = storage.rows(f"SELECT topic, partition, raw FROM {storage.table('dead_letters')} FINAL ORDER BY offset")
    assert [(t, p) for t, p, _ in letters] == [("http:predictions", -1)] * 2
    assert letters[0][2] in ("{broken", b"{broken")
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0] == 1


def test_timestamps_are_stored_in_utc(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap)
    produce(kafka_bootstrap, k.predictions_topic, [event(1, timestamp="2026-11-27T12:00:00+02:00")])
    IngestConsumer(k, storage).run(max_messages=1, idle_timeout=30)
    (ts,) = storage.rows(f"SELECT toUnixTimestamp64Milli(ts) FROM {storage.table('events')} FINAL")[0]
    assert ts == int(datetime(2026, 11, 27, 10, tzinfo=UTC).timestamp() * 1000)
