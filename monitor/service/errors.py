"""HTTP errors with a stable JSON body: ``{"error": {"code": ..., "message": ..., "details": ...}}``.

Every failure a client can cause is a 4xx with this body; infrastructure trouble (ClickHouse or Kafka
unreachable) is a 503 with the same shape. A 500 means a bug in this code, never bad input.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import BrokerError, StorageError, UserError

log = logging.getLogger("monitor.service")


class ApiError(Exception):
    """Raised by handlers for an expected failure; rendered as ``status`` with the standard body."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def not_found(what: str, name: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} {name!r} not found")


def unavailable(component: str, hint: str) -> ApiError:
    """A part of the service this endpoint needs is not running here (e.g. no scheduler)."""
    return ApiError(503, "unavailable", f"{component} is not available: {hint}")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


def _json(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None):
    return JSONResponse(
        status_code=status, content=jsonable_encoder(error_body(code, message, details)), headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every expected exception onto a JSON error; the order of checks mirrors the hierarchy."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _json(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type")}
            for err in exc.errors()
        ]
        where = ".".join(problems[0]["loc"]) if problems else ""
        message = str(problems[0]["msg"]) if problems else "invalid request"
        return _json(422, "invalid_request", f"{where}: {message}" if where else message, problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return _json(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(UserError)
    async def _user(_: Request, exc: UserError) -> JSONResponse:
        return _json(400, "bad_request", str(exc))

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        return _json(503, "storage_unavailable", str(exc))

    @app.exception_handler(BrokerError)
    async def _broker(_: Request, exc: BrokerError) -> JSONResponse:
        return _json(503, "kafka_unavailable", str(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        """Anything else is a bug: the standard body, without the exception's text (it may hold data or
        internals); the traceback goes to the log."""
        log.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return _json(500, "internal_error", "internal error (the service's log has the details)")
