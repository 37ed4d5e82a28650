"""Failures of real processes: the consumer SIGKILLed mid-stream, the broker restarted under it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from monitor.errors import StorageError
from monitor.ingest.consumer import IngestConsumer
from monitor.ingest.writer import BatchWriter
from monitor.kafka_local import broker
from monitor.kafka_local.broker import BrokerSpec
from monitor.settings import KafkaSettings
from monitor.storage import Storage
from tests.conftest import query_in_subprocess
from tests.ingest.kafka_helpers import committed, end_offsets, event, kafka_settings, produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def ingest_env(dsn: str, bootstrap: str, k: KafkaSettings, **kafka: str) -> dict[str, str]:
    """The environment of a `monitor ingest` child on this DSN and these topics; ``kafka`` adds
    ``MONITOR_KAFKA__<KEY>`` settings."""
    return os.environ | {
        "MONITOR_CLICKHOUSE_DSN": dsn,
        "MONITOR_KAFKA_BOOTSTRAP": bootstrap,
        "MONITOR_KAFKA__PREDICTIONS_TOPIC": k.predictions_topic,
        "MONITOR_KAFKA__LABELS_TOPIC": k.labels_topic,
        "MONITOR_KAFKA__GROUP_ID": k.group_id,
        **{f"MONITOR_KAFKA__{key}": value for key, value in kafka.items()},
    }


def test_consumer_killed_mid_stream_loses_and_doubles_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    k = kafka_settings(kafka_bootstrap, batch_max_messages=400)
    total = produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(20_000)])
    dsn = f"chdb://{tmp_path / 'db'}"
    env = ingest_env(dsn, kafka_bootstrap, k, BATCH_MAX_MESSAGES="400", SESSION_TIMEOUT_MS="6000")
    command = [sys.executable, "-m", "monitor", "ingest"]
    first = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=(tmp_path / "first.log").open("wb"))
    try:
        wait_for(lambda: sum(committed(kafka_bootstrap, k.group_id).values()) > 0, 180, "a first commit")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    done_before_kill = sum(committed(kafka_bootstrap, k.group_id).values())
    assert 0 < done_before_kill < total, "the kill must land mid-stream"

    second = subprocess.run(
        [*command, "--idle-timeout", "10"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic)
    count, unique = query_in_subprocess(
        dsn, "monitor", "SELECT count(), uniqExact(event_id) FROM monitor.events FINAL"
    )[0]
    assert (count, unique) == (total, total)
    # The killed process never dropped its working tables; the second one did, with its own.
    left = query_in_subprocess(dsn, "monitor", "SELECT name FROM system.tables WHERE startsWith(name, 'ingest_')")
    assert left == []


_MEMBER = """
import sys, time
from kafka import KafkaConsumer
consumer = KafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], group_id=sys.argv[3], session_timeout_ms=6000,
                         heartbeat_interval_ms=2000, enable_auto_commit=False)
while not consumer.assignment():
    consumer.poll(timeout_ms=200)
