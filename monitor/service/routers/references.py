"""Reference sets: list them with their profiles, and register one (behind the token)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, model_validator

from monitor.errors import InputError
from monitor.service.auth import require_token
from monitor.service.context import ServiceContext
from monitor.service.errors import ApiError, not_found
from monitor.service.params import ModelName, api_time
from monitor.service.routers.models import require_model

router = APIRouter(prefix="/api/v1", tags=["references"])


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


def reference_json(reference: Any, with_profile: bool) -> dict[str, Any]:
    body = {
        "model": reference.model,
        "version": reference.version,
        "kind": reference.kind,
        "source": reference.source,
        "rows": reference.rows,
        "columns": reference.columns,
        "segment_keys": list(reference.segment_keys),
        "has_prediction": reference.has_prediction,
        "has_label": reference.has_label,
        "created_at": reference.created_at,
    }
    if with_profile:
        body["profile"] = reference.profile.to_json()
    return body


@router.get("/models/{model}/references", summary="Registered reference sets of a model, newest last")
def list_references(request: Request, model: ModelName) -> dict[str, Any]:
    from detectors.references.store import list_references as registry

    ctx = _ctx(request)
    return {"model": model, "references": [reference_json(r, False) for r in registry(ctx.storage, model)]}


@router.get(
    "/models/{model}/references/{version}", summary="One reference with its profile (deciles, frequencies, ...)"
)
def get_reference(request: Request, model: ModelName, version: ModelName) -> dict[str, Any]:
    from detectors.references.store import get_reference as lookup

    ctx = _ctx(request)
    reference = lookup(ctx.storage, model, None if version == "latest" else version)
    if reference is None:
        raise not_found("reference", f"{model}/{version}")
    return reference_json(reference, True)


class ReferenceRequest(BaseModel):
    """A file readable by the service (Parquet or CSV), or a time range of the model's logged events."""

    file: str | None = Field(None, max_length=4096, description="path on the service's machine")
    start: datetime | None = None
    end: datetime | None = None
    version: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: Literal["training", "baseline", "window"] | None = None

    @model_validator(mode="after")
    def _file_or_range(self) -> ReferenceRequest:
        if (self.file is None) == (self.start is None and self.end is None):
            raise ValueError("give either file, or start and end")
        if self.file is None and (self.start is None or self.end is None):
            raise ValueError("give both start and end")
        return self


@router.post(
    "/models/{model}/references",
    summary="Register a reference (file or event range); re-adding a version replaces it",
    dependencies=[Depends(require_token)],
    status_code=201,
    responses={401: {"description": "bad token"}, 403: {"description": "writes disabled"}},
)
async def add_reference(request: Request, model: ModelName, body: ReferenceRequest) -> dict[str, Any]:
    from detectors.registration import add_events, add_file

    ctx = _ctx(request)
    configured = ctx.settings.models.get(model)
    features = dict(configured.features) if configured and configured.features else None
    try:
        if body.file is not None:
            path = Path(body.file)
            if not path.is_file():
                raise ApiError(422, "invalid_request", f"file: {body.file!r} is not a readable file on the service")
            reference = await run_in_threadpool(
                lambda: add_file(
                    ctx.storage, model, path, version=body.version, kind=body.kind or "training", features=features
                )
            )
        else:
            require_model(ctx, model)
            start, end = api_time(body.start, "start"), api_time(body.end, "end")  # type: ignore[arg-type]
            if start >= end:
                raise ApiError(422, "invalid_request", "start must be before end")
            reference = await run_in_threadpool(
                lambda: add_events(
                    ctx.storage, model, start, end, version=body.version, kind=body.kind or "window", features=features
                )
            )
    except InputError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from exc
    return reference_json(reference, False)
