"""Retraining webhooks: a JSON POST, signed, with a stable ``Idempotency-Key``.

Default body (at most 10 top-level keys, so it also fits GitHub's ``client_payload`` limit)::

    {"event": "alert.firing", "event_id": ..., "model": ..., "version": ..., "window": {"start", "end"},
     "reason": ..., "drifted_features": [{"name", "detector", "statistic", "value", "threshold", "stats"}],
     "alert": {"id", "rule", "condition", "severity", "value", "threshold", "opened_at",
               "drifted_total", "drifted_truncated"},
     "dashboard_url": ...}

``drifted_features`` lists every column that triggered, strongest first, not a top few: a retraining
pipeline needs them all. It is bounded by ``alerts.rules.FINDINGS_MAX`` (the default per-model
feature limit); ``alert.drifted_total`` is the real count and ``alert.drifted_truncated`` says whether
the list stopped short. The counts live in ``alert`` so the body keeps its 9 top-level keys.

With ``template`` the body is the template rendered with the variables of :mod:`monitor.templates`,
so the hook can call a pipeline trigger directly (GitHub ``repository_dispatch``, Airflow's DAG-run
endpoint; docs/alerting.md). Headers: ``Idempotency-Key`` (the delivery id: the same on every retry of
this alert event to this channel), ``X-Monitor-Event``, and when a signing secret is configured
(``secret_env`` or ``secret``) ``X-Monitor-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` plus
the Standard Webhooks ``webhook-id`` (= ``Idempotency-Key``), ``webhook-timestamp`` (this attempt) and
``webhook-signature`` (:mod:`alerts.signing`), so a receiver can reject replays; plus configured
``headers`` in which ``${env:NAME}`` is replaced at send time (e.g.
``Authorization: "Bearer ${env:GITHUB_TOKEN}"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from alerts.channels import (
    USER_AGENT,
    InvalidSecret,
    OutgoingRequest,
    check_signing_secret,
    env_secret,
    expand_env,
    url_secrets,
)
from alerts.model import AlertEvent
from alerts.signing import SIGNATURE_HEADER, sign, standard_headers
from monitor.errors import ConfigError
from monitor.settings import Settings, WebhookChannel
from monitor.templates import parse_template, render

CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "x-api-key")


def default_body(event: AlertEvent) -> dict[str, Any]:
    return {
        "event": f"alert.{event.kind}",
        "event_id": event.event_id,
        "model": event.model,
        "version": event.model_version,
        "window": {"start": _iso(event), "end": event.window_end.isoformat().replace("+00:00", "Z")},
        "reason": event.reason,
        "drifted_features": [
            {
                "name": f.name,
                "detector": f.detector,
                "statistic": f.statistic,
                "value": f.value,
                "threshold": f.threshold,
                "stats": f.stats,
            }
            for f in event.findings
        ],
        "alert": {
            "id": event.alert_id,
            "rule": event.rule,
            "condition": event.condition,
            "severity": event.severity,
            "value": event.value,
            "threshold": event.threshold,
            "opened_at": event.opened_at.isoformat().replace("+00:00", "Z") if event.opened_at else None,
            # drifted_features lists every column that triggered, up to alerts.rules.FINDINGS_MAX
            "drifted_total": event.total_findings,
            "drifted_truncated": event.total_findings > len(event.findings),
        },
        "dashboard_url": event.dashboard_url,
    }


def _iso(event: AlertEvent) -> str:
    return event.window_start.isoformat().replace("+00:00", "Z")


def template_variables(event: AlertEvent) -> dict[str, Any]:
    body = default_body(event)
    return {
        "event": body["event"],
        "event_id": event.event_id,
        "alert_id": event.alert_id,
        "model": event.model,
        "version": event.model_version,
        "rule": event.rule,
        "condition": event.condition,
        "severity": event.severity,
        "reason": event.reason,
        "window": body["window"],
        "window_start": body["window"]["start"],
        "window_end": body["window"]["end"],
        "value": event.value,
        "threshold": event.threshold,
        "drifted_features": [f.name for f in event.findings],
        "features": body["drifted_features"],
        "dashboard_url": event.dashboard_url,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "opened_at": body["alert"]["opened_at"],
        "payload": body,
    }


class Webhook:
    type = "webhook"

    def __init__(
        self, name: str, config: WebhookChannel, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.name = name
        self.config = config
        self.clock = clock  # the time source of ``webhook-timestamp``
        self.template = (
            parse_template(config.template, f"channels.{name}.template") if config.template is not None else None
        )
        if config.secret is not None:  # written in the file: as much configuration as the template
            try:
                check_signing_secret(config.secret.get_secret_value(), name, f"channels.{name}.secret")
            except InvalidSecret as exc:
                raise ConfigError(str(exc)) from None

    def body(self, event: AlertEvent) -> bytes:
        data = default_body(event) if self.template is None else render(self.template, template_variables(event))
        return orjson.dumps(data)

    def request(self, event: AlertEvent, idempotency_key: str) -> OutgoingRequest:
        if self.config.url_env:
            url = env_secret(self.config.url_env, f"webhook URL of channel {self.name}")
        else:
            assert self.config.url is not None
            url = self.config.url.get_secret_value()
        secrets: list[str] = list(url_secrets(url))
        body = self.body(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": idempotency_key,
            "X-Monitor-Event": f"alert.{event.kind}",
        }
        for key, value in self.config.headers.items():
            headers[key], found = expand_env(value.get_secret_value())
            secrets.extend(found)
            if key.lower() in CREDENTIAL_HEADERS:  # a credential written inline is scrubbed too
                secrets.append(headers[key])
        secret = self._secret()
        if secret is not None:
            secrets.append(secret)
            headers[SIGNATURE_HEADER] = sign(body, secret)
            headers.update(standard_headers(body, secret, idempotency_key, int(self.clock())))
        return OutgoingRequest(url=url, body=body, headers=headers, secrets=tuple(secrets))

    def _secret(self) -> str | None:
        """The signing secret, checked before anything is signed (InvalidSecret names its variable)."""
        if self.config.secret is not None:
            return self.config.secret.get_secret_value()
        if self.config.secret_env:
            secret = env_secret(self.config.secret_env, f"signing secret of channel {self.name}")
            return check_signing_secret(secret, self.name, f"environment variable {self.config.secret_env}")
        return None
