"""`monitor ingest --metrics-port`: a consumer replica serves its own counters over HTTP for Prometheus
(events, dead letters, insert latency, lag), on 127.0.0.1 unless told otherwise; a port that cannot be
bound is a one-line usage error."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.ports import free_port
from monitor.settings import KafkaSettings
from tests.ingest.kafka_helpers import event, kafka_settings, produce
from tests.ingest.test_recovery import ingest_env, wait_for

pytestmark = pytest.mark.kafka


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample the endpoint serves, keyed by name and sorted labels (parsed, not grepped)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_ingest_serves_its_counters_on_the_metrics_port(kafka_bootstrap: str, tmp_path: Path) -> None:
    k = kafka_settings(kafka_bootstrap)
    model = "fraud-metrics"
    good = produce(kafka_bootstrap, k.predictions_topic, [event(i, model=model) for i in range(300)])
    produce(kafka_bootstrap, k.predictions_topic, [b"{not json", b"[]"])
    port = free_port()
    log = tmp_path / "ingest.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "ingest", "--metrics-port", str(port)],
        env=ingest_env(f"chdb://{tmp_path / 'db'}", kafka_bootstrap, k),
        cwd=tmp_path,
        stderr=log.open("wb"),
    )
    try:
        wait_for(lambda: f"http://127.0.0.1:{port}/metrics" in log.read_text(errors="replace"), 60, "the metrics port")
        before = scrape(port)  # served before anything is consumed: the ingest families exist already
        assert value(before, "monitor_events_ingested_total", model=model) == 0.0
        assert any(name == "monitor_insert_batch_seconds_count" for name, _ in before)

        def stored() -> bool:
            samples = scrape(port)
            return (
                value(samples, "monitor_events_ingested_total", model=model) == good
                and sum(v for (n, _), v in samples.items() if n == "monitor_dead_letters_total") == 2
                and any(n == "monitor_consumer_lag" for n, _ in samples)  # set after the first commit
            )

        wait_for(stored, 120, "the events, dead letters and lag to be reported")
        samples = scrape(port)
        assert value(samples, "monitor_insert_batch_seconds_count") >= 1
        lag = {dict(labels)["partition"]: v for (n, labels), v in samples.items() if n == "monitor_consumer_lag"}
        assert lag and set(lag) <= {"0", "1", "2"} and all(v == 0 for v in lag.values()), lag
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # the server stopped with the consumer


def test_ingest_metrics_listen_on_loopback_by_default(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The default --metrics-host is 127.0.0.1: nothing answers on this machine's other addresses."""
    k = kafka_settings(kafka_bootstrap)
    port = free_port()
    log = tmp_path / "ingest.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "ingest", "--metrics-port", str(port), "--idle-timeout", "30"],
        env=ingest_env(f"chdb://{tmp_path / 'db'}", kafka_bootstrap, k),
        cwd=tmp_path,
        stderr=log.open("wb"),
    )
    try:
        wait_for(lambda: f"http://127.0.0.1:{port}/metrics" in log.read_text(errors="replace"), 60, "the metrics port")
        assert scrape(port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing interface's address
            own_address = probe.getsockname()[0]
        if own_address.startswith("127."):
            pytest.fail("this machine has no non-loopback address to probe")
        with pytest.raises(OSError), socket.create_connection((own_address, port), timeout=2):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_a_busy_metrics_port_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "ingest", "--metrics-port", str(port)],
            env=ingest_env(f"chdb://{tmp_path / 'db'}", "127.0.0.1:1", KafkaSettings(bootstrap="127.0.0.1:1")),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and f"--metrics-port: cannot listen on 127.0.0.1:{port}" in lines[0], result.stderr
