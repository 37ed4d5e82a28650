"""``monitor up`` as a real process: real broker, its own embedded ClickHouse, SIGTERM exits 0 with
everything consumed stored and committed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from monitor.ports import free_port
from monitor.sdk import PredictionLogger
from tests.conftest import query_in_subprocess
from tests.service.api_support import stop_service

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def test_up_consumes_serves_and_stops_cleanly(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = free_port()
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "MONITOR_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'db'}",
        "MONITOR_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MONITOR_KAFKA__PREDICTIONS_TOPIC": f"pred-{suffix}",
        "MONITOR_KAFKA__LABELS_TOPIC": f"labels-{suffix}",
        "MONITOR_KAFKA__GROUP_ID": f"g-{suffix}",
        "MONITOR_API_TOKEN": "t0ken",
        "MONITOR_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "up", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer t0ken"}  # the token guards reads too once it is set
    try:
        _wait_for(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, 90, "readiness")
        with PredictionLogger("upmodel", bootstrap=kafka_bootstrap, predictions_topic=f"pred-{suffix}") as sdk:
            for i in range(200):
                sdk.log({"x": float(i), "c": "a" if i % 2 else "b"}, prediction=i % 2, event_id=f"u{i}")

        def stored() -> bool:
            models = httpx.get(f"{url}/api/v1/models", headers=auth, timeout=5).json()["models"]
            return any(m["name"] == "upmodel" and m["events_24h"] == 200 for m in models)

        _wait_for(stored, 60, "200 events visible through the API")
        counted = 'monitor_events_ingested_total{model="upmodel"} 200.0'

        def metric_counted() -> bool:  # the counter moves after the insert returns, a moment after the rows show
            return counted in httpx.get(f"{url}/metrics", headers=auth, timeout=5).text

        _wait_for(metric_counted, 30, "the ingest counter at 200")
        text = httpx.get(f"{url}/metrics", headers=auth, timeout=5).text
        assert counted in text
    finally:
        err = stop_service(proc)
    assert proc.returncode == 0, err[-3000:]
    assert '"component": "consumer"' in err and '"event": "stopped"' in err
    rows = query_in_subprocess(
        f"chdb://{tmp_path / 'db'}", "monitor", "SELECT count() FROM monitor.events FINAL WHERE model = 'upmodel'"
    )
    assert rows == [[200]]
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        offsets = admin.list_group_offsets(f"g-{suffix}")[f"g-{suffix}"]
    finally:
        admin.close()
    committed = sum(meta.offset for tp, meta in offsets.items() if tp.topic == f"pred-{suffix}")
    assert committed == 200
