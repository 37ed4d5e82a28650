"""Retention: every table that grows with the stream has a TTL, configurable globally and per model,
and a short one really removes rows (forced with OPTIMIZE ... FINAL)."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson

from monitor.ingest.batch import Batch, DeadLetter
from monitor.ingest.validation import parse_prediction
from monitor.ingest.writer import BatchWriter
from monitor.settings import RetentionSettings
from monitor.storage import Storage
from monitor.storage.retention import apply_retention, current_ttls
from tests.ingest.kafka_helpers import event

GROWING = [
    "events",
    "event_keys",
    "labels",
    "dead_letters",
    "alert_outbox",
    "alerts",
    "alert_state",
    "detector_results",
    "detector_runs",
    "schedule_runs",
]


def write(storage: Storage, model: str, n: int, tag: str) -> None:
    events = [parse_prediction(orjson.dumps(event(i, model=model) | {"event_id": f"{tag}{i}"})) for i in range(n)]
    letters = (
        [
            DeadLetter("t", 0, i, b"{bad", "message is not valid JSON", "not_json", int(time.time() * 1000), model)
            for i in range(2)
        ]
        if tag == "old"
        else []
    )
    batch = Batch(events=events, event_sources=[("t", 0, i) for i in range(n)], dead_letters=letters)
    BatchWriter(storage, retries=0).write(batch)


def count(storage: Storage, table: str, model: str) -> int:
    return storage.rows(f"SELECT count() FROM {storage.table(table)} WHERE model = {{m:String}}", {"m": model})[0][0]


def test_every_growing_table_has_the_default_retention(storage: Storage) -> None:
    ttls = current_ttls(storage)
    for table in GROWING:
        assert "toIntervalSecond" in ttls[table], table
    # `stored_at` is MATERIALIZED: readers that SELECT * do not see a new column.
    columns = storage.rows(f"SELECT * FROM {storage.table('detector_runs')} LIMIT 0")
    assert columns == []
    names = storage.client.query(f"SELECT * FROM {storage.table('detector_runs')} LIMIT 0").column_names
    assert "stored_at" not in names
    assert ttls["events"] == "toDateTime(ingested_at) + toIntervalSecond(7776000)"  # 90 days
    assert ttls["dead_letters"] == "toDateTime(received_at) + toIntervalSecond(2592000)"  # 30 days
    assert ttls["detector_results"] == "stored_at + toIntervalSecond(34560000)"  # 400 days
    assert ttls["alert_outbox"] == "stored_at + toIntervalSecond(2592000)"  # 30 days
    assert apply_retention(storage, RetentionSettings()) == []  # the defaults are already in place


def test_a_short_ttl_removes_old_rows_per_model(storage: Storage) -> None:
    write(storage, "brief", 5, "old")
    write(storage, "kept", 5, "old")
    changed = apply_retention(
        storage, RetentionSettings(models={"brief": timedelta(seconds=1)}, dead_letters=timedelta(seconds=1))
    )
    assert set(changed) == {"events", "event_keys", "labels", "dead_letters"}
    time.sleep(2.5)
    for table in ("events", "event_keys", "dead_letters"):
        storage.command(f"OPTIMIZE TABLE {storage.table(table)} FINAL")
    assert (count(storage, "events", "brief"), count(storage, "event_keys", "brief")) == (0, 0)
    assert (count(storage, "events", "kept"), count(storage, "event_keys", "kept")) == (5, 5)
    assert storage.rows(f"SELECT count() FROM {storage.table('dead_letters')}")[0][0] == 0
    # Back to the defaults: new rows of the model are stored and kept.
    assert "events" in apply_retention(storage, RetentionSettings())
    write(storage, "brief", 3, "new")
    assert count(storage, "events", "brief") == 3
