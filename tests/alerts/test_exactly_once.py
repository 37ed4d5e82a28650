"""Exactly one send per alert event across delivery workers, and no row parked by a clock stepping back.

Two :class:`DeliveryWorker` objects on one database (each with its own connection, as the service's
worker and the one ``monitor detect`` starts have) race for the same deliveries; a receiver counts
what arrives by ``Idempotency-Key``.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from alerts.delivery import DeliveryWorker, wait_for_deliveries
from alerts.model import AlertEvent
from alerts.outbox import Outbox
from monitor.settings import Settings
from monitor.storage import Storage
from monitor.windows import utc_now
from tests.alerts.helpers import T0, make_settings
from tests.alerts.receivers import Receiver, Reply


def _settings(url: str) -> Settings:
    return make_settings(channels={"hook": {"type": "webhook", "url": url}})


def _events(count: int) -> list[AlertEvent]:
    now = utc_now()
    return [
        AlertEvent(
            event_id=uuid.uuid4().hex,
            model="fraud",
            rule=f"rule-{i}",
            kind="firing",
            condition="dataset_drift",
            severity="warning",
            model_version="3",
            window_start=T0 - timedelta(hours=1),
            window_end=T0,
            reason="drift",
            created_at=now,
            opened_event_id="",
            notify=("hook",),
        )
        for i in range(count)
    ]


def _keys(receiver: Receiver) -> Counter[str]:
    return Counter(r.headers["idempotency-key"] for r in receiver.requests)


def test_two_workers_racing_on_one_snapshot_send_each_event_once(storage: Storage, receivers: Any) -> None:
    """Both workers hold the same snapshot of due rows and attempt every one of them at the same time:
    the worst case of two workers that polled at the same moment."""
    hook = receivers(default=Reply(200, "ok"))
    settings = _settings(hook.url)
    outbox = Outbox(storage)
    ids = outbox.enqueue(_events(40), settings)
    snapshot = outbox.due(utc_now(), limit=100)
    assert len(snapshot) == 40
    second = storage.clone()
    workers = [DeliveryWorker(storage, settings, owner="worker-a"), DeliveryWorker(second, settings, owner="worker-b")]
    sent = [0, 0]
    start = threading.Barrier(2)

    def race(index: int) -> None:
        start.wait()
        for delivery in snapshot:
            sent[index] += workers[index].attempt(delivery)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert sum(sent) == 40, sent  # one request per delivery in all, whichever worker won it
        assert _keys(hook) == Counter(dict.fromkeys(ids, 1))
        rows = outbox.get(ids)
        assert {r.status for r in rows.values()} == {"delivered"}
        assert {r.version for r in rows.values()} == {2}  # pending 0 -> sending 1 -> delivered 2: no lost write
    finally:
        for worker in workers:
            worker.stop(timeout=5)
        second.close()


def test_two_running_workers_deliver_many_events_exactly_once(storage: Storage, receivers: Any) -> None:
    hook = receivers(default=Reply(200, "ok"))
    settings = _settings(hook.url)
    second = storage.clone()
    workers = [DeliveryWorker(storage, settings), DeliveryWorker(second, settings)]
    for worker in workers:
        worker.start()
    try:
        ids: list[str] = []
        outbox = Outbox(storage)
        for _ in range(4):  # in waves, while both workers poll
            ids += outbox.enqueue(_events(15), settings)
            for worker in workers:
                worker.wake()
        result = wait_for_deliveries(storage, [d.event_id for d in outbox.get(ids).values()], timeout=90)
        assert result.done and result.delivered == 60, result
        assert _keys(hook) == Counter(dict.fromkeys(ids, 1))
    finally:
        for worker in workers:
            worker.stop(timeout=5)
        second.close()


def test_rows_written_ahead_of_the_clock_are_still_delivered(storage: Storage, receivers: Any) -> None:
    """The clock steps back an hour after a failed attempt: the retry is not parked for that hour, and
    the states written now (by the slower clock) supersede the ones written before."""
    hook = receivers(script=[Reply(503, "busy")], default=Reply(200, "ok"))
    settings = _settings(hook.url)
    ahead = lambda: utc_now() + timedelta(hours=1)  # noqa: E731 - the clock before it stepped back
    before = DeliveryWorker(storage, settings, owner="before", clock=ahead)
    ids = Outbox(storage, clock=ahead).enqueue(_events(1), settings)
    assert before.run_once() == 1  # 503: a retry scheduled an hour ahead of the real clock
    (row,) = Outbox(storage).get(ids).values()
    assert row.status == "pending" and row.next_attempt_at > utc_now() + timedelta(minutes=59)

    after = DeliveryWorker(storage, settings, owner="after")  # the real clock: an hour behind
    after.start()
    try:
        assert wait_for_deliveries(storage, [row.event_id], timeout=20).done
    finally:
        after.stop(timeout=5)
        before.stop(timeout=5)
    (row,) = Outbox(storage).get(ids).values()
    assert (row.status, row.owner, row.attempts, row.version) == ("delivered", "after", 2, 4)
    assert [r.status for r in hook.requests] == [503, 200]
    assert len(set(_keys(hook))) == 1
