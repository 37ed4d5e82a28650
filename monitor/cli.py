"""The ``monitor`` command line.

Each command lives in its own module under ``monitor/commands/`` and registers itself on the app.
:func:`main` imports only the module of the command being run (all of them for ``monitor --help``),
and heavy libraries (pandas, scipy, evidently) are imported inside the commands that need them, so a
command starts in a fraction of a second (``monitor drift`` is timed against Evidently whole-process).

Exit codes: 0 success; 1 drift detected where a command gates on it; 2 bad usage or bad input, with
a one-line reason on stderr; 3 infrastructure failure (ClickHouse or Kafka unreachable).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from typing import Annotated, Any

import typer

from monitor.commands.common import help_when_bare
from monitor.errors import BrokerError, MonitorError, StorageError, UserError

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2
EXIT_INFRA = 3

# command name -> the module whose register(app) adds it (in the order `monitor --help` lists them)
COMMANDS = {
    "kafka": "monitor.commands.kafka",
    "ingest": "monitor.commands.ingest",
    "reference": "monitor.commands.reference",
    "drift": "monitor.commands.drift",
    "detect": "monitor.commands.detect",
    "estimate": "monitor.commands.estimate",
    "up": "monitor.commands.service",
    "demo": "monitor.commands.service",
}


def build_app(command: str | None = None) -> typer.Typer:
    """The CLI with every command, or only ``command``'s module (what :func:`main` runs: faster start-up)."""
    app = typer.Typer(
        name="monitor",
        help=(
            "Model monitoring and drift detection.\n\n"
            "Prediction events arrive on Kafka, land in ClickHouse, are compared with a reference on a "
            "schedule, and what drifts is sent to Slack, PagerDuty and retraining webhooks.\n\n"
            "Configuration: --config FILE (default ./monitor.yaml if present); every key can be "
            "overridden with MONITOR_<SECTION>__<KEY>, e.g. MONITOR_CLICKHOUSE_DSN, MONITOR_KAFKA_BOOTSTRAP."
        ),
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    # a group even with one command registered (`monitor drift ...` keeps its name); bare `monitor`: the help
    app.callback(invoke_without_command=True)(_root)
    wanted = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module in wanted:
        importlib.import_module(module).register(app)
    _reflow_help(app)
    return app


def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """``monitor --version``, or the help when no command is given."""
    if version:
        from monitor import __version__

        typer.echo(f"monitor {__version__}")
        raise typer.Exit(0)
    help_when_bare(ctx)


def reflow(text: str) -> str:
    """A docstring as ``--help`` shows it: each paragraph's source line breaks joined into one line.

    Typer keeps the line breaks of every paragraph after the first, so a docstring wrapped at the source
    width showed as ragged short lines. Paragraphs with indented lines (examples) stay as written.
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p if any(line.startswith((" ", "\b")) for line in p.splitlines()) else " ".join(p.split("\n"))
        for p in paragraphs
    )


def _reflow_help(app: typer.Typer) -> None:
    """Apply :func:`reflow` to every command's and group's help, nested groups included."""
    for command in app.registered_commands:
        text = command.help or inspect.getdoc(command.callback)
        if text:
            command.help = reflow(text)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            info = group.typer_instance.info
            if isinstance(info.help, str):
                info.help = reflow(info.help)
            _reflow_help(group.typer_instance)


def __getattr__(name: str) -> Any:
    """``monitor.cli.app``: the full CLI, built on first access (tests drive it with typer's CliRunner)."""
    if name == "app":
        globals()["app"] = full = build_app()
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command_name(argv: list[str]) -> str | None:
    """The command being run: the first argument that is not an option (None: help or nothing)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print ``monitor: error: <message>`` on stderr and exit; for use inside commands."""
    typer.echo(f"monitor: error: {message}", err=True)
    raise typer.Exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and turn errors into one-line messages and exit codes."""
    args = sys.argv[1:] if argv is None else list(argv)
    app = build_app(_command_name(args))
    try:
        result = app(args=args, standalone_mode=False, prog_name="monitor")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("monitor: interrupted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # typer's usage errors: unknown option, missing argument, bad value
        typer.echo(f"monitor: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except UserError as exc:
        typer.echo(f"monitor: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except (StorageError, BrokerError) as exc:
        typer.echo(f"monitor: error: {exc}", err=True)
        sys.exit(EXIT_INFRA)
    except MonitorError as exc:
        typer.echo(f"monitor: error: {exc}", err=True)
        sys.exit(EXIT_INFRA)
    except KeyboardInterrupt:
        typer.echo("monitor: interrupted", err=True)
        sys.exit(130)
    except Exception:  # a bug: keep the traceback, but never exit 1 (that means "drift detected")
        traceback.print_exc()
        sys.exit(EXIT_INFRA)
    sys.exit(result if isinstance(result, int) else EXIT_OK)
