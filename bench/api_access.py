"""Measure what access control and the report cache cost or save on a real ``monitor up`` (issue 11).

1. Latency of a small read (``GET /api/v1/alerts``) without tokens and with both tokens configured
   (the access middleware and the body-limit middleware on every request), median and p95 of N calls.
2. The Evidently report for one window: the first call (scan + Evidently) against the next (cache hit).

    .venv/bin/python bench/api_access.py [--requests 500] [--events 20000]

Runs ``monitor up --no-consumer --no-scheduler`` on embedded ClickHouse in a temporary directory; no
Kafka needed (events are posted to the HTTP ingest endpoint).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WRITE, READ = "bench-write-token", "bench-read-token"


def _start(work: Path, port: int, tokens: bool) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(
        {
            "MONITOR_CLICKHOUSE_DSN": f"chdb://{work / 'db'}",
            "MONITOR_API__REFERENCE_DIR": str(work),
            "MONITOR_LOG_LEVEL": "warning",
        }
    )
    if tokens:
        env.update({"MONITOR_API_TOKEN": WRITE, "MONITOR_API_READ_TOKEN": READ})
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "up", "--no-consumer", "--no-scheduler", "--port", str(port)],
        cwd=work,
        env={**env, "PYTHONPATH": str(REPO)},
        stderr=subprocess.DEVNULL,
    )
    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("monitor up did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)


def _latencies(client: httpx.Client, path: str, n: int, headers: dict[str, str]) -> tuple[float, float]:
    for _ in range(20):
        client.get(path, headers=headers)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    from monitor.ports import free_port

    for tokens in (False, True):
        with tempfile.TemporaryDirectory(prefix="bench-access-") as tmp:
            work = Path(tmp)
            port = free_port()
            proc = _start(work, port, tokens)
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                    headers = {"Authorization": f"Bearer {READ}"} if tokens else {}
                    median, p95 = _latencies(client, "/api/v1/alerts", args.requests, headers)
                    label = "both tokens set" if tokens else "no token      "
                    print(
                        f"GET /api/v1/alerts, {label}: median {median:.2f} ms, p95 {p95:.2f} ms ({args.requests} calls)"
                    )
                    if not tokens:
                        continue
                    write = {"Authorization": f"Bearer {WRITE}"}
                    rng = np.random.default_rng(0)
                    pd.DataFrame({"x": rng.normal(0, 1, 5000), "c": rng.choice(["a", "b"], 5000)}).to_parquet(
                        work / "ref.parquet"
                    )
                    client.post("/api/v1/models/b/references", json={"file": "ref.parquet"}, headers=write)
                    now = datetime.now(UTC)
                    batch = [
                        {
                            "event_id": f"e{i}",
                            "model": "b",
                            "timestamp": (
                                now - timedelta(minutes=30) + timedelta(seconds=i * 1800 / args.events)
                            ).isoformat(),
                            "features": {"x": float(rng.normal(0.2, 1)), "c": "a" if i % 3 else "b"},
                            "prediction": 0.5,
                        }
                        for i in range(args.events)
                    ]
                    for i in range(0, len(batch), 5000):
                        client.post("/api/v1/events", json=batch[i : i + 5000], headers=write).raise_for_status()
                    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}
                    for attempt in ("first (miss)", "second (hit)"):
                        started = time.perf_counter()
                        response = client.get("/api/v1/models/b/report", params=window, headers=headers)
                        elapsed = time.perf_counter() - started
                        cache = response.headers.get("x-report-cache")
                        print(f"report of {args.events:,} events, {attempt}: {elapsed:.3f} s (X-Report-Cache: {cache})")
            finally:
                _stop(proc)


if __name__ == "__main__":
    main()
