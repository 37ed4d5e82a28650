"""Measure the demo and the service (issue 5).

1. Time from starting ``make demo`` (after ``make install``) to the first drift alert reaching the
   built-in receiver, then Ctrl-C (SIGINT) and the time to a clean exit.
2. Resident memory of the demo process (service + consumer + scheduler + API + the traffic generator,
   all in one process) at steady state with ``--rate 1000`` events/s, sampled from /proc every 5 s.

    .venv/bin/python bench/service_demo.py first-alert [--command "make demo"]
    .venv/bin/python bench/service_demo.py memory [--rate 1000] [--seconds 180]
    .venv/bin/python bench/service_demo.py memory-up [--rate 1000] [--seconds 180]   # service alone

Set MONITOR_KAFKA_BOOTSTRAP to use a broker port other than 9092.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _reader(proc: subprocess.Popen, lines: list[tuple[float, str]], started: float) -> None:
    assert proc.stderr is not None
    for raw in proc.stderr:
        lines.append((time.monotonic() - started, raw.rstrip()))


def first_alert(command: str, timeout: float) -> None:
    started = time.monotonic()
    proc = subprocess.Popen(
        shlex.split(command),
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[tuple[float, str]] = []
    threading.Thread(target=_reader, args=(proc, lines, started), daemon=True).start()
    ready = alert = None
    while time.monotonic() - started < timeout and alert is None:
        time.sleep(0.2)
        for at, line in list(lines):
            if ready is None and line.startswith("Ready in"):
                ready = at
            if alert is None and line.startswith(">>> ") and "drift" in line:
                alert = (at, line)
    os.killpg(proc.pid, signal.SIGINT)
    stop_started = time.monotonic()
    code = proc.wait(120)
    stopped = time.monotonic() - stop_started
    print(f"command: {command}")
    print(f"ready after {ready:.1f} s" if ready is not None else "never ready")
    if alert:
        print(f"first drift alert after {alert[0]:.1f} s: {alert[1]}")
    else:
        print("no drift alert before the timeout")
    print(f"Ctrl-C to exit: {stopped:.1f} s, exit code {code}")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(rate: float, seconds: float, port: int) -> None:
    command = [
        str(REPO / ".venv" / "bin" / "monitor"),
        "demo",
        "--no-dashboard",
        "--rate",
        str(rate),
        "--duration",
        str(seconds),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []
    started = time.monotonic()
    threading.Thread(target=_reader, args=(proc, lines, started), daemon=True).start()
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        time.sleep(5)
        try:
            samples.append((time.monotonic() - started, _rss_mib(proc.pid)))
        except OSError:
            break
    proc.wait()
    steady = [rss for at, rss in samples if at >= seconds * 0.5]
    for at, rss in samples:
        print(f"{at:6.0f} s  {rss:7.1f} MiB")
    sent = [line for _, line in lines if line.startswith("Demo stopped")]
    print(sent[-1] if sent else "\n".join(line for _, line in lines[-20:]))
    if steady:
        print(f"steady state (second half): median {statistics.median(steady):.0f} MiB, max {max(steady):.0f} MiB")


def memory_up(rate: float, seconds: float, port: int, bootstrap: str) -> None:
    """`monitor up` alone in its own process (consumer, scheduler with the demo model every 30 s, API),
    fed by a producer in this process at ``rate`` events/s; RSS of the service process only."""
    import json
    import tempfile
    import uuid

    import httpx
    import yaml
    from kafka import KafkaProducer

    from monitor.demo import model as demo_model
    from monitor.kafka_local import broker
    from monitor.kafka_local.broker import BrokerSpec

    host, _, kport = bootstrap.rpartition(":")
    spec = BrokerSpec(home=REPO / ".cache" / "kafka", version="4.1.1", port=int(kport), host=host)
    broker.start(spec, progress=lambda m: print(m, file=sys.stderr))
    work = Path(tempfile.mkdtemp(prefix="bench-up-"))
    trained = demo_model.train()
    reference = demo_model.write_reference(trained, work / "reference.parquet")
    features = {name: "numerical" for name in demo_model.FEATURES.values()} | {"channel": "categorical"}
    suffix = uuid.uuid4().hex[:6]
    config = {
        "kafka": {
            "predictions_topic": f"bench-{suffix}",
            "labels_topic": f"bench-labels-{suffix}",
            "group_id": f"bench-{suffix}",
        },
        "models": {"bench": {"features": features, "schedule": {"every": "30s"}, "window": "30s", "min_samples": 200}},
    }
    (work / "monitor.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "MONITOR_KAFKA_BOOTSTRAP": bootstrap,
        "MONITOR_API_TOKEN": "bench",
        "MONITOR_API__REFERENCE_DIR": str(work),
        "MONITOR_CLICKHOUSE_DSN": f"chdb://{work / 'db'}",
        "MONITOR_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "monitor"), "up", "--config", str(work / "monitor.yaml"), "--port", str(port)],
        cwd=work,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    httpx.post(
        f"{url}/api/v1/models/bench/references",
        json={"file": reference.name},
        headers={"Authorization": "Bearer bench"},
        timeout=120,
    ).raise_for_status()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    rows = trained.serve.to_dict("records")
    sent, samples, started = 0, [], time.monotonic()
    next_sample = started + 5
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        now_ms = int(time.time() * 1000)
        while sent < due:
            row = rows[sent % len(rows)]
            doc = {"event_id": f"b{sent}", "model": "bench", "timestamp": now_ms, "features": row, "prediction": 0.5}
            producer.send(config["kafka"]["predictions_topic"], json.dumps(doc).encode())
            sent += 1
        if time.monotonic() >= next_sample:
            samples.append((time.monotonic() - started, _rss_mib(proc.pid)))
            next_sample += 5
        time.sleep(0.01)
    producer.flush()
    elapsed = time.monotonic() - started
    auth = {"Authorization": "Bearer bench"}
    models = httpx.get(f"{url}/api/v1/models", headers=auth, timeout=30).json()["models"]
    runs = httpx.get(f"{url}/api/v1/models/bench/runs", headers=auth, timeout=30).json()["runs"]
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(120)
    for at, rss in samples:
        print(f"{at:6.0f} s  {rss:7.1f} MiB")
    stored = next((m["events_24h"] for m in models if m["name"] == "bench"), 0)
    print(
        f"produced {sent:,} events in {elapsed:.0f} s ({sent / elapsed:,.0f}/s); stored {stored:,}; "
        f"detection runs {len(runs)}; monitor up exit code {code}"
    )
    steady = [rss for at, rss in samples if at >= seconds * 0.5]
    if steady:
        print(
            f"monitor up RSS, steady state (second half): median {statistics.median(steady):.0f} MiB, "
            f"max {max(steady):.0f} MiB"
        )
    broker.stop(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("first-alert")
    one.add_argument("--command", default="make demo")
    one.add_argument("--timeout", type=float, default=300)
    two = sub.add_parser("memory")
    two.add_argument("--rate", type=float, default=1000)
    two.add_argument("--seconds", type=float, default=180)
    two.add_argument("--port", type=int, default=18000)
    three = sub.add_parser("memory-up")
    three.add_argument("--rate", type=float, default=1000)
    three.add_argument("--seconds", type=float, default=180)
    three.add_argument("--port", type=int, default=18001)
    three.add_argument("--bootstrap", default=os.environ.get("MONITOR_KAFKA_BOOTSTRAP", "127.0.0.1:29092"))
    args = parser.parse_args()
    if args.what == "first-alert":
        first_alert(args.command, args.timeout)
    elif args.what == "memory":
        memory(args.rate, args.seconds, args.port)
    else:
        memory_up(args.rate, args.seconds, args.port, args.bootstrap)


if __name__ == "__main__":
    sys.exit(main())
