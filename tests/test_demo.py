"""``monitor demo --duration 90 --no-dashboard``: drift alerts reach the built-in receiver.

The demo runs as a real process with its own embedded ClickHouse (working directory = a temporary
folder) against the session's Kafka broker, exactly as a newcomer would run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.ports import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]


def test_demo_fires_drift_alerts_within_its_duration(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MONITOR_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MONITOR_BROKER__HOME": str(REPO / ".cache" / "kafka"),
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--duration", "90", "--no-dashboard", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Reference registered" in out and "Receiver   http://127.0.0.1:" in out
    lines = [line for line in out.splitlines() if line.startswith(">>> ")]
    webhook = [line for line in lines if line.startswith(">>> Webhook")]
    assert webhook and all("signature ok" in line for line in webhook), out[-4000:]
    assert "dataset drift" in webhook[0]
    assert any(line.startswith(">>> Slack") and "dataset_drift" in line for line in lines), out[-4000:]
    assert any(line.startswith(">>> PagerDuty <- trigger [critical]") for line in lines), out[-4000:]
    assert any("missing_share" in line and "mean_smoothness" in line for line in lines), out[-4000:]
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("Demo stopped after") and "'webhook': 0" not in summary
