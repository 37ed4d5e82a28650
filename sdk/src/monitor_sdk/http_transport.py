"""Records to the service's ingest API (``POST /api/v1/events`` and ``/api/v1/labels``) with httpx.

Each batch goes as one NDJSON body, one event per line, exactly the bytes Kafka would carry, so the
service applies the same validation and keeps rejected lines as dead letters. A 422 answer lists
the rejected lines by index: those records go to ``on_error`` and the others count as delivered.
Connection errors, 429 and 5xx are retried with backoff (a resent event is counted once by the
service, whose storage deduplicates on model and event_id); any other status fails the batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from monitor_sdk import _json
from monitor_sdk.dispatch import DoneCallback
from monitor_sdk.errors import DeliveryError
from monitor_sdk.records import Record

ENDPOINTS = {"prediction": "/api/v1/events", "label": "/api/v1/labels"}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BODY_BYTES = 8 * 1024 * 1024  # the service accepts 16 MiB; stay well under it


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError(
            "the HTTP transport needs httpx: pip install 'model-monitor-sdk[http]' (or pip install httpx)"
        ) from exc
    return httpx


class HttpTransport:
    """One pooled httpx client; the bearer token goes in a header and is never logged."""

    def __init__(
        self, url: str, token: str | None, timeout: float = 10.0, retries: int = 3, backoff_s: float = 0.5
    ) -> None:
        httpx = _import_httpx()
        self._httpx = httpx
        headers = {"Content-Type": "application/x-ndjson"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers)
        self._retries = retries
        self._backoff_s = backoff_s

    def send(self, batch: Sequence[Record], done: DoneCallback) -> None:
        for kind, path in ENDPOINTS.items():
            records = [r for r in batch if r.kind == kind]
            for chunk in _chunks(records):
                self._post(path, chunk, done)

    def _post(self, path: str, chunk: list[Record], done: DoneCallback) -> None:
        body = b"\n".join(r.value for r in chunk) + b"\n"
        error: BaseException = DeliveryError("not sent")
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post(path, content=body)
            except self._httpx.HTTPError as exc:
                error = exc
                continue
            status = response.status_code
            if status == 200:
                for record in chunk:
                    done(record, None)
                return
            if status == 422:
                self._partial(response, chunk, done)
                return
            error = DeliveryError(f"HTTP {status} from {path}: {_message(response)}", status=status)
            if status not in RETRY_STATUSES:
                break
        for record in chunk:
            done(record, error)

    def _partial(self, response: Any, chunk: list[Record], done: DoneCallback) -> None:
        rejected: dict[int, tuple[str, str]] = {}
        try:
            for item in _json.loads(response.content).get("rejected", []):
                rejected[int(item["index"])] = (str(item.get("kind", "")), str(item.get("reason", "")))
        except (ValueError, TypeError, KeyError, AttributeError):
            rejected = {i: ("", "rejected (unreadable 422 body)") for i in range(len(chunk))}
        for index, record in enumerate(chunk):
            if index in rejected:
                kind, reason = rejected[index]
                done(record, DeliveryError(f"rejected by the service: {reason}", status=422, kind=kind))
            else:
                done(record, None)

    def flush(self, timeout: float | None) -> None:
        """Nothing is buffered here: a batch is done when its request returns."""

    def close(self, timeout: float | None) -> None:
        self._client.close()


def _chunks(records: list[Record]) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    size = 0
    for record in records:
        if chunk and size + len(record.value) + 1 > MAX_BODY_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += len(record.value) + 1
    if chunk:
        yield chunk


def _message(response: Any) -> str:
    try:
        error = _json.loads(response.content).get("error", {})
        return str(error.get("message") or error)[:300]
    except (ValueError, TypeError, AttributeError):
        return response.text[:300]  # type: ignore[no-any-return]
