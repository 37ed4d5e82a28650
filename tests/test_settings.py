"""Configuration: YAML + MONITOR_ environment, validated once, errors with file, key path and reason."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.settings import EverySchedule, load_settings

CONTRACT_EXAMPLE = """
clickhouse: {dsn: "chdb://./.monitor/db"}
kafka: {bootstrap: "127.0.0.1:9092", predictions_topic: predictions, labels_topic: labels, group_id: monitor}
channels:
  team-slack: {type: slack, url: "https://hooks.slack.com/services/T000/B000/XXX"}
  oncall:     {type: pagerduty, routing_key_env: PD_ROUTING_KEY}
  retrain:    {type: webhook, url: "https://ci.example.com/hooks/retrain", secret_env: RETRAIN_SECRET}
models:
  fraud:
    features: {amount: numerical, country: categorical, is_new_user: categorical}
    prediction: {type: probability}
    reference: {file: data/fraud_reference.parquet}
    schedule: "*/5 * * * *"
    window: 1h
    min_samples: 500
    alerts:
      - {when: dataset_drift, for: 2, notify: [team-slack, retrain], severity: warning}
      - {when: feature_drift, features: [amount], notify: [oncall], severity: critical}
      - {when: missing_share, above: 0.1, notify: [team-slack], severity: warning}
  churn:
    features: {tenure: numerical}
    reference: {start: "2026-11-01T00:00:00Z", end: "2026-11-08T00:00:00Z"}
    schedule: {every: 5m}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(CONTRACT_EXAMPLE)
    return path


def test_contract_example_loads(config: Path) -> None:
    s = load_settings(config)
    fraud = s.models["fraud"]
    assert fraud.window == timedelta(hours=1)
    assert fraud.alerts[0].for_ == 2 and fraud.alerts[1].features == ["amount"]
    assert s.channels["oncall"].type == "pagerduty"
    assert s.models["churn"].schedule == EverySchedule(every=timedelta(minutes=5))
    assert s.kafka.group_id == "monitor" and s.clickhouse.database == "monitor"


def test_environment_overrides_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_CLICKHOUSE_DSN", "http://u:p@ch:8123/prod")
    monkeypatch.setenv("MONITOR_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("MONITOR_API_TOKEN", "s3cret")
    monkeypatch.setenv("MONITOR_MODELS__FRAUD__WINDOW", "30m")
    monkeypatch.setenv("MONITOR_KAFKA__GROUP_ID", "replica")
    s = load_settings(config)
    assert s.clickhouse.dsn == "http://u:p@ch:8123/prod"
    assert s.kafka.bootstrap == "kafka:9092" and s.kafka.group_id == "replica"
    assert s.api.token is not None and s.api.token.get_secret_value() == "s3cret"
    assert s.models["fraud"].window == timedelta(minutes=30)
    assert "s3cret" not in repr(s)


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.clickhouse.dsn == "chdb://./.monitor/db" and s.kafka.bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("window: 1h", "window: 1x"), "models.fraud.window: invalid duration '1x'"),
        (("severity: critical", "severity: loud"), "models.fraud.alerts.1.severity:"),
        (("notify: [oncall]", "notify: [nobody]"), "unknown channel 'nobody'"),
        (("features: [amount]", "features: [amont]"), "'amont' is not a feature of model 'fraud'"),
        (("min_samples: 500", "min_samples: -3"), "models.fraud.min_samples:"),
        (("{when: dataset_drift", "{when: dataset_drfit"), "unknown condition 'dataset_drfit'"),
        (("type: pagerduty, routing_key_env: PD_ROUTING_KEY", "type: pager"), "channels.oncall"),
        (("min_samples: 500", "min_samples: 500\n    colour: blue"), "models.fraud.colour: Extra inputs"),
        (("window: 1h", "window: [1h"), "invalid YAML"),
        (("\n  fraud:\n", '\n  "fraud/eu":\n'), "'fraud/eu' is not a model name: it must not contain '/'"),
        (("\n  fraud:\n", '\n  "fr\\x00aud":\n'), "it contains the control character U+0000"),
    ],
)
def test_errors_name_file_key_and_reason(config: Path, change: tuple[str, str], expected: str) -> None:
    config.write_text(CONTRACT_EXAMPLE.replace(*change, 1))
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(config) in str(info.value)
    assert expected in str(info.value)


def test_cli_reports_a_bad_config_with_exit_code_2(config: Path) -> None:
    config.write_text(CONTRACT_EXAMPLE.replace("window: 1h", "window: soon"))
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "ingest", "--config", str(config), "--max-messages", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("monitor: error: ")
    assert f"{config}: models.fraud.window: invalid duration 'soon'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_config_file_and_bad_option(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "monitor", "kafka", "status", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "configuration file not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    usage = subprocess.run(
        [sys.executable, "-m", "monitor", "ingest", "--max-messages", "zero"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2 and usage.stderr.startswith("monitor: error: ")
    assert len(usage.stderr.strip().splitlines()) == 1
