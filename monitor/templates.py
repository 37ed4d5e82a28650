"""Webhook body templates: a JSON structure whose strings may hold ``${name}`` placeholders.

A string that is exactly one placeholder becomes that variable's JSON value (a list stays a list, a
number a number); placeholders inside longer strings are replaced by text. ``$${`` writes a literal
``${``. Unknown names are a configuration error found at start-up, not at the first alert.

Variables (see docs/alerting.md): ``event`` (alert.firing / alert.repeat / alert.resolved),
``event_id``, ``alert_id``, ``model``, ``version``, ``rule``, ``condition``, ``severity``,
``reason``, ``window`` ({start, end}), ``window_start``, ``window_end``, ``value``, ``threshold``,
``drifted_features`` (names), ``features`` (objects with statistics), ``dashboard_url``,
``created_at``, ``opened_at`` and ``payload`` (the whole default body).
"""

from __future__ import annotations

import json
import re
from typing import Any

from monitor.errors import ConfigError

VARIABLES = (
    "event",
    "event_id",
    "alert_id",
    "model",
    "version",
    "rule",
    "condition",
    "severity",
    "reason",
    "window",
    "window_start",
    "window_end",
    "value",
    "threshold",
    "drifted_features",
    "features",
    "dashboard_url",
    "created_at",
    "opened_at",
    "payload",
)
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_template(template: str | dict[str, Any], where: str = "template") -> Any:
    """The template as a JSON structure; a string must be a JSON document. Checks every name."""
    if isinstance(template, str):
        try:
            structure: Any = json.loads(template)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    else:
        structure = template
    unknown = sorted(_names(structure) - set(VARIABLES))
    if unknown:
        raise ConfigError(f"{where}: unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(VARIABLES)}")
    return structure


def render(structure: Any, variables: dict[str, Any]) -> Any:
    """Substitute ``variables`` into a parsed template."""
    if isinstance(structure, dict):
        return {render(k, variables): render(v, variables) for k, v in structure.items()}
    if isinstance(structure, list):
        return [render(v, variables) for v in structure]
    if isinstance(structure, str):
        whole = _PLACEHOLDER.fullmatch(structure)
        if whole and whole.group(1):
            return variables[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: _text(variables[m.group(1)]) if m.group(1) else "${", structure)
    return structure


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))


def _names(structure: Any) -> set[str]:
    if isinstance(structure, dict):
        return set().union(*(_names(k) | _names(v) for k, v in structure.items())) if structure else set()
    if isinstance(structure, list):
        return set().union(*(_names(v) for v in structure)) if structure else set()
    if isinstance(structure, str):
        return {m.group(1) for m in _PLACEHOLDER.finditer(structure) if m.group(1)}
    return set()
