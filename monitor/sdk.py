"""A small client for model servers: log predictions and labels to Kafka in the contract's format.

    from monitor.sdk import PredictionLogger

    logger = PredictionLogger(model="fraud", model_version="3", bootstrap="kafka:9092")
    event_id = logger.log({"amount": 12.5, "country": "DE"}, prediction=0.83)
    ...
    logger.log_label(event_id, label=1)        # hours later, when the truth is known
    logger.close()                             # flushes what is still buffered

Events are validated *before* they leave the process with the same rules the consumer applies, so a
serving bug raises :class:`InvalidMessage` in the serving app instead of filling the dead-letter
table. Sending is asynchronous (kafka-python batches in the background); ``flush()`` waits. The
Kafka key is ``model:event_id``, so a resent event lands in the same partition as the original.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaProducer

from monitor.ingest.validation import InvalidMessage, validate_label, validate_prediction

__all__ = ["InvalidMessage", "PredictionLogger"]


def _plain(value: Any) -> Any:
    """numpy / pandas scalars to plain Python, so validation sees JSON types."""
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, str | bytes):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def _timestamp(value: datetime | int | float | str | None) -> int | str:
    if value is None:
        return int(datetime.now(tz=UTC).timestamp() * 1000)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidMessage("bad_timestamp", "timestamp must be timezone-aware (e.g. datetime.now(tz=UTC))")
        return int(value.timestamp() * 1000)
    return value  # epoch milliseconds or RFC 3339 text: validated below


class PredictionLogger:
    """Validates and sends prediction events and labels for one model."""

    def __init__(
        self,
        model: str,
        bootstrap: str = "127.0.0.1:9092",
        model_version: str = "",
        predictions_topic: str = "predictions",
        labels_topic: str = "labels",
        producer: KafkaProducer | None = None,
        **producer_config: Any,
    ) -> None:
        self.model = model
        self.model_version = model_version
        self.predictions_topic = predictions_topic
        self.labels_topic = labels_topic
        config = {"linger_ms": 20, "compression_type": None, **producer_config}
        self._producer = producer or KafkaProducer(bootstrap_servers=bootstrap, **config)
        self._owns_producer = producer is None

    def log(
        self,
        features: Mapping[str, Any],
        prediction: float | int | str,
        *,
        event_id: str | None = None,
        timestamp: datetime | int | str | None = None,
        probabilities: Mapping[str, float] | None = None,
        segment: Mapping[str, str] | None = None,
        model_version: str | None = None,
    ) -> str:
        """Validate and send one prediction; returns its event_id (generated if not given)."""
        doc: dict[str, Any] = {
            "event_id": event_id or uuid.uuid4().hex,
            "model": self.model,
            "timestamp": _timestamp(timestamp),
            "features": {str(k): _plain(v) for k, v in features.items()},
            "prediction": _plain(prediction),
        }
        version = self.model_version if model_version is None else model_version
        if version:
            doc["model_version"] = version
        if probabilities is not None:
            doc["probabilities"] = {str(k): _plain(v) for k, v in probabilities.items()}
        if segment is not None:
            doc["segment"] = dict(segment)
        event = validate_prediction(doc)
        self._send(self.predictions_topic, event.event_id, event.to_json())
        return event.event_id

    def log_label(
        self, event_id: str, label: float | int | str | bool, timestamp: datetime | int | None = None
    ) -> None:
        """Send the ground truth for an earlier prediction."""
        doc = {"event_id": event_id, "model": self.model, "label": _plain(label), "timestamp": _timestamp(timestamp)}
        self._send(self.labels_topic, event_id, validate_label(doc).to_json())

    def _send(self, topic: str, event_id: str, doc: dict[str, Any]) -> None:
        self._producer.send(topic, key=f"{self.model}:{event_id}".encode(), value=orjson.dumps(doc))

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float | None = 30) -> None:
        self._producer.flush(timeout=timeout)
        if self._owns_producer:
            self._producer.close(timeout=timeout)

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
