"""Deployment files: compose.yaml valid against the Compose Specification schema, its variables known
to the settings, its commands real; Prometheus and Grafana files consistent with the metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from monitor.settings import FLAT_ENV_ALIASES, Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_matches_the_compose_specification(compose: dict) -> None:
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    assert {"kafka", "clickhouse", "monitor", "ingest", "dashboard", "prometheus"} <= set(compose["services"])


def test_the_schema_rejects_a_broken_file(compose: dict) -> None:
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    broken = {
        **compose,
        "services": {**compose["services"], "monitor": {**compose["services"]["monitor"], "ports": 8000}},
    }
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def _setting_exists(name: str) -> bool:
    """Whether MONITOR_<A>__<B>... names a field of Settings (or is one of the flat aliases)."""
    if name in FLAT_ENV_ALIASES:
        return True
    model: type[BaseModel] | None = Settings
    for part in name.removeprefix("MONITOR_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return True


def _monitor_env(compose: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("MONITOR_") and key != "MONITOR_API_URL":  # the dashboard's, not a setting
                env[key] = str(value)
    return env


def test_compose_variables_are_settings(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _monitor_env(compose)
    assert {"MONITOR_CLICKHOUSE_DSN", "MONITOR_KAFKA_BOOTSTRAP", "MONITOR_API_TOKEN"} <= set(env)
    unknown = [name for name in env if not _setting_exists(name)]
    assert not unknown, f"compose.yaml sets variables the settings do not read: {unknown}"
    assert not _setting_exists("MONITOR_KAFKA__NO_SUCH_KEY")  # the check can fail
    for name, value in env.items():
        monkeypatch.setenv(name, INTERPOLATION.sub(lambda m: "x" if m.group(1).endswith("TOKEN") else "monitor", value))
    settings = load_settings(REPO / "deploy" / "monitor.yaml")
    assert settings.clickhouse.dsn == "http://monitor:monitor@clickhouse:8123/monitor"
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.api.token is not None and settings.log_format == "json"


def test_compose_commands_are_real_cli_commands(compose: dict) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    runner = CliRunner()
    for name in ("monitor", "ingest"):
        command = compose["services"][name]["command"]
        result = runner.invoke(app, [command[0], "--help"])
        assert result.exit_code == 0, result.output
        for option in (c for c in command[1:] if c.startswith("--")):
            assert option in result.output, f"{name}: {option} is not an option of monitor {command[0]}"
    assert compose["services"]["dashboard"]["entrypoint"][-1] == "dashboards/app.py"
    assert (REPO / "dashboards" / "app.py").is_file()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["monitor"]' in dockerfile and "pip install ." in dockerfile


def test_prometheus_and_grafana_files_use_real_metrics() -> None:
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["monitor:8000"] and prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"
    from prometheus_client import REGISTRY

    import monitor.metrics  # noqa: F401  (registers the process metrics)

    known = {sample_family.name for sample_family in REGISTRY.collect()}
    source = (REPO / "monitor" / "service" / "collector.py").read_text()
    known |= set(re.findall(r'"(monitor_[a-z_]+)"', source))
    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(monitor_[a-z_]+?)(?:_bucket|_total)?\b", target["expr"]))
    assert used and used <= known, f"dashboard queries unknown metrics: {sorted(used - known)}"
