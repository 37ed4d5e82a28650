"""``monitor ingest``: the consumer alone (``monitor up`` runs the same consumer in a thread)."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.commands.common import ConfigOption, settings_from
from monitor.errors import InputError
from monitor.logs import get_logger
from monitor.settings import Settings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

log = get_logger(__name__)


def serve_metrics(host: str, port: int) -> WSGIServer:
    """Start prometheus_client's HTTP server for this process's metrics (the ingest counters).

    The registry is the process-wide default one that :mod:`monitor.metrics` registers into, so the
    consumer's counters, histogram and lag gauges appear without further wiring. It runs in a daemon
    thread; a port that cannot be bound is the caller's mistake (exit 2), found before consuming.
    """
    from prometheus_client import start_http_server

    import monitor.metrics  # noqa: F401  (registers the ingest metrics, so they show before the first batch)

    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        raise InputError(f"--metrics-port: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    log.info("serving metrics", address=f"http://{host}:{server.server_port}/metrics")
    return server


def ingest(
    config: ConfigOption = None,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=1, help="Exit after this many messages (all topics).")
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout",
            min=0.1,
            help="Exit after this many seconds without a message, counted once the group has assigned "
            "the partitions (joining can take up to the session timeout after a crash).",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve this consumer's Prometheus metrics on this port (GET /metrics; 0 picks a free port).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics port listens on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
) -> None:
    """Consume prediction events and labels from Kafka into ClickHouse.

    Invalid messages go to the dead_letters table with their raw bytes and the reason.

    Offsets are committed only after a batch is stored; SIGTERM or Ctrl-C stores and commits what is held, then exits.

    To scale out, run replicas with the same kafka.group_id against a ClickHouse server.

    --metrics-port serves each replica's counters (events, dead letters, lag, insert latency) to Prometheus.
    """
    from monitor.logs import configure_logging

    settings = settings_from(config)
    configure_logging(settings.log_level, settings.log_format)
    server = serve_metrics(metrics_host, metrics_port) if metrics_port is not None else None
    try:
        _consume(settings, max_messages, idle_timeout)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _consume(settings: Settings, max_messages: int | None, idle_timeout: float | None) -> None:
    from monitor.ingest.consumer import IngestConsumer
    from monitor.ingest.limits import IngestPolicy
    from monitor.ingest.worktables import drop_leftovers
    from monitor.storage import open_storage
    from monitor.storage.retention import apply_retention

    storage = open_storage(settings.clickhouse)
    apply_retention(storage, settings.retention)
    drop_leftovers(storage)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    consumer = IngestConsumer(
        settings.kafka,
        storage,
        retries=settings.clickhouse.insert_retries,
        policy=IngestPolicy.from_settings(settings),
    )
    stats = consumer.run(stop=stop, max_messages=max_messages, idle_timeout=idle_timeout)
    typer.echo(
        f"ingested {stats.messages} messages in {stats.seconds:.1f} s ({stats.rate():,.0f}/s): "
        f"{stats.events} events, {stats.labels} labels, {stats.dead_letters} dead letters",
        err=True,
    )


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
