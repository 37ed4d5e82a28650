"""``monitor ingest`` against a real broker's SASL_SSL listener: TLS with the test's own CA, SASL PLAIN
and SCRAM users, settings from the environment; a wrong password or an untrusted CA fails fast with
exit 3 and says why.

One extra broker (PLAINTEXT for set-up, SASL_SSL for the clients under test) is started for the
module, with a CA and a server certificate made by the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from monitor.ingest.consumer import ensure_topics
from monitor.kafka_local import broker
from monitor.kafka_local.broker import BrokerSpec, SecureListener
from monitor.kafka_security import kafka_client_kwargs
from monitor.ports import free_port, free_port_pair
from monitor.settings import KafkaSettings
from tests.conftest import BROKER_HOME, KAFKA_VERSION, query_in_subprocess
from tests.ingest.kafka_helpers import event
from tests.tls_certs import TlsFiles, make_tls

REPO = Path(__file__).resolve().parents[2]
MONITOR = REPO / ".venv" / "bin" / "monitor"
SCRAM_USER, SCRAM_PASSWORD = "ingest-scram", "scram-Pa55-word"
PLAIN_USER, PLAIN_PASSWORD = "ingest-plain", "plain-Pa55-word"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"), "kafka")


@pytest.fixture(scope="module")
def secure_broker(tls: TlsFiles) -> Iterator[BrokerSpec]:
    port = free_port_pair()
    secure_port = free_port()
    while secure_port in (port, port + 1):
        secure_port = free_port()
    spec = BrokerSpec(
        home=BROKER_HOME,
        version=KAFKA_VERSION,
        port=port,
        heap="384m",
        partitions=1,
        secure=SecureListener(
            port=secure_port,
            keystore=tls.keystore,
            plain_users=((PLAIN_USER, PLAIN_PASSWORD),),
            scram_users=((SCRAM_USER, SCRAM_PASSWORD),),
        ),
    )
    broker.start(spec, progress=lambda message: print(message, file=sys.stderr))
    yield spec
    broker.stop(spec)
    shutil.rmtree(spec.folder, ignore_errors=True)


def secure_settings(spec: BrokerSpec, tls: TlsFiles, mechanism: str, user: str, password: str) -> KafkaSettings:
    assert spec.secure is not None
    tag = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap=f"{spec.host}:{spec.secure.port}",
        predictions_topic=f"predictions-{tag}",
        labels_topic=f"labels-{tag}",
        group_id=f"monitor-{tag}",
        partitions=1,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username=user,
        sasl_password=password,  # type: ignore[arg-type]
        ssl_cafile=tls.ca,
        connect_timeout=10,  # type: ignore[arg-type]
    )


def child_env(k: KafkaSettings, dsn: str, password_variable: str | None = None) -> dict[str, str]:
    """``monitor ingest``'s environment: every Kafka setting as ``MONITOR_KAFKA__*``, as an operator sets them."""
    assert k.sasl_password is not None and k.ssl_cafile is not None
    env = {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}
    env |= {
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p),
        "MONITOR_CLICKHOUSE_DSN": dsn,
        "MONITOR_KAFKA__BOOTSTRAP": k.bootstrap,
        "MONITOR_KAFKA__PREDICTIONS_TOPIC": k.predictions_topic,
        "MONITOR_KAFKA__LABELS_TOPIC": k.labels_topic,
        "MONITOR_KAFKA__GROUP_ID": k.group_id,
        "MONITOR_KAFKA__PARTITIONS": "1",
        "MONITOR_KAFKA__SECURITY_PROTOCOL": k.security_protocol,
        "MONITOR_KAFKA__SASL_MECHANISM": str(k.sasl_mechanism),
        "MONITOR_KAFKA__SASL_USERNAME": str(k.sasl_username),
        "MONITOR_KAFKA__SSL_CAFILE": str(k.ssl_cafile),
        "MONITOR_KAFKA__CONNECT_TIMEOUT": "10s",
    }
    if password_variable is None:
        env["MONITOR_KAFKA__SASL_PASSWORD"] = k.sasl_password.get_secret_value()
    else:  # the password by reference: the variable's name in the settings, its value beside it
        env["MONITOR_KAFKA__SASL_PASSWORD_ENV"] = password_variable
        env[password_variable] = k.sasl_password.get_secret_value()
    return env


def produce_secure(k: KafkaSettings, count: int) -> None:
    """Produce over SASL_SSL too: the same connection arguments serve producers."""
    producer = KafkaProducer(**kafka_client_kwargs(k), linger_ms=5)  # type: ignore[arg-type]
    try:
        for i in range(count):
            producer.send(k.predictions_topic, orjson.dumps(event(i)))
        producer.flush()
    finally:
        producer.close()


def start_ingest(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(MONITOR), "ingest", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], started: float) -> tuple[int, str, float]:
    """Exit code, stdout + stderr, and seconds since ``started``."""
    out, err = process.communicate(timeout=120)
    return process.returncode, out + err, time.monotonic() - started


