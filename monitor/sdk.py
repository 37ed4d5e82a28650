"""The light SDK's public names, for code that imports ``monitor.sdk`` (the service installs the SDK).

The SDK itself is the separate distribution under ``sdk/`` (``pip install ./sdk``, import
``monitor_sdk``), which a model server installs without the service's dependencies.
"""

from __future__ import annotations

from monitor_sdk import (
    AsyncPredictionLogger,
    DeliveryError,
    FlushTimeoutError,
    ForkedLoggerError,
    HttpPredictionLogger,
    InvalidMessage,
    LoggerClosedError,
    LoggerError,
    PredictionLogger,
    QueueFullError,
    Record,
)

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
