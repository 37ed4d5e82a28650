"""A small local HTTP server standing in for Slack, PagerDuty and the retraining webhook.

It accepts what the real services accept, keeps every payload, checks the webhook's HMAC signature,
prints one line per notification and shows them all on ``/`` (HTML) and ``/received`` (JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = {"/slack": "slack", "/pagerduty": "pagerduty", "/webhook": "webhook"}


@dataclass
class Received:
    channel: str
    at: float
    body: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool | None = None


@dataclass
class Inbox:
    secret: str
    items: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self) -> dict[str, int]:
        with self.lock:
            result = dict.fromkeys(PATHS.values(), 0)
            for item in self.items:
                result[item.channel] += 1
            return result

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.items)


def summary(item: Received) -> str:
    """One line saying what the receiver got, as the person on call would read it."""
    body = item.body
    if item.channel == "slack":
        return f"Slack     <- {body.get('text', '')[:140]}"
    if item.channel == "pagerduty":
        payload = body.get("payload") or {}
        return (
            f"PagerDuty <- {body.get('event_action')} [{payload.get('severity', '')}] "
            f"{payload.get('summary', '')[:110]} (dedup_key {body.get('dedup_key', '')[:24]})"
        )
    signed = "signature ok" if item.signature_ok else "BAD SIGNATURE"
    features = body.get("drifted_features") or body.get("features") or []
    names = [f.get("name", "") if isinstance(f, dict) else str(f) for f in features]
    return f"Webhook   <- retrain {body.get('model', '')}: {body.get('reason', '')[:80]} {names[:5]} ({signed})"


def _handler(inbox: Inbox, on_receive: Callable[[Received], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet: the demo prints its own lines
            return

        def do_POST(self) -> None:
            channel = PATHS.get(self.path.split("?")[0])
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if channel is None:
                self._reply(404, {"error": "unknown path"})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._reply(400, {"error": "invalid JSON"})
                return
            signature_ok = None
            if channel == "webhook":
                expected = "sha256=" + hmac.new(inbox.secret.encode(), raw, hashlib.sha256).hexdigest()
                signature_ok = hmac.compare_digest(expected, self.headers.get("X-Monitor-Signature", ""))
            item = Received(channel, time.time(), body, dict(self.headers.items()), signature_ok)
            with inbox.lock:
                inbox.items.append(item)
            on_receive(item)
            if channel == "pagerduty":
                self._reply(
                    202, {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
                )
            elif channel == "slack":
                self._send(200, b"ok", "text/plain")
            else:
                self._reply(200, {"accepted": True})

        def do_GET(self) -> None:
            items = inbox.snapshot()
            if self.path.startswith("/received"):
                data = [
                    {"channel": i.channel, "at": i.at, "body": i.body, "signature_ok": i.signature_ok} for i in items
                ]
                self._reply(200, data)
                return
            rows = "".join(
                f"<tr><td>{time.strftime('%H:%M:%S', time.localtime(i.at))}</td><td>{i.channel}</td>"
                f"<td><pre>{html.escape(json.dumps(i.body, indent=2)[:4000])}</pre></td></tr>"
                for i in reversed(items)
            )
            page = (
                "<html><head><meta http-equiv='refresh' content='5'><title>Demo receiver</title></head><body>"
                "<h2>What Slack, PagerDuty and the retraining webhook would have received</h2>"
                f"<table border='1' cellpadding='4'><tr><th>time</th><th>channel</th><th>payload</th></tr>{rows}"
                "</table></body></html>"
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def _reply(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class Receiver:
    """The local sink as a service component (start/stop/healthy)."""

    name = "receiver"

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0, on_receive=None) -> None:
        self.inbox = Inbox(secret)
        self._server = ThreadingHTTPServer((host, port), _handler(self.inbox, on_receive or (lambda _: None)))
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def healthy(self) -> bool:
        return self._thread.is_alive()
