"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.kafka_local.broker import BrokerSpec
from monitor.settings import Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML configuration file (default: ./monitor.yaml if present). "
        "MONITOR_* environment variables override its keys.",
        show_default=False,
    ),
]


def settings_from(config: Path | None) -> Settings:
    """Load and validate the configuration once, at the edge."""
    return load_settings(config)


def broker_spec(settings: Settings) -> BrokerSpec:
    """The local broker that serves ``settings.kafka.bootstrap`` (first address if several)."""
    first = settings.kafka.bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not port.isdigit():
        from monitor.errors import ConfigError

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
