"""Request metrics and access logs, labelled by route template so label sets stay bounded."""

from __future__ import annotations

import logging
import time

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from monitor import metrics

log = logging.getLogger("monitor.service.access")

# The method label's values: the parser passes any token as a method (``FOO1``, ``FOO2``, ...), and a
# label value per invented method would let any caller grow the series without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class MetricsMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = request.scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = method_label(request.method)
            metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
            metrics.HTTP_REQUEST_SECONDS.labels(template).observe(elapsed)
            if status >= 500:
                log.error("http %s %s -> %d in %.3fs", method, template, status, elapsed)
            else:
                log.debug("http %s %s -> %d in %.3fs", method, template, status, elapsed)
