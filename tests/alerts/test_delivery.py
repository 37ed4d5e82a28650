"""Delivery through real local HTTP receivers: payloads accepted as the real services would, retries
(503, 429 with Retry-After, connection refused), no retry on 400, giving up, and no secret in any log."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from alerts.delivery import DeliveryWorker, backoff_delay, deliver_now, retry_after, wait_for_deliveries
from alerts.engine import AlertEngine
from alerts.outbox import Outbox, list_deliveries
from alerts.store import alert_history
from monitor.settings import Settings
from monitor.storage import Storage
from tests.alerts.helpers import PD_KEY, T0, drift_report, make_settings, window_end
from tests.alerts.receivers import (
    Reply,
    pagerduty_accepted,
    pagerduty_validator,
    slack_validator,
    webhook_validator,
)
from tests.conftest import free_port, unique_name

SECRET = "whsec-0123456789-signing"
DRIFT = {"amount": 0.8, "age": 0.4}


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PD_KEY", PD_KEY)
    monkeypatch.setenv("TEST_RETRAIN_SECRET", SECRET)


def settings_for(channels: dict[str, Any], notify: list[str], **rule: Any) -> Settings:
    return make_settings(
        channels=channels, models={"fraud": {"alerts": [{"when": "dataset_drift", "notify": notify, **rule}]}}
    )


def webhook(url: str) -> dict[str, Any]:
    return {"type": "webhook", "url": url, "secret_env": "TEST_RETRAIN_SECRET"}


def every_channel(receivers: Any, **rule: Any) -> tuple[Any, Any, Any, Settings]:
    """Validating Slack, PagerDuty and webhook receivers, and settings whose dataset-drift rule notifies all three."""
    slack = receivers(slack_validator)
    pager = receivers(pagerduty_validator(PD_KEY), default=pagerduty_accepted(None))  # type: ignore[arg-type]
    hook = receivers(webhook_validator(SECRET), default=Reply(204, ""))
    channels = {
        "team-slack": {"type": "slack", "url": slack.url},
        "oncall": {"type": "pagerduty", "routing_key_env": "TEST_PD_KEY", "url": pager.url},
        "retrain": webhook(hook.url),
    }
    return slack, pager, hook, settings_for(channels, list(channels), **rule)


@pytest.fixture
def worker_factory(storage: Storage) -> Iterator[Any]:
    started: list[DeliveryWorker] = []

    def make(settings: Settings, **kwargs: Any) -> DeliveryWorker:
        worker = DeliveryWorker(storage, settings, **kwargs)
        worker.start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop(timeout=5)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_slack_pagerduty_and_webhook_receive_valid_notifications_and_resolutions(
    storage: Storage, receivers: Any, worker_factory: Any
) -> None:
    slack, pager, hook, settings = every_channel(receivers, severity="critical")
    worker = worker_factory(settings)
    engine = AlertEngine(storage, settings, on_enqueued=worker.wake)
    fired = engine.evaluate(drift_report("fraud", T0, DRIFT))
    for receiver in (slack, pager, hook):
        receiver.wait_for(1)
    resolved = engine.evaluate(drift_report("fraud", window_end(1), {}))
    slack.wait_for(2)
    pager.wait_for(2)
    assert wait_for_deliveries(storage, fired.event_ids + resolved.event_ids, timeout=10).done
    assert [r.status for r in slack.requests] == [200, 200]  # every payload passed the receiver's checks
    assert [r.status for r in pager.requests] == [202, 202]
    assert [r.status for r in hook.requests] == [204]  # retraining hooks get no resolution by default

    trigger, resolve = (r.json() for r in pager.requests)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == "model-monitor/fraud/dataset_drift"
    assert trigger["payload"]["severity"] == "critical"
    firing_message, resolved_message = (r.json() for r in slack.requests)
    assert "Firing: fraud v3" in firing_message["text"] and "amount" in json.dumps(firing_message["blocks"])
    assert "Resolved: fraud v3" in resolved_message["text"]
    body = hook.requests[0].json()
    assert body["model"] == "fraud" and body["window"]["end"] == "2026-11-20T12:00:00Z"
    assert [f["name"] for f in body["drifted_features"]] == ["amount", "age"]
    assert hook.requests[0].headers["idempotency-key"] == fired.delivery_ids[2]

    rows = Outbox(storage).recent()
    assert sorted((r.channel, r.kind, r.status, r.attempts) for r in rows) == [
        ("oncall", "firing", "delivered", 1),
        ("oncall", "resolved", "delivered", 1),
        ("retrain", "firing", "delivered", 1),
        ("team-slack", "firing", "delivered", 1),
        ("team-slack", "resolved", "delivered", 1),
    ]


def test_acknowledging_an_alert_acknowledges_the_pagerduty_incident_only(
    storage: Storage, receivers: Any, worker_factory: Any
) -> None:
    slack, pager, hook, settings = every_channel(receivers)
    worker = worker_factory(settings)
    engine = AlertEngine(storage, settings, on_enqueued=worker.wake)
    fired = engine.evaluate(drift_report("fraud", T0, DRIFT))
    for receiver in (slack, pager, hook):
        receiver.wait_for(1)
    engine.acknowledge("fraud", "dataset_drift", "ana", "looking into it")
    engine.acknowledge("fraud", "dataset_drift", "ana")  # twice: still one acknowledge
    pager.wait_for(2)
    acknowledged = [e.event_id for e in alert_history(storage, "fraud") if e.kind == "acknowledged"]
    assert len(acknowledged) == 1
    assert wait_for_deliveries(storage, fired.event_ids + acknowledged, timeout=10).done
    trigger, acknowledge = (r.json() for r in pager.requests)
    assert [r.status for r in pager.requests] == [202, 202]
    assert acknowledge["event_action"] == "acknowledge" and acknowledge["dedup_key"] == trigger["dedup_key"]
    assert "payload" not in acknowledge
    assert (len(slack.requests), len(hook.requests)) == (1, 1)  # people and pipelines are not told "someone is on it"
    assert [(d.channel, d.status) for d in Outbox(storage).for_events(acknowledged)] == [("oncall", "delivered")]


def test_503_twice_then_200_is_delivered_once_with_one_idempotency_key(
    storage: Storage, receivers: Any, worker_factory: Any
) -> None:
    hook = receivers(webhook_validator(SECRET), script=[Reply(503, "busy"), Reply(503, "busy")])
    settings = settings_for({"retrain": webhook(hook.url)}, ["retrain"])
    worker = worker_factory(settings)
    evaluation = AlertEngine(storage, settings, on_enqueued=worker.wake).evaluate(drift_report("fraud", T0, DRIFT))
    hook.wait_for(1)
    assert wait_for_deliveries(storage, evaluation.event_ids, timeout=10).delivered == 1
    time.sleep(0.5)  # nothing more may arrive
    assert [r.status for r in hook.requests] == [503, 503, 200]
    keys = {r.headers["idempotency-key"] for r in hook.requests}
    assert keys == {evaluation.delivery_ids[0]}
    assert len({r.body for r in hook.requests}) == 1  # the same signed bytes every time
    (row,) = Outbox(storage).for_events(evaluation.event_ids)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 200)
    gaps = [b.at - a.at for a, b in zip(hook.requests, hook.requests[1:], strict=False)]
    assert all(gap >= 0.025 for gap in gaps)  # backoff: at least half of backoff_initial (50 ms)


def test_429_retry_after_is_honoured(storage: Storage, receivers: Any, worker_factory: Any) -> None:
    slack = receivers(slack_validator, script=[Reply(429, "rate_limited", {"Retry-After": "1"})])
    channel = unique_name("slack")
    settings = settings_for({channel: {"type": "slack", "url": slack.url}}, [channel])
    worker = worker_factory(settings)
    AlertEngine(storage, settings, on_enqueued=worker.wake).evaluate(drift_report("fraud", T0, DRIFT))
    slack.wait_for(1)
    first, second = slack.requests
    gap = second.at - first.at
    assert 1.0 <= gap < 1.6, gap  # backoff alone would retry after 25-50 ms
    assert counter("monitor_notification_retries_total", channel=channel, cause="http_429") == 1


def test_retry_after_parsing_and_backoff_growth() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    cap = timedelta(hours=1)
    assert retry_after("7", now, cap) == timedelta(seconds=7)
    assert retry_after("Fri, 20 Nov 2026 12:00:30 GMT", now, cap) == timedelta(seconds=30)
    assert retry_after("86400", now, cap) == cap
    assert retry_after("soon", now, cap) is None and retry_after(None, now, cap) is None
    policy = make_settings(alerting={"backoff_initial": "1s", "backoff_max": "60s"}).alerting
    for attempts, nominal in ((1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (30, 60)):
        delays = [backoff_delay(attempts, policy).total_seconds() for _ in range(200)]
        assert nominal / 2 <= min(delays) and max(delays) <= nominal
        assert max(delays) - min(delays) > nominal / 4  # jittered, not constant


def test_400_is_not_retried_and_is_reported(storage: Storage, receivers: Any, worker_factory: Any) -> None:
    slack = receivers(slack_validator, default=Reply(400, "invalid_blocks"))
    channel = unique_name("slack")
    settings = settings_for({channel: {"type": "slack", "url": slack.url}}, [channel])
    worker = worker_factory(settings)
    evaluation = AlertEngine(storage, settings, on_enqueued=worker.wake).evaluate(drift_report("fraud", T0, DRIFT))
    assert wait_for_deliveries(storage, evaluation.event_ids, timeout=10).failed == 1
    time.sleep(0.5)  # no retry may arrive
    assert len(slack.requests) == 1
    (failed,) = list_deliveries(storage, status="failed")
    assert (failed.channel, failed.attempts, failed.last_status_code) == (channel, 1, 400)
    assert failed.last_error == "HTTP 400: invalid_blocks"
    assert counter("monitor_notifications_failed_total", channel=channel, reason="http_4xx") == 1
    assert list_deliveries(storage, status="pending") == []


def test_409_means_delivered_only_on_a_repeated_attempt(storage: Storage, receivers: Any, worker_factory: Any) -> None:
    duplicate = receivers(script=[Reply(503, "busy")], default=Reply(409, "dag run exists"))
    conflict = receivers(default=Reply(409, "conflict"))
    settings = settings_for({"a": webhook(duplicate.url), "b": webhook(conflict.url)}, ["a", "b"])
    worker_factory(settings)
    evaluation = AlertEngine(storage, settings).evaluate(drift_report("fraud", T0, DRIFT))
    result = wait_for_deliveries(storage, evaluation.event_ids, timeout=10)
    assert (result.delivered, result.failed, result.pending) == (1, 1, 0)
    rows = {r.channel: r for r in Outbox(storage).for_events(evaluation.event_ids)}
    assert rows["a"].status == "delivered" and rows["a"].last_error.startswith("HTTP 409 on retry")
    assert rows["b"].status == "failed" and rows["b"].attempts == 1


def test_connection_refused_is_retried_until_the_receiver_comes_up(
    storage: Storage, receivers: Any, worker_factory: Any
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    channel = unique_name("hook")
    settings = settings_for({channel: webhook(url)}, [channel])
    worker_factory(settings)
    evaluation = AlertEngine(storage, settings).evaluate(drift_report("fraud", T0, DRIFT))
    deadline = time.monotonic() + 10
    while counter("monitor_notification_retries_total", channel=channel, cause="connection") < 2:
        assert time.monotonic() < deadline, "no connection retries recorded"
        time.sleep(0.05)
    (pending,) = Outbox(storage).for_events(evaluation.event_ids)
    assert pending.status in ("pending", "sending") and "ConnectError" in pending.last_error
    hook = receivers(webhook_validator(SECRET), port=port)
    hook.wait_for(1)
    assert wait_for_deliveries(storage, evaluation.event_ids, timeout=5).delivered == 1
    time.sleep(0.3)
    assert len(hook.requests) == 1


def test_gives_up_after_the_configured_time(storage: Storage, receivers: Any, worker_factory: Any) -> None:
    hook = receivers(default=Reply(503, "down for maintenance"))
    settings = make_settings(
        channels={"retrain": webhook(hook.url)},
        models={"fraud": {"alerts": [{"when": "dataset_drift", "notify": ["retrain"]}]}},
        alerting={"give_up_after": "400ms"},
    )
    worker_factory(settings)
    evaluation = AlertEngine(storage, settings).evaluate(drift_report("fraud", T0, DRIFT))
    result = wait_for_deliveries(storage, evaluation.event_ids, timeout=10)
    assert result.failed == 1 and "gave up after" in result.failures[0]
    assert "HTTP 503: down for maintenance" in result.failures[0]
    assert len(hook.requests) >= 2


def test_monitor_detect_waits_a_bounded_time_and_leaves_the_rest_queued(storage: Storage, receivers: Any) -> None:
    slow = receivers(default=Reply(503, "busy"))
    fine = receivers(slack_validator)
    settings = settings_for({"ok": {"type": "slack", "url": fine.url}, "retrain": webhook(slow.url)}, ["ok", "retrain"])
    started = time.monotonic()
    evaluation = AlertEngine(storage, settings).evaluate(drift_report("fraud", T0, DRIFT))
    waited = deliver_now(storage, settings, evaluation.event_ids, wait=1.0)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 4.0
    assert (waited.delivered, waited.pending) == (1, 1)
    assert [r.status for r in fine.requests] == [200]
    (left,) = list_deliveries(storage, status="pending")
    assert left.channel == "retrain"  # still queued for the service, not lost


def test_no_secret_reaches_any_log_or_stored_error(
    storage: Storage, receivers: Any, worker_factory: Any, capfd: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Secrets: the Slack URL (path and all), the PagerDuty routing key, the signing secret, a bearer token.

    Receivers misbehave on purpose: PagerDuty echoes the request (routing key included) in a 400, the
    hook answers 503 with the Authorization header it got, Slack is unreachable at first.
    """
    from monitor.logs import configure_logging

    token = "ghp_SECRETtoken0987654321"
    monkeypatch.setenv("TEST_GH_TOKEN", token)
    slack_port = free_port()
    slack_url = f"http://127.0.0.1:{slack_port}/services/T0AAA/B0BBB/SLACKPATHSECRET"

    def echo_body(received: Any) -> Reply:
        return Reply(400, received.body.decode())

    def echo_authorization(received: Any) -> Reply:
        return Reply(503, f"upstream said no to {received.headers.get('authorization')}")

    pager = receivers(echo_body)
    hook = receivers(echo_authorization)
    settings = make_settings(
        channels={
            "team-slack": {"type": "slack", "url": slack_url},
            "oncall": {"type": "pagerduty", "routing_key_env": "TEST_PD_KEY", "url": pager.url},
            "retrain": {**webhook(hook.url), "headers": {"Authorization": "Bearer ${env:TEST_GH_TOKEN}"}},
        },
        models={"fraud": {"alerts": [{"when": "dataset_drift", "notify": ["team-slack", "oncall", "retrain"]}]}},
        alerting={"give_up_after": "2s"},
    )
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("debug", "json")
    try:
        worker = worker_factory(settings)
        engine = AlertEngine(storage, settings, on_enqueued=worker.wake)
        evaluation = engine.evaluate(drift_report("fraud", T0, DRIFT))
        pager.wait_for(1, accepted=False)
        hook.wait_for(2, accepted=False)
        slack = receivers(slack_validator, port=slack_port, path="/services/T0AAA/B0BBB/SLACKPATHSECRET")
        slack.wait_for(1)
        wait_for_deliveries(storage, evaluation.event_ids, timeout=10)
        structlog.get_logger("test").info("settings", channels=str(settings.channels))  # pydantic hides SecretStr
    finally:
        root.handlers, root.level = saved[0], saved[1]
    out, err = capfd.readouterr()
    logs = out + err
    assert "notification delivered" in logs and "notification will be retried" in logs and "notification failed" in logs
    rows = Outbox(storage).for_events(evaluation.event_ids)
    assert sorted(r.status for r in rows) == ["delivered", "failed", "failed"]
    stored = json.dumps([r.last_error for r in rows])
    assert "HTTP 400" in stored and "upstream said no to" in stored
    for secret in ("SLACKPATHSECRET", "T0AAA/B0BBB", PD_KEY, SECRET, token):
        assert secret not in logs, secret
        assert secret not in stored, secret


