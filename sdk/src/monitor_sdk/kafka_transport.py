"""Records to Kafka through kafka-python's producer; its futures report each record's fate."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaProducer  # type: ignore[import-untyped]

from monitor_sdk.dispatch import DoneCallback
from monitor_sdk.records import Record

DEFAULT_PRODUCER_CONFIG: Mapping[str, Any] = {"linger_ms": 20, "compression_type": None}


class KafkaTransport:
    """Sends each record with key ``model:event_id``, so a resent event lands in the original's partition."""

    def __init__(self, producer: KafkaProducer, owned: bool) -> None:
        self.producer = producer
        self._owned = owned

    @classmethod
    def create(cls, bootstrap: str, config: Mapping[str, Any]) -> KafkaTransport:
        return cls(KafkaProducer(bootstrap_servers=bootstrap, **config), owned=True)

    def send(self, batch: Sequence[Record], done: DoneCallback) -> None:
        for record in batch:
            try:
                future = self.producer.send(record.topic, key=record.key, value=record.value)
            except Exception as exc:  # too large, metadata timeout, producer closed
                done(record, exc)
                continue
            future.add_callback(lambda _meta, r=record: done(r, None))
            future.add_errback(lambda exc, r=record: done(r, exc))

    def flush(self, timeout: float | None) -> None:
        with contextlib.suppress(Exception):  # a timeout here shows as records still pending
            self.producer.flush(timeout=timeout)

    def close(self, timeout: float | None) -> None:
        if self._owned:
            self.producer.close(timeout=timeout)
        else:
            self.flush(timeout)
