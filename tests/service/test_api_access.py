"""Access control over real HTTP: every protected route, taken from the app's own route table, with no
token, a wrong one, the read token and the write token; open probes; the one-token and no-token modes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from api_support import READ_TOKEN, TOKEN, RunningApi, insert_events, synthetic_rows

from monitor.storage import Storage

MODEL = "access-model"  # its own name: detection metrics are process-wide counters
CONFIG = {"features": {"amount": "numerical", "country": "categorical"}, "window": "1h", "min_samples": 10}
PATH_VALUES = {"model": MODEL, "version": "v1"}
# Query parameters a read needs to answer 200 (a new read route that needs some must be added here).
READ_PARAMS: dict[str, dict[str, str]] = {"/api/v1/models/{model}/distribution": {"feature": "amount"}}
EVENT = {
    "event_id": "w1",
    "model": "written",
    "timestamp": "2026-11-27T10:00:00Z",
    "features": {"amount": 1.0},
    "prediction": 0.5,
}
# A valid body per write route and the status it gets with the write token (a new write route must be added).
WRITES: dict[str, tuple[dict[str, Any], set[int]]] = {
    "/api/v1/events": (EVENT, {200}),
    "/api/v1/labels": ({"event_id": "w1", "model": "written", "label": 1}, {200}),
    "/api/v1/models/{model}/references": ({"file": "ref.parquet", "version": "v2"}, {201}),
    "/api/v1/models/{model}/detect": ({}, {200}),
    "/api/v1/alerts/acknowledge": ({"model": MODEL, "rule": "dataset_drift"}, {404}),  # processed: no such rule
}


def app_routes(api: RunningApi) -> list[tuple[str, str]]:
    """(method, path) of every route the running app serves, routers included, from its own table."""
    assert api.app is not None
    found: list[tuple[str, str]] = []
    for route in api.app.routes:
        # FastAPI >= 0.165 keeps included routers as one entry that lists its effective routes.
        inner = list(route.effective_route_contexts()) if hasattr(route, "effective_route_contexts") else [route]
        for item in inner:
            found.extend((method, item.path) for method in sorted(getattr(item, "methods", None) or ()))
    return found


def _protected_routes(api: RunningApi) -> list[tuple[str, str]]:
    """Every route under /api/v1, plus /metrics (HEAD is Starlette's twin of GET)."""
    return [
        (method, path)
        for method, path in app_routes(api)
        if method != "HEAD" and (path.startswith("/api/v1/") or path == "/metrics")
    ]


def _concrete(template: str) -> str:
    return template.format(**PATH_VALUES)


def _story(storage: Storage, tmp_path: Path) -> None:
    insert_events(storage, MODEL, synthetic_rows(60, end=datetime.now(UTC)))
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"amount": rng.normal(50, 10, 200), "country": rng.choice(["DE", "FR"], 200)})
    frame.to_parquet(tmp_path / "ref.parquet")
    from detectors.registration import add_file

    add_file(storage, MODEL, tmp_path / "ref.parquet", version="v1", features=dict(CONFIG["features"]))  # type: ignore[arg-type]


def _call(client: httpx.Client, method: str, template: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if method == "GET":
        return client.get(_concrete(template), params=READ_PARAMS.get(template), headers=headers, timeout=120)
    body, _ = WRITES[template]
    return client.request(method, _concrete(template), json=body, headers=headers, timeout=120)


def test_every_protected_route_by_token(serve, storage: Storage, tmp_path: Path) -> None:
    _story(storage, tmp_path)
    api = serve(models={MODEL: CONFIG})
    routes = _protected_routes(api)
    assert len(routes) >= 20 and ("GET", "/metrics") in routes
    writes = [(m, p) for m, p in routes if m != "GET"]
    assert {p for _, p in writes} == set(WRITES), "a write route has no entry in WRITES"
    problems: list[str] = []
    for method, template in routes:
        for token in (None, "wrong-token", TOKEN[:-1], TOKEN + "x", READ_TOKEN.upper()):
            response = _call(api.anonymous, method, template, token)
            if response.status_code != 401 or response.headers.get("www-authenticate") != "Bearer":
                problems.append(f"{method} {template} token={token!r}: {response.status_code}, expected 401")
            elif response.json()["error"]["code"] != "unauthorized":
                problems.append(f"{method} {template}: 401 without the error body")
        read = _call(api.anonymous, method, template, READ_TOKEN)
        expected_read = 200 if method == "GET" else 403
        if read.status_code != expected_read:
            problems.append(f"{method} {template} read token: {read.status_code} {read.text[:200]}")
        if method == "GET":
            write = _call(api.anonymous, method, template, TOKEN)
            if write.status_code != 200:
                problems.append(f"{method} {template} write token: {write.status_code} {write.text[:200]}")
    for method, template in writes:  # last: the reads above ran against the unchanged story
        response = _call(api.anonymous, method, template, TOKEN)
        if response.status_code not in WRITES[template][1]:
            problems.append(f"{method} {template} write token: {response.status_code} {response.text[:300]}")
    assert not problems, "\n".join(problems)


def test_read_token_on_a_write_is_forbidden_and_nothing_is_written(serve, storage: Storage) -> None:
    api = serve()
    response = api.client.post("/api/v1/events", json=EVENT)  # api.client carries the read token
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "this token is read-only: writes need MONITOR_API_TOKEN",
    }
    count = storage.rows(f"SELECT count() FROM {storage.table('events')} WHERE model = 'written'")[0][0]
    assert count == 0
    # Any method other than GET/HEAD is a write, even on paths without such a route.
    assert api.client.delete(f"/api/v1/models/{MODEL}").status_code == 403
    assert api.client.put("/api/v1/alerts").status_code == 403
    assert api.anonymous.delete(f"/api/v1/models/{MODEL}").status_code == 401
    assert api.client.delete(f"/api/v1/models/{MODEL}", headers=api.auth()).status_code == 405


