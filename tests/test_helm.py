"""The Helm chart (deploy/helm/model-monitor) rendered with several value sets by the real helm CLI
(`make install` builds it into .cache/bin) and every object validated offline: Kubernetes kinds against
the official schemas shipped by kubernetes-validate (strict: unknown fields are errors), the Prometheus
Operator kinds against a schema written here. Then what the objects mean: one scheduler, N consumers in
one group, probes, resources, a non-root read-only security context, Secret references, Services that
select the right pods, ServiceMonitors that reach them, and a ConfigMap the settings accept."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from monitor.settings import load_settings
from tests.test_compose import _setting_exists

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "model-monitor"
HELM = REPO / ".cache" / "bin" / "helm"
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())
BASE = ["--set", "kafka.bootstrap=kafka.kafka.svc:9092", "--set", "secret.existingSecret=monitor-secrets"]

# The Prometheus Operator's CRDs are not in kubernetes-validate: the fields this chart relies on.
OPERATOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}},
            },
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["matchLabels"],
                        "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["port", "path"],
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string", "pattern": "^/"},
                                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "authorization": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["type", "credentials"],
                                    "properties": {
                                        "type": {"const": "Bearer"},
                                        "credentials": {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "required": ["name", "key"],
                                            "properties": {"name": {"type": "string"}, "key": {"type": "string"}},
                                        },
                                    },
                                },
                                "relabelings": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "action": {"enum": ["replace", "keep", "drop", "labeldrop", "labelkeep"]},
                                            "targetLabel": {"type": "string"},
                                            "replacement": {"type": "string"},
                                            "sourceLabels": {"type": "array", "items": {"type": "string"}},
                                            "regex": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["groups"],
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string"},
                                            "for": {"type": "string"},
                                            "labels": {"type": "object"},
                                            "annotations": {"type": "object"},
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def helm() -> str:
    assert HELM.is_file(), f"{HELM} is missing: run `make install` (scripts/helm.sh builds helm with Go)"
    return str(HELM)


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [helm, "template", "mm", str(CHART), "--namespace", "monitoring", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_error(helm: str, *args: str) -> str:
    result = subprocess.run(
        [helm, "template", "mm", str(CHART), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0, "rendering should have failed"
    return result.stderr


VALUE_SETS = {
    "defaults": BASE,
    "operator": [
        *BASE,
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "serviceMonitor.labels.release=kube-prometheus-stack",
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "ingest.replicas=4",
        "--set",
        "kafka.partitions=12",
        "--set",
        "kafka.extraEnv.BATCH_MAX_MESSAGES=20000",
        "--set",
        "references.configMap=fraud-reference",
        "--set",
        "secret.extraEnv.SLACK_WEBHOOK_URL=slack-webhook-url",
        "--set",
        "imagePullSecrets[0].name=registry",
    ],
    "created-secret": [
        "--set",
        "kafka.bootstrap=b-1.kafka:9094",
        "--set",
        "secret.create=true",
        "--set",
        "secret.values.clickhouse-dsn=https://monitor:pw@ch:8443/monitor",
        "--set",
        "secret.values.api-token=write",
        "--set",
        "secret.values.api-read-token=read",
        "--set",
        "dashboard.enabled=false",
        "--set",
        "references.persistentVolumeClaim=references",
    ],
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, helm: str) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(helm, *VALUE_SETS[request.param])


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for deployment in by_kind(docs, "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment, container


def test_every_object_is_valid_for_kubernetes(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds.count("Deployment") == (2 if name == "created-secret" else 3)
    for doc in docs:
        if doc["kind"] in OPERATOR_SCHEMAS:
            jsonschema.Draft202012Validator(OPERATOR_SCHEMAS[doc["kind"]]).validate(doc)
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    assert ("ServiceMonitor" in kinds) == ("PrometheusRule" in kinds) == (name == "operator")
    assert ("Secret" in kinds) == (name == "created-secret")


def test_the_validation_can_fail(helm: str) -> None:
    docs = render(helm, *BASE)
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"}}
    with pytest.raises(jsonschema.ValidationError):  # no selector, no endpoints
        jsonschema.Draft202012Validator(OPERATOR_SCHEMAS["ServiceMonitor"]).validate({**monitor, "spec": {}})


def test_one_scheduler_and_n_consumers_in_one_group(helm: str) -> None:
    docs = render(helm, *VALUE_SETS["operator"])
    deployments = by_kind(docs, "Deployment")
    service = deployments["mm-model-monitor-service"]["spec"]
    ingest = deployments["mm-model-monitor-ingest"]["spec"]
    assert service["replicas"] == 1 and service["strategy"] == {"type": "Recreate"}
    assert ingest["replicas"] == 4
    [service_container] = service["template"]["spec"]["containers"]
    [ingest_container] = ingest["template"]["spec"]["containers"]
    assert service_container["args"][0] == "up" and "--no-consumer" in service_container["args"]
    assert ingest_container["args"][0] == "ingest"

    def env(container: dict[str, Any]) -> dict[str, Any]:
        return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}

    assert env(ingest_container)["MONITOR_KAFKA__GROUP_ID"] == env(service_container)["MONITOR_KAFKA__GROUP_ID"]
    assert env(ingest_container)["MONITOR_KAFKA__PARTITIONS"] == "12"
    assert env(ingest_container)["MONITOR_KAFKA__BATCH_MAX_MESSAGES"] == "20000"
    assert env(ingest_container)["SLACK_WEBHOOK_URL"] == {
        "secretKeyRef": {"name": "monitor-secrets", "key": "slack-webhook-url"}
    }


def test_the_commands_are_real_cli_options(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    runner = CliRunner()
    for _, container in containers(rendered[1]):
        if container["name"] == "dashboard":
            assert container["command"][-1] == "dashboards/app.py"
            continue
        args = container["args"]
        result = runner.invoke(app, [args[0], "--help"])
        assert result.exit_code == 0, result.output
        for option in (a for a in args[1:] if a.startswith("--")):
            assert option in result.output, f"{container['name']}: {option} is not an option of monitor {args[0]}"


def test_probes_resources_and_a_read_only_non_root_context(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    expected_probes = {
        "monitor": {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"},
        "ingest": {"livenessProbe": "/metrics", "readinessProbe": "/metrics"},
        "dashboard": {"livenessProbe": "/_stcore/health", "readinessProbe": "/_stcore/health"},
    }
    seen = set()
    for deployment, container in containers(rendered[1]):
        seen.add(container["name"])
        pod = deployment["spec"]["template"]["spec"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        probes = {key: value for key, value in container.items() if key.endswith("Probe")}
        assert {key: probe["httpGet"]["path"] for key, probe in probes.items()} == expected_probes[container["name"]]
        assert all(probe["httpGet"]["port"] in ports for probe in probes.values())
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 1000
        assert pod["automountServiceAccountToken"] is False
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp on a read-only root"
        assert {"name": "HOME", "value": "/tmp"} in container["env"]
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes
            if mount["mountPath"] != "/tmp":
                assert mount["readOnly"] is True
    assert seen >= {"monitor", "ingest"}


def test_secrets_are_referenced_never_inlined(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    secrets = by_kind(docs, "Secret")
    secret_name = "mm-model-monitor" if name == "created-secret" else "monitor-secrets"
    for _, container in containers(docs):
        for item in container["env"]:
            if any(word in item["name"] for word in ("TOKEN", "DSN", "PASSWORD", "SECRET", "WEBHOOK")):
                assert "value" not in item, f"{item['name']} inlined in {container['name']}"
                assert item["valueFrom"]["secretKeyRef"]["name"] == secret_name
                if secrets:
                    assert item["valueFrom"]["secretKeyRef"]["key"] in secrets[secret_name]["stringData"]
            elif item["name"].startswith("MONITOR_") and item["name"] != "MONITOR_API_URL":
                assert _setting_exists(item["name"]), f"{item['name']} is not a setting"
    if secrets:
        assert secrets[secret_name]["stringData"]["api-read-token"] == "read"


def test_services_select_the_right_pods_and_ports(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    docs = rendered[1]
    deployments = by_kind(docs, "Deployment")
    for service in by_kind(docs, "Service").values():
        selector = service["spec"]["selector"]
        matching = [
            d for d in deployments.values() if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, f"{service['metadata']['name']} selects {len(matching)} deployments"
        assert matching[0]["spec"]["selector"]["matchLabels"] == selector
        port_names = {p["name"] for c in matching[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert all(port["targetPort"] in port_names for port in service["spec"]["ports"])
    ingest = by_kind(docs, "Service")["mm-model-monitor-ingest"]
    assert ingest["spec"]["clusterIP"] == "None"  # every replica scraped, not one behind a virtual IP
    dashboard = deployments.get("mm-model-monitor-dashboard")
    if dashboard:
        env = {e["name"]: e for e in dashboard["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["MONITOR_API_URL"]["value"] == "http://mm-model-monitor:8000"
        assert env["MONITOR_API_READ_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "api-read-token"


def test_service_monitors_reach_the_metrics_with_the_read_token(helm: str) -> None:
    docs = render(helm, *VALUE_SETS["operator"])
    services = by_kind(docs, "Service")
    monitors = by_kind(docs, "ServiceMonitor")
    jobs = {}
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        selected = [
            s
            for s in services.values()
            if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert len(selected) == 1
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
        job = next(r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job")
        jobs[job] = endpoint
    assert set(jobs) == {"model-monitor", "ingest"}  # what the alerting rules' MonitorTargetDown matches
    assert jobs["model-monitor"]["authorization"]["credentials"] == {"name": "monitor-secrets", "key": "api-read-token"}
    assert "authorization" not in jobs["ingest"]
    [rule] = by_kind(docs, "PrometheusRule").values()
    shipped = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "model-monitor.yml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]
    assert (CHART / "files" / "prometheus-rules.yml").read_text() == (
        REPO / "deploy" / "prometheus" / "rules" / "model-monitor.yml"
    ).read_text(), "copy deploy/prometheus/rules/model-monitor.yml to the chart's files/"


def test_the_configmap_is_a_configuration_the_settings_accept(helm: str, tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "deploy" / "monitor.yaml").read_text())
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"config": config}))
    docs = render(helm, *BASE, "-f", str(values))
    [configmap] = by_kind(docs, "ConfigMap").values()
    path = tmp_path / "monitor.yaml"
    path.write_text(configmap["data"]["monitor.yaml"])
    settings = load_settings(path)
    assert list(settings.models) == ["fraud"] and settings.models["fraud"].window.total_seconds() == 3600
    empty = tmp_path / "empty.yaml"
    empty.write_text(by_kind(render(helm, *BASE), "ConfigMap")["mm-model-monitor"]["data"]["monitor.yaml"])
    assert load_settings(empty).models == {}
    # a configuration change rolls the pods (the checksum annotation follows the ConfigMap)
    before = by_kind(render(helm, *BASE), "Deployment")["mm-model-monitor-service"]
    after = by_kind(docs, "Deployment")["mm-model-monitor-service"]
    key = "checksum/config"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][key]
        != after["spec"]["template"]["metadata"]["annotations"][key]
    )


def test_missing_required_values_fail_with_a_clear_message(helm: str) -> None:
    assert "set kafka.bootstrap" in render_error(helm, "--set", "secret.existingSecret=s")
    assert "set secret.existingSecret" in render_error(helm, "--set", "kafka.bootstrap=k:9092")
    missing_token = render_error(
        helm,
        "--set",
        "kafka.bootstrap=k:9092",
        "--set",
        "secret.create=true",
        "--set",
        "secret.values.clickhouse-dsn=http://x",
        "--set",
        "secret.values.api-token=w",
    )
    assert "set secret.values.api-read-token" in missing_token


def test_helm_lint_passes(helm: str) -> None:
    result = subprocess.run(
        [helm, "lint", str(CHART), "--strict", *BASE], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_service_and_the_dashboard_get_api_tokens(helm: str) -> None:
    for _, container in containers(render(helm, *BASE)):
        names = {item["name"] for item in container["env"]}
        wanted = {
            "monitor": {"MONITOR_API_TOKEN", "MONITOR_API_READ_TOKEN"},
            "ingest": set(),
            "dashboard": {"MONITOR_API_READ_TOKEN"},
        }[container["name"]]
        assert names & {"MONITOR_API_TOKEN", "MONITOR_API_READ_TOKEN"} == wanted, container["name"]
