"""Body limits (413 before the body is buffered, with and without Content-Length) and the Evidently
report's caps and cache, over real HTTP on the real app."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from api_support import TOKEN, RunningApi, insert_events, synthetic_rows

from monitor.service.report_cache import ReportCache
from monitor.storage import Storage

SMALL = 2048  # api.max_body_bytes in these tests
INGEST = 8192  # api.max_ingest_bytes


def _limited(serve, **extra) -> RunningApi:
    return serve(api={"max_body_bytes": SMALL, "max_ingest_bytes": INGEST}, **extra)


def _raw(api: RunningApi, head: str, body_parts: list[bytes]) -> tuple[int, dict, float]:
    """Send a request head and some body parts (never finishing the body), then read the answer."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            sock.sendall(part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        header_text, _, rest = data.partition(b"\r\n\r\n")
        lines = header_text.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(lines[0].split()[1]), orjson.loads(rest[:length]), length


def _head(path: str, extra: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    )


def test_declared_length_over_the_limit_is_refused_before_any_body(serve) -> None:
    api = _limited(serve)
    status, body, _ = _raw(api, _head("/api/v1/events", "Content-Length: 10000000000\r\n"), [])
    assert status == 413 and body["error"]["code"] == "too_large"
    assert "10,000,000,000 bytes" in body["error"]["message"] and f"{INGEST:,}" in body["error"]["message"]
    status, body, _ = _raw(api, _head("/api/v1/alerts/acknowledge", f"Content-Length: {SMALL + 1}\r\n"), [])
    assert status == 413 and f"{SMALL:,}" in body["error"]["message"]


def test_chunked_body_is_cut_off_while_streaming(serve) -> None:
    api = _limited(serve)
    chunk = b"x" * 1024
    framed = [b"400\r\n" + chunk + b"\r\n"] * 3  # 3 KiB of an endless body: the answer comes without its end
    status, body, _ = _raw(api, _head("/api/v1/alerts/acknowledge", "Transfer-Encoding: chunked\r\n"), framed)
    assert status == 413 and body["error"]["code"] == "too_large"
    status, body, _ = _raw(api, _head("/api/v1/events", "Transfer-Encoding: chunked\r\n"), framed * 3)
    assert status == 413 and f"{INGEST:,}" in body["error"]["message"]


