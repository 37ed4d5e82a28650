"""``monitor reference add|list`` and ``monitor detect`` as a user runs them.

Most checks go through the real entry point (``monitor.cli.main``) in this process, against the test's
own database in the session's embedded ClickHouse; two run real processes with their own data path:
the whole flow once, and the case where another process (a running ``monitor up``) holds the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from monitor.cli import main
from monitor.storage import Storage
from tests.detectors.event_rows import T0, Rows, reference_frame, settings_for, spread, write_events

REPO = Path(__file__).resolve().parents[1]
MONITOR = REPO / ".venv" / "bin" / "monitor"
END = T0.isoformat().replace("+00:00", "Z")
FEATURES = {"amount": "numerical", "country": "categorical", "is_new": "categorical"}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``monitor ARGS`` through the console-script entry point; (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _drifting_traffic(storage: Storage, n: int = 1500) -> None:
    rng = np.random.default_rng(3)
    features = {
        "amount": rng.normal(140, 15, n),  # the reference has mean 100, std 15
        "country": rng.choice(["DE", "FR", "BR"], n),  # BR is new, IT vanished
        "is_new": rng.random(n) < 0.3,
    }
    write_events(storage, Rows("fraud", spread(n), features, prediction=rng.random(n)))


@pytest.fixture
def config(storage: Storage, tmp_path: Path) -> Path:
    reference_frame(3000).to_parquet(tmp_path / "train.parquet")
    settings_for(storage, tmp_path, {"fraud": {"features": FEATURES, "min_samples": 100}})
    return tmp_path / "monitor.yaml"


def test_reference_add_list_and_detect(
    storage: Storage, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, "detect", "--model", "fraud", "--config", str(config))
    assert code == 2 and "has no reference" in err and "monitor reference add --model fraud" in err

    train = str(tmp_path / "train.parquet")
    code, out, err = _cli(capsys, "reference", "add", "--model", "fraud", "--file", train, "-c", str(config))
    assert code == 0, err
    assert out.strip() == f"fraud version 1 (training): 3,000 rows, 3 features + prediction + label, from {train}"
    assert "registered" in err  # progress on stderr
    code, out, _ = _cli(capsys, "reference", "list", "--model", "fraud", "--format", "json", "-c", str(config))
    (listed,) = json.loads(out)
    assert listed["version"] == "1" and listed["rows"] == 3000 and listed["features"] == FEATURES

    _drifting_traffic(storage)
    args = ("detect", "--model", "fraud", "--end", END, "--window", "1h", "-c", str(config))
    code, out, err = _cli(capsys, *args, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "ok" and doc["n_current"] == 1500 and doc["reference_version"] == "1"
    assert doc["window_start"] == "2026-11-20T11:00:00+00:00" and doc["window_end"] == "2026-11-20T12:00:00+00:00"
    assert doc["dataset_drift"] is True and doc["drifted_features"] == ["amount", "country"]
    new = [r for r in doc["results"] if r["detector"] == "data_quality" and r["statistic"] == "new_categories"]
    assert {r["column"]: r["value"] for r in new} == {"country": 1, "is_new": 0}
    stored = storage.rows(f"SELECT count() FROM {storage.table('detector_results')} FINAL")[0][0]
    assert stored == len(doc["results"])

    code, out, _ = _cli(capsys, *args, "--fail-on-drift")
    assert code == 1  # gating on dataset drift
    assert "feature_drift: DRIFT" in out and "new_categories" in out and "amount" in out

    for bad, message in (
        (("detect", "--model", "nope", "-c", str(config)), "unknown model 'nope'"),
        (("detect", "--model", "fraud", "--end", "yesterday", "-c", str(config)), "--end: invalid timestamp"),
        (("detect", "--model", "fraud", "--window", "soon", "-c", str(config)), "--window: invalid duration"),
        (("reference", "add", "--model", "fraud", "--file", "missing.csv", "-c", str(config)), "no such file"),
        (("reference", "add", "--model", "fraud", "--file", train, "--version", "", "-c", str(config)), "empty"),
        (("reference", "add", "--model", "a/b", "--file", train, "-c", str(config)), "must not contain '/'"),
        (("detect", "--model", "a/b", "-c", str(config)), "unknown model 'a/b': a model name must not contain"),
    ):
        code, _, err = _cli(capsys, *bad)
        assert code == 2 and err.startswith("monitor: error: ") and message in err
        assert err.strip().count("\n") == 0


WRITE_EVENTS = """
import sys
from pathlib import Path
from monitor.settings import load_settings
from monitor.storage import open_storage
from tests.test_cli_detect import _drifting_traffic
_drifting_traffic(open_storage(load_settings(Path(sys.argv[1])).clickhouse))
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
def own_path(tmp_path: Path) -> Path:
    """A folder with a monitor.yaml whose embedded database is a path of its own (for other processes)."""
    reference_frame(3000).to_parquet(tmp_path / "train.parquet")
    doc = {"clickhouse": {"dsn": f"chdb://{tmp_path / 'db'}"}, "models": {"fraud": {"features": FEATURES}}}
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp_path


@pytest.mark.slow
def test_whole_processes(own_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", WRITE_EVENTS, str(own_path / "monitor.yaml")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)},
        check=True,
        capture_output=True,
        timeout=180,
    )
    added = _run("reference", "add", "--model", "fraud", "--file", "train.parquet", cwd=own_path)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("fraud version 1 (training)")
    result = _run("detect", "--model", "fraud", "--end", END, "--format", "json", cwd=own_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout is the document alone; logs and progress go to stderr
    assert doc["n_current"] == 1500 and doc["drifted_features"] == ["amount", "country"]


@pytest.mark.slow
def test_detect_while_another_process_holds_the_path(own_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_PATH, str(own_path / "monitor.yaml")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        busy = _run("detect", "--model", "fraud", cwd=own_path)
        assert busy.returncode == 3
        assert "in use by another process" in busy.stderr and "/api/v1/models/<model>/detect" in busy.stderr
        # chDB itself prints its lock error first; ours is the last line, and there is no traceback.
        assert "Traceback" not in busy.stderr
        assert busy.stderr.strip().splitlines()[-1].startswith("monitor: error: the embedded database")
    finally:
        holder.kill()
        holder.wait(timeout=30)
