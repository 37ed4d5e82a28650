"""``monitor reference add|list`` and ``monitor detect`` as a user runs them: real processes, their own
embedded ClickHouse path, JSON and table output, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.detectors.event_rows import T0

REPO = Path(__file__).resolve().parents[1]
MONITOR = REPO / ".venv" / "bin" / "monitor"

WRITE_EVENTS = """
import sys
from pathlib import Path
import numpy as np
from monitor.settings import load_settings
from monitor.storage import open_storage
from tests.detectors.event_rows import Rows, spread, write_events
storage = open_storage(load_settings(Path(sys.argv[1])).clickhouse)
rng = np.random.default_rng(3)
n = 1500
write_events(storage, Rows("fraud", spread(n), {
    "amount": rng.normal(140, 15, n),
    "country": rng.choice(["DE", "FR", "BR"], n),
    "is_new": rng.random(n) < 0.3,
}, prediction=rng.random(n)))
"""

HOLD_PATH = """
import sys, time
from pathlib import Path
from monitor.settings import load_settings
from monitor.storage import open_storage
storage = open_storage(load_settings(Path(sys.argv[1])).clickhouse)  # kept open
print("ready", flush=True)
time.sleep(120)
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return subprocess.run(
        [str(MONITOR), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    import pandas as pd

    from tests.detectors.event_rows import reference_frame

    reference_frame(3000).to_parquet(tmp_path / "train.parquet")
    config = {
        "clickhouse": {"dsn": f"chdb://{tmp_path / 'db'}"},
        "models": {
            "fraud": {
                "features": {"amount": "numerical", "country": "categorical", "is_new": "categorical"},
                "min_samples": 100,
            }
        },
    }
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-c", WRITE_EVENTS, str(tmp_path / "monitor.yaml")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
        capture_output=True,
        timeout=180,
    )
    del pd
    return tmp_path


@pytest.mark.slow
def test_reference_add_then_detect(workspace: Path) -> None:
    added = _run("reference", "add", "--model", "fraud", "--file", "train.parquet", cwd=workspace)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().startswith("fraud version 1 (training): 3,000 rows, 3 features")
    assert "registered" in added.stderr  # progress on stderr

    end = T0.isoformat().replace("+00:00", "Z")
    result = _run("detect", "--model", "fraud", "--end", end, "--window", "1h", "--format", "json", cwd=workspace)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "ok" and doc["n_current"] == 1500 and doc["reference_version"] == "1"
    assert doc["window_start"] == "2026-11-20T11:00:00+00:00" and doc["window_end"] == "2026-11-20T12:00:00+00:00"
    assert doc["dataset_drift"] is True and doc["drifted_features"] == ["amount", "country"]
    new = [r for r in doc["results"] if r["detector"] == "data_quality" and r["statistic"] == "new_categories"]
    assert {r["column"]: r["value"] for r in new} == {"country": 1, "is_new": 0}

    table = _run("detect", "--model", "fraud", "--end", end, "--fail-on-drift", cwd=workspace)
    assert table.returncode == 1  # gating on dataset drift
    assert "feature_drift: DRIFT" in table.stdout and "new_categories" in table.stdout

    listed = _run("reference", "list", "--model", "fraud", "--format", "json", cwd=workspace)
    assert [r["version"] for r in json.loads(listed.stdout)] == ["1"]

    for args, message in (
        (("detect", "--model", "nope"), "unknown model 'nope'"),
        (("detect", "--model", "fraud", "--end", "yesterday"), "--end: invalid timestamp"),
    ):
        failed = _run(*args, cwd=workspace)
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.strip().count("\n") == 0 and message in failed.stderr
        assert failed.stderr.startswith("monitor: error: ")


@pytest.mark.slow
def test_detect_without_reference_and_with_the_path_held(workspace: Path) -> None:
    missing = _run("detect", "--model", "fraud", cwd=workspace)
    assert missing.returncode == 2 and "has no reference" in missing.stderr
    assert "monitor reference add --model fraud" in missing.stderr
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_PATH, str(workspace / "monitor.yaml")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        busy = _run("detect", "--model", "fraud", cwd=workspace)
        assert busy.returncode == 3
        assert "in use by another process" in busy.stderr and "/api/v1/models/<model>/detect" in busy.stderr
        assert "Traceback" not in busy.stderr
    finally:
        holder.kill()
        holder.wait(timeout=30)
