"""A real Prometheus server (Debian's package) scrapes /metrics with the read token; the test reads a metric
back from it."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from api_support import READ_TOKEN, insert_events, synthetic_rows

from monitor.ports import free_port
from monitor.storage import Storage

pytestmark = pytest.mark.slow


def test_prometheus_scrapes_the_service(serve, storage: Storage, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: run `make install` (scripts/system-deps.sh installs it)"
    insert_events(storage, "scraped", synthetic_rows(25, end=datetime.now(UTC)))
    api = serve()
    target = api.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: monitor\n    metrics_path: /metrics\n    static_configs: [{{targets: ['{target}']}}]\n"
        f"    authorization: {{type: Bearer, credentials: '{READ_TOKEN}'}}\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline and value is None:
            time.sleep(1)
            try:
                body = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query",
                    params={"query": 'monitor_model_events_last_hour{model="scraped"}'},
                    timeout=5,
                ).json()
            except httpx.HTTPError:
                continue
            results = body.get("data", {}).get("result", [])
            if results:
                value = float(results[0]["value"][1])
                assert results[0]["metric"]["job"] == "monitor"
        assert value == 25.0, (tmp_path / "prometheus.log").read_text()[-2000:]
        up = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up"}, timeout=5).json()
        assert up["data"]["result"][0]["value"][1] == "1"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
