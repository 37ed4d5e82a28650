"""Webhook requests verified by the Standard Webhooks reference library, as a receiver would do it.

The receiver checks with ``standardwebhooks.Webhook.verify`` (id, timestamp within five minutes, HMAC
of ``id.timestamp.body``) and answers 401 when it fails; the legacy ``X-Monitor-Signature`` is checked
as well. A request captured and replayed later than the tolerance is rejected.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from alerts.channels.webhook import Webhook
from alerts.delivery import DeliveryWorker, wait_for_deliveries
from alerts.engine import AlertEngine
from alerts.outbox import Outbox
from alerts.signing import verify
from monitor.settings import Settings
from monitor.storage import Storage
from tests.alerts.helpers import T0, drift_report, make_settings
from tests.alerts.receivers import Received, Reply
from tests.alerts.test_channels import event

PLAIN_SECRET = "retrain-hook-shared-secret"
WHSEC_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def receiver_key(secret: str) -> str | bytes:
    """How docs/alerting.md tells a receiver to construct the library's verifier from our secret."""
    return secret if secret.startswith("whsec_") else secret.encode()


def standard_validator(secret: str, rejected: list[str]) -> Any:
    verifier = StandardWebhook(receiver_key(secret))

    def validate(received: Received) -> Reply | None:
        try:
            verifier.verify(received.body, received.headers)
        except WebhookVerificationError as exc:
            rejected.append(str(exc))
            return Reply(401, str(exc))
        if not verify(received.body, secret, received.headers.get("x-monitor-signature")):
            return Reply(401, "bad X-Monitor-Signature")
        return None

    return validate


def settings_for(url: str, secret: str) -> Settings:
    return make_settings(
        channels={"retrain": {"type": "webhook", "url": url, "secret": secret}},
        models={"fraud": {"alerts": [{"when": "dataset_drift", "notify": ["retrain"]}]}},
    )


@pytest.mark.parametrize("secret", [PLAIN_SECRET, WHSEC_SECRET], ids=["plain", "whsec"])
def test_receiver_verifies_with_the_library_and_retries_keep_the_id(
    storage: Storage, receivers: Any, secret: str
) -> None:
    rejected: list[str] = []
    hook = receivers(standard_validator(secret, rejected), script=[Reply(503, "busy")], default=Reply(204, ""))
    settings = settings_for(hook.url, secret)
    worker = DeliveryWorker(storage, settings)
    worker.start()
    try:
        fired = AlertEngine(storage, settings, on_enqueued=worker.wake).evaluate(
            drift_report("fraud", T0, {"amount": 0.8, "age": 0.4})
        )
        assert wait_for_deliveries(storage, fired.event_ids, timeout=20).done
    finally:
        worker.stop(timeout=5)
    assert rejected == []
    assert [r.status for r in hook.requests] == [503, 204]  # both attempts verified; the first was told to retry
    first, second = hook.requests
    (delivery,) = Outbox(storage).for_events(fired.event_ids)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.delivery_id
    assert first.headers["webhook-id"] == first.headers["idempotency-key"]
    for received in (first, second):  # the timestamp is that of the attempt
        assert abs(int(received.headers["webhook-timestamp"]) - received.wall) <= 2
        assert received.headers["webhook-signature"].startswith("v1,")


def test_a_replay_older_than_the_tolerance_is_rejected(receivers: Any) -> None:
    rejected: list[str] = []
    hook = receivers(standard_validator(PLAIN_SECRET, rejected), default=Reply(204, ""))
    settings = settings_for(hook.url, PLAIN_SECRET)
    alert = event("firing")
    channel = Webhook("retrain", settings.channels["retrain"], settings)  # type: ignore[arg-type]
    fresh = channel.request(alert, "delivery-1")
    # The same request captured on the wire and sent again six minutes later: its signed timestamp is old.
    channel.clock = lambda: time.time() - 360
    captured = channel.request(alert, "delivery-1")
    with httpx.Client() as client:
        assert client.post(fresh.url, content=fresh.body, headers=fresh.headers).status_code == 204
        assert client.post(captured.url, content=captured.body, headers=captured.headers).status_code == 401
        # Moving the timestamp forward without the secret breaks the signature instead.
        forged = {**captured.headers, "webhook-timestamp": fresh.headers["webhook-timestamp"]}
        assert client.post(captured.url, content=captured.body, headers=forged).status_code == 401
    assert rejected == ["Message timestamp too old", "No matching signature found"]
