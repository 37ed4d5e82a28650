"""Ingest over HTTP: the same validation and dead letters as the Kafka consumer, behind the token.

The body is read raw rather than parsed by FastAPI so that a payload that is not valid JSON is kept
in ``dead_letters`` with its exact bytes, as it would be on Kafka. Accepted forms:

- ``application/json``: one event object, or an array of event objects;
- ``application/x-ndjson``: one event per line (a broken line is one dead letter, the rest go in).

200 when everything was stored; 422 when some messages were rejected (the valid ones are stored,
the body lists every rejection with its index and reason); 413 above ``api.max_ingest_bytes``
(enforced while the body streams in, by :mod:`monitor.service.limits`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from monitor.ingest.http import HttpIngestResult, MessageKind, ingest_messages
from monitor.ingest.writer import BatchWriter
from monitor.service.auth import require_token
from monitor.service.context import ServiceContext
from monitor.service.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["ingest"], dependencies=[Depends(require_token)])

HTTP_INSERT_RETRIES = 2  # a client waits on the request: fail fast, it can retry

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "model", "timestamp", "features", "prediction"],
    "properties": {
        "event_id": {"type": "string"},
        "model": {"type": "string"},
        "model_version": {"type": "string"},
        "timestamp": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]},
        "features": {"type": "object", "additionalProperties": {"type": ["number", "string", "boolean", "null"]}},
        "prediction": {"type": ["number", "string"]},
        "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
        "segment": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_LABEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "model", "label"],
    "properties": {
        "event_id": {"type": "string"},
        "model": {"type": "string"},
        "label": {"type": ["number", "string", "boolean"]},
        "timestamp": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]},
    },
}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [schema, {"type": "array", "items": schema}]}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong bearer token"},
    403: {"description": "writes disabled: no API token configured"},
    413: {"description": "body larger than api.max_ingest_bytes (default 16 MiB)"},
    422: {"description": "some messages were rejected (stored in dead_letters); the valid ones were stored"},
}


def split_payloads(body: bytes, content_type: str) -> list[bytes]:
    """One raw message per event, as it would arrive on Kafka."""
    if "ndjson" in content_type or "jsonlines" in content_type:
        return [line for line in body.splitlines() if line.strip()]
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [body]  # stored as an invalid_json dead letter with its exact bytes
    if isinstance(parsed, list):
        return [orjson.dumps(item) for item in parsed]
    return [body]


def _writer(request: Request) -> BatchWriter:
    writer = getattr(request.app.state, "ingest_writer", None)
    if writer is None:
        ctx: ServiceContext = request.app.state.ctx
        writer = BatchWriter(ctx.storage, retries=HTTP_INSERT_RETRIES)
        request.app.state.ingest_writer = writer
    return writer


async def _ingest(request: Request, kind: MessageKind) -> JSONResponse:
    body = await request.body()
    ctx: ServiceContext = request.app.state.ctx
    limit = ctx.settings.api.max_ingest_bytes
    if len(body) > limit:  # the middleware stops it earlier; kept for apps built without it
        raise ApiError(413, "too_large", f"request body is {len(body):,} bytes; the limit here is {limit:,} bytes")
    if not body.strip():
        raise ApiError(400, "empty_body", "the body is empty: send one JSON event, an array, or NDJSON lines")
    payloads = split_payloads(body, request.headers.get("content-type", "application/json"))
    result: HttpIngestResult = await run_in_threadpool(
        ingest_messages, _writer(request), payloads, kind, ctx.settings.kafka.max_message_bytes
    )
    content = {
        "accepted": result.accepted,
        "rejected": [{"index": r.index, "kind": r.kind, "reason": r.reason} for r in result.rejected],
    }
    if result.rejected:
        first = result.rejected[0]
        content["error"] = {
            "code": "rejected",
            "message": f"{len(result.rejected)} of {len(payloads)} messages rejected (kept in dead_letters); "
            f"first at index {first.index}: {first.reason}",
        }
        return JSONResponse(status_code=422, content=content)
    return JSONResponse(status_code=200, content=content)


@router.post(
    "/events",
    summary="Ingest prediction events (JSON object, array, or NDJSON)",
    openapi_extra=_body_doc(_EVENT_SCHEMA),
    responses=_RESPONSES,
)
async def ingest_events(request: Request) -> JSONResponse:
    return await _ingest(request, "prediction")


@router.post(
    "/labels",
    summary="Ingest labels (JSON object, array, or NDJSON)",
    openapi_extra=_body_doc(_LABEL_SCHEMA),
    responses=_RESPONSES,
)
async def ingest_labels(request: Request) -> JSONResponse:
    return await _ingest(request, "label")