def test_an_invalid_signing_secret_fails_its_own_delivery_and_the_others_are_sent(
    storage: Storage, receivers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``whsec_`` secret that is not base64 is that channel's configuration problem: it once aborted
    the whole pass (ValueError out of the signing), so the healthy webhook and Slack got nothing."""
    bad_secret = "whsec_!!!not-base64!!!"
    monkeypatch.setenv("BAD_WHSEC", bad_secret)
    bad = receivers(default=Reply(204, ""))
    ok = receivers(webhook_validator(SECRET), default=Reply(204, ""))
    slack = receivers(slack_validator)
    channels = {
        "a-badsecret": {"type": "webhook", "url": bad.url, "secret_env": "BAD_WHSEC"},
        "b-ok": webhook(ok.url),
        "c-slack": {"type": "slack", "url": slack.url},
    }
    settings = settings_for(channels, list(channels))
    evaluation = AlertEngine(storage, settings).evaluate(drift_report("fraud", T0, DRIFT))
    assert DeliveryWorker(storage, settings).run_once() == 2  # the pass does not stop at the bad one
    result = wait_for_deliveries(storage, evaluation.event_ids, timeout=5)
    assert (result.delivered, result.failed, result.pending) == (2, 1, 0)
    assert bad.requests == []
    assert [r.status for r in ok.requests] == [204] and [r.status for r in slack.requests] == [200]
    (failure,) = result.failures
    assert failure.startswith("a-badsecret: ") and "BAD_WHSEC" in failure and "base64" in failure
    assert bad_secret not in failure and "!!!" not in failure


def test_an_unexpected_error_building_one_request_fails_that_delivery_only(
    storage: Storage, receivers: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Any exception while a request is built (a bug, a payload a channel cannot render) fails that
    delivery, logged once and without the channel's secrets; the rest of the pass is still sent."""
    from alerts.channels import slack as slack_module
    from monitor.logs import configure_logging

    hook = receivers(webhook_validator(SECRET), default=Reply(204, ""))
    slack_url = f"{receivers(slack_validator).url}/T0AAA/B0BBB/SLACKPATHSECRET"

    def broken(event: Any) -> dict[str, Any]:
        raise RuntimeError(f"cannot render for {slack_url}")

    monkeypatch.setattr(slack_module, "message", broken)
    settings = settings_for(
        {"a-slack": {"type": "slack", "url": slack_url}, "b-hook": webhook(hook.url)}, ["a-slack", "b-hook"]
    )
    evaluation = AlertEngine(storage, settings).evaluate(drift_report("fraud", T0, DRIFT))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("info", "json")
    try:
        worker = DeliveryWorker(storage, settings)
        assert worker.run_once() == 1
        assert worker.run_once() == 0  # failed, not retried: one log line for it
    finally:
        root.handlers, root.level = saved[0], saved[1]
    result = wait_for_deliveries(storage, evaluation.event_ids, timeout=5)
    assert (result.delivered, result.failed, result.pending) == (1, 1, 0)
    assert [r.status for r in hook.requests] == [204]
    (failure,) = result.failures
    assert "RuntimeError: cannot render for ***" in failure and "in broken" in failure
    logs = "".join(capfd.readouterr())
    assert logs.count("notification failed") == 1 and "delivery worker iteration failed" not in logs
    assert "SLACKPATHSECRET" not in logs and "SLACKPATHSECRET" not in failure