@pytest.mark.kafka
@pytest.mark.slow
def test_ingest_consumes_over_sasl_ssl_with_scram_and_plain(
    secure_broker: BrokerSpec, tls: TlsFiles, tmp_path: Path
) -> None:
    scram = secure_settings(secure_broker, tls, "SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD)
    plain = secure_settings(secure_broker, tls, "PLAIN", PLAIN_USER, PLAIN_PASSWORD)
    for k in (scram, plain):  # the admin client over SASL_SSL creates the topics
        ensure_topics(k)
        producer = secure_settings(secure_broker, tls, "SCRAM-SHA-256", SCRAM_USER, SCRAM_PASSWORD)
        produce_secure(producer.model_copy(update={"predictions_topic": k.predictions_topic}), 300)
    # Two `monitor ingest` processes at once, configured from the environment only; PLAIN's password
    # by reference (sasl_password_env).
    started = time.monotonic()
    runs = [
        start_ingest(child_env(k, f"chdb://{tmp_path / name}", variable), tmp_path, "--max-messages", "300")
        for k, name, variable in ((scram, "scram", None), (plain, "plain", "TEST_KAFKA_PASSWORD"))
    ]
    for process, password in zip(runs, (SCRAM_PASSWORD, PLAIN_PASSWORD), strict=True):
        code, output, _ = finish(process, started)
        assert code == 0, output
        assert password not in output
    for name in ("scram", "plain"):
        stored = query_in_subprocess(f"chdb://{tmp_path / name}", "monitor", "SELECT count() FROM monitor.events FINAL")
        assert stored == [[300]], name


@pytest.mark.kafka
@pytest.mark.slow
def test_wrong_password_or_untrusted_ca_fail_fast_with_exit_3(
    secure_broker: BrokerSpec, tls: TlsFiles, tmp_path: Path
) -> None:
    wrong = secure_settings(secure_broker, tls, "SCRAM-SHA-512", SCRAM_USER, "not-the-password")
    stranger = make_tls(tmp_path / "other", "stranger")  # a CA that did not sign the broker's certificate
    untrusted = secure_settings(secure_broker, stranger, "SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD)
    # One after the other: started together (each now opens and migrates its database first), the
    # wrong password's client saw only "socket disconnected" on every attempt, not the broker's SASL
    # error, in every run; one at a time it gets the SASL error. Not understood yet (see the issue).
    outcomes = []
    for k, name in ((wrong, "wrong"), (untrusted, "untrusted")):
        started = time.monotonic()
        env = child_env(k, f"chdb://{tmp_path / name}") | {"MONITOR_KAFKA__CONNECT_TIMEOUT": "8s"}
        outcomes.append(finish(start_ingest(env, tmp_path), started))
    (code, output, seconds), (code_ca, output_ca, seconds_ca) = outcomes
    assert code == 3, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("monitor: error: cannot reach Kafka"), last
    # The broker's own SASL error when kafka-python reads it before the connection closes, else our
    # reading of "TLS done, then every connection closed": both point at the credentials.
    assert "Authentication failed" in last or "closed by the broker during SASL SCRAM-SHA-512" in last, last
    assert "check kafka.sasl_username" in last or "invalid credentials" in last, last
    assert "not-the-password" not in output
    assert code_ca == 3, output_ca
    assert "CERTIFICATE_VERIFY_FAILED" in output_ca.strip().splitlines()[-1], output_ca
    assert max(seconds, seconds_ca) < 30  # the connect timeout (8 s) plus start-up, never a hang


@pytest.mark.kafka
@pytest.mark.slow
def test_the_sdk_logs_over_sasl_ssl_and_reports_a_wrong_password(secure_broker: BrokerSpec, tls: TlsFiles) -> None:
    """A model server's PredictionLogger with SCRAM over TLS: events arrive (read back over SASL_SSL);
    with a wrong password nothing is dropped silently, the error callback hears of every event."""
    from kafka import KafkaConsumer

    from monitor.sdk import PredictionLogger

    k = secure_settings(secure_broker, tls, "SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD)
    ensure_topics(k)
    assert k.sasl_password is not None
    secure = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": SCRAM_USER,
        "ssl_cafile": str(tls.ca),
    }
    with PredictionLogger(
        "fraud", k.bootstrap, predictions_topic=k.predictions_topic, sasl_plain_password=SCRAM_PASSWORD, **secure
    ) as logger:
        sent = {logger.log({"amount": float(i)}, prediction=0.5) for i in range(20)}
        logger.flush(60)
    consumer = KafkaConsumer(
        k.predictions_topic, auto_offset_reset="earliest", consumer_timeout_ms=15_000, **kafka_client_kwargs(k)
    )
    received: set[str] = set()
    try:
        for message in consumer:  # until every event is back (or 15 s without one), not 15 s after the last
            received.add(orjson.loads(message.value)["event_id"])
            if received >= sent:
                break
    finally:
        consumer.close()
    assert received == sent

    # A refused login is retried until bootstrap_timeout_ms (kafka-python's default: 30 s, as long as
    # close()'s own default timeout, which then reported the records as closed, not as refused).
    failures: list[BaseException] = []
    wrong = PredictionLogger(
        "fraud",
        k.bootstrap,
        predictions_topic=k.predictions_topic,
        sasl_plain_password="not-the-password",
        on_error=lambda exc, _record: failures.append(exc),
        bootstrap_timeout_ms=3_000,
        **secure,
    )
    for i in range(3):
        wrong.log({"amount": float(i)}, prediction=0.5)
    wrong.close()
    assert len(failures) == 3, failures
    assert all(isinstance(exc, KafkaError) for exc in failures), failures  # refused by the broker, not closed
