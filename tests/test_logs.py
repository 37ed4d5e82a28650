"""Logged tracebacks: present in both formats, never with local variables (they hold secrets)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CANARY = "CanaryLocal8812"

PROGRAM = f"""
import logging, sys
from monitor.logs import configure_logging, get_logger

configure_logging("info", sys.argv[1])
log = get_logger("probe")


def connect_somewhere():
    password = "{CANARY}"  # a local a traceback with locals would print
    raise ConnectionError("refused")


try:
    connect_somewhere()
except ConnectionError:
    log.exception("ours failed")
try:
    connect_somewhere()
except ConnectionError:
    logging.getLogger("thirdparty").exception("theirs failed")  # a library logging through the stdlib
"""


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_tracebacks_without_locals(fmt: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p),
        "COLUMNS": "400",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, fmt], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    output = result.stdout + result.stderr
    assert CANARY not in output
    assert output.count("connect_somewhere") >= 2 and "ConnectionError" in output  # the traceback is kept
    if fmt == "json":
        records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        assert [r["event"] for r in records] == ["ours failed", "theirs failed"]
        for record in records:
            (exception,) = record["exception"]
            assert exception["exc_type"] == "ConnectionError"
            assert [f["name"] for f in exception["frames"]][-1] == "connect_somewhere"
            assert all(not frame.get("locals") for frame in exception["frames"])


def test_a_chatty_librarys_repeats_show_once_per_window_with_a_count() -> None:
    """kafka-python logs four lines per reconnection attempt: each shows once a minute, then with the
    number left out; our own loggers and other libraries are never filtered."""
    import io
    import logging

    from monitor.logs import RepeatFilter

    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter("kafka", window=60.0, clock=lambda: now[0]))
    for name in ("kafka.net.manager", "kafkaesque", "monitor.ingest"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
    try:
        for attempt in range(5):
            now[0] = attempt * 10.0
            logging.getLogger("kafka.net.manager").error(
                "Connection failed: %s (backoff %.2f secs)", "refused", attempt
            )
            logging.getLogger("kafkaesque").error("not kafka-python %d", attempt)
            logging.getLogger("monitor.ingest").error("ours %d", attempt)
        now[0] = 61.0
        logging.getLogger("kafka.net.manager").error("Connection failed: %s (backoff %.2f secs)", "refused", 9)
        logging.getLogger("kafka.net.manager").error("Bootstrap failed: %s", "timeout")
    finally:
        for name in ("kafka.net.manager", "kafkaesque", "monitor.ingest"):
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).propagate = True
    lines = stream.getvalue().splitlines()
    kafka = [line for line in lines if "ailed" in line]
    assert kafka == [
        "Connection failed: refused (backoff 0.00 secs)",
        "Connection failed: refused (backoff 9.00 secs) (4 like it left out in the last 61 s)",
        "Bootstrap failed: timeout",
    ]
    assert [line for line in lines if line.startswith("ours")] == [f"ours {i}" for i in range(5)]
    assert [line for line in lines if line.startswith("not kafka")] == [f"not kafka-python {i}" for i in range(5)]


def test_every_process_filters_kafka_pythons_repeats() -> None:
    program = (
        "import logging\nfrom monitor.logs import configure_logging\nconfigure_logging('info', 'console')\n"
        "for i in range(3):\n    logging.getLogger('kafka.net.manager').warning('retrying %d', i)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    assert out.stderr.count("retrying") == 1 and "retrying 0" in out.stderr, out.stderr
