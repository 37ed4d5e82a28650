"""Alerts: current state (open or all), history, notification deliveries, channels (secrets removed) and
acknowledge (token)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from alerts.outbox import DeliveryStatus
from monitor.errors import InputError, NotFoundError
from monitor.service.auth import require_token
from monitor.service.context import ServiceContext
from monitor.service.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["alerts"])

Name = Annotated[str | None, Query(max_length=200)]


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


@router.get("/alerts", summary="Current state of every evaluated alert; state=open for the firing ones")
def alerts(
    request: Request,
    model: Name = None,
    state: Annotated[Literal["open", "firing", "pending", "ok"] | None, Query()] = None,
) -> dict[str, Any]:
    from alerts.store import list_alerts

    status = "firing" if state == "open" else state
    return {"alerts": [s.as_dict() for s in list_alerts(_ctx(request).storage, model, status)]}


@router.get("/alerts/history", summary="Alert events (firing, repeat, resolved, acknowledged), newest first")
def history(
    request: Request,
    model: Name = None,
    rule: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    from alerts.store import alert_history

    return {"events": [e.as_dict() for e in alert_history(_ctx(request).storage, model, rule, limit)]}


@router.get("/deliveries", summary="Notification deliveries (outbox), newest first")
def deliveries(
    request: Request,
    model: Name = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    from alerts.outbox import list_deliveries

    rows = list_deliveries(_ctx(request).storage, status=status, model=model, limit=limit)
    return {"deliveries": [d.as_dict() for d in rows]}


@router.get("/channels", summary="Notification channels without their secrets (env variable names and whether set)")
def channels(request: Request) -> dict[str, Any]:
    from alerts.channels import redacted_channels

    return {"channels": redacted_channels(_ctx(request).settings)}


class AcknowledgeRequest(BaseModel):
    model: str = Field(min_length=1, max_length=200)
    rule: str = Field(min_length=1, max_length=500, description="the rule's identity, as in /api/v1/alerts")
    actor: str = Field("api", min_length=1, max_length=200, description="who acknowledges (shown in history)")
    note: str = Field("", max_length=2000)


@router.post(
    "/alerts/acknowledge",
    summary="Acknowledge a firing alert (it stays open until its condition clears)",
    dependencies=[Depends(require_token)],
    responses={
        401: {"description": "bad token"},
        403: {"description": "writes disabled"},
        404: {"description": "the model has no such alert (the rule never fired for it)"},
        409: {"description": "the alert is not firing"},
    },
)
def acknowledge(request: Request, body: AcknowledgeRequest) -> dict[str, Any]:
    ctx = _ctx(request)
    engine = ctx.window_pipeline().engine
    assert engine is not None
    try:
        state = engine.acknowledge(body.model, body.rule, body.actor, body.note)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except InputError as exc:
        raise ApiError(409, "not_firing", str(exc)) from exc
    return state.as_dict()
