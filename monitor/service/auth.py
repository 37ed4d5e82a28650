"""Who may call what: two bearer tokens, checked before any route runs.

- ``api.token`` (``MONITOR_API_TOKEN``) allows everything: reads, writes and admin actions.
- ``api.read_token`` (``MONITOR_API_READ_TOKEN``) allows reads only: ``GET``/``HEAD`` under ``/api/v1``
  and ``/metrics``.

Once either token is set, every path under ``/api/v1`` and ``/metrics`` needs one. The check is an ASGI
middleware keyed on the path, not a per-route dependency, so a route added later cannot be left open
by forgetting a decorator, and an unknown path under ``/api/v1`` answers 401 like a known one (no map
of the API for anonymous callers). ``/healthz``, ``/readyz`` (orchestrator probes that reveal no data),
``/docs`` and ``/openapi.json`` (the API's shape, the same for every deployment) stay open.

Any method other than ``GET`` and ``HEAD`` counts as a write, so an unusual method fails closed.
With no token configured, nothing changes for reads and writes are refused (403 saying how to set a
token): such a service listens on loopback only (:func:`ensure_safe_bind`).

Tokens are compared in constant time on their SHA-256 digests, so neither their content nor their
length can be learnt from response times.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from monitor.errors import ConfigError
from monitor.service.errors import ApiError, error_body
from monitor.settings import ApiSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Grant = Literal["write", "read"]
READ_METHODS = frozenset({"GET", "HEAD"})
SECURITY_SCHEME = "bearer"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=SECURITY_SCHEME,
    description="`Authorization: Bearer <token>`: MONITOR_API_TOKEN for everything, MONITOR_API_READ_TOKEN for reads",
)


def is_protected(path: str) -> bool:
    """Paths that need a token once one is configured: the versioned API and the metrics."""
    return path in ("/metrics", "/api/v1") or path.startswith(("/metrics/", "/api/v1/"))


def route_path(scope: Scope) -> str:
    """The path routing will match, without a mount point (``root_path``), as Starlette computes it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def _matches(presented: bytes, configured: SecretStr | None) -> bool:
    return configured is not None and hmac.compare_digest(presented, _digest(configured.get_secret_value()))


def grant_for(api: ApiSettings, presented: str) -> Grant | None:
    """What a presented bearer token allows: ``write`` (the write token), ``read``, or ``None``.

    Both comparisons always run, so the time taken does not say which token was close.
    """
    digest = _digest(presented)
    write = _matches(digest, api.token)
    read = _matches(digest, api.read_token)
    if write:
        return "write"
    return "read" if read else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value; ``None`` for any other scheme."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def check_access(api: ApiSettings, method: str, path: str, authorization: str | None) -> ApiError | None:
    """The error a request must get, or ``None`` when it may proceed (the whole policy, in one place)."""
    if not api.any_token or not is_protected(path):
        return None
    token = bearer_token(authorization)
    if token is None:
        return ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'")
    grant = grant_for(api, token)
    if grant is None:
        return ApiError(401, "unauthorized", "invalid bearer token")
    if method.upper() in READ_METHODS or grant == "write":
        return None
    if api.token is None:
        return _writes_disabled()
    return ApiError(403, "forbidden", "this token is read-only: writes need MONITOR_API_TOKEN")


def _writes_disabled() -> ApiError:
    return ApiError(
        403,
        "writes_disabled",
        "write endpoints are disabled because no write token is configured; set MONITOR_API_TOKEN "
        "(or api.token in the configuration file) and restart the service",
    )


class AccessMiddleware:
    """Applies :func:`check_access` to every HTTP request before routing (pure ASGI, no body buffering)."""

    def __init__(self, app: AsgiApp, settings: Callable[[], ApiSettings]) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        error = check_access(self.settings(), scope["method"], route_path(scope), authorization)
        if error is None:
            await self.app(scope, receive, send)
            return
        await send_error(send, error)


async def send_error(send: Send, error: ApiError, close: bool = False) -> None:
    """Answer with the API's JSON error body straight from a middleware (the app never runs);
    ``close``: end the connection after it (the request's framing cannot be trusted)."""
    body = orjson.dumps(error_body(error.code, error.message, error.details))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """FastAPI dependency of every write route: the write token, checked again beside the middleware.

    It also keeps writes refused when no token is configured at all (the middleware lets such
    requests through so that reads behave as before), and marks the route as secured in the OpenAPI.
    """
    api: ApiSettings = request.app.state.ctx.settings.api
    if api.token is None:
        raise _writes_disabled()
    presented = credentials.credentials if credentials is not None else None
    if presented is None:
        raise ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <MONITOR_API_TOKEN>'")
    if grant_for(api, presented) != "write":
        raise ApiError(401, "unauthorized", "invalid bearer token")


def document_security(app: FastAPI) -> None:
    """Declare the bearer scheme on every protected operation of the OpenAPI document (for /docs' Authorize)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes.setdefault(
            SECURITY_SCHEME, {"type": "http", "scheme": "bearer", "description": _bearer.model.description}
        )
        for path, operations in schema.get("paths", {}).items():
            if not is_protected(path):
                continue
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation["security"] = [{SECURITY_SCHEME: []}]
                    responses = operation.setdefault("responses", {})
                    responses.setdefault("401", {"description": "missing or invalid bearer token"})
                    responses.setdefault("403", {"description": "the token does not allow this (read-only)"})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False  # a host name may resolve to any interface: not provably loopback
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def ensure_safe_bind(api: ApiSettings, host: str, dashboard_host: str | None = None) -> None:
    """Refuse to serve a token-less API beyond this machine (:class:`ConfigError`, exit 2).

    ``dashboard_host``: where the dashboard will listen, if it is started. It reads everything through
    the API on loopback, so publishing it would publish a token-less API all the same.
    """
    if api.any_token:
        return
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host!r} without an API token: anyone who reaches it could read every "
            "logged feature; set MONITOR_API_TOKEN (and MONITOR_API_READ_TOKEN for read-only clients) or "
            "listen on 127.0.0.1"
        )
    if dashboard_host is not None and not is_loopback(dashboard_host):
        raise ConfigError(
            f"refusing to listen on {dashboard_host!r} without an API token: anyone who reaches the dashboard "
            "could read every logged feature through it; set MONITOR_API_TOKEN (and MONITOR_API_READ_TOKEN) "
            "and put an authenticating proxy in front of the dashboard, or keep it on 127.0.0.1 (--dashboard-host)"
        )
