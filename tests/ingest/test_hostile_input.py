"""No message can stop ingestion: hostile or oversized input against the real broker and chDB.

Each scenario is followed by ordinary events that must be stored. After each: the consumer read
everything and returned normally, ``stored + dead letters = sent``, and nothing is stored twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson
import pyarrow as pa
import pytest

from monitor.errors import StorageError
from monitor.ingest.batch import Batch
from monitor.ingest.consumer import IngestConsumer
from monitor.ingest.limits import IngestPolicy
from monitor.ingest.validation import format_timestamp
from monitor.ingest.writer import BatchWriter
from monitor.settings import IngestSettings, KafkaSettings
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import FeatureColumns, feature_column
from tests.ingest.kafka_helpers import event, kafka_settings, produce

pytestmark = [pytest.mark.kafka]

NORMAL = 50


def normal_events(start: int) -> list[dict]:
    return [event(start + i) | {"event_id": f"normal-{start + i}"} for i in range(NORMAL)]


def run_scenario(
    bootstrap: str,
    storage: Storage,
    messages: Sequence[bytes | dict],
    *,
    limits: IngestSettings | None = None,
    max_message_bytes: int = 1_000_000,
    before: Sequence[bytes | dict] = (),
) -> tuple[KafkaSettings, dict[str, int]]:
    """Produce ``before``, the scenario, then ordinary events; consume all; check the invariants."""
    k = kafka_settings(bootstrap, max_message_bytes=max_message_bytes)
    sent = [*before, *messages, *normal_events(10_000)]
    produce(bootstrap, k.predictions_topic, sent)
    policy = IngestPolicy(limits or IngestSettings(), max_message_bytes)
    stats = IngestConsumer(k, storage, policy=policy).run(max_messages=len(sent), idle_timeout=30)
    assert stats.messages == len(sent)  # it read to the end: nothing stopped it
    events, letters = storage.table("events"), storage.table("dead_letters")
    topic = {"topic": k.predictions_topic}
    stored, unique = storage.rows(
        f"SELECT count(), uniqExact(model, event_id) FROM {events} FINAL WHERE source = {{topic:String}}", topic
    )[0]
    dead = storage.rows(f"SELECT count() FROM {letters} FINAL WHERE topic = {{topic:String}}", topic)[0][0]
    assert stored == unique, "an event is stored twice"
    assert stored + dead == len(sent)
    assert (stats.events, stats.dead_letters) == (stored, dead)
    normal = storage.rows(
        f"SELECT count() FROM {events} FINAL WHERE source = {{topic:String}} AND startsWith(event_id, 'normal-')",
        topic,
    )[0][0]
    assert normal == NORMAL + sum(1 for m in before if isinstance(m, dict))
    kinds = dict(
        storage.rows(
            f"SELECT error_kind, count() FROM {letters} FINAL WHERE topic = {{topic:String}} GROUP BY error_kind",
            topic,
        )
    )
    return k, kinds


def test_a_thousand_features_with_256_character_names_is_stored(kafka_bootstrap: str, storage: Storage) -> None:
    names = [f"{i:04d}" + "n" * 252 for i in range(1000)]
    huge = event(1, model="wide") | {"features": {name: float(i) for i, name in enumerate(names)}}
    assert len(orjson.dumps(huge)) > 262_144  # larger than ClickHouse's max_query_size
    _, kinds = run_scenario(kafka_bootstrap, storage, [huge])
    assert kinds == {}
    (fnum,) = storage.rows(f"SELECT fnum FROM {storage.table('events')} FINAL WHERE model = 'wide'")[0]
    assert len(fnum) == 1000 and fnum[names[7]] == 7.0


def test_two_hundred_events_of_fifty_new_names_each(kafka_bootstrap: str, storage: Storage) -> None:
    floods = [
        event(i, model="flood") | {"event_id": f"flood-{i}", "features": {f"f{i}_{j}": 1.0 for j in range(50)}}
        for i in range(200)
    ]
    limits = IngestSettings(max_features_per_model=2000, schema_seconds_per_batch=0.5)
    _, kinds = run_scenario(kafka_bootstrap, storage, floods, limits=limits)
    # The first 40 events fill the model's 2,000 features; the rest are refused with the reason.
    assert kinds == {"limit_model_features": 160}
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL WHERE model = 'flood'")[0][0] == 40
    reason = storage.rows(f"SELECT any(reason) FROM {storage.table('dead_letters')} FINAL")[0][0]
    assert "ingest.max_features_per_model = 2000" in reason
    # Typed columns are capped per model; the rest of the features live in the maps only.
    typed = FeatureColumns(storage).for_model("flood")
    assert len(typed) <= IngestSettings().typed_columns_per_model


def test_three_hundred_unknown_models(kafka_bootstrap: str, storage: Storage) -> None:
    first = normal_events(0)  # "fraud" is known before the flood
    models = [event(i, model=f"unknown-{i:03d}") for i in range(300)]
    _, kinds = run_scenario(kafka_bootstrap, storage, models, limits=IngestSettings(max_models=101), before=first)
    assert kinds == {"limit_models": 200}
    stored_models = storage.rows(f"SELECT uniqExact(model) FROM {storage.table('events')} FINAL")[0][0]
    assert stored_models == 101


def test_unconfigured_models_can_be_dead_lettered(kafka_bootstrap: str, storage: Storage) -> None:
    """Their events and their labels alike: a policy that keeps only configured models keeps no labels
    of others (their raw bytes go to dead_letters with the same reason)."""
    k = kafka_settings(kafka_bootstrap)
    sent = [event(i, model="stranger") for i in range(5)] + normal_events(0)
    labels = [
        {"event_id": f"e-{i}", "model": model, "label": i % 2, "timestamp": "2026-11-27T10:00:00Z"}
        for i, model in enumerate(["stranger", "fraud", "stranger", "fraud"])
    ]
    produce(kafka_bootstrap, k.predictions_topic, sent)
    produce(kafka_bootstrap, k.labels_topic, labels)
    policy = IngestPolicy(IngestSettings(unconfigured_models="dead_letter"), configured={"fraud": frozenset()})
    stats = IngestConsumer(k, storage, policy=policy).run(max_messages=len(sent) + len(labels), idle_timeout=30)
    assert (stats.events, stats.labels, stats.dead_letters) == (NORMAL, 2, 7)
    reasons = storage.rows(f"SELECT DISTINCT reason FROM {storage.table('dead_letters')} FINAL")
    assert reasons == [("model 'stranger' is not configured and ingest.unconfigured_models is dead_letter",)]
    refused = storage.rows(
        f"SELECT raw FROM {storage.table('dead_letters')} FINAL WHERE topic = {{t:String}} ORDER BY offset",
        {"t": k.labels_topic},
    )
    got = sorted((orjson.loads(raw) for (raw,) in refused), key=lambda x: x["event_id"])
    assert got == [x for x in labels if x["model"] == "stranger"]
    assert storage.rows(f"SELECT model, count() FROM {storage.table('labels')} FINAL GROUP BY model") == [("fraud", 2)]


def test_names_with_control_characters_quotes_and_backticks(kafka_bootstrap: str, storage: Storage) -> None:
    odd = ['it\'s "quoted"', "back`tick`", "semi;colon -- comment", "Zoë ünïcödé"]
    bad = ["nul\x00byte", "new\nline", "c1\x85control"]
    messages = [event(i, model="odd") | {"event_id": f"odd-{i}", "features": {n: 1.5}} for i, n in enumerate(odd)]
    messages += [event(i, model="odd") | {"event_id": f"bad-{i}", "features": {n: 1.5}} for i, n in enumerate(bad)]
    _, kinds = run_scenario(kafka_bootstrap, storage, messages)
    assert kinds == {"bad_feature_name": 3}
    reasons = {r[0] for r in storage.rows(f"SELECT reason FROM {storage.table('dead_letters')} FINAL")}
    assert any("U+0000" in r for r in reasons) and any("U+000A" in r for r in reasons)
    assert any("U+0085" in r for r in reasons)
    # Each odd name has its typed column, and it reads the value back.
    columns = FeatureColumns(storage).for_model("odd")
    for name in odd:
        column = feature_column(name, "numerical")
        assert columns[name]["numerical"] == column
        sql = f"SELECT {quote_identifier(column)} FROM {storage.table('events')} FINAL WHERE fnum[{{n:String}}] > 0"
        assert storage.rows(sql, {"n": name}) == [(1.5,)]


def test_numbers_years_and_names_the_validator_reads_otherwise_than_clickhouse(
    kafka_bootstrap: str, storage: Storage
) -> None:
    """Each of these was stored by the fast path with other values than the validator gives them (or
    none): big integers as text, years and a negative epoch it refuses, models the API cannot address."""
    base = b'"timestamp":1795773600000,"features":{"x":1.5},"prediction":1'

    def raw(event_id: str, body: bytes = base, model: bytes = b'"big"') -> bytes:
        return b'{"event_id":"%s","model":%s,%s}' % (event_id.encode(), model, body)

    big = b"18446744073709551616"
    stored = [  # numbers beyond 64 bits are numbers: the nearest float
        raw("f-big", base.replace(b"1.5", big)),
        raw("f-neg", base.replace(b"1.5", b"-9223372036854775809")),
        raw("f-1e20", base.replace(b"1.5", b"1e20")),
        raw("p-big", base.replace(b'"prediction":1', b'"prediction":' + big)),
    ]
    refused = {
        raw("p-inf", base.replace(b'"prediction":1', b'"prediction":1' + b"0" * 400)): "not_json",
        raw("ts-9999", base.replace(b"1795773600000", b'"9999-12-31T23:59:59Z"')): "bad_timestamp",
        raw("ts-0001", base.replace(b"1795773600000", b'"0001-01-01T00:00:00Z"')): "bad_timestamp",
        raw("ts-1899", base.replace(b"1795773600000", b'"1899-12-31T23:59:59Z"')): "bad_timestamp",
        raw("ts-2300", base.replace(b"1795773600000", b'"2300-01-01T00:00:00Z"')): "bad_timestamp",
        raw("ts-neg", base.replace(b"1795773600000", b"-5")): "bad_timestamp",
        raw("m-nul", model=b'"fr\\u0000aud"'): "bad_value",
        raw("m-nl", model=b'"a\\nb"'): "bad_value",
        raw("m-del", model=b'"x\x7fy"'): "bad_value",
        raw("m-c1", model=b'"c1\xc2\x85"'): "bad_value",
        raw("m-slash", model=b'"a/b"'): "bad_value",
        raw("id\\u0000nul"): "bad_value",
    }
    _, kinds = run_scenario(kafka_bootstrap, storage, [*stored, *refused])
    assert kinds == {"not_json": 1, "bad_timestamp": 5, "bad_value": 6}
    rows = storage.dicts(
        f"SELECT event_id, fnum, fcat, prediction_num, prediction_cat FROM {storage.table('events')} FINAL "
        "WHERE model = 'big'"
    )
    got = {r["event_id"]: r for r in rows}
    assert set(got) == {"f-big", "f-neg", "f-1e20", "p-big"}
    assert got["f-big"]["fnum"] == {"x": 2.0**64} and got["f-neg"]["fnum"] == {"x": -(2.0**63)}
    assert got["f-1e20"]["fnum"] == {"x": 1e20}
    assert all(r["fcat"] == {} for r in rows)
    assert (got["p-big"]["prediction_num"], got["p-big"]["prediction_cat"]) == (2.0**64, None)
    models = {r[0] for r in storage.rows(f"SELECT DISTINCT model FROM {storage.table('events')} FINAL")}
    assert models == {"big", "fraud"}  # every stored model can be addressed as /api/v1/models/{model}
    reasons = {r[0] for r in storage.rows(f"SELECT reason FROM {storage.table('dead_letters')} FINAL")}
    assert "field 'model' must not contain '/'" in reasons
    assert "field 'model' contains the control character U+0000" in reasons
    assert "field 'event_id' contains the control character U+0000" in reasons
    hints = {r[0] for r in storage.rows(f"SELECT model FROM {storage.table('dead_letters')} FINAL")}
    assert hints == {"big", ""}  # a refused name is not kept as the dead letter's model (a metric label)


def test_a_backfill_spanning_hundreds_of_days(kafka_bootstrap: str, storage: Storage) -> None:
    """When `events` was partitioned by the event's day, one batch of a backfill wrote a part per day,
    past ClickHouse's default limit of 100 partitions per insert (which stopped the consumer, exit 3, on
    every restart); it is now partitioned by the day rows are stored (test_stored_day_partitions.py).
    Both paths: half the events carry a time-zone offset and are validated in Python."""
    day = 86_400_000
    backfill = [
        event(i) | {"event_id": f"day-{i}", "timestamp": 1764547200000 + i * day + 1} for i in range(0, 400, 2)
    ] + [
        event(i)
        | {"event_id": f"day-{i}", "timestamp": format_timestamp(1764547200000 + i * day).replace("Z", "+00:00")}
        for i in range(1, 400, 2)
    ]
    _, kinds = run_scenario(kafka_bootstrap, storage, backfill)
    assert kinds == {}
    days = storage.rows(
        f"SELECT uniqExact(toDate(ts)) FROM {storage.table('events')} FINAL WHERE startsWith(event_id, 'day-')"
    )
    assert days == [(400,)]


def test_deep_nesting(kafka_bootstrap: str, storage: Storage) -> None:
    deep_features = (
        b'{"event_id":"deep-1","model":"m","timestamp":1795773600000,"features":{"a":'
        + (b'{"b":' * 5000 + b"1" + b"}" * 5000)
        + b'},"prediction":1}'
    )
    nested_value = orjson.dumps(event(2) | {"event_id": "deep-2", "features": {"a": [[[[[[1]]]]]]}})
    extra = orjson.dumps(event(3) | {"event_id": "deep-3"})[:-1] + b',"extra":' + b"[" * 500 + b"]" * 500 + b"}"
    _, kinds = run_scenario(kafka_bootstrap, storage, [deep_features, nested_value, extra])
    assert kinds == {"not_json": 1, "wrong_type": 1}  # the unknown top-level key is ignored: stored
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL WHERE event_id = 'deep-3'")[0][0] == 1


def test_one_byte_over_the_size_limit(kafka_bootstrap: str, storage: Storage) -> None:
    limit = 2000

    def sized(event_id: str, size: int) -> bytes:
        doc = event(1) | {"event_id": event_id, "features": {"pad": ""}}
        pad = size - len(orjson.dumps(doc))
        raw = orjson.dumps(doc | {"features": {"pad": "x" * pad}})
        assert len(raw) == size
        return raw

    at_limit, over = sized("at-limit", limit), sized("over", limit + 1)
    _, kinds = run_scenario(
        kafka_bootstrap,
        storage,
        [at_limit, over],
        max_message_bytes=limit,
        limits=IngestSettings(dead_letter_prefix_bytes=100),
    )
    assert kinds == {"oversized": 1}
    raw, size, digest = storage.rows(f"SELECT raw, raw_size, raw_sha256 FROM {storage.table('dead_letters')} FINAL")[0]
    raw = raw if isinstance(raw, bytes) else raw.encode()
    assert (raw, size, digest) == (over[:100], limit + 1, hashlib.sha256(over).hexdigest())
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL WHERE event_id = 'at-limit'")[0][0] == 1


def test_the_same_event_resent_with_another_timestamp_is_stored_once(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap, batch_max_messages=3)
    first = event(1) | {"event_id": "same", "timestamp": 1795773600000}
    copies = [first | {"timestamp": 1795773600000 + n * 3_600_000} for n in range(1, 4)]
    # In one batch with the original, and in later batches (small batches).
    sent = [first, copies[0], *normal_events(0)[:4], copies[1], *normal_events(4)[:4], copies[2], first]
    produce(kafka_bootstrap, k.predictions_topic, [sent[0]])
    IngestConsumer(k, storage).run(max_messages=1, idle_timeout=30)
    produce(kafka_bootstrap, k.predictions_topic, sent[1:])
    writer = BatchWriter(storage)
    IngestConsumer(k, storage, writer=writer).run(max_messages=len(sent) - 1, idle_timeout=30)
    rows = storage.rows(
        f"SELECT toUnixTimestamp64Milli(ts) FROM {storage.table('events')} FINAL WHERE event_id = 'same'"
    )
    assert rows == [(1795773600000,)]
    assert writer.duplicates >= 3  # the three copies (the original re-sent may collapse either way)
    total = storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0]
    assert total == 1 + 8


class PoisonInsert:
    """The storage boundary refusing, for its data (a ClickHouse error code), any batch that holds a
    poisoned message, the way ClickHouse refuses a value it cannot parse."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.refused = 0

    def __call__(self, table: str, data: pa.Table) -> None:
        names = data.column_names if table != "dead_letters" else []
        poisoned = ("raw" in names and any(b"poison" in (r or b"") for r in data.column("raw").to_pylist())) or (
            "event_id" in names and any("poison" in (e or "") for e in data.column("event_id").to_pylist())
        )
        if poisoned:
            self.refused += 1
            raise StorageError("simulated: Code: 27. DB::Exception: Cannot parse input", code=27)
        self.storage.insert_arrow(table, data)


