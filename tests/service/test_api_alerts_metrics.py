"""Alerts endpoints and /metrics (parsed with prometheus_client's parser) over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_support import insert_events, synthetic_rows
from prometheus_client.parser import text_string_to_metric_families

from detectors.report import StatResult, WindowReport
from detectors.results import store_report
from monitor.storage import Storage

CONFIG = {
    "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    "models": {
        "m": {
            "features": {"amount": "numerical"},
            "window": "1h",
            "alerts": [{"when": "dataset_drift", "notify": ["hook"], "severity": "critical"}],
        }
    },
}


def _drifted(end: datetime) -> WindowReport:
    rows = (
        StatResult("feature_drift", "amount", "wasserstein_norm", 0.4, threshold=0.1, drift=True, n_current=600),
        StatResult("feature_drift", "", "drift_share", 1.0, threshold=0.5, drift=True, n_current=600),
    )
    return WindowReport("m", "1", end - timedelta(hours=1), end, "ok", 600, 600, rows, run_id="r1")


def _families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_alert_lifecycle_through_the_api(serve, storage: Storage) -> None:
    api = serve(**CONFIG)
    assert api.client.get("/api/v1/alerts").json() == {"alerts": []}
    ack = {"model": "m", "rule": "dataset_drift"}
    assert api.anonymous.post("/api/v1/alerts/acknowledge", json=ack).status_code == 401
    not_firing = api.client.post("/api/v1/alerts/acknowledge", json=ack, headers=api.auth())
    assert not_firing.status_code == 409 and not_firing.json()["error"]["code"] == "not_firing"
    for unknown in ({"model": "m", "rule": "dataset_drfit"}, {"model": "nosuch", "rule": "dataset_drift"}):
        missing = api.client.post("/api/v1/alerts/acknowledge", json=unknown, headers=api.auth())
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found", missing.text
        assert repr(unknown["rule"]) in missing.json()["error"]["message"]

    from alerts.engine import AlertEngine

    report = _drifted(datetime.now(UTC).replace(microsecond=0))
    store_report(storage, report, datetime.now(UTC), 0.1)
    AlertEngine(storage, api.ctx.settings).evaluate(report)
    firing = api.client.get("/api/v1/alerts", params={"state": "open"}).json()["alerts"]
    assert [(a["model"], a["rule"], a["status"]) for a in firing] == [("m", "dataset_drift", "firing")]
    assert api.client.get("/api/v1/models/m").json()["open_alerts"] == 1
    deliveries = api.client.get("/api/v1/deliveries", params={"model": "m"}).json()["deliveries"]
    assert [d["channel"] for d in deliveries] == ["hook"]
    acked = api.client.post("/api/v1/alerts/acknowledge", json={**ack, "actor": "alice"}, headers=api.auth())
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "alice"
    kinds = [e["kind"] for e in api.client.get("/api/v1/alerts/history", params={"model": "m"}).json()["events"]]
    assert "acknowledged" in kinds and "firing" in kinds
    # A rule removed from the configuration while its alert is open is still known: not a 404.
    unconfigured = api.ctx.settings.model_copy(update={"models": {}})
    assert AlertEngine(storage, unconfigured).acknowledge("m", "dataset_drift", "bob").acknowledged_by == "alice"

    metrics = _families(api.client.get("/metrics").text)
    open_alerts = {s.labels["severity"]: s.value for s in metrics["monitor_open_alerts"]}
    assert open_alerts == {"critical": 1.0}
    stats = {(s.labels["column"], s.labels["statistic"]): s.value for s in metrics["monitor_drift_statistic"]}
    assert stats[("amount", "wasserstein_norm")] == 0.4 and stats[("", "drift_share")] == 1.0
    verdicts = {s.labels["column"]: s.value for s in metrics["monitor_drift_detected"]}
    assert verdicts == {"amount": 1.0, "": 1.0}


def test_metrics_parse_and_describe_the_database(serve, storage: Storage) -> None:
    now = datetime.now(UTC)
    insert_events(storage, "fresh", synthetic_rows(40, end=now, span=timedelta(minutes=10)))
    api = serve()
    api.client.get("/api/v1/models")  # at least one request counted
    response = api.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = _families(response.text)
    recent = {s.labels["model"]: s.value for s in families["monitor_model_events_last_hour"]}
    assert recent["fresh"] == 40
    last = {s.labels["model"]: s.value for s in families["monitor_model_last_event_timestamp_seconds"]}
    assert abs(last["fresh"] - now.timestamp()) < 60
    assert families["monitor_database_scrape_ok"][0].value == 1.0
    requests = [s for s in families["monitor_http_requests"] if s.name == "monitor_http_requests_total"]
    assert any(s.labels["route"] == "/api/v1/models" and s.labels["status"] == "200" for s in requests)
    # Route templates, never raw paths: the label set stays bounded.
    api.client.get("/api/v1/models/some-unknown-model-123")
    again = _families(api.client.get("/metrics").text)
    routes = {s.labels["route"] for s in again["monitor_http_requests"]}
    assert "/api/v1/models/{model}" in routes and not any("some-unknown" in r for r in routes)
    assert "monitor_insert_batch_seconds" in families and "monitor_detector_run_seconds" in families


def test_channels_are_listed_without_their_secrets(serve, monkeypatch) -> None:
    slack_url = "https://hooks.slack.com/services/T0SECRET/B0SECRET/XsecretXsecretX"
    monkeypatch.setenv("TEST_API_PD_KEY", "R0UT1NGK3Y0123456789abcdefABCDEF")
    api = serve(
        channels={
            "team-slack": {"type": "slack", "url": slack_url},
            "oncall": {"type": "pagerduty", "routing_key_env": "TEST_API_PD_KEY"},
            "retrain": {"type": "webhook", "url": "https://ci.example/hook", "secret_env": "UNSET_SECRET_VAR"},
        },
        models={"m": {"features": {"amount": "numerical"}}},
    )
    response = api.client.get("/api/v1/channels")
    assert response.status_code == 200
    channels = response.json()["channels"]
    assert channels["team-slack"] == {"type": "slack", "url": "https://hooks.slack.com/***"}
    assert channels["oncall"]["routing_key_env"] == "TEST_API_PD_KEY" and channels["oncall"]["routing_key_env_set"]
    assert channels["retrain"]["secret_env"] == "UNSET_SECRET_VAR" and not channels["retrain"]["secret_env_set"]
    assert "SECRET" not in response.text.replace("UNSET_SECRET_VAR", "") and "R0UT1NGK3Y" not in response.text
