"""The Prometheus files in deploy/prometheus: the alerting rules pass `promtool check rules` and their unit
tests (`promtool test rules`), every alert is tested firing, the rules query real metrics, and the
scrape configuration passes `promtool check config` (Debian's prometheus package ships promtool)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_compose import known_metrics

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "model-monitor.yml"
RULE_TESTS = PROMETHEUS / "tests" / "model-monitor.test.yml"
REQUIRED_ALERTS = {
    "ModelDriftDetected",
    "ModelStale",
    "ConsumerLagGrowing",
    "DeadLettersRising",
    "NotificationsFailing",
    "DetectionRunsMissed",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed: run `make install` (scripts/system-deps.sh installs prometheus)"
    return binary


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rule_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_fail_when_a_rule_changes(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: an hour of staleness read as a day is caught."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    text = RULES.read_text()
    assert "monitor_model_last_event_timestamp_seconds > 3600" in text
    (tmp_path / "rules" / RULES.name).write_text(text.replace("timestamp_seconds > 3600", "timestamp_seconds > 86400"))
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    result = run(promtool, "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert result.returncode != 0 and "ModelStale" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts >= REQUIRED_ALERTS, f"missing alerts: {REQUIRED_ALERTS - alerts}"
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts == firing, f"alerts never tested firing: {alerts - firing}"
    assert alerts == quiet, f"alerts never tested staying quiet: {alerts - quiet}"
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert {"summary", "description"} <= set(rule["annotations"])


def test_the_rules_query_real_metrics() -> None:
    known = known_metrics() | {"up"}
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used: set[str] = set()
    for rule in rules():
        used |= set(re.findall(r"\b(monitor_[a-z_]+?)(?:_bucket|_total)?\b", rule["expr"]))
        used |= {name for name in re.findall(r"\b([a-z_:]+)\{", rule["expr"]) if name not in ("by", "without")}
        used |= {name for name in re.findall(r"\b([a-z_]+:[a-z_:]+)\b", rule["expr"])}
    unknown = {name.removesuffix("_total") for name in used} - known - recorded
    assert not unknown, f"the rules query metrics nothing exports: {sorted(unknown)}"
    assert "monitor_detection_next_due_timestamp_seconds" in used and "monitor_consumer_lag" in used


def prometheus_dir(tmp_path: Path, with_token: bool) -> Path:
    """deploy/prometheus as compose mounts it at /etc/prometheus, plus the token file compose writes."""
    target = tmp_path / "etc-prometheus"
    shutil.copytree(PROMETHEUS, target, ignore=shutil.ignore_patterns("tests"))
    if with_token:
        (target / "secrets").mkdir()
        (target / "secrets" / "read-token").write_text("read-token-for-the-check")
    return target


def test_the_scrape_configuration_passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    config = prometheus_dir(tmp_path, with_token=True) / "prometheus.yml"
    result = run(promtool, "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout + result.stderr  # the rule files are found and read
    # The check can fail: without the read token compose writes, the scrape has no credentials.
    missing = run(promtool, "check", "config", str(prometheus_dir(tmp_path / "b", with_token=False) / "prometheus.yml"))
    assert missing.returncode != 0 and "read-token" in missing.stdout + missing.stderr


def test_the_scrape_configuration_sends_the_read_token_and_finds_every_replica() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"model-monitor", "ingest"}  # the job names the rules' MonitorTargetDown matches
    service = jobs["model-monitor"]
    assert service["authorization"] == {"type": "Bearer", "credentials_file": "secrets/read-token"}
    assert service["static_configs"] == [{"targets": ["monitor:8000"]}]
    ingest = jobs["ingest"]
    assert "authorization" not in ingest  # the ingest metrics port has no token check: never sent a secret
    assert ingest["dns_sd_configs"] == [{"names": ["ingest"], "type": "A", "port": 9108, "refresh_interval": "30s"}]
    assert config["rule_files"] == ["rules/*.yml"]


def test_the_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Every panel query parses (checked as recording rules), with the model selector at "All"."""
    import json

    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "model-monitor.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 13
    records = [
        {"record": f"dashboard:query_{i}:check", "expr": expr.replace("$model", ".*")} for i, expr in enumerate(exprs)
    ]
    rules_file = tmp_path / "dashboard.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = run(promtool, "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": [{"record": "a:b", "expr": "sum by (model"}]}]})
    )
    assert run(promtool, "check", "rules", str(broken)).returncode != 0
