"""What can go wrong after an event was accepted by ``log()``: the errors ``on_error`` receives."""

from __future__ import annotations


class LoggerError(Exception):
    """Base class of the SDK's delivery and lifecycle errors (validation raises ``InvalidMessage``)."""


class QueueFullError(LoggerError):
    """``max_queue`` records were pending already (queued or with the transport): it cannot keep up or is down."""


class LoggerClosedError(LoggerError):
    """The logger was closed: new records are refused; records still pending at close are reported."""


class FlushTimeoutError(LoggerError, TimeoutError):
    """``flush(timeout)`` returned with records logged before it still pending (``pending`` counts them).

    They stay queued and may still arrive.
    """

    def __init__(self, pending: int, timeout: float) -> None:
        super().__init__(f"{pending} records still pending after {timeout:g} s")
        self.pending = pending


class ForkedLoggerError(LoggerError):
    """Used in a child process with a producer that was passed in and belongs to the parent.

    A Kafka producer owns a background thread and sockets that do not survive ``fork()``; a logger
    that created its own producer makes a new one in the child, but a borrowed producer cannot be.
    """


class DeliveryError(LoggerError):
    """The transport gave up on a record (HTTP status or server rejection; Kafka raises its own errors)."""

    def __init__(self, message: str, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
