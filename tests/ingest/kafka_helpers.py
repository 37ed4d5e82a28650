"""Small helpers for tests that talk to the real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import RetriableError
from kafka.structs import TopicPartition

from monitor.ingest.consumer import ensure_topics
from monitor.settings import KafkaSettings


def kafka_settings(bootstrap: str, **overrides: object) -> KafkaSettings:
    """Unique topics and group for one test, small batches, short session timeout."""
    tag = uuid.uuid4().hex[:8]
    values = {
        "bootstrap": bootstrap,
        "predictions_topic": f"predictions-{tag}",
        "labels_topic": f"labels-{tag}",
        "group_id": f"monitor-{tag}",
        "batch_max_seconds": 0.3,
        "session_timeout_ms": 6000,
        "partitions": 3,
    } | overrides
    settings = KafkaSettings(**values)  # type: ignore[arg-type]
    ensure_topics(settings)
    return settings


def produce(bootstrap: str, topic: str, messages: Iterable[bytes | dict]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    count = 0
    for message in messages:
        producer.send(topic, message if isinstance(message, bytes) else orjson.dumps(message))
        count += 1
    producer.flush()
    producer.close()
    return count


def committed(bootstrap: str, group_id: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets (retrying while the broker elects the group coordinator)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for attempt in range(50):
            try:
                offsets = admin.list_group_offsets(group_id).get(group_id, {})
                break
            except RetriableError:
                if attempt == 49:
                    raise
                time.sleep(0.2)
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def end_offsets(bootstrap: str, topic: str, partitions: int = 3) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items() if offset > 0}


def event(i: int, model: str = "fraud", **extra: object) -> dict:
    return {
        "event_id": f"e{i}",
        "model": model,
        "timestamp": 1795773600000 + i,
        "features": {"amount": float(i), "country": ["DE", "FR", "BR"][i % 3], "is_new_user": i % 2 == 0},
        "prediction": (i % 100) / 100,
    } | extra
