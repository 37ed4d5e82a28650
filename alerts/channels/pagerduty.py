"""PagerDuty Events API v2: ``trigger`` on firing (and repeats, which PagerDuty de-duplicates into the
same incident), ``acknowledge`` when someone acknowledges the alert through the API, ``resolve`` when
the alert clears, all with one ``dedup_key`` per alert identity.

Fields as the API requires them: ``routing_key`` (32 characters, from ``routing_key_env`` at send
time), ``event_action`` in trigger|acknowledge|resolve, ``dedup_key`` at most 255 characters, and
for a trigger ``payload.summary`` (at most 1024), ``payload.source``, ``payload.severity`` in
critical|error|warning|info. The endpoint defaults to https://events.pagerduty.com/v2/enqueue and is
overridable with ``url`` (EU accounts, proxies, tests).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from alerts.channels import USER_AGENT, OutgoingRequest, env_secret
from alerts.channels.slack import TOP_FEATURES, feature_lines
from alerts.model import AlertEvent
from monitor.settings import PagerDutyChannel, Settings

SUMMARY_MAX = 1024
DEDUP_MAX = 255


def dedup_key(model: str, rule: str) -> str:
    """Stable per alert identity, so trigger and resolve address the same PagerDuty alert."""
    key = f"model-monitor/{model}/{rule}"
    if len(key) <= DEDUP_MAX:
        return key
    return f"model-monitor/{hashlib.sha256(key.encode()).hexdigest()}"


_ACTIONS = {"resolved": "resolve", "acknowledged": "acknowledge"}


def event_body(event: AlertEvent, routing_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": _ACTIONS.get(event.kind, "trigger"),
        "dedup_key": dedup_key(event.model, event.rule),
    }
    if event.kind in _ACTIONS:  # acknowledge and resolve carry no payload
        return body
    version = f" v{event.model_version}" if event.model_version else ""
    summary = f"[{event.model}{version}] {event.rule}: {event.reason}"
    body["payload"] = {
        "summary": summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 1] + "…",
        "source": f"model-monitor/{event.model}",
        "severity": event.severity,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "component": event.model,
        "group": "model-monitor",
        "class": event.condition,
        "custom_details": {
            "alert_id": event.alert_id,
            "event_id": event.event_id,
            "model_version": event.model_version,
            "window_start": event.window_start.isoformat(),
            "window_end": event.window_end.isoformat(),
            "reason": event.reason,
            "value": event.value,
            "threshold": event.threshold,
            # the strongest few (an event is at most 512 KB), the count of all, "…and N more" in the lines
            "features": [f.as_dict() for f in event.findings[:TOP_FEATURES]],
            "features_total": event.total_findings,
            "summary_lines": feature_lines(event),
        },
    }
    body["client"] = "model-monitor"
    if event.dashboard_url:
        body["client_url"] = event.dashboard_url
        body["links"] = [{"href": event.dashboard_url, "text": "Model dashboard"}]
    return body


class PagerDuty:
    type = "pagerduty"

    def __init__(self, name: str, config: PagerDutyChannel, settings: Settings) -> None:
        self.name = name
        self.config = config

    def request(self, event: AlertEvent, idempotency_key: str) -> OutgoingRequest:
        if self.config.routing_key is not None:
            routing_key = self.config.routing_key.get_secret_value()
        else:
            assert self.config.routing_key_env is not None
            routing_key = env_secret(self.config.routing_key_env, f"PagerDuty routing key of channel {self.name}")
        body = orjson.dumps(event_body(event, routing_key))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        return OutgoingRequest(url=self.config.url, body=body, headers=headers, secrets=(routing_key,))
