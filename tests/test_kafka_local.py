"""``monitor kafka``: the local broker keeps topics and offsets over a restart; start is idempotent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from monitor.kafka_local import broker
from monitor.kafka_local.broker import BrokerSpec
from tests.conftest import BROKER_HOME, KAFKA_VERSION, free_port_pair
from tests.ingest.kafka_helpers import committed, event, kafka_settings, produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def monitor_kafka(command: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "MONITOR_KAFKA_BOOTSTRAP": bootstrap,
        "MONITOR_BROKER__HOME": str(BROKER_HOME),
        "MONITOR_BROKER__VERSION": KAFKA_VERSION,
        "MONITOR_BROKER__HEAP": "384m",
    }
    return subprocess.run(
        [sys.executable, "-m", "monitor", "kafka", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_start_stop_status_and_restart_keeps_topics_and_offsets() -> None:
    port = free_port_pair()
    bootstrap = f"127.0.0.1:{port}"
    spec = BrokerSpec(home=BROKER_HOME, version=KAFKA_VERSION, port=port)
    try:
        assert monitor_kafka("status", bootstrap).returncode == 1
        started = monitor_kafka("start", bootstrap)
        assert started.returncode == 0, started.stderr
        assert "running" in started.stdout
        pid = broker.status(spec).pid
        again = monitor_kafka("start", bootstrap)  # a no-op: same process
        assert again.returncode == 0 and broker.status(spec).pid == pid

        k = kafka_settings(bootstrap)
        produce(bootstrap, k.predictions_topic, [event(i) for i in range(10)])
        from kafka import KafkaConsumer
        from kafka.structs import OffsetAndMetadata, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=k.group_id, enable_auto_commit=False)
        consumer.commit({TopicPartition(k.predictions_topic, 0): OffsetAndMetadata(1, "", -1)})
        consumer.close(autocommit=False)

        stopped = monitor_kafka("stop", bootstrap)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert monitor_kafka("status", bootstrap).returncode == 1
        assert monitor_kafka("start", bootstrap).returncode == 0
        status = monitor_kafka("status", bootstrap)
        assert status.returncode == 0 and bootstrap in status.stdout

        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        assert k.predictions_topic in admin.list_topics()
        admin.close()
        assert committed(bootstrap, k.group_id)[(k.predictions_topic, 0)] == 1
    finally:
        broker.stop(spec)
        import shutil

        shutil.rmtree(spec.folder, ignore_errors=True)


def test_start_refuses_a_port_in_use() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = monitor_kafka("start", f"127.0.0.1:{port}")
    assert result.returncode == 3
    assert "already in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1
