"""Ingest over HTTP: token checks, the contract's validation, dead letters for what is rejected."""

from __future__ import annotations

import orjson

from monitor.storage import Storage


def _event(i: int, model: str = "fraud", **extra) -> dict:
    return {
        "event_id": f"h{i}",
        "model": model,
        "timestamp": "2026-11-27T10:00:00.123Z",
        "features": {"amount": 12.5 + i, "country": "DE", "is_new_user": True, "age": None},
        "prediction": 0.83,
        **extra,
    }


def _count(storage: Storage, table: str, where: str = "1") -> int:
    return int(storage.rows(f"SELECT count() FROM {storage.table(table)} FINAL WHERE {where}")[0][0])


def test_writes_need_the_token(serve, storage: Storage) -> None:
    api = serve()
    body = orjson.dumps(_event(1))
    assert api.anonymous.post("/api/v1/events", content=body).status_code == 401
    wrong = api.client.post("/api/v1/events", content=body, headers=api.auth("wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert wrong.headers["www-authenticate"] == "Bearer"
    basic = api.client.post("/api/v1/events", content=body, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status_code == 401
    assert _count(storage, "events") == 0
    ok = api.client.post("/api/v1/events", content=body, headers=api.auth())
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"accepted": 1, "rejected": []}
    assert _count(storage, "events") == 1


def test_no_token_configured_refuses_writes(serve, storage: Storage) -> None:
    api = serve(token=None, read_token=None)
    response = api.client.post("/api/v1/events", content=orjson.dumps(_event(1)), headers=api.auth())
    assert response.status_code == 403
    assert "MONITOR_API_TOKEN" in response.json()["error"]["message"]
    assert api.client.post("/api/v1/labels", content=b"{}").status_code == 403
    assert _count(storage, "events") == 0


def test_array_and_ndjson_with_dead_letters(serve, storage: Storage) -> None:
    api = serve()
    batch = [_event(i) for i in range(5)] + [{"model": "fraud", "features": {}}]
    response = api.client.post("/api/v1/events", content=orjson.dumps(batch), headers=api.auth())
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 5 and len(body["rejected"]) == 1 and body["rejected"][0]["index"] == 5
    assert _count(storage, "events", "model = 'fraud'") == 5
    lines = b"\n".join([orjson.dumps(_event(10)), b"{not json", orjson.dumps(_event(11))])
    response = api.client.post(
        "/api/v1/events", content=lines, headers={**api.auth(), "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 422 and response.json()["accepted"] == 2
    assert _count(storage, "events") == 7
    raws = [r[0] for r in storage.rows(f"SELECT raw FROM {storage.table('dead_letters')} FINAL")]
    assert b"{not json" in [r.encode() if isinstance(r, str) else r for r in raws]
    assert _count(storage, "dead_letters", "topic = 'http:predictions'") == 2


def test_redelivered_event_counted_once(serve, storage: Storage) -> None:
    api = serve()
    for _ in range(2):
        api.client.post("/api/v1/events", content=orjson.dumps(_event(1)), headers=api.auth())
    assert _count(storage, "events") == 1


def test_labels_and_bad_bodies(serve, storage: Storage) -> None:
    api = serve()
    label = {"event_id": "h1", "model": "fraud", "label": 1, "timestamp": "2026-11-27T11:00:00Z"}
    assert api.client.post("/api/v1/labels", content=orjson.dumps(label), headers=api.auth()).status_code == 200
    assert _count(storage, "labels") == 1
    empty = api.client.post("/api/v1/events", content=b"  ", headers=api.auth())
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_body"
    garbage = api.client.post("/api/v1/events", content=b"\xff\xfe", headers=api.auth())
    assert garbage.status_code == 422
