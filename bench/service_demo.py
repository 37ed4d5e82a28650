"""Measure the demo and the service (issue 5).

1. Time from starting ``make demo`` (after ``make install``) to the first drift alert reaching the
   built-in receiver, then Ctrl-C (SIGINT) and the time to a clean exit.
2. Resident memory of the demo process (service + consumer + scheduler + API + the traffic generator,
   all in one process) at steady state with ``--rate 1000`` events/s, sampled from /proc every 5 s.

    .venv/bin/python bench/service_demo.py first-alert [--command "make demo"]
    .venv/bin/python bench/service_demo.py memory [--rate 1000] [--seconds 180]

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
    args = parser.parse_args()
    if args.what == "first-alert":
        first_alert(args.command, args.timeout)
    else:
        memory(args.rate, args.seconds, args.port)


if __name__ == "__main__":
    sys.exit(main())
