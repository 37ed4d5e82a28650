"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
