"""``monitor up`` (the service) and ``monitor demo`` (the live demo on top of it)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from monitor.commands.common import ConfigOption, settings_from


def _stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT set the returned event; the supervisor then stops everything in order.

    A second Ctrl-C while stopping is ignored on purpose: the consumer is committing offsets then.
    """
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def up(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Interface of the HTTP API (default api.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="Port of the HTTP API (default api.port, 8000).")
    ] = None,
    dashboard: Annotated[
        bool, typer.Option("--dashboard", help="Also start the Streamlit dashboard (default port 8501).")
    ] = False,
    dashboard_port: Annotated[
        int | None,
        typer.Option("--dashboard-port", min=1, max=65535, help="Dashboard port (default api.dashboard_port)."),
    ] = None,
    dashboard_host: Annotated[
        str | None,
        typer.Option(
            "--dashboard-host",
            help="Dashboard interface (default api.dashboard_host, 127.0.0.1). It has no login of its own: "
            "publish it only behind an authenticating proxy; without an API token only loopback is allowed.",
        ),
    ] = None,
    no_consumer: Annotated[
        bool, typer.Option("--no-consumer", help="Do not consume from Kafka (run the consumer as `monitor ingest`).")
    ] = False,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Do not run scheduled detection and alert deliveries here.")
    ] = False,
) -> None:
    """Run the service: Kafka consumer, detection scheduler, alert deliveries and the HTTP API in one process.

    The API serves /healthz, /readyz, /metrics, /docs and /api/v1/.... Once MONITOR_API_TOKEN or
    MONITOR_API_READ_TOKEN is set, /api/v1 and /metrics need a bearer token (writes: MONITOR_API_TOKEN);
    without one the API listens on loopback only (--host with another address exits 2). SIGTERM or
    Ctrl-C stops consuming (flush + commit), stops the scheduler, finishes
    in-flight deliveries and exits 0. Exit 3 if a component fails on its own.
    """
    from monitor.logs import configure_logging
    from monitor.service.runtime import Service, ServiceOptions

    settings = settings_from(config)
    configure_logging(settings.log_level, settings.log_format)
    stop = _stop_on_signals()
    service = Service(
        settings,
        ServiceOptions(
            host=host,
            port=port,
            consumer=not no_consumer,
            scheduler=not no_scheduler,
            dashboard=dashboard,
            dashboard_port=dashboard_port,
            dashboard_host=dashboard_host,
        ),
    )
    service.start()
    typer.echo(
        f"API:       {service.api_url}  (docs {service.api_url}/docs, metrics {service.api_url}/metrics)", err=True
    )
    if service.dashboard is not None:
        typer.echo(f"Dashboard: {service.dashboard.url}", err=True)
    raise typer.Exit(service.wait(stop))


def demo(
    config: ConfigOption = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=1, help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Do not start the Streamlit dashboard.")] = False,
    rate: Annotated[float, typer.Option("--rate", min=1, max=20000, help="Prediction events per second.")] = 50.0,
    drift_after: Annotated[
        float,
        typer.Option(
            "--drift-after", min=0, help="Healthy traffic for at least this many seconds (then the next 30 s boundary)."
        ),
    ] = 20.0,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port of the HTTP API.")] = 8000,
    dashboard_port: Annotated[int, typer.Option("--dashboard-port", min=1, max=65535)] = 8501,
) -> None:
    """The live demo: local Kafka broker, a scikit-learn model, steady traffic with drift injected part-way,
    detectors every 30 s, alerts to a built-in receiver, the API and the dashboard. Ctrl-C stops everything.

    Uses the embedded ClickHouse (database `demo`, recreated each run) and the broker on
    MONITOR_KAFKA_BOOTSTRAP (started if it is not running, and stopped again at the end).
    """
    from monitor.demo.run import DemoOptions, run_demo
    from monitor.logs import configure_logging

    settings = settings_from(config)
    configure_logging("warning", settings.log_format)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # reconnect chatter would bury the progress line
    stop = _stop_on_signals()
    options = DemoOptions(
        duration=duration,
        dashboard=not no_dashboard,
        rate=rate,
        drift_after=drift_after,
        api_port=port,
        dashboard_port=dashboard_port,
    )
    raise typer.Exit(run_demo(settings, options, stop))


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("demo")(demo)
