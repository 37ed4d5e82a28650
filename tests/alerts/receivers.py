"""Real local HTTP servers that stand in for Slack, PagerDuty and a retraining hook.

Each receiver runs a ``ThreadingHTTPServer`` on 127.0.0.1 in the test process, records every request
(raw bytes, headers, arrival time), checks the payload the way the real service would and answers
from a script (e.g. 503, 503, then 200) - a payload the real service would reject gets the real
service's rejection (Slack ``400 invalid_blocks``, PagerDuty ``400 invalid event``, a bad signature
``401``), so a malformed notification shows up as a failed delivery, not as a passing test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema

from alerts.signing import verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    status: int = 0  # what the receiver answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (a receiver that does not answer in time)


Validator = Callable[[Received], Reply | None]


class Receiver:
    """One HTTP endpoint: validates, records, answers ``script`` in order, then ``default``."""

    def __init__(
        self,
        validate: Validator | None = None,
        script: list[Reply] | None = None,
        default: Reply | None = None,
        port: int = 0,
        path: str = "/hook",
    ) -> None:
        self.validate = validate
        self.script = list(script or [])
        self.default = default or Reply()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                    at=time.monotonic(),
                    wall=time.time(),
                )
                reply = receiver._answer(received)
                if reply.hang:
                    time.sleep(reply.hang)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    payload = reply.body.encode()
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout) or was killed

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, received: Received) -> Reply:
        with self._lock:
            rejection = self.validate(received) if self.validate else None
            if rejection is not None:
                reply = rejection
            elif self.script:
                reply = self.script.pop(0)
            else:
                reply = self.default
            received.status = reply.status
            self.requests.append(received)
            return reply

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 15.0, accepted: bool = True) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.accepted if accepted else self.requests
            if len(got) >= count:
                return got
            time.sleep(0.02)
        got = self.accepted if accepted else self.requests
        raise AssertionError(f"expected {count} requests, got {len(got)}: {[r.status for r in self.requests]}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- Slack


_TEXT = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"enum": ["plain_text", "mrkdwn"]}, "text": {"type": "string", "minLength": 1}},
}
_PLAIN = {**_TEXT, "properties": {**_TEXT["properties"], "type": {"const": "plain_text"}}}
SLACK_SCHEMA = {
    "type": "object",
    "required": ["text", "blocks"],
    "properties": {
        "text": {"type": "string", "minLength": 1},
        "blocks": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "required": ["type"],
                "oneOf": [
                    {
                        "properties": {
                            "type": {"const": "header"},
                            "text": {**_PLAIN, "properties": {**_PLAIN["properties"], "text": {"maxLength": 150}}},
                        },
                        "required": ["text"],
                    },
                    {
                        "properties": {
                            "type": {"const": "section"},
                            "text": {**_TEXT, "properties": {**_TEXT["properties"], "text": {"maxLength": 3000}}},
                            "fields": {
                                "type": "array",
                                "maxItems": 10,
                                "items": {
                                    **_TEXT,
                                    "properties": {**_TEXT["properties"], "text": {"maxLength": 2000}},
                                },
                            },
                        },
                        "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
                    },
                    {
                        "properties": {
                            "type": {"const": "actions"},
                            "elements": {
                                "type": "array",
                                "maxItems": 25,
                                "items": {
                                    "type": "object",
                                    "required": ["type", "text"],
                                    "properties": {
                                        "type": {"const": "button"},
                                        "text": {
                                            **_PLAIN,
                                            "properties": {**_PLAIN["properties"], "text": {"maxLength": 75}},
                                        },
                                        "url": {"type": "string", "maxLength": 3000},
                                    },
                                },
                            },
                        },
                        "required": ["elements"],
                    },
                    {
                        "properties": {
                            "type": {"const": "context"},
                            "elements": {"type": "array", "maxItems": 10, "items": _TEXT},
                        },
                        "required": ["elements"],
                    },
                ],
            },
        },
    },
}


def slack_validator(received: Received) -> Reply | None:
    """Slack's incoming webhook: 400 ``invalid_payload`` / ``invalid_blocks`` as the real endpoint answers."""
    if received.headers.get("content-type") != "application/json":
        return Reply(400, "invalid_payload")
    try:
        data = received.json()
    except ValueError:
        return Reply(400, "invalid_payload")
    try:
        jsonschema.validate(data, SLACK_SCHEMA)
    except jsonschema.ValidationError as exc:
        return Reply(400, f"invalid_blocks: {exc.message}")
    return None


# ---------------------------------------------------------------- PagerDuty Events API v2


PAGERDUTY_SCHEMA = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
        "links": {"type": "array", "items": {"type": "object", "required": ["href"]}},
    },
    "allOf": [
        {"if": {"properties": {"event_action": {"const": "trigger"}}}, "then": {"required": ["payload"]}},
        {
            "if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
            "then": {"required": ["dedup_key"]},
        },
    ],
}


def pagerduty_validator(routing_key: str) -> Validator:
    def validate(received: Received) -> Reply | None:
        try:
            data = received.json()
            jsonschema.validate(data, PAGERDUTY_SCHEMA)
        except (ValueError, jsonschema.ValidationError) as exc:
            message = getattr(exc, "message", str(exc))
            body = {"status": "invalid event", "message": "Event object is invalid", "errors": [message]}
            return Reply(400, json.dumps(body))
        if data["routing_key"] != routing_key:
            return Reply(400, json.dumps({"status": "invalid event", "errors": ["Invalid routing key"]}))
        return None

    return validate


def pagerduty_accepted(received: Received) -> Reply:
    """The 202 answer PagerDuty gives, echoing the dedup_key."""
    return Reply(202, json.dumps({"status": "success", "message": "Event processed", "dedup_key": "x"}))


# ---------------------------------------------------------------- retraining webhook


WEBHOOK_SCHEMA = {
    "type": "object",
    "required": ["model", "version", "window", "reason", "drifted_features"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "version": {"type": "string"},
        "window": {
            "type": "object",
            "required": ["start", "end"],
            "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
        },
        "reason": {"type": "string", "minLength": 1},
        "drifted_features": {
            "type": "array",
            "items": {"type": "object", "required": ["name", "statistic", "value", "threshold"]},
        },
    },
}


def webhook_validator(secret: str, schema: dict[str, Any] | None = WEBHOOK_SCHEMA) -> Validator:
    """Checks the HMAC over the raw bytes first (401 if wrong), then the Idempotency-Key and the body."""

    def validate(received: Received) -> Reply | None:
        if not verify(received.body, secret, received.headers.get("x-monitor-signature")):
            return Reply(401, "bad signature")
        if not received.headers.get("idempotency-key"):
            return Reply(400, "missing Idempotency-Key")
        if schema is not None:
            try:
                jsonschema.validate(received.json(), schema)
            except (ValueError, jsonschema.ValidationError) as exc:
                return Reply(422, getattr(exc, "message", str(exc)))
        return None

    return validate
