"""The whole path with the real detectors: events in ClickHouse, a reference file, the scheduler calling
run_detection, the alert engine, the outbox and a signed webhook; and ``monitor detect`` as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from alerts.delivery import DeliveryWorker
from alerts.engine import AlertEngine
from alerts.store import list_alerts
from monitor.pipeline import WindowPipeline
from monitor.scheduling import DetectionScheduler
from monitor.settings import load_settings
from monitor.storage import Storage
from tests.alerts.helpers import FAST_DELIVERY
from tests.alerts.receivers import webhook_validator
from tests.conftest import REPO, free_port
from tests.detectors.event_rows import Rows, spread, write_events

SECRET = "pipeline-secret"
FEATURES = {"amount": "numerical", "country": "categorical"}
pytestmark = pytest.mark.slow


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(100 + shift, 15, n),
            "country": rng.choice(["DE", "FR", "IT"], n, p=[0.5, 0.3, 0.2]),
            "prediction": rng.random(n),
        }
    )


def traffic(storage: Storage, n: int, end: datetime, shift: float, seed: int = 3) -> None:
    data = frame(n, seed, shift)
    write_events(
        storage,
        Rows(
            "fraud",
            spread(n, end=end, span=timedelta(minutes=50)),
            {c: data[c].to_numpy() for c in FEATURES},
            prediction=data["prediction"].to_numpy(),
            event_ids=[f"e-{seed}-{i}" for i in range(n)],
        ),
    )


def config(dsn: str, database: str, reference: Path, hook_url: str, schedule: Any) -> dict[str, Any]:
    return {
        "clickhouse": {"dsn": dsn, "database": database},
        "channels": {"retrain": {"type": "webhook", "url": hook_url, "secret_env": "TEST_RETRAIN_SECRET"}},
        "models": {
            "fraud": {
                "features": FEATURES,
                "reference": {"file": str(reference)},
                "schedule": schedule,
                "window": "1h",
                "min_samples": 200,
                "alerts": [{"when": "feature_drift", "features": ["amount"], "notify": ["retrain"]}],
            }
        },
        "scheduler": {"delay": 0},
        "alerting": FAST_DELIVERY,
    }


def test_scheduled_detection_sends_a_signed_retraining_webhook(
    storage: Storage, tmp_path: Path, receivers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_RETRAIN_SECRET", SECRET)
    reference = tmp_path / "reference.parquet"
    frame(4000, seed=1).to_parquet(reference)
    traffic(storage, 2000, end=datetime.now(UTC) - timedelta(seconds=30), shift=30.0)  # amount moved by 2 sigma
    hook = receivers(webhook_validator(SECRET))
    settings = load_settings(overrides=config(storage.dsn, storage.database, reference, hook.url, {"every": "10s"}))
    worker = DeliveryWorker(storage, settings)
    scheduler = DetectionScheduler(
        storage, settings, WindowPipeline(storage, settings, AlertEngine(storage, settings, on_enqueued=worker.wake))
    )
    components = [worker, scheduler]  # as monitor up starts them
    for component in components:
        component.start()
    try:
        (received,) = hook.wait_for(1, timeout=60)  # the catch-up run at start evaluates the latest due window
    finally:
        for component in reversed(components):
            component.stop(30)  # the scheduler waits for the run in progress: its record is then final
    last = scheduler.last_record("fraud")
    body = received.json()
    assert body["model"] == "fraud" and body["event"] == "alert.firing"
    assert [f["name"] for f in body["drifted_features"]] == ["amount"]
    amount = body["drifted_features"][0]
    assert amount["value"] > amount["threshold"] and "ks" in amount["stats"]
    end = datetime.fromisoformat(body["window"]["end"].replace("Z", "+00:00"))
    start = datetime.fromisoformat(body["window"]["start"].replace("Z", "+00:00"))
    assert end.timestamp() % 10 == 0 and end - start == timedelta(hours=1)  # aligned to the schedule
    assert last is not None and last.status == "ok" and last.window_end <= end
    assert list_alerts(storage, "fraud")[0].status == "firing"


def test_monitor_detect_evaluates_alerts_and_waits_for_its_notifications(tmp_path: Path, receivers: Any) -> None:
    """``monitor detect`` in its own process and embedded path: one channel answers, one is down."""
    reference = tmp_path / "reference.parquet"
    frame(4000, seed=1).to_parquet(reference)
    hook = receivers(webhook_validator(SECRET))
    dsn = f"chdb://{tmp_path / 'db'}"
    doc = config(dsn, "monitor", reference, hook.url, "*/5 * * * *")
    doc["channels"]["down"] = {"type": "slack", "url": f"http://127.0.0.1:{free_port()}/hook"}
    doc["models"]["fraud"]["alerts"][0]["notify"] = ["retrain", "down"]
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    end = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    setup = (
        "import sys\n"
        "from datetime import datetime\n"
        "from monitor.settings import load_settings\n"
        "from monitor.storage import open_storage\n"
        "from tests.alerts.test_pipeline import traffic\n"
        "settings = load_settings(__import__('pathlib').Path(sys.argv[1]))\n"
        "traffic(open_storage(settings.clickhouse), 1500, datetime.fromisoformat(sys.argv[2]), 30.0)\n"
    )
    subprocess.run([sys.executable, "-c", setup, str(path), end.isoformat()], cwd=REPO, check=True, timeout=120)
    env = {**os.environ, "TEST_RETRAIN_SECRET": SECRET}
    started = time.monotonic()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "monitor", "detect", "--config", str(path), "--model", "fraud"),
            *("--end", end.isoformat(), "--format", "json", "--wait-deliveries", "2"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    fired = {"alert_id": "fraud/feature_drift:amount", "kind": "firing", "severity": "warning"}
    assert result["alerts"]["events"] == [fired]
    assert result["alerts"]["deliveries"] == {"delivered": 1, "failed": 0, "pending": 1, "failures": []}
    assert [r.status for r in hook.requests] == [200]
    assert hook.requests[0].json()["window"]["end"] == "2026-11-20T12:00:00Z"
    assert elapsed < 60  # 2 s of waiting for the unreachable channel, the rest is start-up and detection
    # the pending count comes from the outbox rows of that process: left queued for `monitor up`
    # (tests/alerts/test_restart.py shows a later process delivering such rows)
