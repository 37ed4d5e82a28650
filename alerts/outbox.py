"""The durable delivery outbox: one row per (alert event, channel), every state change a new version.

Life of a delivery (all in ``alert_outbox``, highest ``version`` wins, read with FINAL)::

    pending (version 0) --claim--> sending --2xx--> delivered
                                     |--429/5xx/connection--> pending (next_attempt_at later)
                                     '--other 4xx, gave up, bad config--> failed

Every state change is a compare-and-set on the row's version: the new row has version = the version
it was derived from + 1 (a per-row counter, so no clock is involved and a clock stepping back cannot
hide a newer state behind an older one), inserted with the deduplication token
``<delivery_id>@<version>``. ClickHouse keeps the first insert of a token and drops later ones, so of
two workers that read the same version and both write the next one, exactly one row lands. A claim is
then read back with FINAL and the worker sends only if the stored row is its own claim: two delivery
workers on one database (the service's and the one ``monitor detect`` starts) never both send one
event.

The claim (``sending``, with the worker's id and a lease) is written *before* the HTTP request and the
result *after* it. A crash between the two leaves a ``sending`` row whose lease expires; it is sent
again with the same ``Idempotency-Key``. That window - the receiver answered but the answer was not
recorded - is the one place delivery is at-least-once rather than exactly-once; the key lets receivers
drop the repeat.

Schedules use the worker's clock (``next_attempt_at``). A row last written *later* than the worker's
"now" (the clock stepped back, or another host's clock runs ahead) is due at once rather than after
the difference: a clock step cannot park a delivery. Leases are not shortened that way - a send in
progress elsewhere must not be duplicated - so a crashed worker's claim waits out its lease.

Enqueueing is idempotent: ids are derived from the event and channel and the first row has version 0,
so writing the same event twice (a retry, or :meth:`Outbox.reconcile` after a crash) never resets a
delivery that already moved on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from alerts.model import NOTIFYING_KINDS, AlertEvent, delivery_id_for
from monitor.settings import Settings, WebhookChannel
from monitor.storage import Storage
from monitor.windows import to_utc, utc_now

DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]
FINAL_STATUSES: tuple[DeliveryStatus, ...] = ("delivered", "failed")

OUTBOX_COLUMNS = (
    "delivery_id",
    "event_id",
    "model",
    "rule",
    "kind",
    "channel",
    "channel_type",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "owner",
    "lease_until",
    "last_error",
    "last_status_code",
    "created_at",
    "updated_at",
    "delivered_at",
    "version",
)


@dataclass(frozen=True)
class Delivery:
    """One row of the outbox: one alert event on its way to one channel."""

    delivery_id: str
    event_id: str
    model: str
    rule: str
    kind: str
    channel: str
    channel_type: str
    payload: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    owner: str
    lease_until: datetime
    last_error: str
    last_status_code: int
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    version: int

    @property
    def idempotency_key(self) -> str:
        return self.delivery_id

    def event(self) -> AlertEvent:
        return AlertEvent.from_json(self.payload)

    def as_dict(self) -> dict[str, Any]:
        """For the API: everything but the payload (fetch the alert event for that)."""
        return {c: getattr(self, c) for c in OUTBOX_COLUMNS if c not in ("payload", "version", "owner", "lease_until")}


def recipients(event: AlertEvent, settings: Settings) -> list[tuple[str, str]]:
    """``(channel, type)`` pairs an event goes to; webhooks get resolutions only with ``send_resolved``;
    an acknowledgement goes to PagerDuty only (it acknowledges the incident there; a Slack message or a
    retraining trigger for "someone is on it" would be noise)."""
    if event.kind not in NOTIFYING_KINDS:
        return []
    chosen = []
    for name in event.notify:
        config = settings.channels.get(name)
        channel_type: str = config.type if config is not None else "unknown"
        if event.kind == "resolved" and isinstance(config, WebhookChannel) and not config.send_resolved:
            continue
        if event.kind == "acknowledged" and channel_type != "pagerduty":
            continue
        chosen.append((name, channel_type))
    return chosen


class Outbox:
    """Reads and writes ``alert_outbox``; used by the alert engine (enqueue) and the delivery worker."""

    def __init__(self, storage: Storage, clock: Callable[[], datetime] = utc_now) -> None:
        self.storage = storage
        self.clock = clock  # injectable: the tests step it back
        self._table = storage.table("alert_outbox")

    # ------------------------------------------------------------ writes

    def enqueue(self, events: Sequence[AlertEvent], settings: Settings) -> list[str]:
        """Add one pending delivery per (event, channel); returns their ids. Safe to repeat."""
        now = self.clock()
        rows = []
        for event in events:
            payload = event.to_json()
            for channel, channel_type in recipients(event, settings):
                rows.append(
                    Delivery(
                        delivery_id=delivery_id_for(event.event_id, channel),
                        event_id=event.event_id,
                        model=event.model,
                        rule=event.rule,
                        kind=event.kind,
                        channel=channel,
                        channel_type=channel_type,
                        payload=payload,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        owner="",
                        lease_until=now,
                        last_error="",
                        last_status_code=0,
                        created_at=now,
                        updated_at=now,
                        delivered_at=None,
                        version=0,
                    )
                )
        self._insert(rows)
        return [r.delivery_id for r in rows]

    def record(self, delivery: Delivery, **changes: Any) -> Delivery:
        """Write the version after ``delivery``'s with ``changes`` applied; returns it.

        A compare-and-set: if another worker already wrote that version (from the same snapshot), this
        write is dropped and theirs stands. Only :meth:`claim` needs to know (it reads back).
        """
        updated = replace(delivery, **changes, updated_at=self.clock(), version=delivery.version + 1)
        self.storage.insert_rows(
            "alert_outbox",
            [tuple(getattr(updated, c) for c in OUTBOX_COLUMNS)],
            OUTBOX_COLUMNS,
            settings={"insert_deduplication_token": f"{updated.delivery_id}@{updated.version}"},
        )
        return updated

    def claim(self, delivery: Delivery, owner: str, lease: timedelta) -> Delivery | None:
        """Mark ``sending`` before the request; None if the row moved on or another worker's claim won."""
        claimed = self.record(
            delivery, status="sending", attempts=delivery.attempts + 1, owner=owner, lease_until=self.clock() + lease
        )
        current = self.get([delivery.delivery_id]).get(delivery.delivery_id)
        if current is None or current.owner != owner or current.version != claimed.version:
            return None
        return claimed

    def _insert(self, rows: Sequence[Delivery]) -> None:
        if rows:
            self.storage.insert_rows(
                "alert_outbox", [tuple(getattr(r, c) for c in OUTBOX_COLUMNS) for r in rows], OUTBOX_COLUMNS
            )

    # ------------------------------------------------------------ reads

    def _select(self, where: str, parameters: dict[str, Any], tail: str = "") -> list[Delivery]:
        rows = self.storage.dicts(
            f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM {self._table} FINAL WHERE {where} {tail}", parameters=parameters
        )
        return [_delivery(r) for r in rows]

    def get(self, delivery_ids: Collection[str]) -> dict[str, Delivery]:
        if not delivery_ids:
            return {}
        found = self._select("delivery_id IN {ids:Array(String)}", {"ids": list(delivery_ids)})
        return {d.delivery_id: d for d in found}

    def for_events(self, event_ids: Collection[str]) -> list[Delivery]:
        if not event_ids:
            return []
        return self._select("event_id IN {ids:Array(String)}", {"ids": list(event_ids)}, "ORDER BY created_at")

    def due(self, now: datetime, limit: int = 50, event_ids: Collection[str] | None = None) -> list[Delivery]:
        """Deliveries to attempt now: pending and due, or ``sending`` with an expired lease (a crash).

        A pending row written after ``now`` (the clock stepped back) is due now: see the module text.
        """
        where = (
            "((status = 'pending' AND (next_attempt_at <= {now:DateTime64(3, 'UTC')} "
            "OR updated_at > {now:DateTime64(3, 'UTC')})) "
            "OR (status = 'sending' AND lease_until <= {now:DateTime64(3, 'UTC')}))"
        )
        params: dict[str, Any] = {"now": now, "limit": limit}
        if event_ids is not None:
            where += " AND event_id IN {ids:Array(String)}"
            params["ids"] = list(event_ids)
        return self._select(where, params, "ORDER BY next_attempt_at, created_at LIMIT {limit:UInt32}")

    def next_due_at(self, event_ids: Collection[str] | None = None) -> datetime | None:
        """When the earliest waiting delivery becomes due (None if nothing waits)."""
        where = "status IN ('pending', 'sending')"
        params: dict[str, Any] = {}
        if event_ids is not None:
            where += " AND event_id IN {ids:Array(String)}"
            params["ids"] = list(event_ids)
        rows = self.storage.rows(
            f"SELECT min(if(status = 'sending', lease_until, next_attempt_at)), count() "
            f"FROM {self._table} FINAL WHERE {where}",
            parameters=params,
        )
        if not rows or not rows[0][1]:
            return None
        return to_utc(rows[0][0])

    def counts(self) -> dict[str, int]:
        """Deliveries by status, e.g. ``{"pending": 2, "delivered": 40, "failed": 1}``."""
        rows = self.storage.rows(f"SELECT toString(status), count() FROM {self._table} FINAL GROUP BY status")
        return {status: int(n) for status, n in rows}

    def recent(
        self, status: str | None = None, model: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Deliveries newest first; ``status="failed"`` shows what was given up on and why."""
        conditions = ["1"]
        params: dict[str, Any] = {"limit": int(limit)}
        for name, value in (("status", status), ("model", model), ("channel", channel)):
            if value is not None:  # toString: an unknown status matches nothing instead of failing the Enum cast
                conditions.append(f"toString({name}) = {{{name}:String}}")
                params[name] = value
        return self._select(" AND ".join(conditions), params, "ORDER BY created_at DESC LIMIT {limit:UInt32}")

    def reconcile(self, settings: Settings, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Enqueue events recorded in ``alerts`` whose deliveries are missing (a crash between the two writes).

        Only events older than ``older_than`` are considered, so an engine in the middle of writing
        is not raced. Returns how many events were re-enqueued.
        """
        rows = self.storage.rows(
            f"SELECT payload FROM {self.storage.table('alerts')} FINAL "
            "WHERE kind IN {kinds:Array(String)} AND length(notify) > 0 "
            "AND created_at <= {cutoff:DateTime64(3, 'UTC')} "
            "AND created_at >= {cutoff:DateTime64(3, 'UTC')} - INTERVAL 7 DAY "
            f"AND event_id NOT IN (SELECT event_id FROM {self._table})",
            parameters={"cutoff": self.clock() - older_than, "kinds": list(NOTIFYING_KINDS)},
        )
        events = [AlertEvent.from_json(r[0]) for r in rows]
        events = [e for e in events if recipients(e, settings)]
        self.enqueue(events, settings)
        return len(events)


def _delivery(row: dict[str, Any]) -> Delivery:
    data = dict(row)
    for key in ("next_attempt_at", "lease_until", "created_at", "updated_at", "delivered_at"):
        if data[key] is not None:
            data[key] = to_utc(data[key])
    data["attempts"] = int(data["attempts"])
    data["version"] = int(data["version"])
    return Delivery(**data)


def list_deliveries(
    storage: Storage, status: str | None = None, model: str | None = None, limit: int = 100
) -> list[Delivery]:
    """For the API and ``monitor`` commands: deliveries newest first, filtered."""
    return Outbox(storage).recent(status=status, model=model, limit=limit)
