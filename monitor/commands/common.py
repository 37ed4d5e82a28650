"""Options and helpers shared by the commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pydantic's import is a fifth of a second: only commands that read the settings pay it
    from monitor.settings import Settings

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


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress messages on stderr.")]
PROGRESS_BYTES = 16 * 1024 * 1024  # offline inputs this large (together) get progress lines on stderr


class Progress:
    """Progress lines on stderr with the time since the start: ``monitor <command>: [  1.2s] message``."""

    def __init__(self, command: str) -> None:
        self._command = command
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        typer.echo(f"monitor {self._command}: [{time.monotonic() - self._start:5.1f}s] {message}", err=True)


def progress_for(command: str, files: tuple[Path, ...], quiet: bool) -> Progress | None:
    """A :class:`Progress` for an offline command whose input files are large enough to take a while."""
    large = sum(path.stat().st_size for path in files) >= PROGRESS_BYTES
    return None if quiet or not large else Progress(command)


def settings_from(config: Path | None) -> Settings:
    """Load and validate the configuration once, at the edge."""
    from monitor.settings import load_settings

    return load_settings(config)


def help_when_bare(ctx: typer.Context) -> None:
    """A group's callback: run with no command, print the group's help and exit 0.

    Typer's own ``no_args_is_help`` signals that case with an exception that typer does not export
    (it lives in its private ``typer._click``), so the groups use this documented pattern instead:
    ``@app.callback(invoke_without_command=True)`` and a look at ``ctx.invoked_subcommand``.
    """
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help(), nl=False)
        raise typer.Exit(0)
