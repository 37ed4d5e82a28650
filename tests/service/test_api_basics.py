"""Health, readiness, models, samples and distributions over real HTTP on the real app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from api_support import insert_events, synthetic_rows

from monitor.storage import Storage


def test_healthz_and_docs(serve) -> None:
    api = serve()
    body = api.client.get("/healthz").json()
    assert body["status"] == "ok" and body["uptime_seconds"] >= 0
    for probe in ("/healthz", "/readyz"):  # what load balancers and uptime checkers send
        head = api.client.head(probe)
        assert (head.status_code, head.content) == (200, b""), probe
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert "/api/v1/models" in spec["paths"]
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), "an operation id is used twice (clients generated from the spec break)"


def test_readyz_reports_clickhouse(serve) -> None:
    api = serve()
    response = api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["clickhouse"]["ok"] is True


def test_models_lists_configured_and_observed(serve, storage: Storage) -> None:
    now = datetime.now(UTC)
    insert_events(storage, "observed", synthetic_rows(30, end=now))
    api = serve(models={"configured": {"features": {"amount": "numerical"}, "window": "30m"}})
    models = {m["name"]: m for m in api.client.get("/api/v1/models").json()["models"]}
    assert set(models) == {"observed", "configured"}
    assert models["observed"]["events_24h"] == 30
    assert models["observed"]["configured"] is False
    assert 0 <= models["observed"]["freshness_seconds"] < 120
    assert models["configured"]["health"] == "no_data"
    one = api.client.get("/api/v1/models/configured").json()
    assert one["config"]["window"] == "30m"
    assert api.client.get("/api/v1/models/nope").status_code == 404


def test_duplicate_events_counted_once(serve, storage: Storage) -> None:
    rows = synthetic_rows(20)
    insert_events(storage, "dup", rows)
    insert_events(storage, "dup", rows)  # a redelivery
    api = serve()
    models = {m["name"]: m for m in api.client.get("/api/v1/models").json()["models"]}
    assert models["dup"]["events_24h"] == 20


def test_event_sample_rebuilds_features(serve, storage: Storage) -> None:
    now = datetime.now(UTC)
    insert_events(storage, "m", synthetic_rows(25, end=now))
    api = serve()
    body = api.client.get("/api/v1/models/m/events", params={"limit": 5}).json()
    assert len(body["events"]) == 5
    latest = body["events"][0]
    assert latest["event_id"] == "e24"
    assert latest["features"]["country"] == ["DE", "FR", "US"][24 % 3]
    assert latest["features"]["is_new_user"] is True
    assert latest["features"]["amount"] == 24.0
    sample_with_null = api.client.get("/api/v1/models/m/events", params={"limit": 25}).json()["events"]
    e20 = next(e for e in sample_with_null if e["event_id"] == "e20")
    assert "age" in e20["features"] and e20["features"]["age"] is None


def test_distribution_numeric_matches_numpy(serve, storage: Storage) -> None:
    now = datetime.now(UTC)
    rows = synthetic_rows(300, end=now)
    insert_events(storage, "m", rows)
    api = serve()
    params = {
        "feature": "amount",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(seconds=1)).isoformat(),
    }
    body = api.client.get("/api/v1/models/m/distribution", params=params).json()
    values = np.array([r["features"]["amount"] for r in rows])
    edges = sorted(set(np.quantile(values, np.arange(1, 10) / 10).tolist()))
    assert body["edges"] == edges
    expected = np.histogram(values, bins=[-np.inf, *edges, np.inf])[0]
    # numpy's last bin is closed on the right; ours are [e, next) — identical here as max < +inf.
    assert body["current"]["counts"] == expected.tolist()
    assert body["current"]["total"] == 300


def test_distribution_categorical(serve, storage: Storage) -> None:
    insert_events(storage, "m", synthetic_rows(30))
    api = serve()
    body = api.client.get("/api/v1/models/m/distribution", params={"feature": "country"}).json()
    assert dict(zip(body["bins"], body["current"]["counts"], strict=True)) == {"DE": 10, "FR": 10, "US": 10}
    missing = api.client.get("/api/v1/models/m/distribution", params={"feature": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_bad_requests_are_4xx_json(serve, storage: Storage) -> None:
    insert_events(storage, "m", synthetic_rows(5))
    api = serve()
    bad = api.client.get("/api/v1/models/m/events", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    inverted = api.client.get(
        "/api/v1/models/m/events", params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
    )
    assert inverted.status_code == 422 and "start must be before end" in inverted.json()["error"]["message"]
    ancient = api.client.get("/api/v1/models/m/events", params={"start": "0001-01-01T00:00:00Z"})
    assert ancient.status_code == 422
    assert api.client.get("/nope").json()["error"]["code"] == "not_found"


def test_readyz_says_which_dependency_is_down(serve) -> None:
    from monitor.service.context import KafkaProbe

    api = serve()
    api.ctx.kafka_probe = KafkaProbe("127.0.0.1:9", timeout_seconds=1)  # nothing listens on the discard port
    response = api.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["checks"]["kafka"]["ok"] is False
    assert "127.0.0.1:9" in body["checks"]["kafka"]["detail"] and body["checks"]["clickhouse"]["ok"] is True
    # Anonymous probes learn which dependency is down, not the brokers' addresses or the error's text.
    anonymous = api.anonymous.get("/readyz")
    assert anonymous.status_code == 503
    kafka = anonymous.json()["checks"]["kafka"]
    assert kafka["ok"] is False and "127.0.0.1" not in anonymous.text and "unavailable" in kafka["detail"]
    assert anonymous.json()["checks"]["clickhouse"] == {"ok": True, "detail": "ok"}
    wrong = api.anonymous.get("/readyz", headers={"Authorization": "Bearer not-a-token"})
    assert "127.0.0.1" not in wrong.text
    untokened = serve(token=None, read_token=None)  # loopback only: every caller is local
    untokened.ctx.kafka_probe = KafkaProbe("127.0.0.1:9", timeout_seconds=1)
    assert "127.0.0.1:9" in untokened.anonymous.get("/readyz").json()["checks"]["kafka"]["detail"]


def test_readyz_with_the_real_broker(serve, kafka_bootstrap: str) -> None:
    from monitor.service.context import KafkaProbe

    api = serve()
    api.ctx.kafka_probe = KafkaProbe(kafka_bootstrap)
    response = api.client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["kafka"] == {"ok": True, "detail": "ok"}
