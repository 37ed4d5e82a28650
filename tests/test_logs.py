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
