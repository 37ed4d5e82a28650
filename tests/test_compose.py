"""Deployment files: compose.yaml valid against the Compose Specification schema, its variables known
to the settings, its commands real; Prometheus and Grafana files consistent with the metrics. No Docker
engine runs here, so compose is checked statically: interpolated the way `docker compose` does, then
ports, listeners, volumes, health checks, scrape targets, provisioning and required variables."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from monitor.settings import FLAT_ENV_ALIASES, Settings, load_settings
from monitor.storage import Storage

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


def known_metrics() -> set[str]:
    """Every metric family the processes export: monitor.metrics plus the database-backed gauges."""
    from prometheus_client import REGISTRY

    import monitor.metrics  # noqa: F401  (registers the process metrics)

    known = {sample_family.name for sample_family in REGISTRY.collect()}
    source = (REPO / "monitor" / "service" / "collector.py").read_text()
    return known | set(re.findall(r'"(monitor_[a-z_]+)"', source))


def test_prometheus_and_grafana_files_use_real_metrics() -> None:
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["monitor:8000"] and prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"
    known = known_metrics()
    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "model-monitor.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(monitor_[a-z_]+?)(?:_bucket|_total)?\b", target["expr"]))
    assert used and used <= known, f"dashboard queries unknown metrics: {sorted(used - known)}"


# ---------------------------------------------------------------- compose as `docker compose` reads it

REQUIRED = {"CLICKHOUSE_PASSWORD", "MONITOR_API_TOKEN", "MONITOR_API_READ_TOKEN", "GRAFANA_ADMIN_PASSWORD"}
REQUIRED_ENV = {name: f"{name.lower()}-value" for name in REQUIRED}
VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class MissingVariable(Exception):
    pass


def interpolate(node: object, env: dict[str, str]) -> object:
    """Compose's variable interpolation: ${V}, ${V:-default}, ${V-default}, ${V:?error}, ${V?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name, operator, argument = match.group(2) or match.group(5), match.group(3), match.group(4)
        value = env.get(name)
        if operator == ":-":
            return value or argument
        if operator == "-":
            return argument if value is None else value
        if operator in (":?", "?") and (value is None or (operator == ":?" and not value)):
            raise MissingVariable(f"required variable {name} is missing a value: {argument}")
        return value or ""

    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return VARIABLE.sub(substitute, node) if isinstance(node, str) else node


def resolved(compose: dict, **env: str) -> dict:
    result = interpolate(compose, REQUIRED_ENV | env)
    assert isinstance(result, dict)
    return result


def published(service: dict) -> list[tuple[str, int, int]]:
    """(host address, published port, container port) of each short-syntax port."""
    entries = []
    for entry in service.get("ports", []):
        host, published_port, target = str(entry).rsplit(":", 2)
        entries.append((host, int(published_port), int(target)))
    return entries


