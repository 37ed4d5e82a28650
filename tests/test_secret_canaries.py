"""No secret reaches the logs: every failure path that logs, run as the real command, with canary secrets.

Each canary is a unique string configured as a secret (the ClickHouse password, the Kafka SASL
password, the API token, webhook URLs and their signing secret, the Slack URL, the PagerDuty routing
key). The commands run as subprocesses in both log formats, their whole stdout and stderr are
captured, and no canary may appear in either:

- ClickHouse unreachable (``monitor ingest`` with an ``http://`` DSN to a closed port);
- Kafka unreachable (``monitor ingest`` with SASL to a closed port);
- every notification receiver failing with 500s whose body echoes the request (``monitor detect``);
- a detector raising (``monitor up``: a reference whose stored profile is corrupt), which logs a
  traceback - the path that printed every frame's locals (the settings, so every secret) before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts.receivers import Received, Receiver, Reply
from tests.conftest import free_port
from tests.detectors.event_rows import reference_frame

REPO = Path(__file__).resolve().parents[1]
MONITOR = REPO / ".venv" / "bin" / "monitor"
FEATURES = {"amount": "numerical", "country": "categorical", "is_new": "categorical"}
CANARIES = {
    "clickhouse password": "CanaryChPw7731",
    "kafka password": "CanaryKafkaPw4412",
    "api token": "CanaryApiTok9902",
    "webhook url token": "CanaryHookTok5517",
    "webhook signing secret": "CanarySignSec2208",
    "slack url": "CanarySlackPath6630",
    "pagerduty routing key": "CanaryPdKey00000000000000000001",  # 32 characters, as PagerDuty requires
}
FORMATS = ("console", "json")

SETUP = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from monitor.cli import main
from monitor.settings import load_settings
from monitor.storage import open_storage
from tests.detectors.event_rows import Rows, spread, write_events

config, reference = sys.argv[1], sys.argv[2]
storage = open_storage(load_settings(Path(config)).clickhouse)
rng = np.random.default_rng(5)
n = 1200
for model in ("fraud", "served", "broken"):
    features = {
        "amount": rng.normal(150, 15, n),  # the reference has mean 100: drift
        "country": rng.choice(["DE", "FR", "BR"], n),
        "is_new": rng.random(n) < 0.3,
    }
    end = datetime.now(UTC)
    write_events(storage, Rows(model, spread(n, end, timedelta(hours=2)), features, prediction=rng.random(n)))
storage.close()
for model in ("fraud", "served", "broken"):
    try:
        main(["reference", "add", "--model", model, "--file", reference, "--config", config])
    except SystemExit as exc:
        assert not exc.code, exc.code
# A detector that raises, by real means: a newer version of broken's reference row whose profile is
# not JSON (as a failed partial write or a hand edit would leave it).
storage = open_storage(load_settings(Path(config)).clickhouse)
table = storage.table("references")
columns = [r[0] for r in storage.rows(f"SELECT name FROM system.columns WHERE database = '{storage.database}' "
                                      "AND table = 'references' ORDER BY position")]
select = ", ".join("'{not json' AS profile" if c == "profile" else
                   "now64(6) + 1 AS created_at" if c == "created_at" else f"`{c}`" for c in columns)
storage.command(f"INSERT INTO {table} SELECT {select} FROM {table} FINAL WHERE model = 'broken'")
storage.close()
"""

FORGET_ALERTS = """
import sys
from pathlib import Path
from monitor.settings import load_settings
from monitor.storage import open_storage
storage = open_storage(load_settings(Path(sys.argv[1])).clickhouse)
for table in ("alerts", "alert_state", "alert_outbox", "schedule_runs"):  # no open alert, no run yet
    storage.command(f"TRUNCATE TABLE {storage.table(table)}")
"""


def echo_everything(received: Received) -> Reply:
    """A receiver that fails and echoes the request (path, query and headers) in its answer."""
    return Reply(500, json.dumps({"path": received.path, "headers": received.headers})[:2000])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    # A wide, plain terminal: Rich must not wrap a canary over two lines and hide it from the check.
    env.update(COLUMNS="400", PYTHONPATH=str(REPO), NO_COLOR="1", **extra)
    return env