print("joined", flush=True)
time.sleep(600)
"""


def test_idle_timeout_counts_from_the_assignment_not_from_the_start(kafka_bootstrap: str, storage: Storage) -> None:
    """A consumer killed with SIGKILL stays in its group, holding its partitions, until its session
    expires; a rerun with a short --idle-timeout must wait for them rather than exit with the backlog
    unread (it read nothing and exited 0 before)."""
    k = kafka_settings(kafka_bootstrap)
    total = produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(300)])
    member = subprocess.Popen(
        [sys.executable, "-c", _MEMBER, kafka_bootstrap, k.predictions_topic, k.group_id], stdout=subprocess.PIPE
    )
    try:
        assert member.stdout is not None and member.stdout.readline() == b"joined\n"
    finally:
        member.send_signal(signal.SIGKILL)
        member.wait()
    stats = IngestConsumer(k, storage).run(idle_timeout=1.0)
    assert stats.events == total
    assert committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic)


def test_broker_restart_while_consuming_loses_nothing(
    kafka_spec: BrokerSpec, kafka_bootstrap: str, storage: Storage
) -> None:
    k = kafka_settings(kafka_bootstrap, batch_max_messages=200)
    produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(1000)])
    stop = threading.Event()
    consumer = IngestConsumer(k, storage)
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            consumer.run(stop=stop)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    events = storage.table("events")
    try:
        wait_for(lambda: storage.rows(f"SELECT count() FROM {events} FINAL")[0][0] == 1000, 60, "the first 1000")
        broker.stop(kafka_spec)
        time.sleep(2)  # the consumer polls a dead broker for a while
        broker.start(kafka_spec, progress=lambda _msg: None)
        produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(1000, 2000)])
        wait_for(lambda: storage.rows(f"SELECT count() FROM {events} FINAL")[0][0] == 2000, 120, "all 2000")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert storage.rows(f"SELECT count(), uniqExact(event_id) FROM {events} FINAL")[0] == (2000, 2000)
    wait_for(
        lambda: committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic),
        30,
        "offsets committed after the restart",
    )


def test_sigterm_stores_and_commits_then_exits_0(kafka_bootstrap: str, tmp_path: Path) -> None:
    k = kafka_settings(kafka_bootstrap, batch_max_messages=100_000, batch_max_seconds=60)
    total = produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(3000)])
    dsn = f"chdb://{tmp_path / 'db'}"
    # A batch that would not flush on its own for a minute: only SIGTERM can store it in time.
    env = ingest_env(dsn, kafka_bootstrap, k, BATCH_MAX_MESSAGES="100000", BATCH_MAX_SECONDS="60")
    log = tmp_path / "ingest.log"
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "ingest"], env=env, cwd=tmp_path, stderr=log.open("wb"))
    try:
        wait_for(lambda: "partitions assigned" in log.read_text(errors="replace"), 120, "the consumer to join")
        time.sleep(3)  # it polls everything into its (unflushed) batch
        assert committed(kafka_bootstrap, k.group_id) == {}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic)
    assert query_in_subprocess(dsn, "monitor", "SELECT count() FROM monitor.events FINAL")[0][0] == total
    assert f"ingested {total} messages" in log.read_text()


class Outage:
    """The storage boundary while ClickHouse is unreachable (no error code: infrastructure)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.down = threading.Event()
        self.refused = 0

    def __call__(self, table: str, data: pa.Table) -> None:
        if self.down.is_set():
            self.refused += 1
            raise StorageError("simulated: Connection refused")
        self.storage.insert_arrow(table, data)


def test_clickhouse_outage_mid_stream_commits_nothing_until_stored(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap, batch_max_messages=100)
    produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(500)])
    outage = Outage(storage)
    writer = BatchWriter(storage, retries=200, max_backoff_s=0.2, insert=outage)
    consumer = IngestConsumer(k, storage, writer=writer)
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            consumer.run(stop=stop)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    events = storage.table("events")

    def stored() -> int:
        return storage.rows(f"SELECT count() FROM {events} FINAL")[0][0]

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        wait_for(lambda: stored() == 500, 60, "the first 500")
        wait_for(
            lambda: committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic),
            30,
            "the first commit",
        )
        outage.down.set()
        before = committed(kafka_bootstrap, k.group_id)
        produce(kafka_bootstrap, k.predictions_topic, [event(i) for i in range(500, 1000)])
        wait_for(lambda: outage.refused >= 3, 30, "writes refused during the outage")
        time.sleep(2)
        assert committed(kafka_bootstrap, k.group_id) == before  # nothing committed while down
        assert stored() == 500
        outage.down.clear()
        wait_for(lambda: stored() == 1000, 60, "all 1000 after the outage")
        wait_for(
            lambda: committed(kafka_bootstrap, k.group_id) == end_offsets(kafka_bootstrap, k.predictions_topic),
            30,
            "offsets committed after the outage",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert storage.rows(f"SELECT count(), uniqExact(event_id) FROM {events} FINAL")[0] == (1000, 1000)
