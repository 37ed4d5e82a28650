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
        (("window: 1h", "window: 10000000d"), "models.fraud.window: duration '10000000d' is too long: at most 3650d"),
        (("schedule: {every: 5m}", "schedule: {every: 0s}"), "models.churn.schedule.every: duration must be positive"),
        (("secret_env: RETRAIN_SECRET", "secret: [a, b]"), "channels.retrain.secret: Input should be a valid string"),
        (('start: "2026-11-01T00:00:00Z"', "start: 0001-01-01T00:00:00Z"), "models.churn.reference.start: must be"),
        (
            ("reference: {file: data/fraud_reference.parquet}", 'reference: {file: x.parquet, version: "v 1"}'),
            "models.fraud.reference.version: 'v 1' may hold only letters",
        ),
        (('dsn: "chdb://./.monitor/db"', 'dsn: "http://u:pw@[::1:1/db"'), "clickhouse.dsn: malformed URL"),
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


def test_union_members_and_type_tags_stay_out_of_key_paths(config: Path) -> None:
    """pydantic names union members in its locations (a channel's type, ``str``, ``EverySchedule``): the
    message gives the key path in the file, and the member that got furthest, once."""
    config.write_text(
        CONTRACT_EXAMPLE.replace("secret_env: RETRAIN_SECRET", "secret: [a, b]").replace(
            "schedule: {every: 5m}", "schedule: {every: 0s}"
        )
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    lines = str(info.value).splitlines()
    assert lines == [
        f"{config}: channels.retrain.secret: Input should be a valid string",
        f"{config}: models.churn.schedule.every: duration must be positive, got '0s'",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MONITOR_MODELS__FRAUD__WINDOW", "1x", "models.fraud.window: invalid duration '1x'"),
        ("MONITOR_API__PORT", "notaport", "api.port: Input should be a valid integer"),
        ("MONITOR_MODELS__FRAUD__BOGUS", "1", "models.fraud.bogus: Extra inputs are not permitted"),
        ("MONITOR_MODELS__FRAUD__SEGMENTS", "[region", "models.fraud.segments: not valid JSON"),
        ("MONITOR_CLICKHOUSE_DSN", "http://u:pw@[::1:1/db", "clickhouse.dsn: malformed URL"),
    ],
)
def test_errors_from_the_environment_name_the_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(info.value) == f"{variable}: {expected}" or str(info.value).startswith(f"{variable}: {expected}")
    assert str(config) not in str(info.value)