def test_a_batch_refused_for_its_data_is_split_until_the_bad_messages_are_isolated(
    kafka_bootstrap: str, storage: Storage
) -> None:
    k = kafka_settings(kafka_bootstrap, batch_max_messages=1000, batch_max_seconds=2)
    sent = [event(i) | {"event_id": f"ok-{i}"} for i in range(300)]
    for at in (17, 150, 151, 299):
        sent[at] = event(at) | {"event_id": f"poison-{at}"}
    produce(kafka_bootstrap, k.predictions_topic, sent)
    poison = PoisonInsert(storage)
    writer = BatchWriter(storage, retries=0, insert=poison)
    stats = IngestConsumer(k, storage, writer=writer).run(max_messages=len(sent), idle_timeout=30)
    assert poison.refused > 0
    assert (stats.events, stats.dead_letters) == (296, 4)
    letters = storage.rows(f"SELECT reason, error_kind FROM {storage.table('dead_letters')} FINAL")
    assert len(letters) == 4
    assert all(kind == "storage_refused" and "Code: 27" in reason for reason, kind in letters)
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0] == 296


def test_http_events_refused_for_their_data_become_dead_letters(storage: Storage) -> None:
    """The same splitting for events decoded in Python (the HTTP API's path)."""
    from monitor.ingest.validation import parse_prediction

    events = [parse_prediction(orjson.dumps(event(i) | {"event_id": f"h{i}"})) for i in range(20)]
    events[5].event_id = "poison"
    batch = Batch(events=events, event_sources=[("http", -1, -1)] * 20, messages=20)
    BatchWriter(storage, retries=0, insert=PoisonInsert(storage)).write(batch)
    assert (sum(batch.stored_per_model.values()), batch.dead_letter_count) == (19, 1)


def test_http_ingest_names_the_broken_limit(storage: Storage) -> None:
    from monitor.ingest.http import ingest_messages

    writer = BatchWriter(storage, policy=IngestPolicy(IngestSettings(max_features_per_event=3)))
    wide = orjson.dumps(event(1) | {"features": {"a": 1, "b": 2, "c": 3, "d": 4}})
    bad_name = orjson.dumps(event(2) | {"features": {"tab\there": 1}})
    result = ingest_messages(writer, [orjson.dumps(event(3)), wide, bad_name])
    assert result.accepted == 1
    assert [(r.index, r.kind) for r in result.rejected] == [(1, "limit_features"), (2, "bad_feature_name")]
    assert "ingest.max_features_per_event = 3" in result.rejected[0].reason
