"""A real, single-node Apache Kafka 4.x broker (KRaft, broker and controller in one JVM) on 127.0.0.1.

Used by ``monitor kafka start|stop|status``, the demo and the test suite. Its home folder holds:

    libs/<version>/        the broker's jars from Maven Central (see jars.py)
    <port>/data/           KRaft storage, formatted once and kept: topics and offsets survive restarts
    <port>/server.properties, broker.pid, broker.log

A home can host several brokers on different ports (the tests start their own on a free port).

With :class:`SecureListener` the broker also listens with SASL_SSL (TLS from a PEM key and
certificate, SASL PLAIN users from the listener's JAAS configuration, SCRAM-SHA-256/512 users written
into the KRaft metadata when the storage is formatted), so that clients' TLS and SASL settings can be
tested against a real broker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from monitor.errors import BrokerError, ConfigError
from monitor.kafka_local.jars import ensure_jars
from monitor.settings import Settings

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SecureListener:
    """An extra SASL_SSL listener. ``keystore`` is one PEM file holding the private key (unencrypted)
    followed by the certificate chain; users are (name, password) pairs."""

    port: int
    keystore: Path
    plain_users: tuple[tuple[str, str], ...] = ()
    scram_users: tuple[tuple[str, str], ...] = ()  # each gets SCRAM-SHA-256 and SCRAM-SHA-512 credentials

    def properties(self, host: str) -> list[str]:
        plain = " ".join(f'user_{name}="{password}"' for name, password in self.plain_users)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        prefix = "listener.name.sasl_ssl."
        return [
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            f"{prefix}ssl.keystore.type=PEM",
            f"{prefix}ssl.keystore.location={self.keystore}",
            f"{prefix}ssl.client.auth=none",
            f"{prefix}plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required {plain};",
            f"{prefix}scram-sha-256.sasl.jaas.config={scram}",
            f"{prefix}scram-sha-512.sasl.jaas.config={scram}",
        ]

    def format_arguments(self) -> list[str]:
        arguments: list[str] = []
        for name, password in self.scram_users:
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                arguments += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return arguments


@dataclass(frozen=True)
class BrokerSpec:
    """Where one local broker lives and listens."""

    home: Path
    version: str
    port: int = 9092
    controller_port: int | None = None
    host: str = "127.0.0.1"
    heap: str = "768m"
    partitions: int = 3
    secure: SecureListener | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def folder(self) -> Path:
        return self.home.resolve() / f"broker-{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def pid_file(self) -> Path:
        return self.folder / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "broker.log"

    @property
    def properties_file(self) -> Path:
        return self.folder / "server.properties"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    answering: bool
    log_file: Path

    def describe(self) -> str:
        if self.running and self.answering:
            return f"running: pid {self.pid}, listening on {self.bootstrap} (log: {self.log_file})"
        if self.running:
            return f"starting or unhealthy: pid {self.pid}, not answering on {self.bootstrap} (log: {self.log_file})"
        return f"stopped (would listen on {self.bootstrap})"


def _server_properties(spec: BrokerSpec) -> str:
    controller = spec.controller_port or spec.port + 1
    listeners = f"PLAINTEXT://{spec.host}:{spec.port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    secure: list[str] = []
    if spec.secure is not None:
        listeners += f",SASL_SSL://{spec.host}:{spec.secure.port}"
        protocols += ",SASL_SSL:SASL_SSL"
        secure = spec.secure.properties(spec.host)
    return "\n".join(
        [
            "# Written by monitor.kafka_local.broker; single-node KRaft broker for local use.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{spec.host}:{controller}",
            f"listeners={listeners},CONTROLLER://{spec.host}:{controller}",
            f"advertised.listeners={listeners}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={protocols}",
            *secure,
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={spec.data_dir}",
            f"num.partitions={spec.partitions}",
            "default.replication.factor=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "message.max.bytes=10485760",
            "log.retention.hours=168",
            "log.segment.bytes=268435456",
            "",
        ]
    )


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return "java"


def _classpath(libs: Path) -> str:
    return f"{libs}/*"


def _log4j_config() -> Path:
    return Path(str(resources.files("monitor.kafka_local") / "log4j2.properties"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) still answers kill(0): check its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True


def _read_pid(spec: BrokerSpec) -> int | None:
    try:
        pid = int(spec.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _answers(spec: BrokerSpec, timeout: float = 2.0) -> bool:
    """True when the broker completes a Kafka metadata round trip (not just a TCP accept)."""
    try:
        with socket.create_connection((spec.host, spec.port), timeout=timeout):
            pass
    except OSError:
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=spec.bootstrap, request_timeout_ms=int(timeout * 1000) + 3000, client_id="monitor-probe"
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def status(spec: BrokerSpec) -> BrokerStatus:
    pid = _read_pid(spec)
    return BrokerStatus(
        running=pid is not None,
        pid=pid,
        bootstrap=spec.bootstrap,
        answering=pid is not None and _answers(spec),
        log_file=spec.log_file,
    )


def _format_storage(spec: BrokerSpec, libs: Path) -> None:
    if (spec.data_dir / "meta.properties").exists():
        return
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    cluster_id = uuid.uuid4().bytes
    # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
    import base64

    cid = base64.urlsafe_b64encode(cluster_id).decode().rstrip("=")
    proc = subprocess.run(
        [
            _java(),
            f"-Dlog4j2.configurationFile={_log4j_config()}",
            "-cp",
            _classpath(libs),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cid}",  # one argument: an id may start with "-", which argparse takes for an option
            "-c",
            str(spec.properties_file),
            "--ignore-formatted",
            *(spec.secure.format_arguments() if spec.secure is not None else []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BrokerError(f"formatting Kafka storage failed: {(proc.stderr or proc.stdout).strip()[-500:]}")


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start(spec: BrokerSpec, progress=print) -> BrokerStatus:
    """Start the broker and wait until it answers; a no-op if it already runs."""
    current = status(spec)
    if current.running:
        if not current.answering:
            current = _wait_answering(spec, current.pid or 0)
        return current
    controller = spec.controller_port or spec.port + 1
    for port in (spec.port, controller, *([spec.secure.port] if spec.secure else [])):
        if _port_taken(spec.host, port):
            raise BrokerError(
                f"port {spec.host}:{port} is already in use by another program; "
                "stop it or choose another port with MONITOR_KAFKA_BOOTSTRAP"
            )
    libs = ensure_jars(spec.home, spec.version, progress=progress)
    spec.folder.mkdir(parents=True, exist_ok=True)
    spec.properties_file.write_text(_server_properties(spec))
    _format_storage(spec, libs)
    log = spec.log_file.open("ab")
    command = [
        _java(),
        f"-Xmx{spec.heap}",
        f"-Xms{spec.heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={_log4j_config()}",
        "-cp",
        _classpath(libs),
        "kafka.Kafka",
        str(spec.properties_file),
    ]
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    spec.pid_file.write_text(str(proc.pid))
    progress(f"Kafka {spec.version} starting on {spec.bootstrap} (pid {proc.pid}, log {spec.log_file})")
    return _wait_answering(spec, proc.pid, proc)


def _wait_answering(spec: BrokerSpec, pid: int, proc: subprocess.Popen | None = None) -> BrokerStatus:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        exited = proc.poll() is not None if proc is not None else not _pid_alive(pid)
        if exited:
            spec.pid_file.unlink(missing_ok=True)
            raise BrokerError(f"Kafka broker exited during start-up; last log lines:\n{_tail(spec.log_file)}")
        if _answers(spec):
            return status(spec)
        time.sleep(0.5)
    raise BrokerError(
        f"Kafka broker did not answer on {spec.bootstrap} within {START_TIMEOUT_S:.0f} s; see {spec.log_file}"
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(spec: BrokerSpec, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop gracefully (SIGTERM: Kafka flushes and closes its logs); SIGKILL after ``timeout``.

    Returns True if a broker was running.
    """
    pid = _read_pid(spec)
    if pid is None:
        spec.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.1)
    _reap(pid)
    spec.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if the broker is our own child (avoids a zombie in long test runs)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def kill(spec: BrokerSpec) -> None:
    """SIGKILL the broker (tests of crash recovery)."""
    pid = _read_pid(spec)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.05)
        _reap(pid)
    spec.pid_file.unlink(missing_ok=True)


def broker_spec(settings: Settings) -> BrokerSpec:
    """The local broker that serves ``settings.kafka.bootstrap`` (first address if several)."""
    first = settings.kafka.bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"kafka.bootstrap: {settings.kafka.bootstrap!r} is not host:port")
    return BrokerSpec(
        home=settings.broker.home,
        version=settings.broker.version,
        port=int(port),
        controller_port=settings.broker.controller_port,
        host=host or "127.0.0.1",
        heap=settings.broker.heap,
        partitions=settings.kafka.partitions,
    )
