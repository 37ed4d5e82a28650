"""The service killed with SIGKILL while deliveries are pending or in flight, then restarted.

Each child process has its own embedded ClickHouse path (chDB allows one path per process); the
parent watches the receivers and the child's progress lines, kills at a known point, starts a new
child on the same path and reads the outcome from it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.helpers import FAST_DELIVERY, PD_KEY
from tests.alerts.receivers import Reply, slack_validator, webhook_validator
from tests.conftest import REPO, free_port

SECRET = "restart-signing-secret"
pytestmark = pytest.mark.slow


def overrides(channels: dict[str, Any], request_timeout: str = "2s") -> str:
    return json.dumps(
        {
            "channels": channels,
            "models": {"fraud": {"alerts": [{"when": "dataset_drift", "notify": sorted(channels)}]}},
            "alerting": {**FAST_DELIVERY, "request_timeout": request_timeout},
        }
    )


def child(mode: str, dsn: str, settings: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TEST_PD_KEY": PD_KEY, "TEST_RETRAIN_SECRET": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.alerts.outbox_child", mode, dsn, "monitor", settings],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str], key: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited ({proc.poll()}): {proc.stderr.read() if proc.stderr else ''}")
        if line.startswith("{") and key in (data := json.loads(line)):
            return data[key]
    raise AssertionError(f"no {key!r} line from the child")


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def drain(dsn: str, settings: str) -> list[dict[str, Any]]:
    proc = child("drain", dsn, settings)
    rows = read_line(proc, "rows", timeout=90)
    assert proc.wait(timeout=30) == 0
    return rows


def test_pending_deliveries_are_delivered_once_after_sigkill(tmp_path: Path, receivers: Any) -> None:
    slack = receivers(slack_validator)
    down_port = free_port()  # nothing listens here until after the kill
    settings = overrides(
        {
            "team-slack": {"type": "slack", "url": slack.url},
            "retrain": {
                "type": "webhook",
                "url": f"http://127.0.0.1:{down_port}/hook",
                "secret_env": "TEST_RETRAIN_SECRET",
            },
        }
    )
    dsn = f"chdb://{tmp_path / 'db'}"
    first = child("fire", dsn, settings)
    try:
        enqueued = read_line(first, "enqueued")
        assert len(enqueued) == 2
        slack.wait_for(1)
        time.sleep(0.5)  # a few refused attempts at the hook
    finally:
        kill(first)

    hook = receivers(webhook_validator(SECRET), port=down_port)
    rows = {r["channel"]: r for r in drain(dsn, settings)}
    assert rows["retrain"]["status"] == "delivered" and rows["retrain"]["attempts"] >= 2
    assert rows["team-slack"]["status"] == "delivered" and rows["team-slack"]["attempts"] == 1
    time.sleep(0.2)
    assert [r.status for r in hook.requests] == [200]  # delivered once
    assert [r.status for r in slack.requests] == [200]  # delivered before the kill, never again
    assert hook.requests[0].headers["idempotency-key"] == rows["retrain"]["delivery_id"]


def test_a_send_cut_by_sigkill_is_retried_with_the_same_idempotency_key(tmp_path: Path, receivers: Any) -> None:
    """The one at-least-once window: the request left, the process died before recording the answer."""
    hook = receivers(webhook_validator(SECRET), script=[Reply(200, "ok", hang=10)])
    settings = overrides(
        {"retrain": {"type": "webhook", "url": hook.url, "secret_env": "TEST_RETRAIN_SECRET"}}, request_timeout="1s"
    )
    dsn = f"chdb://{tmp_path / 'db'}"
    first = child("fire", dsn, settings)
    try:
        read_line(first, "enqueued")
        hook.wait_for(1, accepted=False)  # the request is in flight (the receiver hangs)
    finally:
        kill(first)
    started = time.monotonic()
    rows = drain(dsn, settings)
    assert [(r["status"], r["attempts"]) for r in rows] == [("delivered", 2)]
    first_try, second_try = hook.requests
    assert first_try.headers["idempotency-key"] == second_try.headers["idempotency-key"] == rows[0]["delivery_id"]
    assert first_try.body == second_try.body
    assert second_try.status == 200
    # the resend waited for the dead worker's lease (2 x request timeout + 1 s) to expire
    assert time.monotonic() - started < 30
