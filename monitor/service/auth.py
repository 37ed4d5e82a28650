"""Bearer-token check for every write and admin endpoint.

No token configured means writes are refused (403 saying how to set one), never open: a service
started without ``MONITOR_API_TOKEN`` is read-only rather than writable by anyone who can reach it.
The comparison is constant-time so the token cannot be guessed byte by byte from response times.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.service.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="MONITOR_API_TOKEN, as `Authorization: Bearer <token>`")


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """FastAPI dependency: pass only a request carrying the configured bearer token."""
    token = request.app.state.ctx.settings.api.token
    if token is None:
        raise ApiError(
            403,
            "writes_disabled",
            "write endpoints are disabled because no API token is configured; set MONITOR_API_TOKEN "
            "(or api.token in the configuration file) and restart the service",
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <MONITOR_API_TOKEN>'")
    if not hmac.compare_digest(credentials.credentials.encode(), token.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "invalid bearer token")
