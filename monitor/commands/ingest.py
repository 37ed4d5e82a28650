"""``monitor ingest``: the consumer alone (``monitor up`` runs the same consumer in a thread)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from monitor.commands.common import ConfigOption, settings_from


def ingest(
    config: ConfigOption = None,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=1, help="Exit after this many messages (all topics).")
    ] = None,
    idle_timeout: Annotated[
        float | None, typer.Option("--idle-timeout", min=0.1, help="Exit after this many seconds without a message.")
    ] = None,
) -> None:
    """Consume prediction events and labels from Kafka into ClickHouse.

    Invalid messages go to the dead_letters table with their raw bytes and the reason. Offsets are
    committed only after a batch is stored; SIGTERM or Ctrl-C flushes and commits, then exits.
    Run several replicas with the same kafka.group_id against a ClickHouse server to scale out.
    """
    from monitor.ingest.consumer import IngestConsumer
    from monitor.ingest.limits import IngestPolicy
    from monitor.logs import configure_logging
    from monitor.storage import open_storage
    from monitor.storage.retention import apply_retention

    settings = settings_from(config)
    configure_logging(settings.log_level, settings.log_format)
    storage = open_storage(settings.clickhouse)
    apply_retention(storage, settings.retention)
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
