"""The two worked retraining-hook examples of docs/alerting.md, sent to local stand-ins for GitHub's
repository_dispatch and Airflow's DAG-run endpoint that check requests the way those APIs do."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from alerts.delivery import DeliveryWorker, wait_for_deliveries
from alerts.engine import AlertEngine
from monitor.storage import Storage
from tests.alerts.helpers import T0, drift_report, make_settings, window_end
from tests.alerts.receivers import Received, Reply
from tests.conftest import REPO

DOC = REPO / "docs" / "alerting.md"
TOKEN = "github_pat_11TESTTOKEN"
BASIC = base64.b64encode(b"monitor:airflow-password").decode()

GITHUB_DISPATCH = {  # POST /repos/{owner}/{repo}/dispatches
    "type": "object",
    "required": ["event_type"],
    "additionalProperties": False,
    "properties": {
        "event_type": {"type": "string", "minLength": 1, "maxLength": 100},
        "client_payload": {"type": "object", "maxProperties": 10},
    },
}
AIRFLOW_DAG_RUN = {  # Airflow 2 stable REST API, POST /api/v1/dags/{dag_id}/dagRuns
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dag_run_id": {"type": "string", "minLength": 1, "maxLength": 250},
        "logical_date": {"type": ["string", "null"]},
        "conf": {"type": "object"},
        "note": {"type": "string"},
    },
}


def example(name: str) -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {name} -->\s*```yaml\n(.*?)```", text, re.S)
    assert match, f"docs/alerting.md has no {name} example"
    return yaml.safe_load(match.group(1))["channels"]


def at_local(channels: dict[str, Any], base: str) -> dict[str, Any]:
    """The documented channel with its host replaced by a local receiver (path kept)."""
    ((name, channel),) = channels.items()
    return {name: {**channel, "url": base + urlsplit(channel["url"]).path}}


def github(received: Received) -> Reply:
    if received.path != "/repos/acme/fraud-model/dispatches":
        return Reply(404, '{"message": "Not Found"}')
    if received.headers.get("authorization") != f"Bearer {TOKEN}":
        return Reply(401, '{"message": "Bad credentials"}')
    if received.headers.get("accept") != "application/vnd.github+json":
        return Reply(415, '{"message": "Unsupported Media Type"}')
    try:
        jsonschema.validate(received.json(), GITHUB_DISPATCH)
    except (ValueError, jsonschema.ValidationError) as exc:
        return Reply(422, json.dumps({"message": "Invalid request", "errors": [str(exc)[:200]]}))
    return Reply(204, "")


class Airflow:
    """Creates DAG runs; an existing dag_run_id gets 409 as in Airflow. The first answer is lost (502)."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.lose_first_answer = True

    def __call__(self, received: Received) -> Reply:
        if received.path != "/api/v1/dags/retrain_fraud/dagRuns":
            return Reply(404, '{"title": "DAG not found"}')
        if received.headers.get("authorization") != f"Basic {BASIC}":
            return Reply(401, '{"title": "Unauthorized"}')
        try:
            body = received.json()
            jsonschema.validate(body, AIRFLOW_DAG_RUN)
        except (ValueError, jsonschema.ValidationError) as exc:
            return Reply(400, json.dumps({"title": "Bad Request", "detail": str(exc)[:200]}))
        run_id = body["dag_run_id"]
        if run_id in self.runs:
            return Reply(409, json.dumps({"title": "Conflict", "detail": f"DAGRun ID: '{run_id}' already exists"}))
        self.runs[run_id] = body
        if self.lose_first_answer:  # the run exists, but a proxy drops the answer: the outbox retries
            self.lose_first_answer = False
            return Reply(502, "Bad Gateway")
        return Reply(200, json.dumps({"dag_run_id": run_id, "state": "queued"}))


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("AIRFLOW_BASIC_AUTH", BASIC)


def run_alert(storage: Storage, channels: dict[str, Any]) -> list[str]:
    settings = make_settings(
        channels=channels, models={"fraud": {"alerts": [{"when": "feature_drift", "notify": list(channels)}]}}
    )
    engine = AlertEngine(storage, settings)
    worker = DeliveryWorker(storage, settings)
    worker.start()
    try:
        fired = engine.evaluate(drift_report("fraud", T0, {"amount": 0.7}))
        result = wait_for_deliveries(storage, fired.event_ids, timeout=10)
        assert (result.delivered, result.failed) == (1, 0), result
        engine.evaluate(drift_report("fraud", window_end(1), {}))  # resolved: not sent to retraining hooks
    finally:
        worker.stop()
    return fired.event_ids


def test_github_repository_dispatch_example(storage: Storage, receivers: Any) -> None:
    hub = receivers(github, path="")
    run_alert(storage, at_local(example("github"), hub.url))
    (request,) = hub.requests
    assert request.status == 204
    body = request.json()
    assert body["event_type"] == "model-drift"
    assert body["client_payload"]["model"] == "fraud"
    assert body["client_payload"]["drifted_features"][0]["name"] == "amount"


def test_airflow_dag_run_example_starts_exactly_one_run(storage: Storage, receivers: Any) -> None:
    airflow = Airflow()
    server = receivers(airflow, path="")
    (event_id,) = run_alert(storage, at_local(example("airflow"), server.url))
    assert [r.status for r in server.requests] == [502, 409]  # the retry found its run already there
    assert list(airflow.runs) == [f"monitor-{event_id}"]
    conf = airflow.runs[f"monitor-{event_id}"]["conf"]
    assert conf["model"] == "fraud" and conf["drifted_features"] == ["amount"]
    assert conf["window"] == {"start": "2026-11-20T11:00:00Z", "end": "2026-11-20T12:00:00Z"}
    assert conf["alert"]["event_id"] == event_id
