"""``PredictionLogger``: validate in the caller, send in the background, report every failure.

    logger = PredictionLogger(model="fraud", model_version="3", bootstrap="kafka:9092")
    event_id = logger.log({"amount": 12.5, "country": "DE"}, prediction=0.83)
    logger.log_label(event_id, label=1)        # hours later, when the truth is known
    logger.close()                             # flushes what is still queued

``log`` returns as soon as the event is validated and queued; a record that cannot be delivered goes
to ``on_error(exc, record)``, or to the ``monitor_sdk`` logger when no callback is given. The
transport is Kafka (``bootstrap``) or the service's HTTP API (``transport="http"``, ``url``, ``token``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from monitor_sdk.dispatch import DEFAULT_MAX_QUEUE_BYTES, Dispatcher, ErrorCallback, Transport
from monitor_sdk.frames import dataframe_items
from monitor_sdk.kafka_transport import DEFAULT_PRODUCER_CONFIG, KafkaTransport, ProducerOptions
from monitor_sdk.records import (
    Features,
    Record,
    Timestamp,
    check_batch_item,
    label_record,
    prediction_doc,
    prediction_record,
)
from monitor_sdk.validation import MAX_MESSAGE_BYTES, InvalidMessage

if TYPE_CHECKING:
    from kafka import KafkaProducer  # type: ignore[import-untyped]

TransportName = Literal["kafka", "http"]


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
        *,
        transport: TransportName = "kafka",
        url: str | None = None,
        token: str | None = None,
        on_error: ErrorCallback | None = None,
        max_queue: int = 100_000,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        http_timeout: float = 10.0,
        http_retries: int = 3,
        security_protocol: str | None = None,
        sasl_mechanism: str | None = None,
        sasl_plain_username: str | None = None,
        sasl_plain_password: str | None = None,
        ssl_cafile: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        **producer_config: Any,
    ) -> None:
        self.model = model
        self.model_version = model_version
        self.predictions_topic = predictions_topic
        self.labels_topic = labels_topic
        self.transport = transport
        self.max_message_bytes = max_message_bytes
        bounds = functools.partial(Dispatcher, on_error=on_error, max_queue=max_queue, max_bytes=max_queue_bytes)
        if transport == "kafka":
            security = {
                "security_protocol": security_protocol,
                "sasl_mechanism": sasl_mechanism,
                "sasl_plain_username": sasl_plain_username,
                "sasl_plain_password": sasl_plain_password,
                "ssl_cafile": ssl_cafile,
                "ssl_certfile": ssl_certfile,
                "ssl_keyfile": ssl_keyfile,
            }
            options = ProducerOptions(
                {**DEFAULT_PRODUCER_CONFIG, **{k: v for k, v in security.items() if v is not None}, **producer_config}
            )
            if producer is not None:
                self._dispatcher = bounds(None, transport=KafkaTransport(producer, owned=False))
            else:
                self._dispatcher = bounds(lambda: KafkaTransport.create(bootstrap, options))
        elif transport == "http":
            if producer is not None or producer_config:
                raise TypeError("producer and Kafka options do not apply to transport='http'")
            if not url:
                raise ValueError("transport='http' needs url, e.g. url='http://monitor:8000'")
            from monitor_sdk.http_transport import HttpTransport, _import_httpx

            _import_httpx()  # fail here, in the caller, when httpx is missing
            api_token = token if token is not None else os.environ.get("MONITOR_API_TOKEN")

            def factory() -> Transport:
                return HttpTransport(url, api_token, timeout=http_timeout, retries=http_retries)

            self._dispatcher = bounds(factory, linger_s=0.05)
        else:
            raise ValueError(f"transport must be 'kafka' or 'http', not {transport!r}")

    # ------------------------------------------------------------------ logging

    def log(
        self,
        features: Features,
        prediction: float | int | str,
        *,
        event_id: str | None = None,
        timestamp: datetime | int | str | None = None,
        probabilities: Mapping[str, float] | None = None,
        segment: Mapping[str, str] | None = None,
        model_version: str | None = None,
    ) -> str:
        """Validate and queue one prediction; returns its event_id (generated if not given).

        ``features`` is a mapping or a pandas Series (a DataFrame's row); NaN, NA and NaT in it are
        missing values (null). Raises ``InvalidMessage`` for an event the service would reject; never
        blocks on the network.
        """
        record = self.prediction_record(
            features,
            prediction,
            event_id=event_id,
            timestamp=timestamp,
            probabilities=probabilities,
            segment=segment,
            model_version=model_version,
        )
        self._dispatcher.submit((record,))
        return record.event_id

    def log_many(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Validate every event first (keys as ``log``'s arguments), then queue them all; returns their ids.

        One invalid event raises ``InvalidMessage`` naming its index, and nothing of the batch is sent.
        """
        records = []
        for index, item in enumerate(events):
            item = check_batch_item(index, item)
            try:
                records.append(self.prediction_record(**item))
            except InvalidMessage as exc:
                raise InvalidMessage(exc.kind, f"record {index}: {exc.reason}") from exc
        self._dispatcher.submit(records)
        return [r.event_id for r in records]

    def log_dataframe(
        self,
        df: Any,
        feature_columns: Sequence[str] | None = None,
        prediction_column: str = "prediction",
        *,
        event_id_column: str | None = None,
        timestamp_column: str | None = None,
        probability_columns: Mapping[str, str] | None = None,
        segment_columns: Sequence[str] | None = None,
    ) -> list[str]:
        """Log one event per row of a pandas DataFrame (pandas is needed only here, imported lazily).

        ``feature_columns`` defaults to every column not named by another argument; missing values
        (NaN, None, NA, NaT) become null features. ``probability_columns`` maps a class to its column.
        """
        items = dataframe_items(
            df,
            feature_columns=feature_columns,
            prediction_column=prediction_column,
            event_id_column=event_id_column,
            timestamp_column=timestamp_column,
            probability_columns=probability_columns,
            segment_columns=segment_columns,
        )
        return self.log_many(items)

    def log_label(self, event_id: str, label: float | int | str | bool, timestamp: Timestamp = None) -> None:
        """Queue the ground truth for an earlier prediction."""
        self._dispatcher.submit((self.label_record(event_id, label, timestamp),))

    def label_record(self, event_id: str, label: Any, timestamp: Timestamp = None) -> Record:
        """The validated, serialised record ``log_label`` would queue (nothing is sent)."""
        return label_record(self.model, self.labels_topic, event_id, label, timestamp, self.max_message_bytes)

    def prediction_record(
        self,
        features: Features,
        prediction: Any,
        *,
        event_id: str | None = None,
        timestamp: Timestamp = None,
        probabilities: Mapping[str, Any] | None = None,
        segment: Mapping[str, Any] | None = None,
        model_version: str | None = None,
    ) -> Record:
        """The validated, serialised record ``log`` would queue (nothing is sent)."""
        version = self.model_version if model_version is None else model_version
        doc = prediction_doc(
            self.model,
            version,
            features,
            prediction,
            event_id=event_id,
            timestamp=timestamp,
            probabilities=probabilities,
            segment=segment,
        )
        return prediction_record(self.model, self.predictions_topic, doc, self.max_message_bytes)

    def submit(self, records: Sequence[Record]) -> None:
        """Queue records built by ``prediction_record`` (the asyncio form uses this)."""
        self._dispatcher.submit(records)

    # ------------------------------------------------------------------ lifecycle

    @property
    def pending(self) -> int:
        """Records queued or in flight: neither delivered nor reported yet; never more than ``max_queue``."""
        return self._dispatcher.pending

    @property
    def failed(self) -> int:
        """Records reported as undelivered since the logger was created."""
        return self._dispatcher.failed

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record logged before the call is delivered or reported.

        Records logged meanwhile by other threads are not waited for, so a busy server's flush returns.
        Raises ``FlushTimeoutError`` after ``timeout`` seconds.
        """
        self._dispatcher.flush(timeout)

    def close(self, timeout: float | None = 30) -> None:
        """Flush for up to ``timeout`` s, then stop; records still undelivered are reported, not dropped."""
        self._dispatcher.close(timeout)

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class HttpPredictionLogger(PredictionLogger):
    """``PredictionLogger`` over the service's HTTP API: ``HttpPredictionLogger("fraud", url=..., token=...)``.

    ``token`` defaults to the ``MONITOR_API_TOKEN`` environment variable.
    """

    def __init__(
        self,
        model: str,
        url: str,
        token: str | None = None,
        model_version: str = "",
        *,
        on_error: ErrorCallback | None = None,
        max_queue: int = 100_000,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        http_timeout: float = 10.0,
        http_retries: int = 3,
    ) -> None:
        super().__init__(
            model,
            model_version=model_version,
            transport="http",
            url=url,
            token=token,
            on_error=on_error,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            max_message_bytes=max_message_bytes,
            http_timeout=http_timeout,
            http_retries=http_retries,
        )