def test_errors_from_the_environment_do_not_echo_secrets(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_CHANNELS__TEAM_SLACK__URL", "ftp://hooks.slack.com/services/T0/B0/s3cr3tpath")
    monkeypatch.setenv("MONITOR_CLICKHOUSE_DSN", "http://u:hunter2@ch:8123/db?bogus=hunter2")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert "MONITOR_CHANNELS__TEAM_SLACK__URL: channels.team-slack.url: must be an http:// or https:// URL" in message
    assert "MONITOR_CLICKHOUSE_DSN: clickhouse.dsn: unknown query parameter 'bogus'" in message
    assert "s3cr3tpath" not in message and "hunter2" not in message


def test_environment_overrides_reach_mixed_case_and_hyphenated_names(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text(
        CONTRACT_EXAMPLE.replace("  churn:", "  FraudX:\n    window: 1h\n  fraud-eu:\n    window: 1h\n  churn:")
    )
    monkeypatch.setenv("MONITOR_MODELS__FRAUDX__WINDOW", "2h")
    monkeypatch.setenv("MONITOR_MODELS__FRAUD_EU__WINDOW", "3h")
    monkeypatch.setenv("MONITOR_RETENTION__MODELS__FRAUD_EU", "10d")
    monkeypatch.setenv("MONITOR_CHANNELS__TEAM_SLACK__URL", "https://hooks.slack.com/services/T1/B1/YYY")
    s = load_settings(config)
    assert sorted(s.models) == ["FraudX", "churn", "fraud", "fraud-eu"]
    assert s.models["FraudX"].window == timedelta(hours=2) and s.models["fraud-eu"].window == timedelta(hours=3)
    assert s.retention.models == {"fraud-eu": timedelta(days=10)}
    assert sorted(s.channels) == ["oncall", "retrain", "team-slack"]
    url = s.channels["team-slack"].url  # type: ignore[union-attr]
    assert url is not None and url.get_secret_value().endswith("/T1/B1/YYY")


def test_environment_overrides_neither_invent_nor_guess_models(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_MODELS__FRUAD__WINDOW", "2h")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(info.value).startswith("MONITOR_MODELS__FRUAD__WINDOW: models.fruad: no model 'fruad' in ")
    monkeypatch.delenv("MONITOR_MODELS__FRUAD__WINDOW")
    config.write_text(
        CONTRACT_EXAMPLE.replace("  churn:", "  fraud-eu:\n    window: 1h\n  Fraud_EU:\n    window: 1h\n  churn:")
    )
    monkeypatch.setenv("MONITOR_MODELS__FRAUD_EU__WINDOW", "2h")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert "MONITOR_MODELS__FRAUD_EU__WINDOW: models.fraud_eu: ambiguous: it matches 'Fraud_EU', 'fraud-eu'" in str(
        info.value
    )


@pytest.mark.parametrize(
    ("channel", "shown"),
    [
        ('{type: slack, url: "ftp://hooks.slack.com/services/T0/B0/XXX"}', "ftp://hooks.slack.com/***"),
        ('{type: slack, url: "not a url"}', "got ***"),
        ('{type: webhook, url: "https:///hooks/retrain"}', "https:///***"),
        ('{type: pagerduty, routing_key_env: PD, url: "events.pagerduty.com/v2"}', "got ***"),
    ],
)
def test_channel_urls_are_checked_without_showing_them(config: Path, channel: str, shown: str) -> None:
    config.write_text(
        CONTRACT_EXAMPLE.replace('{type: slack, url: "https://hooks.slack.com/services/T000/B000/XXX"}', channel)
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert f"{config}: channels.team-slack.url: must be an http:// or https:// URL with a host" in message
    assert shown in message and "XXX" not in message and "/hooks/" not in message and "v2" not in message


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        ("http://127.0.0.1:1/db?password=x&user=u&foo=1", "unknown query parameter 'foo'"),
        ("http://u:pw@[::1:1/db", "malformed URL: Invalid IPv6 URL"),
        ("http://u:pw@ch:port/db", "malformed URL"),
        ("http://u:pw@/db", "no host name"),
        ("http://u:pw@ch/db?password=other", "query parameter 'password': the DSN has a password"),
        ("ftp://u:pw@ch/db", "must start with chdb://, http:// or https://"),
        ("chdb://", "chdb:// needs a path"),
    ],
)
def test_malformed_clickhouse_dsns_are_configuration_errors(
    config: Path, monkeypatch: pytest.MonkeyPatch, dsn: str, reason: str
) -> None:
    monkeypatch.setenv("MONITOR_CLICKHOUSE_DSN", dsn)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(info.value).startswith(f"MONITOR_CLICKHOUSE_DSN: clickhouse.dsn: {reason}")
    assert "pw" not in str(info.value).replace("password", "")


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


def test_cli_reports_a_config_that_is_not_utf8_in_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe bad")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "detect", "--config", str(binary), "--model", "fraud"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"monitor: error: {binary}: not valid UTF-8 (byte 0xff at position 0)\n"


def test_a_control_character_in_the_config_is_one_line(config: Path) -> None:
    config.write_bytes(b"log_level: \x01info\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(info.value).startswith(f"{config}: position 11: invalid YAML: ")
    assert "\n" not in str(info.value)


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