def option(command: list[str], name: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in a command list."""
    for i, item in enumerate(command):
        if item == name:
            return command[i + 1]
        if item.startswith(f"{name}="):
            return item.split("=", 1)[1]
    raise AssertionError(f"{name} not in {command}")


def test_missing_passwords_and_tokens_stop_compose_with_a_clear_message(compose: dict) -> None:
    text = (REPO / "compose.yaml").read_text()
    required = {m.group(2) for m in VARIABLE.finditer(text) if m.group(3) == ":?"}
    assert required == REQUIRED
    resolved(compose)  # everything set: no error
    for name in sorted(REQUIRED):
        env = {k: v for k, v in REQUIRED_ENV.items() if k != name}
        for missing in (env, env | {name: ""}):  # unset or empty
            with pytest.raises(MissingVariable, match=rf"{name} is missing a value: set {name} to "):
                interpolate(compose, missing)
    # no password or token has a default value anywhere in the file
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|TOKEN|SECRET)[A-Z_]*:?-[^}]+\}", text)


def test_published_ports_listen_on_loopback_unless_told_otherwise(compose: dict) -> None:
    services = resolved(compose)["services"]
    ports = {name: published(service) for name, service in services.items() if published(service)}
    assert set(ports) == {"kafka", "monitor", "dashboard", "prometheus", "grafana", "oauth2-proxy"}
    assert all(host == "127.0.0.1" for entries in ports.values() for host, _, _ in entries), ports
    assert not published(services["clickhouse"]) and not published(services["ingest"])
    shared = resolved(compose, MONITOR_BIND_ADDRESS="0.0.0.0")["services"]
    for name in set(ports) - {"oauth2-proxy"}:
        assert all(host == "0.0.0.0" for host, _, _ in published(shared[name]))
    # the login proxy is opened on its own, so the dashboard can stay on loopback behind it
    assert published(shared["oauth2-proxy"])[0][0] == "127.0.0.1"
    proxied = resolved(compose, OAUTH2_PROXY_BIND_ADDRESS="0.0.0.0")["services"]
    assert published(proxied["oauth2-proxy"])[0][0] == "0.0.0.0"
    assert published(proxied["dashboard"])[0][0] == "127.0.0.1"


def test_images_are_pinned_to_exact_versions(compose: dict) -> None:
    exact = re.compile(r"[a-z0-9./_-]+:v?\d+\.\d+\.\d+(\.\d+)?(-[a-z0-9]+)?")
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert all(exact.fullmatch(image) for image in images.values()), images
    assert images["clickhouse"].startswith("clickhouse/clickhouse-server:25.8.")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert {images[n] for n in ("monitor", "ingest", "dashboard")} == {f"model-monitor:{project}"}
    assert compose["services"]["monitor"]["build"] == "."


def test_kafka_persists_its_log_and_serves_containers_and_the_host(compose: dict) -> None:
    kafka = resolved(compose)["services"]["kafka"]
    env = kafka["environment"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"]}
    assert volumes.get(env["KAFKA_LOG_DIRS"]) in compose["volumes"], "the log directory is not the named volume"

    def listeners(text: str) -> dict[str, tuple[str, int]]:
        result = {}
        for item in text.split(","):
            name, _, address = item.partition("://")
            host, _, port = address.rpartition(":")
            result[name] = (host, int(port))
        return result

    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(bound) == set(protocols) == set(advertised) | {env["KAFKA_CONTROLLER_LISTENER_NAMES"]}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name, (_, port) in advertised.items():
        assert bound[name][1] == port
    # containers: the internal listener is what every MONITOR_KAFKA_BOOTSTRAP names
    internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert {_monitor_env(compose)["MONITOR_KAFKA_BOOTSTRAP"]} == {"{}:{}".format(*advertised[internal])}
    # the host: an advertised 127.0.0.1 listener whose port is published
    external = [name for name, (host, _) in advertised.items() if host == "127.0.0.1"]
    assert len(external) == 1
    assert (advertised[external[0]][1], advertised[external[0]][1]) in {(p, t) for _, p, t in published(kafka)}
    assert resolved(compose, KAFKA_EXTERNAL_HOST="kafka.example.com")["services"]["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"
    ].endswith("EXTERNAL://kafka.example.com:29092")
    data_volumes = {v.split(":")[1] for v in resolved(compose)["services"]["clickhouse"]["volumes"]}
    assert "/var/lib/clickhouse" in data_volumes


def test_partitions_agree_between_broker_settings_and_docs(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = int(compose["services"]["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"])
    service = int(_monitor_env(compose)["MONITOR_KAFKA__PARTITIONS"])
    documented = {
        int(n) for n in re.findall(r"(\d+) partitions per topic", (REPO / "docs" / "deployment.md").read_text())
    }
    assert broker == service and documented == {broker}
    monkeypatch.setenv("MONITOR_KAFKA__PARTITIONS", str(service))
    assert load_settings(REPO / "deploy" / "monitor.yaml").kafka.partitions == broker
    assert compose["services"]["ingest"]["deploy"]["replicas"] <= broker  # a replica beyond that would idle


def health_url(service: dict) -> str:
    test = service["healthcheck"]["test"]
    text = " ".join(test[1:]) if test[0] in ("CMD", "CMD-SHELL") else " ".join(test)
    found = re.search(r"https?://[^\s'\"|]+", text) or re.search(r"--bootstrap-server (\S+)", text)
    assert found, f"no address in {test}"
    return found.group(0) if found.group(0).startswith("http") else f"kafka://{found.group(1)}"


def test_every_service_checks_its_health_on_what_it_serves(compose: dict) -> None:
    services = resolved(compose)["services"]
    assert all("healthcheck" in service for service in services.values()), "every service has its own check"
    monitor_port = option(services["monitor"]["command"], "--port")
    ingest_port = option(services["ingest"]["command"], "--metrics-port")
    dashboard_port = option(services["dashboard"]["command"], "--server.port")
    proxy_port = services["oauth2-proxy"]["environment"]["OAUTH2_PROXY_HTTP_ADDRESS"].rpartition(":")[2]
    expected = {
        "kafka": "kafka://localhost:9092",
        "clickhouse": "http://127.0.0.1:8123/ping",
        "monitor": f"http://127.0.0.1:{monitor_port}/healthz",
        "ingest": f"http://127.0.0.1:{ingest_port}/metrics",
        "dashboard": f"http://127.0.0.1:{dashboard_port}/_stcore/health",
        "prometheus": "http://127.0.0.1:9090/-/ready",
        "grafana": "http://127.0.0.1:3000/api/health",
        "oauth2-proxy": f"http://127.0.0.1:{proxy_port}/ping",
    }
    assert {name: health_url(service) for name, service in services.items()} == expected
    # the python checks really run: the inline script opens its argument
    for name in ("monitor", "ingest", "dashboard"):
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"] and "urlopen(sys.argv[1]" in test[3]
    # published ports lead to what the service serves
    assert published(services["monitor"])[0][2] == int(monitor_port)
    assert published(services["dashboard"])[0][2] == int(dashboard_port)
    kafka_bound = services["kafka"]["environment"]["KAFKA_LISTENERS"]
    assert "PLAINTEXT://:9092" in kafka_bound.split(",")


def test_the_reference_files_the_configuration_names_are_mounted(compose: dict, storage: Storage) -> None:
    from detectors.runner import resolve_reference
    from monitor.settings import ReferenceSettings

    monitor_service = compose["services"]["monitor"]
    mounts = {}
    for volume in monitor_service["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = REPO / source
    settings = load_settings(REPO / "deploy" / "monitor.yaml")
    assert mounts["/etc/monitor/monitor.yaml"] == REPO / "deploy" / "monitor.yaml"
    named = [(model, config) for model, config in settings.models.items() if config.reference and config.reference.file]
    assert named
    for model, config in named:
        container_path = str(config.reference.file)  # type: ignore[union-attr]
        target = next((t for t in mounts if container_path.startswith(t.rstrip("/") + "/")), None)
        assert target, f"{container_path} is not under a mounted directory: {sorted(mounts)}"
        host_path = mounts[target] / container_path.removeprefix(target.rstrip("/") + "/")
        assert host_path.is_file(), host_path
        local = config.model_copy(update={"reference": ReferenceSettings(file=host_path)})
        reference = resolve_reference(storage, model, local)
        assert reference.rows == 2000 and reference.has_prediction and reference.has_label
        assert reference.columns == dict(config.features)


def test_prometheus_scrapes_the_compose_services_with_the_read_token(compose: dict) -> None:
    services = resolved(compose)["services"]
    prometheus = services["prometheus"]
    config_path = option(prometheus["command"], "--config.file")
    config_dir = config_path.rpartition("/")[0]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    assert mounts[config_path] == "./deploy/prometheus/prometheus.yml"
    assert mounts[f"{config_dir}/rules"] == "./deploy/prometheus/rules"
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # static targets are compose services on the port they serve
    host, _, port = jobs["model-monitor"]["static_configs"][0]["targets"][0].partition(":")
    assert host == "monitor" and port == option(services["monitor"]["command"], "--port")
    # every ingest replica is found by name, on its metrics port
    sd = jobs["ingest"]["dns_sd_configs"][0]
    assert sd["names"] == ["ingest"] and str(sd["port"]) == option(services["ingest"]["command"], "--metrics-port")
    assert option(services["ingest"]["command"], "--metrics-host") == "0.0.0.0"  # reachable inside the network
    # the read token: written from the environment to the tmpfs file the configuration reads
    token_file = f"{config_dir}/{jobs['model-monitor']['authorization']['credentials_file']}"
    tmpfs = prometheus["tmpfs"][0].split(":")[0]
    assert token_file.startswith(tmpfs + "/")
    script = prometheus["entrypoint"][2]
    assert f'"$MONITOR_API_READ_TOKEN" > {token_file}' in script and 'exec /bin/prometheus "$@"' in script
    assert prometheus["environment"]["MONITOR_API_READ_TOKEN"] == REQUIRED_ENV["MONITOR_API_READ_TOKEN"]
    assert services["dashboard"]["environment"]["MONITOR_API_READ_TOKEN"] == REQUIRED_ENV["MONITOR_API_READ_TOKEN"]


def model_labelled_metrics() -> set[str]:
    from prometheus_client.metrics import MetricWrapperBase

    import monitor.metrics

    names = set()
    for metric in vars(monitor.metrics).values():
        if isinstance(metric, MetricWrapperBase) and "model" in metric._labelnames:
            names.add(f"{metric._name}_total" if metric._type == "counter" else metric._name)
    source = (REPO / "monitor" / "service" / "collector.py").read_text()
    for name, labels in re.findall(r'"(monitor_[a-z_]+)",\s*"[^"]*",\s*labels=\[([^\]]*)\]', source):
        if '"model"' in labels:
            names.add(name)
    return names


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose: dict) -> None:
    grafana = resolved(compose)["services"]["grafana"]
    mounts = {v.split(":")[1]: REPO / v.split(":")[0] for v in grafana["volumes"] if v.startswith("./")}
    provisioning = mounts["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    providers = yaml.safe_load((provisioning / "dashboards" / "model-monitor.yaml").read_text())
    assert datasources["apiVersion"] == providers["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["isDefault"]
    assert "prometheus" in compose["services"]
    [provider] = providers["providers"]
    dashboards_dir = mounts[provider["options"]["path"]]
    files = sorted(dashboards_dir.glob("*.json"))
    assert [f.name for f in files] == ["model-monitor.json"]
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == (
        f"{provider['options']['path']}/model-monitor.json"
    )
    text = files[0].read_text()
    dashboard = json.loads(text)
    assert "${DS_" not in text and "__inputs" not in dashboard, "an import placeholder provisioning never fills"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == source["uid"]
    model = variables["model"]
    assert model["type"] == "query" and model["includeAll"] and model["multi"]
    assert "label_values(" in model["definition"] and model["definition"].endswith(", model)")
    labelled = model_labelled_metrics()
    assert {"monitor_events_ingested_total", "monitor_drift_detected", "monitor_open_alerts"} <= labelled
    filtered = 0
    for panel in dashboard["panels"]:
        refs = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
        assert all(ref == {"type": "prometheus", "uid": "${datasource}"} for ref in refs), panel["title"]
        for target in panel["targets"]:
            metrics = set(re.findall(r"\b(monitor_[a-z_]+?)(?:_bucket)?\b", target["expr"]))
            if metrics & labelled:
                assert 'model=~"$model"' in target["expr"], f"{panel['title']}: ignores the model selector"
                filtered += 1
    assert filtered >= 8


def test_oauth2_proxy_guards_the_dashboard_in_the_auth_profile(compose: dict) -> None:
    services = resolved(compose)["services"]
    proxy = services["oauth2-proxy"]
    assert proxy["profiles"] == ["auth"]
    assert all("profiles" not in s for n, s in services.items() if n != "oauth2-proxy")
    env = proxy["environment"]
    dashboard_port = option(services["dashboard"]["command"], "--server.port")
    assert env["OAUTH2_PROXY_UPSTREAMS"] == f"http://dashboard:{dashboard_port}/"
    assert published(proxy)[0][2] == int(env["OAUTH2_PROXY_HTTP_ADDRESS"].rpartition(":")[2])
    # no client or cookie secret ships with the file: oauth2-proxy refuses to start until they are set
    for name in ("OAUTH2_PROXY_CLIENT_ID", "OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET"):
        assert env[name] == ""
        assert resolved(compose, **{name: "given"})["services"]["oauth2-proxy"]["environment"][name] == "given"
    assert env["OAUTH2_PROXY_COOKIE_SECURE"] == "true"


def test_only_the_services_that_use_a_token_get_it(compose: dict) -> None:
    services = resolved(compose)["services"]
    tokens = {"MONITOR_API_TOKEN", "MONITOR_API_READ_TOKEN"}
    holders = {name: set(s.get("environment", {})) & tokens for name, s in services.items()}
    assert holders == {
        "kafka": set(),
        "clickhouse": set(),
        "monitor": tokens,
        "ingest": set(),
        "dashboard": {"MONITOR_API_READ_TOKEN"},
        "prometheus": {"MONITOR_API_READ_TOKEN"},
        "grafana": set(),
        "oauth2-proxy": set(),
    }
