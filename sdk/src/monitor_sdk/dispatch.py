"""The non-blocking core: a bounded queue in front of a transport, drained by one background thread.

Why a thread of our own, although kafka-python already sends in the background: its ``send()`` blocks
the caller for up to ``max_block_ms`` (60 s by default) while it waits for a topic's metadata or for
buffer space, and creating a producer blocks until the cluster answers. A model server must not stall
a request because the monitoring sink is slow or down, so ``submit()`` only appends to a queue; the
thread creates the transport, hands records over and every record ends exactly once, either
delivered or reported to ``on_error`` (or logged when there is no callback). Nothing is dropped
silently, not even at interpreter exit (an ``atexit`` hook closes open loggers).

Fork safety: the thread, the lock and the producer's sockets belong to the process that made them.
Every public call compares ``os.getpid()`` with the creator's pid; in a child the dispatcher starts
over with a new queue, lock and transport (records queued in the parent stay the parent's to send),
unless its transport was passed in from outside, which raises :class:`ForkedLoggerError`. The
parent's transport is kept referenced in the child, never closed or garbage-collected there, so
the child cannot close a TLS session the parent is still using.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor_sdk.errors import FlushTimeoutError, ForkedLoggerError, LoggerClosedError, QueueFullError
from monitor_sdk.records import Record

log = logging.getLogger("monitor_sdk")

DoneCallback = Callable[[Record, BaseException | None], None]
ErrorCallback = Callable[[BaseException, Record], None]


class Transport(Protocol):
    """Where records go. ``send`` must call ``done`` exactly once per record, now or later, from any thread."""

    def send(self, batch: Sequence[Record], done: DoneCallback) -> None: ...

    def flush(self, timeout: float | None) -> None: ...

    def close(self, timeout: float | None) -> None: ...


_ABANDONED_AFTER_FORK: list[object] = []  # parents' transports, never closed in a child
_restart_lock = threading.Lock()  # one restart per dispatcher when several threads notice the fork at once


def _new_restart_lock() -> None:
    global _restart_lock
    _restart_lock = threading.Lock()  # the parent's may have been held by another thread at fork time


os.register_at_fork(after_in_child=_new_restart_lock)
_OPEN: weakref.WeakSet[Dispatcher] = weakref.WeakSet()
AT_EXIT_TIMEOUT_S = 10.0
# Without on_error, records refused for a full queue are logged as one line per interval, not one
# per record: they are refused inside log(), on the serving thread, through the app's log handlers.
REFUSED_LOG_INTERVAL_S = 10.0
# What pending records may hold, keys and values: a broker that is down must not cost a model server
# max_queue records of up to a megabyte each. 64 MiB is twice kafka-python's default buffer_memory.
DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024


def _size(record: Record) -> int:
    return len(record.key) + len(record.value)


@atexit.register
def _close_all() -> None:
    for dispatcher in list(_OPEN):
        if dispatcher.pid == os.getpid():
            dispatcher.close(AT_EXIT_TIMEOUT_S)


@dataclass(slots=True, eq=False)
class _Flush:
    """One ``flush()`` call: it waits for the records numbered up to ``last``, ``left`` of them unsettled.

    Records are numbered as they are accepted, and a record counts down every waiting flush whose
    ``last`` it does not exceed when it settles. A flush that waited until the queue was empty
    would never return while other threads keep logging; one that counted any ``left`` records
    settling would return early when later records overtake earlier ones (another partition).
    """

    last: int
    left: int


class Dispatcher:
    """Queue, thread and bookkeeping shared by every transport."""

    def __init__(
        self,
        factory: Callable[[], Transport] | None,
        *,
        transport: Transport | None = None,
        on_error: ErrorCallback | None = None,
        max_queue: int = 100_000,
        max_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        max_batch: int = 500,
        linger_s: float = 0.0,
        name: str = "monitor-sdk",
    ) -> None:
        if (factory is None) == (transport is None):
            raise ValueError("give either a transport factory or a transport")
        if max_queue < 1 or max_batch < 1 or max_bytes < 1:
            raise ValueError("max_queue, max_queue_bytes and max_batch must be at least 1")
        self._factory = factory
        self._borrowed = transport is not None
        self._on_error = on_error
        self._max_queue = max_queue
        self._max_bytes = max_bytes
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._name = name
        self.failed = 0
        self._start(transport)
        _OPEN.add(self)

    def _start(self, transport: Transport | None) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._buffer: deque[tuple[int, Record]] = deque()  # (sequence number, record), oldest first
        self._inflight: dict[int, tuple[int, Record]] = {}  # id(record): (sequence number, record)
        self._accepted = 0  # the sequence number of the newest accepted record
        self._handed = 0  # the sequence number of the newest record the transport's send() returned from
        self._settling = 0  # records out of the queue and in-flight whose report or notify still runs
        self._bytes = 0  # keys and values of the unsettled records
        self._refused_unlogged = 0  # records refused for a full queue since the last log line about them
        self._refused_logged_at = -REFUSED_LOG_INTERVAL_S
        self._refused_example: tuple[Record, BaseException | None] | None = None
        self._flushes: list[_Flush] = []
        self._closed = False
        self._closing = False
        self._stopping = False
        self._transport = transport
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller side

    def _check_process(self) -> None:
        if self.pid == os.getpid():
            return
        if self._borrowed:
            raise ForkedLoggerError(
                f"this logger was created in process {self.pid} with a producer passed in, and is used in "
                f"process {os.getpid()} after fork(); create the logger (and its producer) in the child"
            )
        with _restart_lock:
            if self.pid != os.getpid():
                _ABANDONED_AFTER_FORK.append(self._transport)
                self._start(None)

    @property
    def pending(self) -> int:
        """Records accepted but not yet delivered or reported."""
        self._check_process()
        with self._cond:
            return self._unsettled()

    def _unsettled(self) -> int:
        return len(self._buffer) + len(self._inflight) + self._settling

    def submit(self, records: Sequence[Record]) -> None:
        """Queue records without blocking; what does not fit is reported as :class:`QueueFullError`.

        ``max_queue`` and ``max_bytes`` bound every record not yet settled, the ones the transport
        holds included, so that a broker that is down costs at most that many records and bytes.
        The records that fit are accepted in order; the first that does not and all after it are refused.
        """
        self._check_process()
        with self._cond:
            if self._closed:
                raise LoggerClosedError("the logger is closed")
            room = max(0, self._max_queue - self._unsettled())  # in flight counts: pending <= max_queue
            count, size, room_bytes = 0, 0, self._max_bytes - self._bytes
            for record in records[:room]:
                if size + _size(record) > room_bytes:
                    break
                count, size = count + 1, size + _size(record)
            accepted = records[:count]
            self._bytes += size
            first = self._accepted + 1
            self._accepted += len(accepted)
            self._buffer.extend(zip(range(first, self._accepted + 1), accepted, strict=True))
            self._cond.notify_all()
        refused = records[len(accepted) :]
        if not refused:
            return
        error = QueueFullError(
            f"queue full ({self._max_queue} records or {self._max_bytes} bytes): the transport is slow or unreachable"
        )
        for record in refused:
            self._report(error, record, log_it=False)
        if self._on_error is None:
            self._log_refused(len(refused), refused[0], error)

    def _log_refused(self, count: int, example: Record | None, error: BaseException | None) -> None:
        """One ERROR line for the records refused since the last one, at most every REFUSED_LOG_INTERVAL_S
        (the first refusal at once); ``close()`` logs the rest (``count`` 0, ``example`` None)."""
        now = time.monotonic()
        with self._cond:
            self._refused_unlogged += count
            if example is not None:
                self._refused_example = (example, error)
                if now - self._refused_logged_at < REFUSED_LOG_INTERVAL_S:
                    return
            count, self._refused_unlogged, self._refused_logged_at = self._refused_unlogged, 0, now
            shown = self._refused_example
        if count and shown is not None:
            record, reason = shown
            log.error(
                "monitor_sdk: %d records refused since the last report (e.g. %s key %s, destination %s): "
                "QueueFullError: %s",
                count,
                record.kind,
                record.key.decode(errors="replace"),
                record.topic,
                reason,
            )

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record accepted before the call is delivered or reported.

        Records accepted meanwhile (other threads keep logging) are not waited for.
        """
        self._check_process()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            waiter = _Flush(self._accepted, self._unsettled())
            self._flushes.append(waiter)
        try:
            left = self._await_flush(waiter, deadline)
        finally:
            with self._cond:
                self._flushes.remove(waiter)
        if left:
            raise FlushTimeoutError(left, timeout or 0.0)

    def _await_flush(self, waiter: _Flush, deadline: float | None) -> int:
        """Until the transport holds the waiter's records, the transport's flush, then until they settled.

        Not merely until they left the queue: the thread may still be creating the producer or calling
        ``send()``, and a producer's flush that begins before a record is in its buffer leaves that
        record to wait ``linger_ms``.
        """
        with self._cond:
            while self._handed < waiter.last and waiter.left and self._wait(deadline):
                pass
            transport = self._transport
        if transport is not None:
            transport.flush(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._cond:
            while waiter.left and self._wait(deadline):
                pass
            return waiter.left

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush for up to ``timeout`` s, stop, and report whatever is still undelivered."""
        if self.pid != os.getpid():
            self._check_process()  # a child closing a parent's logger: start fresh, then close that
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._closing:
                return
            self._closing = True  # a second close() (another thread, atexit) returns at once
        with contextlib.suppress(FlushTimeoutError):
            self.flush(timeout)
        with self._cond:
            self._closed = self._stopping = True
            leftover = list(self._buffer)
            self._buffer.clear()
            self._settling += len(leftover)
            self._cond.notify_all()
        for _, record in leftover:
            self._report(LoggerClosedError("closed before the record was sent"), record)
        self._settle([seq for seq, _ in leftover], sum(_size(record) for _, record in leftover))
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._transport is not None:
            try:
                self._transport.close(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # the records it held are reported below
                log.warning("closing the transport failed: %s", exc)
        with self._cond:
            stranded = list(self._inflight.values())
            self._inflight.clear()
            self._settling += len(stranded)
        for _, record in stranded:
            self._report(LoggerClosedError("closed before the transport confirmed delivery"), record)
        self._settle([seq for seq, _ in stranded], sum(_size(record) for _, record in stranded))
        self._log_refused(0, None, None)
        _OPEN.discard(self)

    def _wait(self, deadline: float | None) -> bool:
        if deadline is None:
            self._cond.wait()
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._cond.wait(remaining)
        return True

    # ------------------------------------------------------------------ thread side

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._buffer and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return  # close() reports what is left
                if self._linger_s and len(self._buffer) < self._max_batch:
                    self._cond.wait(self._linger_s)
                batch = [self._buffer.popleft() for _ in range(min(self._max_batch, len(self._buffer)))]
                for numbered in batch:
                    twin = self._inflight.get(id(numbered[1]))
                    if twin is not None:  # the same Record queued twice: settled by its one report
                        self._count_down((twin[0],))
                        self._bytes -= _size(twin[1])
                    self._inflight[id(numbered[1])] = numbered
            self._hand_over([record for _, record in batch])
            with self._cond:
                self._handed = batch[-1][0]
                self._cond.notify_all()  # a flush waits for the transport to hold its records

    def _hand_over(self, batch: list[Record]) -> None:
        try:
            if self._transport is None:
                assert self._factory is not None
                self._transport = self._factory()
            self._transport.send(batch, self._done)
        except Exception as exc:  # e.g. no broker reachable while creating the producer
            for record in batch:
                self._done(record, exc)

    def _done(self, record: Record, error: BaseException | None) -> None:
        with self._cond:
            numbered = self._inflight.pop(id(record), None)
            if numbered is None:
                return  # already reported by close()
            self._settling += 1
        try:
            if error is not None:
                self._report(error, record)
            elif record.notify is not None:
                record.notify(None)
        finally:
            self._settle((numbered[0],), _size(record))

    def _settle(self, seqs: Sequence[int], size: int) -> None:
        """Records whose report or notify returned (``size`` bytes): a flush waiting for them, and the
        room they leave, see them settled only now."""
        with self._cond:
            self._settling -= len(seqs)
            self._bytes -= size
            self._count_down(seqs)
            self._cond.notify_all()

    def _count_down(self, seqs: Iterable[int]) -> None:
        """Count settled records down in the flushes that wait for them (called with the lock held)."""
        if not self._flushes:
            return
        for seq in seqs:
            for waiter in self._flushes:
                if seq <= waiter.last:
                    waiter.left -= 1

    def _report(self, error: BaseException, record: Record, log_it: bool = True) -> None:
        with self._cond:
            self.failed += 1
        if record.notify is not None:
            record.notify(error)
        if self._on_error is None:
            if not log_it:
                return
            log.error(
                "monitor_sdk: %s not delivered (key %s, destination %s): %s: %s",
                record.kind,
                record.key.decode(errors="replace"),
                record.topic,
                type(error).__name__,
                error,
            )
            return
        try:
            self._on_error(error, record)
        except Exception:
            log.exception("monitor_sdk: the on_error callback raised")
