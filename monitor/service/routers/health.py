"""Liveness, readiness and Prometheus metrics (outside ``/api/v1/``, as orchestrators expect)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from monitor.service.auth import bearer_token, grant_for
from monitor.service.context import ServiceContext

router = APIRouter(tags=["health"])
# What an anonymous caller of a service with a token is told about a dependency that is down.
UNAVAILABLE = "unavailable (send a token for the reason)"


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(request: Request) -> dict[str, Any]:
    """On the event loop, not in the worker threads: requests that keep every thread busy (many slow
    reports) must not make the orchestrator think the process is dead."""
    ctx = _ctx(request)
    return {
        "status": "ok",
        "started_at": ctx.started_at,
        "uptime_seconds": round((datetime.now(UTC) - ctx.started_at).total_seconds(), 3),
    }


@router.get(
    "/readyz",
    summary="Readiness: ClickHouse and Kafka reachable, every component running",
    responses={503: {"description": "a dependency or component is down; the body says which"}},
)
def readyz(request: Request) -> JSONResponse:
    """Open to probes, so an anonymous caller of a service with a token learns which dependency is down,
    not why: the reasons (addresses of brokers and servers, error texts) go to callers with a token."""
    ctx = _ctx(request)
    api = ctx.settings.api
    token = bearer_token(request.headers.get("authorization"))
    trusted = not api.any_token or (token is not None and grant_for(api, token) is not None)
    checks: dict[str, dict[str, Any]] = {}
    try:
        ctx.storage.rows("SELECT 1")
        checks["clickhouse"] = {"ok": True, "detail": "ok"}
    except Exception as exc:  # readiness reports any failure rather than raising it
        checks["clickhouse"] = {"ok": False, "detail": str(exc) if trusted else UNAVAILABLE}
    if ctx.kafka_probe is not None:
        ok, detail = ctx.kafka_probe.check()
        checks["kafka"] = {"ok": ok, "detail": detail if ok or trusted else UNAVAILABLE}
    for component in ctx.components:
        healthy = component.healthy()
        checks[component.name] = {"ok": healthy, "detail": "running" if healthy else "not running"}
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, "checks": checks})


# HEAD too: load balancers and uptime checkers often probe with it (the server sends no body). Not in
# the OpenAPI document, where one function under two methods would carry one operation id twice.
router.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    body = generate_latest(REGISTRY) + generate_latest(request.app.state.metrics_registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
