"""Detector results, drift timelines and the heatmap, detection runs, and "run detection now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from detectors import results as stored_results
from monitor.service.auth import require_token
from monitor.service.context import ServiceContext
from monitor.service.errors import ApiError, not_found
from monitor.service.params import (
    End,
    ModelName,
    ResultsEnd,
    ResultsStart,
    Start,
    api_time,
    resolve_window,
    utc_times,
)
from monitor.service.routers.models import require_model

router = APIRouter(prefix="/api/v1", tags=["results"])

DEFAULT_RANGE = timedelta(days=1)
Text = Annotated[str | None, Query(max_length=500)]
DETECTOR_HELP = "one of: " + ", ".join(stored_results.DETECTORS)


def known_detector(detector: str | None) -> None:
    """An unknown detector name is a mistake (a typo would otherwise list nothing, as if no run had happened)."""
    if detector is not None and detector not in stored_results.DETECTORS:
        raise ApiError(422, "invalid_request", f"detector: unknown detector {detector!r}; {DETECTOR_HELP}")


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


@router.get("/models/{model}/results", summary="Stored detector results, filtered by detector, feature and time")
def get_results(
    request: Request,
    model: ModelName,
    start: ResultsStart = None,
    end: ResultsEnd = None,
    detector: Annotated[str | None, Query(max_length=500, description=DETECTOR_HELP)] = None,
    feature: Annotated[str | None, Query(max_length=500, description="column ('' = dataset level)")] = None,
    statistic: Text = None,
    segment: Annotated[str | None, Query(max_length=500, description="'' (default) = whole population")] = "",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 5000,
    offset: Annotated[int, Query(ge=0, le=100_000_000, description="rows of this order to skip (paging)")] = 0,
) -> dict[str, Any]:
    """Rows of the windows ending in ``(start, end]``, newest window first (then by detector, segment, column
    and statistic): ``offset`` of them skipped, then at most ``limit``. ``next_offset`` is where the next
    page starts, or null on the last one (one row past the page is read to know)."""
    ctx = _ctx(request)
    known_detector(detector)
    require_model(ctx, model)
    lo, hi = resolve_window(start, end, DEFAULT_RANGE, open_end=True)
    rows = stored_results.query_results(
        ctx.storage, model, lo, hi, None, detector, feature, statistic, segment, limit + 1, offset
    )
    next_offset = offset + limit if len(rows) > limit else None
    return {
        "model": model,
        "start": lo,
        "end": hi,
        "results": utc_times(rows[:limit]),
        "next_offset": next_offset,
    }


@router.get("/models/{model}/drift/timeline", summary="Per window, each feature's deciding drift statistic")
def drift_timeline(
    request: Request,
    model: ModelName,
    start: ResultsStart = None,
    end: ResultsEnd = None,
    feature: Annotated[str | None, Query(max_length=500, description="one feature; all when omitted")] = None,
    detector: Annotated[str, Query(max_length=100, description=DETECTOR_HELP)] = "feature_drift",
) -> dict[str, Any]:
    """The data of the feature x window heatmap (all features) or one feature's timeline: windows ending in
    ``(start, end]``, oldest first."""
    ctx = _ctx(request)
    known_detector(detector)
    require_model(ctx, model)
    lo, hi = resolve_window(start, end, DEFAULT_RANGE, open_end=True)
    rows = stored_results.deciding_rows(ctx.storage, model, lo, hi, detector, feature)
    return {"model": model, "detector": detector, "start": lo, "end": hi, "points": utc_times(rows)}


@router.get("/models/{model}/runs", summary="The latest detection runs (one per window)")
def runs(request: Request, model: ModelName, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    from detectors.results import read_runs

    ctx = _ctx(request)
    require_model(ctx, model)
    return {"model": model, "runs": utc_times(read_runs(ctx.storage, model, limit))}


class DetectRequest(BaseModel):
    end: datetime | None = Field(None, description="window end (default: now)")
    window: str | None = Field(None, max_length=50, description="window length like 30m or 1h (default: the model's)")


@router.post(
    "/models/{model}/detect",
    summary="Run detection now for one window and evaluate alert rules",
    dependencies=[Depends(require_token)],
    responses={401: {"description": "bad token"}, 403: {"description": "writes disabled"}},
)
async def detect_now(request: Request, model: ModelName, body: DetectRequest | None = None) -> dict[str, Any]:
    from monitor.durations import parse_duration

    ctx = _ctx(request)
    if model not in ctx.settings.models:
        raise not_found("configured model", model)
    body = body or DetectRequest()
    end = api_time(body.end, "end") if body.end is not None else datetime.now(UTC)
    try:
        window = parse_duration(body.window) if body.window else None
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"window: {exc}") from exc
    if window is not None and window > timedelta(days=366):
        raise ApiError(422, "invalid_request", "window: at most 366 days")
    step = await run_in_threadpool(ctx.window_pipeline().run, model, end, window, "api")
    from detectors.results import report_document

    document = report_document(step.report)
    results = document.pop("results")
    alerts = [event.as_dict() for event in step.evaluation.events] if step.evaluation is not None else []
    return {**document, "alerts": alerts, "results": results}


@router.get(
    "/models/{model}/report",
    summary="Evidently data drift report (HTML) for a window against the newest reference",
    response_class=HTMLResponse,
    responses={
        400: {
            "description": "window longer than api.report_max_window or holding more than api.report_max_rows events"
        },
        404: {"description": "unknown model"},
        422: {"description": "no reference or no events"},
    },
)
async def evidently_report(request: Request, model: ModelName, start: Start = None, end: End = None) -> HTMLResponse:
    """Each build scans the window and runs Evidently: windows are capped, and pages are cached for
    ``api.report_cache_ttl`` (key: model, the window as asked, reference version and load). A request
    without ``end`` reuses a page built for "the latest window" within that time; ``X-Report-Cache``
    says ``hit`` or ``miss``."""
    from detectors.references.store import get_reference
    from monitor.durations import format_duration
    from monitor.errors import InputError
    from monitor.service.report import build_report_html, window_event_count

    ctx = _ctx(request)
    api = ctx.settings.api
    require_model(ctx, model)
    window = ctx.settings.models[model].window if model in ctx.settings.models else timedelta(hours=1)
    window = min(window, api.report_max_window)
    lo, hi = resolve_window(start, end, window)
    if hi - lo > api.report_max_window:
        raise ApiError(
            400,
            "window_too_long",
            f"the report window is {format_duration(hi - lo)}; the limit is {format_duration(api.report_max_window)} "
            "(api.report_max_window): ask for a shorter window with start and end",
        )
    reference = await run_in_threadpool(get_reference, ctx.storage, model)
    if reference is None:
        raise ApiError(422, "no_data", f"model {model!r} has no reference: register one first")
    asked = (lo if start is not None else None, hi if end is not None else None)
    key = (model, *asked, window, reference.version, reference.load_id, api.report_sample_rows)

    def build() -> str:
        events = window_event_count(ctx.storage, model, lo, hi)
        if events > api.report_max_rows:
            raise ApiError(
                400,
                "too_many_rows",
                f"the window holds {events:,} events; the report reads at most {api.report_max_rows:,} "
                "(api.report_max_rows): ask for a shorter window",
            )
        return build_report_html(ctx.storage, model, lo, hi, reference, api.report_sample_rows)

    cache = request.app.state.report_cache
    try:
        page, hit = await run_in_threadpool(cache.get_or_build, key, build)
    except InputError as exc:
        raise ApiError(422, "no_data", str(exc)) from exc
    return HTMLResponse(page, headers={"X-Report-Cache": "hit" if hit else "miss"})
