"""Notification channels: turn an :class:`AlertEvent` into one HTTP request, secrets resolved at send time.

A channel is built from its configuration (``channels.<name>`` in the YAML) through :data:`REGISTRY`
keyed by ``type``. Its ``request`` method reads secrets (webhook URLs, routing keys, signing secrets)
from the environment at that moment and returns them in ``OutgoingRequest.secrets`` so the delivery
worker can scrub them from any error text it stores or logs. ``redacted_channels`` is the view of the
configuration that is safe to return from the API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from alerts.model import AlertEvent
from alerts.signing import standard_key
from monitor.errors import ConfigError, MonitorError
from monitor.logs import get_logger
from monitor.settings import PagerDutyChannel, Settings, SlackChannel, WebhookChannel

log = get_logger(__name__)

USER_AGENT = "model-monitor/0.1 (+alerts)"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingSecret(MonitorError):
    """A secret's environment variable is not set when a notification is about to be sent."""


class InvalidSecret(MonitorError):
    """A secret is set but cannot be used (a ``whsec_`` signing secret whose rest is not base64).

    Like :class:`MissingSecret` it is a configuration problem of one channel: that channel's
    deliveries fail with this message (which names the channel and the variable, never the value),
    every other channel's are still sent.
    """


@dataclass(frozen=True)
class OutgoingRequest:
    """One POST, ready to send. ``secrets`` are never logged: error texts are scrubbed of them."""

    url: str
    body: bytes
    headers: dict[str, str]
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never print a URL or header that may hold a secret
        return f"OutgoingRequest(<{len(self.body)} bytes>)"


class Channel(Protocol):
    """What the delivery worker needs from a channel."""

    name: str
    type: str

    def request(self, event: AlertEvent, idempotency_key: str) -> OutgoingRequest: ...


def env_secret(variable: str, purpose: str) -> str:
    """The value of an environment variable holding a secret, read now."""
    value = os.environ.get(variable)
    if not value:
        raise MissingSecret(f"environment variable {variable} ({purpose}) is not set")
    return value


def expand_env(text: str) -> tuple[str, list[str]]:
    """Replace ``${env:NAME}`` in a header value; returns the text and the secrets it now holds."""
    found: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        value = env_secret(match.group(1), "header value")
        found.append(value)
        return value

    return _ENV_REF.sub(substitute, text), found


def url_secrets(url: str) -> tuple[str, ...]:
    """What to scrub for a secret URL: the URL, its path and query, and each path segment or query value
    that looks like a token (a receiver's error page may echo any of them; a Slack webhook's path *is*
    its secret, and tokens often travel as ``?token=``)."""
    parts = urlsplit(url)
    found = [url, parts.path, parts.query, f"{parts.path}?{parts.query}" if parts.query else ""]
    pieces = parts.path.split("/") + [v for _, v in parse_qsl(parts.query)]
    found += [p for p in pieces if len(p) >= 6 and not (p.isalpha() and p.islower())]
    return tuple(s for s in dict.fromkeys(found) if s and s != "/")


