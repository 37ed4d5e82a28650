"""Request body limits, enforced while the body arrives rather than after it was buffered.

A declared ``Content-Length`` above the limit is answered 413 at once, before a byte of the body is
read. A body without one (chunked transfer) is counted as it streams to the handler; the moment it
passes the limit the read fails with 413, so at most the limit plus one chunk is ever held. The
ingest endpoints take bigger batches than the small JSON bodies elsewhere, so they have their own
limit (``api.max_ingest_bytes``; everything else ``api.max_body_bytes``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException

from monitor.service.auth import AsgiApp, Message, Receive, Scope, Send, route_path, send_error
from monitor.service.errors import ApiError
from monitor.settings import ApiSettings

INGEST_PATHS = frozenset({"/api/v1/events", "/api/v1/labels"})


def body_limit(api: ApiSettings, path: str) -> int:
    """The largest body accepted on ``path``."""
    return api.max_ingest_bytes if path.rstrip("/") in INGEST_PATHS else api.max_body_bytes


def too_large(limit: int, size: int | None = None) -> ApiError:
    got = f"{size:,} bytes" if size is not None else "larger"
    return ApiError(413, "too_large", f"request body is {got}; the limit here is {limit:,} bytes")


class BodyLimitMiddleware:
    """413 for a body over the path's limit: up front from Content-Length, else while streaming."""

    def __init__(self, app: AsgiApp, settings: Callable[[], ApiSettings]) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _framed_twice(scope):
            # Both Content-Length and Transfer-Encoding: a proxy in front may have framed the body by the
            # other header, so what follows on this connection could be a smuggled request (RFC 9112 6.3).
            error = ApiError(400, "bad_request", "a request may carry Content-Length or Transfer-Encoding, not both")
            await send_error(send, error, close=True)
            return
        limit = body_limit(self.settings(), route_path(scope))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await send_error(send, too_large(limit, declared))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body parsing unchanged and is rendered
                    # by the app's handler as the standard JSON error.
                    error = too_large(limit)
                    raise HTTPException(413, error.message)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server itself rejects a malformed length
    return None


def _framed_twice(scope: Scope) -> bool:
    names = {name for name, _ in scope.get("headers", ())}
    return b"content-length" in names and b"transfer-encoding" in names