def test_streamed_bodies_within_the_limit_are_served(serve, storage: Storage) -> None:
    api = _limited(serve)
    event = {
        "event_id": "c1",
        "model": "chunky",
        "timestamp": "2026-11-27T10:00:00Z",
        "features": {"pad": "p" * 3000},  # over max_body_bytes, within the ingest limit
        "prediction": 1.0,
    }
    payload = orjson.dumps(event)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(payload), 500):
            yield payload[i : i + 500]

    ok = api.anonymous.post("/api/v1/events", content=pieces(), headers=api.auth())  # chunked: no Content-Length
    assert ok.status_code == 200, ok.text
    with_length = api.anonymous.post("/api/v1/events", content=payload, headers=api.auth())
    assert with_length.status_code == 200
    elsewhere = api.anonymous.post(
        "/api/v1/alerts/acknowledge",
        content=orjson.dumps({"model": "m", "rule": "r", "note": "n" * 3000}),
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert elsewhere.status_code == 413  # the same size is too big for an ordinary endpoint
    too_big = api.anonymous.post(
        "/api/v1/events", content=(b"[" + b" " * INGEST + b"]" for _ in range(1)), headers=api.auth()
    )
    assert too_big.status_code == 413
    stored = storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL WHERE model = 'chunky'")
    assert stored == [(1,)] or stored == [[1]]


def test_no_token_is_still_401_before_the_size(serve) -> None:
    api = _limited(serve)
    response = api.anonymous.post("/api/v1/events", content=b"x" * (INGEST + 1))
    assert response.status_code == 401


def _answer_to_head(api: RunningApi, head: bytes, limit: int) -> bytes:
    """Send a request head padded by ``limit`` bytes of header, stopping if the server closes; its status line."""
    host, port = api.url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(head)
        sent += len(head)
        piece = b"a" * 65536
        try:
            while sent < limit:
                sock.sendall(piece)
                sent += len(piece)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while still sending: what a bounded server does
        answer = sock.recv(65536)
    return answer.split(b"\r\n", 1)[0]


def test_request_heads_are_bounded(serve) -> None:
    """A header of any size used to be accepted (and joined piece by piece on the event loop: a few
    hundred MB from one anonymous connection stalled every request for minutes); now a head over
    api.max_header_bytes is refused as soon as it passes the bound."""
    api = serve()
    started = time.monotonic()
    status = _answer_to_head(api, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", 8 * 1024 * 1024)
    assert status.startswith(b"HTTP/1.1 400"), status
    assert time.monotonic() - started < 10
    status = _answer_to_head(api, b"GET /healthz?" + b"p=1&" * 20_000 + b" HTTP/1.1\r\nHost: x", 0)
    assert status.startswith(b"HTTP/1.1 400"), status  # a query string is part of the head
    assert api.anonymous.get("/healthz").status_code == 200
    big_but_allowed = {"X-Pad": "p" * 32_000}  # below the default 64 KiB: served as before
    assert api.client.get("/api/v1/models", headers=big_but_allowed).status_code == 200


def test_a_body_framed_by_both_length_and_chunks_is_refused(serve) -> None:
    """Content-Length and Transfer-Encoding together (the request-smuggling shape) get 400 and the
    connection is closed; the request never runs."""
    api = serve()
    host, port = api.url.removeprefix("http://").split(":")
    head = (
        f"POST /api/v1/models/m/detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(head.encode() + b"2\r\n{}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert b'"code":"bad_request"' in data and b"connection: close" in data.lower()
    assert data.count(b"HTTP/1.1 ") == 1  # the request behind it on the connection was not served


def test_invented_methods_do_not_grow_the_metrics(serve) -> None:
    api = serve()
    host, port = api.url.removeprefix("http://").split(":")
    for i in range(3):
        with socket.create_connection((host, int(port)), timeout=15) as sock:
            sock.sendall(f"INVENTED{i} /api/v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 4")
    text = api.client.get("/metrics").text
    assert "INVENTED" not in text


def _report_story(storage: Storage, tmp_path: Path, now: datetime) -> None:
    insert_events(storage, "m", synthetic_rows(200, end=now, span=timedelta(minutes=30)))
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"amount": rng.normal(50, 10, 300), "country": rng.choice(["DE", "FR", "US"], 300)})
    frame.to_parquet(tmp_path / "ref.parquet")


def test_report_window_and_rows_are_capped(serve, storage: Storage, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _report_story(storage, tmp_path, now)
    api = serve(api={"report_max_window": "2h", "report_max_rows": 150}, models={"m": {"window": "1d"}})
    api.anonymous.post("/api/v1/models/m/references", json={"file": "ref.parquet"}, headers=api.auth())
    long = api.client.get(
        "/api/v1/models/m/report", params={"start": (now - timedelta(hours=3)).isoformat(), "end": now.isoformat()}
    )
    assert long.status_code == 400 and long.json()["error"]["code"] == "window_too_long"
    assert "api.report_max_window" in long.json()["error"]["message"]
    crowded = api.client.get("/api/v1/models/m/report")  # the model's 1d window is cut to 2h: allowed
    assert crowded.status_code == 400 and crowded.json()["error"]["code"] == "too_many_rows"
    assert "200 events" in crowded.json()["error"]["message"] and "150" in crowded.json()["error"]["message"]


def test_report_is_cached_by_window_and_reference_version(serve, storage: Storage, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _report_story(storage, tmp_path, now)
    api = serve(api={"report_cache_ttl": "1h"})
    api.anonymous.post("/api/v1/models/m/references", json={"file": "ref.parquet"}, headers=api.auth())
    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(seconds=1)).isoformat()}
    first = api.client.get("/api/v1/models/m/report", params=window)
    assert first.status_code == 200 and first.headers["x-report-cache"] == "miss"
    assert "(300 reference, 200 current rows)" in first.text
    insert_events(storage, "m", [{**r, "event_id": f"late{i}"} for i, r in enumerate(synthetic_rows(40, end=now))])
    again = api.client.get("/api/v1/models/m/report", params=window)
    assert again.headers["x-report-cache"] == "hit" and again.text == first.text  # not rebuilt
    other = api.client.get("/api/v1/models/m/report", params={**window, "end": now.isoformat()})
    assert other.headers["x-report-cache"] == "miss"
    api.anonymous.post("/api/v1/models/m/references", json={"file": "ref.parquet"}, headers=api.auth())  # version 2
    fresh = api.client.get("/api/v1/models/m/report", params=window)
    assert fresh.headers["x-report-cache"] == "miss"
    assert "against reference 2:" in fresh.text and "240 current rows" in fresh.text


def test_report_leaves_out_a_feature_missing_from_the_window(serve, storage: Storage, tmp_path: Path) -> None:
    """A feature of the reference that no event of the window carries: Evidently raised "An empty column
    ... was provided for drift calculation" and the API answered a plain-text 500."""
    now = datetime.now(UTC)
    earlier = [{**r, "event_id": f"old{i}"} for i, r in enumerate(synthetic_rows(20, end=now - timedelta(hours=5)))]
    insert_events(storage, "m", earlier)  # is_new_user has a column, but no value in the window below
    rows = synthetic_rows(200, end=now)
    for row in rows:
        row["features"].pop("is_new_user")
    insert_events(storage, "m", rows)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50, 10, 300),
            "country": rng.choice(["DE", "FR", "US"], 300),
            "is_new_user": rng.choice(["true", "false"], 300),
        }
    )
    frame.to_parquet(tmp_path / "ref.parquet")
    api = serve()
    api.anonymous.post("/api/v1/models/m/references", json={"file": "ref.parquet"}, headers=api.auth())
    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(seconds=1)).isoformat()}
    page = api.client.get("/api/v1/models/m/report", params=window)
    assert page.status_code == 200, page.text
    assert "Left out: is_new_user (no value on one side)." in page.text


