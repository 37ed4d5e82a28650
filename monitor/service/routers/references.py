"""Reference sets: list them with their profiles, and register one (write token; files only from
``api.reference_dir``, see :mod:`monitor.service.reference_files`)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, model_validator

from monitor.errors import InputError
from monitor.service.auth import require_token
from monitor.service.context import ServiceContext
from monitor.service.errors import ApiError, not_found
from monitor.service.params import ModelName, api_time, utc_times
from monitor.service.reference_files import ReferenceFile, not_usable, resolve_reference_file
from monitor.service.routers.models import require_model
from monitor.settings import REFERENCE_VERSION_PATTERN

router = APIRouter(prefix="/api/v1", tags=["references"])


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


def shown_source(source: str) -> str:
    """The source as the API shows it: an absolute path (registered with the CLI) becomes its file name,
    so that no response tells where files live on the service's machine."""
    return os.path.basename(source) if os.path.isabs(source) else source


def reference_json(reference: Any, with_profile: bool) -> dict[str, Any]:
    body = {
        "model": reference.model,
        "version": reference.version,
        "kind": reference.kind,
        "source": shown_source(reference.source),
        "rows": reference.rows,
        "columns": reference.columns,
        "segment_keys": list(reference.segment_keys),
        "has_prediction": reference.has_prediction,
        "has_label": reference.has_label,
        "created_at": utc_times(reference.created_at),
    }
    if with_profile:
        body["profile"] = reference.profile.to_json()
    return body


@router.get("/models/{model}/references", summary="Registered reference sets of a model, newest last")
def list_references(request: Request, model: ModelName) -> dict[str, Any]:
    from detectors.references.store import list_references as registry

    ctx = _ctx(request)
    references = registry(ctx.storage, model)
    if not references:  # a model with references is known even before its first event
        require_model(ctx, model)
    return {"model": model, "references": [reference_json(r, False) for r in references]}


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
    """A file in the service's reference directory (Parquet or CSV), or a time range of the model's events."""

    file: str | None = Field(
        None, min_length=1, max_length=4096, description="path relative to the service's api.reference_dir"
    )
    start: datetime | None = None
    end: datetime | None = None
    version: str | None = Field(None, min_length=1, max_length=100, pattern=REFERENCE_VERSION_PATTERN)
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
    responses={
        401: {"description": "bad token"},
        403: {"description": "writes disabled, read-only token, or no api.reference_dir for files"},
        422: {"description": "invalid request; a file that is not a readable reference inside api.reference_dir"},
    },
)
async def add_reference(request: Request, model: ModelName, body: ReferenceRequest) -> dict[str, Any]:
    from detectors.registration import add_events, add_file

    ctx = _ctx(request)
    configured = ctx.settings.models.get(model)
    features = dict(configured.features) if configured and configured.features else None
    try:
        if body.file is not None:
            target = resolve_reference_file(ctx.settings.api.reference_dir, body.file)
            try:
                reference = await run_in_threadpool(
                    lambda: add_file(
                        ctx.storage,
                        model,
                        target.path,
                        version=body.version,
                        kind=body.kind or "training",
                        features=features,
                        source_name=target.name,
                        limits=ctx.settings.ingest,
                    )
                )
            except InputError as exc:
                raise _file_error(exc, target, body.file) from exc
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


# Messages of the loader that mean "this file could not be read at all": answered like a missing file.
_UNREADABLE = (
    "no such file",
    "not a file",
    "the file is empty",
    "cannot read",
    "cannot load",
    "unsupported format",
)


def _file_error(exc: InputError, target: ReferenceFile, requested: str) -> ApiError:
    """A loader error without the host's paths: unreadable files get the one answer of
    :data:`~monitor.service.reference_files.NOT_USABLE`; column problems keep their message, with the
    file's name relative to the reference directory."""
    message = str(exc)
    if any(marker in message for marker in _UNREADABLE):
        return not_usable(requested, message)
    message = message.replace(str(target.path), target.name)
    if str(target.root) in message:  # a path the replacement missed: say nothing rather than leak it
        return not_usable(requested, message)
    return ApiError(422, "invalid_input", message)
