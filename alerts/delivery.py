"""The delivery worker: a thread that sends what the outbox holds, with retries that survive restarts.

Retry policy (``alerting`` settings): connection errors, timeouts, 429 and 5xx are retried with
exponential backoff and equal jitter (``backoff_initial`` doubling up to ``backoff_max``; a 429's
``Retry-After`` in seconds or as an HTTP date is honoured, capped at ``retry_after_max``), until
``give_up_after`` has passed since the event was queued. Any other 4xx is not retried: the delivery is
marked ``failed`` with the status and the start of the receiver's answer. A 409 on a *repeated*
attempt counts as delivered: the receiver says it already has this Idempotency-Key (e.g. Airflow's
duplicate ``dag_run_id``).

The backoff is persisted as ``next_attempt_at`` rather than slept in a retry loop (tenacity and
friends keep their state in memory, which a restart would lose), so the formula lives in
:func:`backoff_delay`.

Nothing secret is logged: requests are logged by channel name and delivery id only, error texts are
scrubbed of every resolved secret, and httpx's own request log line (which prints the URL, and a Slack
webhook URL *is* a secret) is silenced.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from alerts.channels import Channel, InvalidSecret, MissingSecret, build_channel, configured_secrets, scrub
from alerts.outbox import FINAL_STATUSES, Delivery, Outbox
from monitor import metrics
from monitor.errors import MonitorError, StorageError
from monitor.logs import get_logger
from monitor.settings import AlertingSettings, Settings
from monitor.storage import Storage
from monitor.windows import utc_now

log = get_logger(__name__)
# httpx logs "HTTP Request: POST <url>" at INFO; the URL of a Slack webhook is its secret.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

ERROR_TEXT_MAX = 300
RECONCILE_EVERY = 60.0


def backoff_delay(attempts: int, policy: AlertingSettings, rng: random.Random | None = None) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: exponential with equal jitter.

    ``base = min(backoff_max, backoff_initial * 2**(attempts-1))``; the delay is uniform in
    ``[base/2, base]``, so retries of many deliveries spread out but never come sooner than half the
    nominal delay.
    """
    base = min(policy.backoff_max.total_seconds(), policy.backoff_initial.total_seconds() * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=base / 2 + (rng or random).uniform(0, base / 2))


