"""Records to Kafka through kafka-python's producer; its futures report each record's fate."""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaProducer  # type: ignore[import-untyped]
from kafka.errors import KafkaTimeoutError

from monitor_sdk.dispatch import DoneCallback
from monitor_sdk.records import Record

DEFAULT_PRODUCER_CONFIG: Mapping[str, Any] = {"linger_ms": 20, "compression_type": None}
SECRET_OPTIONS = frozenset({"sasl_plain_password", "ssl_password"})


class ProducerOptions:
    """A producer's keyword arguments, with the passwords masked in ``repr()``.

    The frames that create the producer hold these options, and an error from there (no broker, a
    refused login) reaches ``on_error`` with its traceback: rendered with each frame's local variables
    (Sentry's default, Rich's ``show_locals``), a plain dict would print the passwords. Not a
    ``Mapping`` either, since serialisers walk mappings item by item.
    """

    __slots__ = ("_options",)

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._options = dict(options)

    def kwargs(self) -> dict[str, Any]:
        return dict(self._options)

    def __repr__(self) -> str:
        shown = {k: "***" if k in SECRET_OPTIONS and v is not None else v for k, v in self._options.items()}
        return f"ProducerOptions({shown!r})"


_CREATED: weakref.WeakSet[KafkaProducer] = weakref.WeakSet()  # the producers this process made


def _disown_after_fork() -> None:
    """In a forked child, make the parent's producers inert: kafka-python closes each producer from
    an atexit hook and from ``__del__``, and in a child that close waits a second for records only
    the parent's thread can send, then prints a traceback. They are the parent's to close."""
    for producer in list(_CREATED):
        with contextlib.suppress(Exception):  # private attributes of kafka-python; skip if renamed
            producer._unregister_cleanup()
            producer._closed = True
    _CREATED.clear()


os.register_at_fork(after_in_child=_disown_after_fork)


class KafkaTransport:
    """Sends each record with key ``model:event_id``, so a resent event lands in the original's partition."""

    def __init__(self, producer: KafkaProducer, owned: bool) -> None:
        self.producer = producer
        self._owned = owned

    @classmethod
    def create(cls, bootstrap: str, options: ProducerOptions) -> KafkaTransport:
        producer = KafkaProducer(bootstrap_servers=bootstrap, **options.kwargs())
        _CREATED.add(producer)
        return cls(producer, owned=True)

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
        if not self._owned:
            self.flush(timeout)
            return
        try:
            self.producer.close(timeout=timeout)
        except KafkaTimeoutError:
            # kafka-python's close() flushes first and, when that times out (a broker that stopped
            # answering), raises before it stops its I/O thread, which then lives on with its sockets
            # and buffer. Stop it as close() itself does after a graceful attempt: the thread fails
            # the records it still holds (each reported once) and closes its connections.
            sender = getattr(self.producer, "_sender", None)
            if sender is None:
                raise
            sender.force_close()
