"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from monitor import __version__
from monitor.service.collector import FamilySource, build_registry
from monitor.service.context import ServiceContext
from monitor.service.errors import install_error_handlers
from monitor.service.middleware import MetricsMiddleware
from monitor.service.routers import alerts, health, ingest, models, references, results

API_DESCRIPTION = """\
Model monitoring and drift detection.

Read endpoints are open. Write and admin endpoints (ingest, register a reference, run detection,
acknowledge an alert) need `Authorization: Bearer <MONITOR_API_TOKEN>`; with no token configured
they answer 403. Errors are JSON: `{"error": {"code": ..., "message": ..., "details": ...}}`.
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
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    for module in (health, models, results, references, alerts, ingest):
        app.include_router(module.router)
    return app