def scrub(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first, so a URL goes before its parts)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def build_channel(name: str, config: SlackChannel | PagerDutyChannel | WebhookChannel, settings: Settings) -> Channel:
    """The channel object for one configured channel (validates templates: ConfigError on a bad one)."""
    from alerts.channels.pagerduty import PagerDuty
    from alerts.channels.slack import Slack
    from alerts.channels.webhook import Webhook

    registry: dict[str, Callable[[str, Any, Settings], Channel]] = {
        "slack": Slack,
        "pagerduty": PagerDuty,
        "webhook": Webhook,
    }
    try:
        factory = registry[config.type]
    except KeyError as exc:
        raise ConfigError(f"channels.{name}: unknown type {config.type!r}") from exc
    return factory(name, config, settings)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Every configured channel; call at start-up so a bad template stops the service early."""
    return {name: build_channel(name, config, settings) for name, config in settings.channels.items()}


def check_channels(settings: Settings) -> None:
    """At start-up: build every channel (a template that does not parse, or an inline signing secret
    that is not valid, raises ``ConfigError`` now) and warn about each environment variable a channel
    needs that is not set or holds an unusable secret.

    A bad secret *in the environment* only warns: it is read again at send time (it may be rotated
    without a restart), and refusing to start would silence every other channel too.
    """
    build_channels(settings)
    for name in missing_secrets(settings):
        log.warning("a channel's environment variable is not set; its notifications will fail", variable=name)
    for problem in invalid_secrets(settings):
        log.error("a channel's secret is not usable; its notifications will fail", problem=problem)


def check_signing_secret(secret: str, channel: str, origin: str) -> str:
    """``secret`` if it can sign (see :func:`alerts.signing.standard_key`); else :class:`InvalidSecret`
    naming the channel and where the secret comes from (``origin``), never the secret itself."""
    try:
        standard_key(secret)
    except ValueError as exc:
        # ``from None``: the chained decoding error is not needed to fix the configuration.
        raise InvalidSecret(f"signing secret of channel {channel} ({origin}) is not valid: {exc}") from None
    return secret


def invalid_secrets(settings: Settings) -> list[str]:
    """A message per webhook channel whose signing secret is set in the environment but unusable."""
    problems: list[str] = []
    for name, config in settings.channels.items():
        if isinstance(config, WebhookChannel) and config.secret_env and os.environ.get(config.secret_env):
            try:
                check_signing_secret(os.environ[config.secret_env], name, f"environment variable {config.secret_env}")
            except InvalidSecret as exc:
                problems.append(str(exc))
    return problems


def configured_secrets(config: SlackChannel | PagerDutyChannel | WebhookChannel) -> tuple[str, ...]:
    """Every secret value a channel's configuration holds or points to right now (inline or set in the
    environment): what to scrub from an error raised before a request, and its secrets, exist."""
    values: list[str] = []
    if isinstance(config, SlackChannel | WebhookChannel):
        url = config.url.get_secret_value() if config.url else os.environ.get(config.url_env or "", "")
        values.extend(url_secrets(url) if url else ())
    if isinstance(config, PagerDutyChannel):
        values.append(config.routing_key.get_secret_value() if config.routing_key else "")
        values.append(os.environ.get(config.routing_key_env or "", ""))
    if isinstance(config, WebhookChannel):
        from alerts.channels.webhook import CREDENTIAL_HEADERS

        values.append(config.secret.get_secret_value() if config.secret else "")
        values.append(os.environ.get(config.secret_env or "", ""))
        for key, value in config.headers.items():
            text = value.get_secret_value()
            values.extend(os.environ.get(m.group(1), "") for m in _ENV_REF.finditer(text))
            if key.lower() in CREDENTIAL_HEADERS:
                values.append(text)
    return tuple(v for v in dict.fromkeys(values) if v)


def secret_variables(settings: Settings) -> list[str]:
    """Names of the environment variables the configured channels read their secrets from (``*_env`` keys
    and ``${env:NAME}`` in header values), sorted."""
    needed: list[str] = []
    for config in settings.channels.values():
        if isinstance(config, SlackChannel | WebhookChannel) and config.url_env:
            needed.append(config.url_env)
        if isinstance(config, PagerDutyChannel) and config.routing_key_env:
            needed.append(config.routing_key_env)
        if isinstance(config, WebhookChannel):
            if config.secret_env:
                needed.append(config.secret_env)
            for value in config.headers.values():
                needed.extend(m.group(1) for m in _ENV_REF.finditer(value.get_secret_value()))
    return sorted(set(needed))


def missing_secrets(settings: Settings) -> list[str]:
    """Names of environment variables the configured channels need but that are not set (for a warning)."""
    return [name for name in secret_variables(settings) if not os.environ.get(name)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def redacted_channels(settings: Settings) -> dict[str, dict[str, Any]]:
    """The channel configuration with every secret removed: safe for the API and logs.

    Inline URLs show only their origin (a Slack webhook's path *is* its secret); environment variable
    *names* are shown with whether they are set, never their values.
    """
    view: dict[str, dict[str, Any]] = {}
    for name, config in settings.channels.items():
        entry: dict[str, Any] = {"type": config.type}
        if isinstance(config, SlackChannel | WebhookChannel):
            if config.url_env:
                entry["url_env"] = config.url_env
                entry["url_env_set"] = bool(os.environ.get(config.url_env))
            else:
                entry["url"] = _origin(config.url.get_secret_value() if config.url else "") + "/***"
        if isinstance(config, PagerDutyChannel):
            if config.routing_key_env:
                entry["routing_key_env"] = config.routing_key_env
                entry["routing_key_env_set"] = bool(os.environ.get(config.routing_key_env))
            else:
                entry["routing_key"] = "***"
            entry["url"] = _origin(config.url) + "/***"
        if isinstance(config, WebhookChannel):
            entry["secret_env"] = config.secret_env
            entry["secret_env_set"] = bool(config.secret_env and os.environ.get(config.secret_env))
            if config.secret is not None:
                entry["secret"] = "***"
            entry["headers"] = sorted(config.headers)
            entry["templated"] = config.template is not None
            entry["send_resolved"] = config.send_resolved
        view[name] = entry
    return view
