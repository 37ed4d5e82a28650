"""``monitor kafka start|stop|status|fetch``: the local Apache Kafka broker."""

from __future__ import annotations

import typer

from monitor.commands.common import ConfigOption, help_when_bare, settings_from
from monitor.kafka_local import broker
from monitor.kafka_local.broker import broker_spec
from monitor.kafka_local.jars import ensure_jars

kafka_app = typer.Typer(
    help="The local Apache Kafka 4.x broker (KRaft, one node on 127.0.0.1) used by the demo and the tests. "
    "It listens on kafka.bootstrap (MONITOR_KAFKA_BOOTSTRAP, default 127.0.0.1:9092); its jars and data "
    "live under broker.home (default .cache/kafka).",
)
kafka_app.callback(invoke_without_command=True)(help_when_bare)


@kafka_app.command("start")
def start(config: ConfigOption = None) -> None:
    """Start the broker and wait until it answers (no-op if it already runs). Topics and offsets persist."""
    spec = broker_spec(settings_from(config))
    state = broker.start(spec, progress=lambda msg: typer.echo(msg, err=True))
    typer.echo(state.describe())


@kafka_app.command("stop")
def stop(config: ConfigOption = None) -> None:
    """Stop the broker gracefully (SIGTERM, then SIGKILL after 30 s)."""
    spec = broker_spec(settings_from(config))
    typer.echo("stopped" if broker.stop(spec) else "not running")


@kafka_app.command("status")
def status(config: ConfigOption = None) -> None:
    """Say whether the broker runs and answers. Exit 0 if it answers, 1 otherwise."""
    state = broker.status(broker_spec(settings_from(config)))
    typer.echo(state.describe())
    raise typer.Exit(0 if state.answering else 1)


@kafka_app.command("fetch")
def fetch(config: ConfigOption = None) -> None:
    """Download the broker's jars from Maven Central if they are not cached yet (make install runs this)."""
    settings = settings_from(config)
    path = ensure_jars(settings.broker.home, settings.broker.version, progress=lambda m: typer.echo(m, err=True))
    typer.echo(f"Kafka {settings.broker.version} jars in {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(kafka_app, name="kafka")
