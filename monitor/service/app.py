"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from monitor import __version__
from monitor.service.auth import AccessMiddleware, document_security
from monitor.service.collector import FamilySource, build_registry
from monitor.service.context import ServiceContext
from monitor.service.errors import install_error_handlers
from monitor.service.limits import BodyLimitMiddleware
from monitor.service.middleware import MetricsMiddleware
from monitor.service.report_cache import ReportCache
from monitor.service.routers import alerts, health, ingest, models, references, results

API_DESCRIPTION = """\
Model monitoring and drift detection.

Access: once a token is configured, every `/api/v1` route and `/metrics` need
`Authorization: Bearer <token>`. `MONITOR_API_READ_TOKEN` allows reads (GET); `MONITOR_API_TOKEN` allows
everything, including writes (ingest, register a reference, run detection, acknowledge an alert).
No or an unknown token: 401; the read token on a write: 403. With no token configured, reads are open,
writes answer 403 and the service listens on loopback only. `/healthz`, `/readyz`, `/docs` and
`/openapi.json` are always open. Bodies above the configured limit get 413.
Errors are JSON: `{"error": {"code": ..., "message": ..., "details": ...}}`.
"""


def create_app(
    ctx: ServiceContext, metric_sources: list[FamilySource] | None = None, metrics_ttl: float = 10.0
) -> FastAPI:
    """Build the app around one service context (shared storage, settings, running components)."""
    app = FastAPI(
        title="model-monitor",
        version=__version__,
        description=API_DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    app.state.metrics_registry = build_registry(ctx.storage, metric_sources, ttl=metrics_ttl)
    api = ctx.settings.api
    app.state.report_cache = ReportCache(api.report_cache_size, api.report_cache_ttl.total_seconds())
    install_error_handlers(app)
    # Outermost last: metrics see every request (rejected ones too), then access, then body limits.
    app.add_middleware(BodyLimitMiddleware, settings=lambda: ctx.settings.api)
    app.add_middleware(AccessMiddleware, settings=lambda: ctx.settings.api)
    app.add_middleware(MetricsMiddleware)
    for module in (health, models, results, references, alerts, ingest):
        app.include_router(module.router)
    document_security(app)
    return app