def test_unknown_api_paths_do_not_answer_without_a_token(serve) -> None:
    api = serve()
    for path in ("/api/v1/nope", "/api/v1", "/api/v1/", "/api/v1/models/x/secret"):
        assert api.anonymous.get(path).status_code == 401, path
    assert api.client.get("/api/v1/nope").status_code == 404
    for variant in ("//api/v1/models", "/api/v1//models", "/metrics/", "/api/v1/models/", "/API/v1/models"):
        response = api.anonymous.get(variant)
        assert response.status_code in (401, 404, 307), (variant, response.status_code)
        if response.status_code == 307:  # a slash redirect leads to the protected path, nothing else
            assert response.headers["location"].endswith("/metrics") and not response.content


def test_probes_and_docs_stay_open(serve) -> None:
    api = serve()
    assert api.anonymous.get("/healthz").status_code == 200
    assert api.anonymous.get("/readyz").status_code == 200
    assert api.anonymous.get("/docs").status_code == 200
    spec = api.anonymous.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            secured = operation.get("security") == [{"bearer": []}]
            assert secured == (path.startswith("/api/v1/") or path == "/metrics"), path


def test_only_a_read_token_configured(serve, storage: Storage) -> None:
    api = serve(token=None)
    assert api.anonymous.get("/api/v1/models").status_code == 401
    assert api.anonymous.get("/metrics").status_code == 401
    assert api.client.get("/api/v1/models").status_code == 200
    assert api.client.get("/metrics").status_code == 200
    refused = api.client.post("/api/v1/events", json=EVENT)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "writes_disabled"
    assert "MONITOR_API_TOKEN" in refused.json()["error"]["message"]
    assert api.anonymous.post("/api/v1/events", json=EVENT).status_code == 401


def test_only_a_write_token_configured_reads_with_it(serve) -> None:
    api = serve(read_token=None)
    assert api.anonymous.get("/api/v1/alerts").status_code == 401
    assert api.anonymous.get("/api/v1/alerts", headers=api.auth(READ_TOKEN)).status_code == 401
    assert api.anonymous.get("/api/v1/alerts", headers=api.auth()).status_code == 200


def test_without_tokens_reads_are_open_and_writes_refused(serve) -> None:
    api = serve(token=None, read_token=None)
    assert api.anonymous.get("/api/v1/models").status_code == 200
    assert api.anonymous.get("/metrics").status_code == 200
    refused = api.anonymous.post("/api/v1/events", json=EVENT, headers=api.auth())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "writes_disabled"


def test_tokens_are_compared_in_constant_time(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from monitor.service import auth

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    api = serve()
    assert api.anonymous.get("/api/v1/alerts", headers=api.auth("x" * 3)).status_code == 401
    # Both tokens were compared, as fixed-length digests (so the length of a token does not show either).
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)
    calls.clear()
    assert api.anonymous.get("/api/v1/alerts", headers=api.auth()).status_code == 200
    assert len(calls) == 2  # no early exit on the first match


def test_empty_tokens_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.settings import load_settings

    monkeypatch.setenv("MONITOR_API_TOKEN", "  ")
    monkeypatch.setenv("MONITOR_API_READ_TOKEN", "r3ad\n")
    settings = load_settings(None)
    assert settings.api.token is None
    assert settings.api.read_token is not None and settings.api.read_token.get_secret_value() == "r3ad"
    assert "r3ad" not in repr(settings.api)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.10", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    from monitor.service.auth import is_loopback

    assert is_loopback(host) is loopback
