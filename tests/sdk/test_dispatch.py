"""The dispatcher's bookkeeping with a transport the test controls: what flush() waits for, what max_queue bounds."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from monitor_sdk import FlushTimeoutError, QueueFullError, Record
from monitor_sdk.dispatch import Dispatcher, DoneCallback


class HeldTransport:
    """Keeps every record it is given until the test settles it, in any order (as partitions do)."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[Record, DoneCallback]] = {}
        self._arrived = threading.Condition()

    def send(self, batch: Sequence[Record], done: DoneCallback) -> None:
        with self._arrived:
            self.held.update((record.event_id, (record, done)) for record in batch)
            self._arrived.notify_all()

    def settle(self, event_id: str, error: BaseException | None = None) -> None:
        with self._arrived:
            assert self._arrived.wait_for(lambda: event_id in self.held, timeout=5), event_id
            record, done = self.held.pop(event_id)
        done(record, error)

    def flush(self, timeout: float | None) -> None:
        pass

    def close(self, timeout: float | None) -> None:
        pass


def record(event_id: str) -> Record:
    return Record("prediction", "predictions", event_id, f"m:{event_id}".encode(), b"{}")


def test_flush_waits_for_every_earlier_record_even_when_later_ones_settle_first() -> None:
    transport = HeldTransport()
    dispatcher = Dispatcher(None, transport=transport)
    dispatcher.submit([record("a"), record("b")])
    returned = threading.Event()

    def flush() -> None:
        dispatcher.flush(timeout=10)
        returned.set()

    flusher = threading.Thread(target=flush)
    flusher.start()
    dispatcher.submit([record("c"), record("d")])  # after the flush began: not waited for
    transport.settle("c")
    transport.settle("a")
    assert not returned.wait(0.3)  # two records settled, but "b" is one the flush waits for
    transport.settle("b")
    assert returned.wait(5)  # "d" is still in flight
    flusher.join()
    assert dispatcher.pending == 1
    with pytest.raises(FlushTimeoutError, match="1 records still pending") as info:
        dispatcher.flush(timeout=0.2)
    assert info.value.pending == 1
    transport.settle("d")
    dispatcher.flush(timeout=5)
    dispatcher.close(timeout=5)


def test_max_queue_bounds_the_records_the_transport_holds_too() -> None:
    transport = HeldTransport()
    full: list[str] = []

    def on_error(error: BaseException, refused: Record) -> None:
        full.append(refused.event_id if isinstance(error, QueueFullError) else repr(error))

    dispatcher = Dispatcher(None, transport=transport, max_queue=3, on_error=on_error)
    dispatcher.submit([record(f"r{i}") for i in range(3)])
    transport.settle("r0")  # r1 and r2 are with the transport now, no longer in the queue
    dispatcher.submit([record(f"r{i}") for i in range(3, 6)])
    assert dispatcher.pending == 3 and full == ["r4", "r5"]
    transport.settle("r1")
    dispatcher.submit([record("r6")])
    assert dispatcher.pending == 3 and full == ["r4", "r5"]
    for event_id in ("r2", "r3", "r6"):
        transport.settle(event_id)
    dispatcher.close(timeout=5)


def test_max_bytes_bounds_what_pending_records_hold() -> None:
    """A record count alone lets 100,000 records of a megabyte each pile up while the broker is down."""
    transport = HeldTransport()
    full: list[str] = []

    def on_error(error: BaseException, refused: Record) -> None:
        full.append(refused.event_id if isinstance(error, QueueFullError) else repr(error))

    def big(event_id: str) -> Record:  # 1,000 bytes with its key
        key = f"m:{event_id}".encode()
        return Record("prediction", "predictions", event_id, key, b"x" * (1000 - len(key)))

    dispatcher = Dispatcher(None, transport=transport, max_queue=100, max_bytes=2500, on_error=on_error)
    dispatcher.submit([big("r0"), big("r1"), big("r2"), big("r3")])
    assert dispatcher.pending == 2 and full == ["r2", "r3"]
    transport.settle("r0")  # delivered: its bytes are free again
    dispatcher.submit([big("r4"), big("r5")])
    assert dispatcher.pending == 2 and full == ["r2", "r3", "r5"]
    transport.settle("r1", RuntimeError("failed"))  # reported: freed too
    dispatcher.submit([record("small")])
    assert dispatcher.pending == 2
    for event_id in ("r4", "small"):
        transport.settle(event_id)
    dispatcher.close(timeout=5)
    assert dispatcher.pending == 0 and full == ["r2", "r3", "r5", "RuntimeError('failed')"]
