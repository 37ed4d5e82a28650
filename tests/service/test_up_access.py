"""``monitor up`` as a real process: loopback only without a token, and with tokens served on every
interface with access control on (the dashboard staying on loopback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from monitor.ports import free_port
from tests.service.api_support import stop_service

pytestmark = pytest.mark.slow
WRITE, READ = "up-write-token-123", "up-read-token-456"


# A configuration whose channels and Kafka client read their secrets from variables: the dashboard
# child must not inherit those variables.
SECRET_CONFIG = """
kafka: {security_protocol: SASL_PLAINTEXT, sasl_mechanism: PLAIN, sasl_username: monitor,
        sasl_password_env: SECRET_KAFKA_PASSWORD}
channels:
  oncall: {type: pagerduty, routing_key_env: SECRET_PD_KEY}
  retrain: {type: webhook, url_env: SECRET_HOOK_URL, secret_env: SECRET_HOOK_SIGNING,
            headers: {Authorization: "Bearer ${env:SECRET_HOOK_HEADER}"}}
"""
SECRET_SOURCES = {
    "SECRET_PD_KEY": "pd-routing-key-00000000000000000",
    "SECRET_HOOK_URL": "https://ci.example.com/hooks/retrain?token=hook-token",
    "SECRET_HOOK_SIGNING": "hook-signing-secret",
    "SECRET_HOOK_HEADER": "hook-header-token",
    "SECRET_KAFKA_PASSWORD": "kafka-password",
    "UNRELATED_SETTING": "kept",
}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update({"MONITOR_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'db'}", "MONITOR_LOG_FORMAT": "json", **extra})
    return env


@pytest.mark.parametrize(
    ("args", "extra_env", "shown"),
    [
        (["--host", "0.0.0.0"], {}, "'0.0.0.0'"),
        (["--host", "::"], {}, "'::'"),
        (["--host", "192.168.1.10"], {}, "'192.168.1.10'"),
        ([], {"MONITOR_API__HOST": "0.0.0.0"}, "'0.0.0.0'"),
        (["--host", "0.0.0.0"], {"MONITOR_API_TOKEN": " "}, "'0.0.0.0'"),  # blank is no token
        # The dashboard reads everything through the API: publishing it publishes the API.
        (["--dashboard", "--dashboard-host", "0.0.0.0"], {}, "'0.0.0.0'"),
        (["--dashboard"], {"MONITOR_API__DASHBOARD_HOST": "10.1.2.3"}, "'10.1.2.3'"),
    ],
)
def test_up_without_a_token_refuses_other_interfaces(
    tmp_path: Path, args: list[str], extra_env: dict[str, str], shown: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "up", *args, "--port", str(free_port()), "--no-consumer"],
        env=_env(tmp_path, **extra_env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"monitor: error: refusing to listen on {shown} without an API token")
    assert "MONITOR_API_TOKEN" in lines[0]
    assert not (tmp_path / "db").exists()  # refused before anything was opened


def _outward_address() -> str | None:
    """This machine's address on its default route, if it has one other than loopback."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # UDP: nothing is sent
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def _child_environ(parent: int, marker: bytes) -> dict[str, str]:
    """The environment of ``parent``'s child process whose command line contains ``marker`` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent or marker not in (entry / "cmdline").read_bytes():
                continue
            raw = (entry / "environ").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
        return {key: value for key, _, value in pairs}
    raise AssertionError(f"no child of {parent} runs {marker!r}")


def _wait(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_up_with_tokens_serves_every_interface_with_access_control(tmp_path: Path) -> None:
    port, dashboard_port = free_port(), free_port()
    (tmp_path / "monitor.yaml").write_text(SECRET_CONFIG, encoding="utf-8")  # read from the working directory
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "up",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--no-consumer",
            "--no-scheduler",
            "--dashboard",
            "--dashboard-port",
            str(dashboard_port),
        ],
        env=_env(tmp_path, MONITOR_API_TOKEN=WRITE, MONITOR_API_READ_TOKEN=READ, **SECRET_SOURCES),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    local = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{local}/healthz", 90)
        assert httpx.get(f"{local}/readyz", timeout=10).status_code == 200
        assert httpx.get(f"{local}/api/v1/models", timeout=10).status_code == 401
        assert httpx.get(f"{local}/metrics", timeout=10).status_code == 401
        read = {"Authorization": f"Bearer {READ}"}
        assert httpx.get(f"{local}/api/v1/models", headers=read, timeout=10).status_code == 200
        assert httpx.get(f"{local}/metrics", headers=read, timeout=10).status_code == 200
        event = {
            "event_id": "1",
            "model": "x",
            "timestamp": "2026-11-27T10:00:00Z",
            "features": {"a": 1.0},
            "prediction": 1,
        }
        assert httpx.post(f"{local}/api/v1/events", json=event, headers=read, timeout=10).status_code == 403
        write = {"Authorization": f"Bearer {WRITE}"}
        assert httpx.post(f"{local}/api/v1/events", json=event, headers=write, timeout=10).status_code == 200
        _wait(f"http://127.0.0.1:{dashboard_port}/_stcore/health", 90)
        environ = _child_environ(proc.pid, b"streamlit")
        assert environ.get("MONITOR_API_READ_TOKEN") == READ  # what the dashboard reads with
        assert WRITE not in environ.values()
        assert "MONITOR_API_TOKEN" not in environ and "MONITOR_CLICKHOUSE_DSN" not in environ
        # Nor the variables the configuration reads secrets from (they were passed on before).
        assert not {name for name in SECRET_SOURCES if name.startswith("SECRET_")} & set(environ)
        assert "UNRELATED_SETTING" in environ  # the rest of the environment is
        outward = _outward_address()
        if outward is not None:  # the API answers on the machine's address, the dashboard does not
            assert httpx.get(f"http://{outward}:{port}/healthz", timeout=10).status_code == 200
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{outward}:{dashboard_port}/_stcore/health", timeout=10)
    finally:
        err = stop_service(proc)
    assert proc.returncode == 0, err[-3000:]
    assert WRITE not in err and READ not in err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_up_without_a_token_serves_loopback_as_before(tmp_path: Path, host: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "up", "--host", host, "--port", str(port), "--no-consumer", "--no-scheduler"],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    try:
        _wait(f"{url}/healthz", 90)
        assert httpx.get(f"{url}/api/v1/models", timeout=10).status_code == 200  # reads open, as before
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200
        refused = httpx.post(f"{url}/api/v1/labels", json={}, timeout=10)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "writes_disabled"
    finally:
        err = stop_service(proc)
    assert proc.returncode == 0, err[-3000:]
    assert f"API:       {url}" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--host", "127.0.0.1 "], 2, "monitor: error: --host '127.0.0.1 ': not an address to listen on ("),
        (["--host", "no-such-host.invalid"], 2, "monitor: error: --host 'no-such-host.invalid': not an address"),
        (["--port", "TAKEN"], 3, "monitor: error: the HTTP API could not listen on 127.0.0.1:TAKEN: Address already"),
    ],
)
def test_an_address_it_cannot_listen_on_stops_start_up_at_once_with_the_reason(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    """A typo in --host is bad usage (exit 2) found before anything starts; a port another process holds
    is found before the consumer starts (exit 3, with the system's reason), not after it gave up on Kafka."""
    taken = socket.create_server(("127.0.0.1", 0))
    port = str(taken.getsockname()[1])
    args = [a.replace("TAKEN", port) for a in args]
    if "--port" not in args:
        args += ["--port", str(free_port())]
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "up", *args],
            # a broker nobody runs: the consumer would take 30 s to give up on it
            env=_env(tmp_path, MONITOR_API_TOKEN=WRITE, MONITOR_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        taken.close()
    assert result.returncode == code, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(message.replace("TAKEN", port)), result.stderr[-2000:]
    assert time.monotonic() - started < 20