def retry_after(value: str | None, now: datetime, cap: timedelta) -> timedelta | None:
    """A ``Retry-After`` header (delay seconds or HTTP date) as a delay, at most ``cap``; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        delay = timedelta(seconds=max(float(value), 0.0))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = max(when - now, timedelta(0))
    return min(delay, cap)


@dataclass(frozen=True)
class WaitResult:
    """How the deliveries of some events ended up after :func:`wait_for_deliveries`."""

    delivered: int
    failed: int
    pending: int
    failures: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.pending == 0


def wait_for_deliveries(storage: Storage, event_ids: Collection[str], timeout: float, poll: float = 0.2) -> WaitResult:
    """Wait until every delivery of ``event_ids`` is delivered or failed, or ``timeout`` seconds pass."""
    outbox = Outbox(storage)
    deadline = time.monotonic() + timeout
    while True:
        rows = outbox.for_events(event_ids)
        result = WaitResult(
            delivered=sum(r.status == "delivered" for r in rows),
            failed=sum(r.status == "failed" for r in rows),
            pending=sum(r.status not in FINAL_STATUSES for r in rows),
            failures=tuple(f"{r.channel}: {r.last_error}" for r in rows if r.status == "failed"),
        )
        if result.done or time.monotonic() >= deadline:
            return result
        time.sleep(min(poll, max(deadline - time.monotonic(), 0)))


def deliver_now(storage: Storage, settings: Settings, event_ids: Collection[str], wait: float) -> WaitResult:
    """Deliver the notifications of ``event_ids`` from this process, waiting at most ``wait`` seconds.

    For one-shot commands (``monitor detect``): a worker restricted to these events runs meanwhile and
    stops afterwards; what is still pending stays in the outbox for the service's worker.
    """
    worker = DeliveryWorker(storage, settings, event_ids=event_ids)
    worker.start()
    try:
        return wait_for_deliveries(storage, event_ids, timeout=wait)
    finally:
        worker.stop(timeout=settings.alerting.request_timeout.total_seconds() + 1)


class DeliveryWorker:
    """Sends due outbox rows in a background thread (``start``/``stop``), or synchronously (``run_once``).

    ``event_ids`` restricts the worker to some events (``monitor detect`` delivers only its own and
    leaves the rest to the service). Implements the service's Component protocol
    (``name``, ``start``, ``stop(timeout)``, ``healthy``).
    """

    name = "delivery"

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        event_ids: Collection[str] | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.policy = settings.alerting
        self.clock = clock  # the time source of schedules and leases (the tests step it back)
        self.outbox = Outbox(storage, clock)
        self.event_ids = list(event_ids) if event_ids is not None else None
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._channels: dict[str, Channel] = {}
        self._client = self._new_client()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_loop = 0.0
        self._last_reconcile = 0.0
        self.last_error: str | None = None

    # ------------------------------------------------------------ lifecycle

    def _new_client(self) -> httpx.Client:
        # Redirects are not followed: a 3xx from a webhook is a misconfiguration to report, not to chase
        # (following could also carry the signed body somewhere it was not meant to go).
        return httpx.Client(timeout=self.policy.request_timeout.total_seconds(), follow_redirects=False)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        if self._client.is_closed:
            self._client = self._new_client()
        self._stop.clear()
        self._last_loop = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="alert-delivery", daemon=True)
        self._thread.start()
        log.info("delivery worker started", owner=self.owner)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the send in progress (bounded by the request timeout) and stop; pending rows stay queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._client.close()

    def wake(self) -> None:
        """Look at the outbox now (the alert engine calls this after enqueueing)."""
        self._wake.set()

    def healthy(self) -> bool:
        stale = time.monotonic() - self._last_loop > max(60.0, 3 * self.policy.request_timeout.total_seconds())
        return self._thread is not None and self._thread.is_alive() and not stale

    def _loop(self) -> None:
        poll = self.policy.poll_interval.total_seconds()
        while not self._stop.is_set():
            self._last_loop = time.monotonic()
            wait = poll
            try:
                if self.event_ids is None and time.monotonic() - self._last_reconcile > RECONCILE_EVERY:
                    self._last_reconcile = time.monotonic()
                    if requeued := self.outbox.reconcile(self.settings):
                        log.warning("re-enqueued alert events that had no deliveries", events=requeued)
                self.run_once()
                next_due = self.outbox.next_due_at(self.event_ids)
                if next_due is not None:
                    wait = min(poll, max((next_due - self.clock()).total_seconds(), 0.0))
                self.last_error = None
            except StorageError as exc:  # ClickHouse unavailable: keep trying, loudly
                self.last_error = str(exc)
                log.error("delivery worker cannot read the outbox", error=str(exc))
                wait = max(poll, 5.0)
            except Exception as exc:  # a bug: log it with its traceback and keep the worker alive
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("delivery worker iteration failed")
                wait = max(poll, 5.0)
            self._wake.wait(wait)
            self._wake.clear()

    # ------------------------------------------------------------ sending

    def run_once(self, limit: int = 50) -> int:
        """Attempt every delivery due now; returns how many were attempted."""
        due = self.outbox.due(self.clock(), limit=limit, event_ids=self.event_ids)
        attempted = 0
        for delivery in due:
            if self._stop.is_set():
                break
            self._last_loop = time.monotonic()  # a heartbeat per attempt: a long queue is not a hang
            attempted += self.attempt(delivery)
        if self.event_ids is None:
            counts = self.outbox.counts()
            metrics.NOTIFICATIONS_PENDING.set(counts.get("pending", 0) + counts.get("sending", 0))
        return attempted

    def _channel(self, name: str) -> Channel | None:
        config = self.settings.channels.get(name)
        if config is None:
            return None
        if name not in self._channels:
            self._channels[name] = build_channel(name, config, self.settings)
        return self._channels[name]

    def attempt(self, delivery: Delivery) -> int:
        """One attempt at one delivery (claim, send, record). Returns 1 if a request was sent, else 0."""
        now = self.clock()
        try:
            channel = self._channel(delivery.channel)
        except MonitorError as exc:  # a template that does not parse: no attempt can succeed
            self._fail(delivery, str(exc), "config")
            return 0
        except Exception as exc:  # a bug in one channel must not stop the deliveries to the others
            self._fail(delivery, self._build_error(delivery, exc), "build")
            return 0
        if channel is None:
            self._fail(delivery, f"channel {delivery.channel!r} is no longer configured", "config")
            return 0
        if now - delivery.created_at > self.policy.give_up_after and delivery.attempts > 0:
            self._fail(
                delivery, f"gave up after {delivery.attempts} attempts; last error: {delivery.last_error}", "gave_up"
            )
            return 0
        try:
            request = channel.request(delivery.event(), delivery.idempotency_key)
        except (MissingSecret, InvalidSecret) as exc:  # this channel's configuration: the others still go out
            self._fail(delivery, str(exc), "config")
            return 0
        except Exception as exc:  # a request that cannot be built fails alone; the pass goes on
            self._fail(delivery, self._build_error(delivery, exc), "build")
            return 0
        lease = self.policy.request_timeout * 2 + timedelta(seconds=1)
        claimed = self.outbox.claim(delivery, self.owner, lease)
        if claimed is None:
            log.info("delivery claimed by another worker", delivery=delivery.delivery_id, channel=delivery.channel)
            return 0
        started = time.monotonic()
        try:
            response = self._client.post(request.url, content=request.body, headers=request.headers)
        except httpx.TransportError as exc:  # connection refused, reset, timeout: retry
            reason = scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, request.secrets)
            self._retry(claimed, reason, 0, "connection", None)
            return 1
        except (httpx.HTTPError, MonitorError, ValueError) as exc:  # e.g. an invalid URL: retrying cannot help
            self._fail(claimed, scrub(f"{type(exc).__name__}: {exc}", request.secrets), "config")
            return 1
        elapsed = time.monotonic() - started
        status = response.status_code
        answer = scrub(response.text[:ERROR_TEXT_MAX].strip(), request.secrets)
        if 200 <= status < 300 or (status == 409 and claimed.attempts > 1):
            self._delivered(claimed, status, elapsed, "" if status < 300 else f"HTTP 409 on retry: {answer}")
        elif status == 429:
            wait = retry_after(response.headers.get("Retry-After"), self.clock(), self.policy.retry_after_max)
            self._retry(claimed, f"HTTP 429: {answer}", status, "http_429", wait)
        elif status >= 500:
            self._retry(claimed, f"HTTP {status}: {answer}", status, "http_5xx", None)
        else:
            self._fail(claimed, f"HTTP {status}: {answer}", "http_4xx", status)
        return 1

    def _build_error(self, delivery: Delivery, exc: Exception) -> str:
        """An unexpected error building one delivery's request, as stored and logged (once, by ``_fail``).

        The message is scrubbed of every secret the channel's configuration holds (the request, whose
        ``secrets`` the other paths use, was never built); instead of a traceback, whose chained
        messages nothing scrubs, it says where the error was raised.
        """
        config = self.settings.channels.get(delivery.channel)
        text = f"cannot build the request: {type(exc).__name__}: {exc}"
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            text += f" (at {'/'.join(last.filename.split(os.sep)[-2:])}:{last.lineno} in {last.name})"
        return scrub(text, configured_secrets(config) if config is not None else ())

    def _delivered(self, delivery: Delivery, status: int, elapsed: float, note: str) -> None:
        now = self.clock()
        self.outbox.record(delivery, status="delivered", last_status_code=status, last_error=note, delivered_at=now)
        metrics.NOTIFICATIONS_DELIVERED.labels(delivery.channel).inc()
        metrics.NOTIFICATION_DELAY_SECONDS.observe((now - delivery.created_at).total_seconds())
        log.info(
            "notification delivered",
            channel=delivery.channel,
            type=delivery.channel_type,
            model=delivery.model,
            rule=delivery.rule,
            kind=delivery.kind,
            delivery=delivery.delivery_id,
            attempt=delivery.attempts,
            status=status,
            seconds=round(elapsed, 3),
        )

    def _retry(self, delivery: Delivery, reason: str, status: int, cause: str, wait: timedelta | None) -> None:
        delay = wait if wait is not None else backoff_delay(delivery.attempts, self.policy)
        next_at = self.clock() + delay
        if next_at - delivery.created_at > self.policy.give_up_after:
            self._fail(delivery, f"gave up after {delivery.attempts} attempts; last error: {reason}", "gave_up", status)
            return
        self.outbox.record(
            delivery, status="pending", next_attempt_at=next_at, last_error=reason, last_status_code=status
        )
        metrics.NOTIFICATION_RETRIES.labels(delivery.channel, cause).inc()
        log.warning(
            "notification will be retried",
            channel=delivery.channel,
            delivery=delivery.delivery_id,
            attempt=delivery.attempts,
            error=reason,
            retry_in=round(delay.total_seconds(), 3),
        )

    def _fail(self, delivery: Delivery, reason: str, kind: str, status: int | None = None) -> None:
        self.outbox.record(
            delivery,
            status="failed",
            last_error=reason,
            last_status_code=delivery.last_status_code if status is None else status,
        )
        metrics.NOTIFICATIONS_FAILED.labels(delivery.channel, kind).inc()
        log.error(
            "notification failed",
            channel=delivery.channel,
            delivery=delivery.delivery_id,
            model=delivery.model,
            rule=delivery.rule,
            attempts=delivery.attempts,
            error=reason,
        )
