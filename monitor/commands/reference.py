"""``monitor reference add|list``: register reference data for a model and list what is registered."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.commands.common import ConfigOption, help_when_bare, settings_from
from monitor.errors import InputError, StorageError, UserError
from monitor.logs import configure_logging

if TYPE_CHECKING:
    from monitor.settings import Settings
    from monitor.storage import Storage

reference_app = typer.Typer(
    help="Reference data per model: what the detectors compare production with. Stored in ClickHouse "
    "(rows in reference_rows, one profile per version in `references`).",
)
reference_app.callback(invoke_without_command=True)(help_when_bare)

ModelOption = Annotated[str, typer.Option("--model", "-m", help="model name, as in events' `model` field")]


def open_for_command(settings: Settings) -> Storage:
    """Open (and migrate) the configured ClickHouse; an embedded path held by ``monitor up`` gets a clear hint."""
    from monitor.storage import embedded_path, open_storage

    try:
        return open_storage(settings.clickhouse)
    except StorageError as exc:
        path = embedded_path(settings.clickhouse.dsn.get_secret_value())
        if path is not None and ("EmbeddedServer" in str(exc) or "already running" in str(exc)):
            raise StorageError(
                f"the embedded database {path} is in use by another process (is `monitor up` running?). "
                f"Use its API instead: POST /api/v1/models/<model>/detect or /api/v1/models/<model>/references"
            ) from exc
        raise


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    from monitor.windows import parse_timestamp

    try:
        return parse_timestamp(value)
    except InputError as exc:
        raise InputError(f"--{name}: {exc}") from exc


@reference_app.command("add")
def add(
    model: ModelOption,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Parquet, CSV or TSV file (may be compressed)")
    ] = None,
    version: Annotated[str | None, typer.Option(help="version name (default: the next number)")] = None,
    kind: Annotated[str | None, typer.Option(help="training (default for files), baseline or window")] = None,
    start: Annotated[str | None, typer.Option(help="instead of --file: logged events from this time")] = None,
    end: Annotated[str | None, typer.Option(help="... up to (not including) this time")] = None,
    stream: Annotated[bool, typer.Option(help="stream the file from this process (always so for a server)")] = False,
    config: ConfigOption = None,
) -> None:
    """Register reference data for a model; re-adding a version replaces it.

    Without --file or --start/--end, uses models.<model>.reference from the configuration. Columns
    `prediction` and `label` carry the reference's own predictions and ground truth. The profile
    (deciles, category frequencies, std, min/max, missing shares) is computed once here.

    Examples:

      monitor reference add --model fraud --file data/train.parquet

      monitor reference add --model fraud --file data/last_month.csv --version 2026-10 --kind baseline

      monitor reference add --model fraud --start 2026-11-01T00:00:00Z --end 2026-11-08T00:00:00Z
    """
    from detectors.registration import add_events, add_file

    settings = settings_from(config)
    configure_logging(settings.log_level, settings.log_format)  # logs on stderr: stdout is the result
    configured = settings.models.get(model)
    start_at, end_at = _parse_time(start, "start"), _parse_time(end, "end")
    if file is not None and (start_at or end_at):
        raise UserError("give either --file or --start/--end, not both")
    if (start_at is None) != (end_at is None):
        raise UserError("give both --start and --end")
    if file is None and start_at is None:
        if configured is None or configured.reference is None:
            raise UserError(f"give --file or --start/--end (model {model!r} has no reference in the configuration)")
        file, start_at, end_at = configured.reference.file, configured.reference.start, configured.reference.end
        version = configured.reference.version if version is None else version
    if start_at is not None and end_at is not None and start_at >= end_at:
        raise UserError("--start must be before --end")
    features = dict(configured.features) if configured and configured.features else None
    prediction = configured.prediction if configured and "prediction" in configured.model_fields_set else None

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    storage = open_for_command(settings)
    try:
        if file is not None:
            reference = add_file(
                storage,
                model,
                file,
                version=version,
                kind=kind or "training",
                features=features,
                segment_keys=tuple(configured.segments) if configured else (),
                mode="stream" if stream else "auto",
                prediction=prediction,
                progress=progress,
                limits=settings.ingest,
            )
        else:
            assert start_at is not None and end_at is not None
            reference = add_events(
                storage,
                model,
                start_at,
                end_at,
                version=version,
                kind=kind or "window",
                features=features,
                prediction=prediction,
                progress=progress,
            )
    finally:
        storage.close()
    typer.echo(reference.describe())


@reference_app.command("list")
def list_(
    model: Annotated[str | None, typer.Option("--model", "-m", help="only this model")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    config: ConfigOption = None,
) -> None:
    """List registered references (newest registration last)."""
    from detectors.references.store import list_references

    if output not in ("table", "json"):
        raise UserError(f"--format must be table or json, not {output!r}")
    settings = settings_from(config)
    storage = open_for_command(settings)
    try:
        references = list_references(storage, model)
    finally:
        storage.close()
    if output == "json":
        typer.echo(
            json.dumps(
                [
                    {
                        "model": r.model,
                        "version": r.version,
                        "kind": r.kind,
                        "source": r.source,
                        "rows": r.rows,
                        "features": r.columns,
                        "has_prediction": r.has_prediction,
                        "has_label": r.has_label,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in references
                ],
                indent=2,
            )
        )
        return
    if not references:
        typer.echo("no references registered" + (f" for {model}" if model else ""))
        return
    typer.echo(f"{'model':<20} {'version':<12} {'kind':<9} {'rows':>12}  {'registered':<20} source")
    for r in references:
        created = r.created_at.strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{r.model:<20} {r.version:<12} {r.kind:<9} {r.rows:>12,}  {created:<20} {r.source}")


def register(app: typer.Typer) -> None:
    app.add_typer(reference_app, name="reference")
