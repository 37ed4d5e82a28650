"""Models: configuration (no secrets), status, freshness, last and next detection run; event samples,
feature distributions and dead letters, all read-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from monitor.service import integration, queries
from monitor.service.context import ServiceContext
from monitor.service.errors import ApiError, not_found
from monitor.service.params import End, ModelName, Start, resolve_window, utc_times
from monitor.settings import ModelSettings

router = APIRouter(prefix="/api/v1", tags=["models"])

DEFAULT_WINDOW = timedelta(hours=1)
ACTIVITY_PERIOD = timedelta(hours=24)


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


def model_config(model: ModelSettings) -> dict[str, Any]:
    """The model's configuration as JSON. Models hold no secrets (channels do, and only their names appear)."""
    return model.model_dump(mode="json", by_alias=True)


def _health(freshness: float | None, drift: bool | None, open_alerts: int | None, window: timedelta) -> str:
    if freshness is None:
        return "no_data"
    if open_alerts:
        return "alerting"
    if drift:
        return "drift"
    if freshness > window.total_seconds():
        return "stale"
    return "ok"


def model_status(ctx: ServiceContext, name: str, activity: queries.ModelActivity | None, now: datetime) -> dict:
    configured = ctx.settings.models.get(name)
    window = configured.window if configured else DEFAULT_WINDOW
    last_event = activity.last_event if activity else None
    freshness = (now - last_event).total_seconds() if last_event else None
    drift = utc_times(integration.latest_drift(ctx.storage, name))
    open_alerts = integration.open_alert_count(ctx.storage, name)
    return {
        "name": name,
        "configured": configured is not None,
        "health": _health(freshness, drift["dataset_drift"] if drift else None, open_alerts, window),
        "events_24h": activity.events if activity else 0,
        "versions": list(activity.versions) if activity else [],
        "last_event": last_event,
        "freshness_seconds": round(freshness, 3) if freshness is not None else None,
        "last_run": (ctx.schedule.last_run(name) if ctx.schedule and configured else None)
        or utc_times(integration.last_run_started(ctx.storage, name)),
        "next_run": ctx.schedule.next_run(name) if ctx.schedule and configured else None,
        "drift": drift,
        "open_alerts": open_alerts,
        "window": configured.model_dump(mode="json")["window"] if configured else None,
        "schedule": model_config(configured)["schedule"] if configured else None,
    }


@router.get("/models", summary="Every configured or observed model with its status")
def list_models(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    now = datetime.now(UTC)
    activity = queries.model_activity(ctx.storage, now - ACTIVITY_PERIOD, now + timedelta(minutes=5))
    names = sorted(set(ctx.settings.models) | set(activity) | queries.known_models(ctx.storage))
    return {"models": [model_status(ctx, name, activity.get(name), now) for name in names]}


def require_model(ctx: ServiceContext, model: str) -> None:
    if model not in ctx.settings.models and model not in queries.known_models(ctx.storage):
        raise not_found("model", model)


@router.get("/models/{model}", summary="One model: configuration without secrets and status")
def get_model(request: Request, model: ModelName) -> dict[str, Any]:
    ctx = _ctx(request)
    require_model(ctx, model)
    now = datetime.now(UTC)
    activity = queries.model_activity(ctx.storage, now - ACTIVITY_PERIOD, now + timedelta(minutes=5))
    status = model_status(ctx, model, activity.get(model), now)
    configured = ctx.settings.models.get(model)
    status["config"] = model_config(configured) if configured else None
    status["features"] = {
        feature: sorted(kinds) for feature, kinds in integration.model_features(ctx.storage, model).items()
    }
    return status


@router.get("/models/{model}/events", summary="A sample of the latest events in a window")
def sample_events(
    request: Request,
    model: ModelName,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    ctx = _ctx(request)
    require_model(ctx, model)
    window = ctx.settings.models[model].window if model in ctx.settings.models else DEFAULT_WINDOW
    lo, hi = resolve_window(start, end, window)
    return {"model": model, "start": lo, "end": hi, "events": queries.event_sample(ctx.storage, model, lo, hi, limit)}


@router.get(
    "/models/{model}/distribution",
    summary="Reference and current distribution of one feature for a window (binned or by category)",
)
def distribution(
    request: Request,
    model: ModelName,
    feature: Annotated[str, Query(min_length=1, max_length=500)],
    start: Start = None,
    end: End = None,
) -> dict[str, Any]:
    ctx = _ctx(request)
    require_model(ctx, model)
    found = queries.feature_kind(ctx.storage, model, feature)
    if found is None:
        raise ApiError(404, "not_found", f"model {model!r} has not logged feature {feature!r}")
    kind, column = found
    window = ctx.settings.models[model].window if model in ctx.settings.models else DEFAULT_WINDOW
    lo, hi = resolve_window(start, end, window)
    return integration.distribution(ctx.storage, model, feature, kind, column, lo, hi)


@router.get("/dead-letters", summary="The latest messages that could not be stored, with the reason")
def dead_letters(
    request: Request,
    model: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    ctx = _ctx(request)
    return {"dead_letters": utc_times(queries.recent_dead_letters(ctx.storage, model, limit))}
