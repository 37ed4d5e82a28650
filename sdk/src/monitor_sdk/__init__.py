"""Log predictions and labels to the model monitor from a model server, with only kafka-python installed.

    from monitor_sdk import PredictionLogger

    with PredictionLogger(model="fraud", model_version="3", bootstrap="kafka:9092") as logger:
        event_id = logger.log({"amount": 12.5, "country": "DE"}, prediction=0.83)

Events are validated with the service's own rules before they leave the process; sending happens in
a background thread; failures go to ``on_error``. See docs/sdk.md in the repository.
"""

from __future__ import annotations

from monitor_sdk.aio import AsyncPredictionLogger
from monitor_sdk.errors import (
    DeliveryError,
    FlushTimeoutError,
    ForkedLoggerError,
    LoggerClosedError,
    LoggerError,
    QueueFullError,
)
from monitor_sdk.logger import HttpPredictionLogger, PredictionLogger
from monitor_sdk.records import Record
from monitor_sdk.validation import InvalidMessage

__all__ = [
    "AsyncPredictionLogger",
    "DeliveryError",
    "FlushTimeoutError",
    "ForkedLoggerError",
    "HttpPredictionLogger",
    "InvalidMessage",
    "LoggerClosedError",
    "LoggerError",
    "PredictionLogger",
    "QueueFullError",
    "Record",
]