def test_an_unexpected_error_is_a_json_500_without_internals(serve) -> None:
    api = serve()
    assert api.app is not None

    def broken() -> None:
        raise RuntimeError("internal detail /srv/secret.db")

    api.app.add_api_route("/api/v1/broken", broken)
    response = api.client.get("/api/v1/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text and "RuntimeError" not in response.text


def test_liveness_answers_while_every_worker_thread_is_busy(serve) -> None:
    """60 slow reads (as many report builds) used to queue /healthz behind them for seconds."""
    api = serve()
    assert api.app is not None

    def slow() -> dict[str, bool]:
        time.sleep(3)
        return {"done": True}

    api.app.add_api_route("/api/v1/slow", slow)
    busy = [threading.Thread(target=lambda: api.client.get("/api/v1/slow")) for _ in range(60)]
    for thread in busy:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert api.anonymous.get("/healthz").status_code == 200
    assert time.monotonic() - started < 1.0
    for thread in busy:
        thread.join()


def test_cache_expires_evicts_and_builds_once() -> None:
    clock = [0.0]
    cache = ReportCache(size=2, ttl_seconds=10, clock=lambda: clock[0])
    builds: list[str] = []

    def build(name: str):
        def run() -> str:
            builds.append(name)
            return f"page {name}"

        return run

    assert cache.get_or_build("a", build("a")) == ("page a", False)
    assert cache.get_or_build("a", build("a")) == ("page a", True)
    clock[0] = 10.5
    assert cache.get_or_build("a", build("a")) == ("page a", False)  # expired
    cache.get_or_build("b", build("b"))
    cache.get_or_build("c", build("c"))
    assert len(cache) == 2 and cache.get_or_build("a", build("a"))[1] is False  # least recently used went
    assert builds == ["a", "a", "b", "c", "a"]

    slow_builds: list[int] = []

    def slow() -> str:
        slow_builds.append(1)
        time.sleep(0.3)
        return "slow page"

    results: list[tuple[str, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_build("s", slow))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slow_builds) == 1 and sorted(hit for _, hit in results) == [False, True, True, True]
