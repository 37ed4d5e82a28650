"""Slack incoming webhooks: ``text`` (the notification fallback) plus Block Kit ``blocks``.

Limits respected (Slack answers ``400 invalid_blocks`` otherwise): at most 50 blocks, a header's
plain text at most 150 characters, a section's text at most 3000 and at most 10 fields of at most
2000 each, a button URL at most 3000. User-controlled text is escaped for mrkdwn (``&``, ``<``, ``>``).
"""

from __future__ import annotations

from typing import Any

import orjson

from alerts.channels import USER_AGENT, OutgoingRequest, env_secret, url_secrets
from alerts.model import AlertEvent
from monitor.settings import Settings, SlackChannel

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
# A message names the strongest few columns and says how many more there are (the webhook gets all).
TOP_FEATURES = 10
_EMOJI = {"firing": ":rotating_light:", "repeat": ":repeat:", "resolved": ":white_check_mark:"}
_TITLE = {"firing": "Firing", "repeat": "Still firing", "resolved": "Resolved"}


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _window(event: AlertEvent) -> str:
    fmt = "%Y-%m-%d %H:%M:%S"
    return f"{event.window_start.strftime(fmt)} → {event.window_end.strftime(fmt)} UTC"


def feature_lines(event: AlertEvent, budget: int | None = None) -> list[str]:
    """A line per finding, strongest first, at most :data:`TOP_FEATURES` (and, with ``budget``, as many
    as fit in that many characters), then "…and N more" for the columns left out."""
    lines = []
    for f in event.findings[:TOP_FEATURES]:
        others = [f"{k} {_num(v)}" for k, v in f.stats.items() if k != f.statistic and v is not None][:4]
        extra = f" · {', '.join(others)}" if others else ""
        lines.append(
            f"• `{escape(f.name) or 'dataset'}` {escape(f.statistic)} *{_num(f.value)}* "
            f"(threshold {_num(f.threshold)}){escape(extra)}"
        )

    def more(shown: int) -> list[str]:
        rest = event.total_findings - shown
        return [f"…and {rest} more"] if rest > 0 else []

    while budget is not None and len(lines) > 1 and len("\n".join(lines + more(len(lines)))) > budget:
        lines.pop()
    return lines + more(len(lines))


def _mrkdwn(text: str, limit: int = FIELD_MAX) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, limit)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text, SECTION_MAX)}


def message(event: AlertEvent) -> dict[str, Any]:
    """The JSON body for one event."""
    version = f" v{event.model_version}" if event.model_version else ""
    title = f"{_TITLE[event.kind]}: {event.model}{version} · {event.rule}"
    text = f"{_EMOJI[event.kind]} [{event.severity}] {escape(title)} — {escape(event.reason)} ({_window(event)})"
    header = _cut(f"{_TITLE[event.kind]}: {event.model}{version} · {event.rule}", HEADER_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        _section(f"{_EMOJI[event.kind]} *{escape(event.reason)}*"),
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Model*\n`{escape(event.model)}`{escape(version)}"),
                _mrkdwn(f"*Severity*\n{escape(event.severity)}"),
                _mrkdwn(f"*Window*\n{_window(event)}"),
                _mrkdwn(f"*Rule*\n`{escape(event.rule)}` ({escape(event.condition)})"),
            ],
        },
    ]
    drift = "drift" in event.condition or event.condition == "skew"
    title = "*Top drifted features*" if drift else "*Findings*"
    lines = feature_lines(event, budget=SECTION_MAX - len(title) - 1)
    if lines and event.kind != "resolved":
        blocks.append(_section("\n".join([title, *lines])))
    if event.kind == "resolved" and event.opened_at:
        since = event.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        blocks.append(_section(f"Condition cleared; the alert had been open since {since}."))
    if event.dashboard_url:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Open dashboard"}}
        blocks.append({"type": "actions", "elements": [{**button, "url": event.dashboard_url[:3000]}]})
    context = f"alert `{escape(event.alert_id)}` · event {event.event_id}"
    blocks.append({"type": "context", "elements": [_mrkdwn(context)]})
    return {"text": _cut(text, SECTION_MAX), "blocks": blocks}


class Slack:
    type = "slack"

    def __init__(self, name: str, config: SlackChannel, settings: Settings) -> None:
        self.name = name
        self.config = config

    def request(self, event: AlertEvent, idempotency_key: str) -> OutgoingRequest:
        if self.config.url_env:
            url = env_secret(self.config.url_env, f"Slack webhook URL of channel {self.name}")
        else:
            assert self.config.url is not None
            url = self.config.url.get_secret_value()
        body = orjson.dumps(message(event))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        return OutgoingRequest(url=url, body=body, headers=headers, secrets=url_secrets(url))