def _assert_clean(output: str, what: str) -> None:
    leaked = [name for name, value in CANARIES.items() if value in output]
    assert not leaked, f"{what}: {', '.join(leaked)} in the output:\n{output[-4000:]}"


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MONITOR), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def hooks() -> Any:
    receiver = Receiver(default=Reply(500, "down"), validate=echo_everything)
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, hooks: Receiver) -> Path:
    """A configuration holding every canary, an embedded database of its own with drifting events for
    two models, a reference for each, and ``broken``'s reference corrupted."""
    root = tmp_path_factory.mktemp("canaries")
    reference_frame(3000).to_parquet(root / "train.parquet")
    base = f"http://127.0.0.1:{hooks.port}"
    alerts = [{"when": "dataset_drift", "notify": ["retrain", "team-slack", "oncall"]}]
    model = {"features": FEATURES, "min_samples": 100, "schedule": {"every": "1h"}, "window": "1h"}
    doc = {
        "clickhouse": {"dsn": f"chdb://{root / 'db'}"},
        "api": {"token": CANARIES["api token"]},
        "kafka": {
            "bootstrap": f"127.0.0.1:{free_port()}",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "monitor",
            "sasl_password": CANARIES["kafka password"],
            "connect_timeout": "3s",
        },
        "channels": {
            "retrain": {
                "type": "webhook",
                "url": f"{base}/hook/{CANARIES['webhook url token']}?token={CANARIES['webhook url token']}",
                "secret": CANARIES["webhook signing secret"],
            },
            "team-slack": {"type": "slack", "url": f"{base}/services/{CANARIES['slack url']}"},
            "oncall": {"type": "pagerduty", "routing_key": CANARIES["pagerduty routing key"], "url": f"{base}/pd"},
        },
        "models": {
            "fraud": {**model, "alerts": alerts},  # for monitor detect
            "served": {**model, "alerts": alerts},  # for monitor up (its first run must fire)
            "broken": model,
        },
        "alerting": {
            "backoff_initial": "50ms",
            "backoff_max": "200ms",
            "poll_interval": "50ms",
            "request_timeout": "2s",
            "give_up_after": "2s",
            "default_cooldown": "1s",  # each run notifies again, so both formats see failures
        },
        "scheduler": {"delay": "0s"},
    }
    (root / "monitor.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    setup = subprocess.run(
        [sys.executable, "-c", SETUP, str(root / "monitor.yaml"), str(root / "train.parquet")],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    return root


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_clickhouse_unreachable(tmp_path: Path, fmt: str) -> None:
    dsn = f"http://monitor:{CANARIES['clickhouse password']}@127.0.0.1:{free_port()}/monitor"
    result = _run(
        ["ingest", "--idle-timeout", "1"],
        tmp_path,
        _env(MONITOR_CLICKHOUSE_DSN=dsn, MONITOR_LOG_FORMAT=fmt, MONITOR_API_TOKEN=CANARIES["api token"]),
    )
    assert result.returncode == 3, result.stderr
    assert "cannot open ClickHouse at http://monitor:***@127.0.0.1" in result.stderr  # the failure is reported
    _assert_clean(result.stdout + result.stderr, f"ClickHouse unreachable ({fmt})")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_kafka_unreachable(workdir: Path, tmp_path: Path, fmt: str) -> None:
    dsn = f"chdb://{tmp_path / 'db'}"  # a path of its own: the module's database may be in use
    result = _run(
        ["ingest", "--idle-timeout", "1", "--config", str(workdir / "monitor.yaml")],
        tmp_path,
        _env(MONITOR_CLICKHOUSE_DSN=dsn, MONITOR_LOG_FORMAT=fmt),
    )
    assert result.returncode == 3, result.stderr
    assert "cannot reach Kafka" in result.stderr and "ECONNREFUSED" in result.stderr
    _assert_clean(result.stdout + result.stderr, f"Kafka unreachable ({fmt})")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_receivers_failing(workdir: Path, hooks: Receiver, fmt: str) -> None:
    before = len(hooks.requests)
    result = _run(
        ["detect", "--model", "fraud", "--format", "json", "--wait-deliveries", "15"],
        workdir,
        _env(MONITOR_LOG_FORMAT=fmt),
    )
    assert result.returncode == 0, result.stderr
    deliveries = json.loads(result.stdout)["alerts"]["deliveries"]
    assert deliveries["failed"] == 3 and deliveries["delivered"] == 0, deliveries
    received = hooks.requests[before:]
    assert {r.path.split("/")[1] for r in received} == {"hook", "services", "pd"}
    assert all(r.status == 500 for r in received)
    assert "notification failed" in result.stderr and "HTTP 500" in result.stderr
    _assert_clean(result.stdout + result.stderr, f"failing receivers ({fmt})")


def _serve_until(args: list[str], cwd: Path, env: dict[str, str], wanted: list[str], timeout: float) -> str:
    """Run ``monitor ARGS`` until every ``wanted`` text appeared in its output; stop it; the whole output."""
    process = subprocess.Popen(
        [str(MONITOR), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not all(w in "".join(lines) for w in wanted):
            if process.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=10)
    return "".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_detector_raising_in_the_service(workdir: Path, fmt: str) -> None:
    # No alert open and no run recorded yet: this run catches up at once, fires and notifies afresh.
    forget = subprocess.run(
        [sys.executable, "-c", FORGET_ALERTS, str(workdir / "monitor.yaml")],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert forget.returncode == 0, forget.stderr[-3000:]
    wanted = ["detection run failed", "notification failed"]
    output = _serve_until(
        ["up", "--no-consumer", "--port", str(free_port()), "--config", str(workdir / "monitor.yaml")],
        workdir,
        _env(MONITOR_LOG_FORMAT=fmt),
        wanted,
        timeout=90,
    )
    assert all(w in output for w in wanted), output[-4000:]
    assert "JSONDecodeError" in output  # the traceback is there (in both formats) ...
    if fmt == "json":
        failed = next(json.loads(line) for line in output.splitlines() if '"detection run failed"' in line)
        assert failed["exception"][0]["exc_type"] == "JSONDecodeError" and failed["exception"][0]["frames"]
        assert all("locals" not in frame or not frame["locals"] for frame in failed["exception"][0]["frames"])
    _assert_clean(output, f"detector raising in monitor up ({fmt})")  # ... and no secret


def test_settings_repr_and_dump_hide_secrets(workdir: Path) -> None:
    """The configuration object itself: repr, str and JSON dump show no secret."""
    from monitor.settings import load_settings

    settings = load_settings(
        workdir / "monitor.yaml",
        overrides={"clickhouse": {"dsn": f"https://monitor:{CANARIES['clickhouse password']}@ch.internal/monitor"}},
    )
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        _assert_clean(text, "settings")
    assert "https://monitor:***@ch.internal/monitor" in repr(settings.clickhouse)
    assert settings.clickhouse.dsn.get_secret_value().endswith(
        f":{CANARIES['clickhouse password']}@ch.internal/monitor"
    )
