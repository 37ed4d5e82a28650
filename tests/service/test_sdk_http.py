"""The SDK's HTTP transport against the real API (app served over HTTP, embedded ClickHouse)."""

from __future__ import annotations

import threading

import httpx
from api_support import TOKEN

from monitor.ports import free_port
from monitor.storage import Storage
from monitor_sdk import DeliveryError, HttpPredictionLogger, PredictionLogger, Record


class Errors:
    def __init__(self) -> None:
        self.items: list[tuple[BaseException, Record]] = []
        self._lock = threading.Lock()

    def __call__(self, error: BaseException, record: Record) -> None:
        with self._lock:
            self.items.append((error, record))


def _rows(storage: Storage, sql: str) -> list[tuple]:
    return [tuple(row) for row in storage.rows(sql)]


def test_events_and_labels_are_stored_through_the_api(serve, storage: Storage) -> None:
    api = serve()
    errors = Errors()
    with HttpPredictionLogger("fraud", url=api.url, token=TOKEN, model_version="2", on_error=errors) as logger:
        ids = [logger.log({"amount": float(i), "country": "DE"}, prediction=i / 100) for i in range(120)]
        logger.log_many([{"features": {"amount": 1.0}, "prediction": 0.5, "event_id": "many-1"}])
        logger.log_label(ids[0], label=1)
    assert errors.items == []
    stored = _rows(
        storage, f"SELECT event_id, model_version FROM {storage.table('events')} FINAL WHERE model = 'fraud'"
    )
    assert sorted(stored) == sorted([(i, "2") for i in [*ids, "many-1"]])
    labels = _rows(storage, f"SELECT event_id, label_num FROM {storage.table('labels')} FINAL")
    assert labels == [(ids[0], 1.0)]


def test_transport_http_on_prediction_logger_reads_the_token_from_the_environment(serve, storage, monkeypatch) -> None:
    api = serve()
    monkeypatch.setenv("MONITOR_API_TOKEN", TOKEN)
    with PredictionLogger("envtoken", transport="http", url=api.url) as logger:
        logger.log({"a": 1.0}, prediction="yes", event_id="env-1")
    assert _rows(storage, f"SELECT event_id FROM {storage.table('events')} FINAL") == [("env-1",)]


def test_lines_the_service_rejects_reach_on_error_and_the_rest_are_stored(serve, storage: Storage) -> None:
    api = serve(kafka={"max_message_bytes": 400})  # the service's limit, tighter than the SDK knows
    errors = Errors()
    with HttpPredictionLogger("limits", url=api.url, token=TOKEN, on_error=errors) as logger:
        logger.log({"a": 1.0}, prediction=0.1, event_id="fits")
        logger.log({"text": "x" * 600}, prediction=0.1, event_id="oversized")
        logger.log({"a": 2.0}, prediction=0.2, event_id="fits-too")
    [(error, record)] = errors.items
    assert isinstance(error, DeliveryError) and error.status == 422 and error.kind == "oversized"
    assert record.event_id == "oversized" and "rejected by the service" in str(error)
    assert sorted(_rows(storage, f"SELECT event_id FROM {storage.table('events')} FINAL")) == [("fits",), ("fits-too",)]
    assert _rows(storage, f"SELECT reason LIKE '%bytes%' FROM {storage.table('dead_letters')}") == [(1,)]


def test_a_wrong_token_or_a_service_that_is_down_is_reported(serve, storage: Storage) -> None:
    api = serve()
    errors = Errors()
    with HttpPredictionLogger("auth", url=api.url, token="wrong", on_error=errors) as logger:
        logger.log({"a": 1.0}, prediction=0.1, event_id="e1")
    [(error, record)] = errors.items
    assert isinstance(error, DeliveryError) and error.status == 401 and record.event_id == "e1"
    assert "wrong" not in str(error)  # the token is never part of an error message

    down = Errors()
    with HttpPredictionLogger(
        "down", url=f"http://127.0.0.1:{free_port()}", token=TOKEN, on_error=down, http_retries=1
    ) as logger:
        logger.log({"a": 1.0}, prediction=0.1, event_id="e2")
    [(error, record)] = down.items
    assert isinstance(error, httpx.ConnectError) and record.event_id == "e2"
    assert _rows(storage, f"SELECT count() FROM {storage.table('events')}") == [(0,)]
