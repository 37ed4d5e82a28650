"""Reading back what the SDK produced, straight from the real broker."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from tests.ingest.kafka_helpers import kafka_settings


def topics(bootstrap: str) -> tuple[str, str]:
    """A fresh predictions topic and labels topic for one test."""
    settings = kafka_settings(bootstrap)
    return settings.predictions_topic, settings.labels_topic


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[tuple[bytes, dict[str, Any]]]:
    """(key, JSON value) of every message on ``topic``, waiting until ``expected`` arrived or ``timeout``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        assert partitions is not None, f"topic {topic} does not exist"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        messages: list[tuple[bytes, dict[str, Any]]] = []
        while len(messages) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                messages.extend((m.key, json.loads(m.value)) for m in batch)
        if expected == 0:  # nothing should be there: give stragglers a moment to show up
            for batch in consumer.poll(timeout_ms=1000).values():
                messages.extend((m.key, json.loads(m.value)) for m in batch)
        return messages
    finally:
        consumer.close()
