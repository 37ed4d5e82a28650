"""``monitor demo --no-dashboard``: drift alerts reach the built-in receiver, and Ctrl-C stops it cleanly.

The demo runs as a real process with its own embedded ClickHouse (working directory = a temporary
folder) against the session's Kafka broker, exactly as a newcomer would run it. The test reads its
output as it comes and presses Ctrl-C (SIGINT) once every expected notification has been received,
as a user watching it would; ``--duration`` only bounds a demo that never gets there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from monitor.ports import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
LONGEST_WAIT_S = 150  # drift starts at the first 30 s boundary, its window closes 30 s later: ~70 s at worst


def _notifications_complete(lines: list[str]) -> bool:
    notified = [line for line in lines if line.startswith(">>> ")]
    return (
        any(line.startswith(">>> Webhook") for line in notified)
        and any(line.startswith(">>> Slack") and "dataset_drift" in line for line in notified)
        and any(line.startswith(">>> PagerDuty <- trigger [critical]") for line in notified)
        and any("missing_share" in line and "mean_smoothness" in line for line in notified)
    )


def test_demo_fires_drift_alerts_and_stops_on_ctrl_c(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MONITOR_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MONITOR_BROKER__HOME": str(REPO / ".cache" / "kafka"),
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p),
    }
    command = [sys.executable, "-m", "monitor", "demo", "--no-dashboard", "--port", str(free_port())]
    command += ["--drift-after", "0", "--duration", str(LONGEST_WAIT_S)]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    complete = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if _notifications_complete(lines):
                complete.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        completed_in_time = complete.wait(LONGEST_WAIT_S + 30)
        interrupted_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    out = "\n".join(lines)
    assert completed_in_time, out[-4000:]
    assert time.monotonic() - interrupted_at < 30, "Ctrl-C took too long to stop the demo"
    assert code == 0, out[-4000:]
    assert "Reference registered" in out and "Receiver   http://127.0.0.1:" in out
    webhook = [line for line in lines if line.startswith(">>> Webhook")]
    assert all("signature ok" in line for line in webhook), out[-4000:]
    assert "dataset drift" in webhook[0]
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("Demo stopped after") and "'webhook': 0" not in summary
