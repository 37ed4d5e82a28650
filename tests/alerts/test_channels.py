"""Channel payloads, rendered without the network: Slack blocks, PagerDuty events, signed webhooks,
body templates, and the redacted view of the configuration."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import jsonschema
import pytest

from alerts.channels import (
    InvalidSecret,
    MissingSecret,
    build_channel,
    build_channels,
    check_channels,
    configured_secrets,
    invalid_secrets,
    missing_secrets,
    redacted_channels,
)
from alerts.channels.pagerduty import dedup_key
from alerts.model import AlertEvent, Finding, event_id_for
from alerts.signing import sign, verify
from monitor.errors import ConfigError
from monitor.settings import Settings
from monitor.templates import parse_template, render
from tests.alerts.helpers import PD_KEY, T0, make_settings
from tests.alerts.receivers import PAGERDUTY_SCHEMA, SLACK_SCHEMA, WEBHOOK_SCHEMA

SLACK_URL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/XsecretXsecretX"


def event(kind: str = "firing", **changes: object) -> AlertEvent:
    base = AlertEvent(
        event_id=event_id_for("fraud", "dataset_drift", kind, T0),
        model="fraud",
        rule="dataset_drift",
        kind=kind,  # type: ignore[arg-type]
        condition="dataset_drift",
        severity="critical",
        model_version="3",
        window_start=T0 - timedelta(hours=1),
        window_end=T0,
        reason="dataset drift: 2 of 3 columns drifted (share 0.667, threshold 0.5)",
        created_at=T0 + timedelta(seconds=7),
        opened_event_id="e-open",
        opened_at=T0 - timedelta(minutes=30),
        value=0.667,
        threshold=0.5,
        findings=(
            Finding("amount", "feature_drift", "wasserstein_norm", 0.23, 0.1, {"ks": 0.11, "psi": 0.31}),
            Finding("country", "feature_drift", "js", 0.15, 0.1, {"chi2": 12.1, "chi2_p_value": 0.003}),
        ),
        notify=("team-slack", "oncall", "retrain"),
        dashboard_url="http://monitor.example/?model=fraud",
    )
    return AlertEvent(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TEST_PD_KEY", PD_KEY)
    monkeypatch.setenv("TEST_RETRAIN_SECRET", "s3cr3t-signing-key")
    return make_settings(
        channels={
            "team-slack": {"type": "slack", "url": SLACK_URL},
            "oncall": {"type": "pagerduty", "routing_key_env": "TEST_PD_KEY"},
            "retrain": {"type": "webhook", "url": "https://ci.example/hook", "secret_env": "TEST_RETRAIN_SECRET"},
        }
    )


def test_slack_message_has_text_and_valid_blocks_with_the_facts(settings: Settings) -> None:
    channel = build_channel("team-slack", settings.channels["team-slack"], settings)
    request = channel.request(event(), "key-1")
    assert request.url == SLACK_URL and request.secrets[0] == SLACK_URL
    # and the URL's parts, which a receiver's error page may echo without the origin
    assert {"/services/T0SECRET/B0SECRET/XsecretXsecretX", "T0SECRET", "B0SECRET"} <= set(request.secrets)
    body = json.loads(request.body)
    jsonschema.validate(body, SLACK_SCHEMA)
    text = json.dumps(body)
    for fact in ("fraud", "v3", "critical", "2026-11-20 11:00:00", "2026-11-20 12:00:00", "dataset_drift"):
        assert fact in text
    texts = [b["text"]["text"] for b in body["blocks"] if "text" in b]
    features = next(t for t in texts if "Top drifted features" in t)
    assert "`amount` wasserstein_norm *0.23* (threshold 0.1)" in features and "`country` js *0.15*" in features
    button = next(b for b in body["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["url"] == "http://monitor.example/?model=fraud"
    assert body["text"].startswith(":rotating_light: [critical] Firing: fraud v3")

    resolved = json.loads(channel.request(event("resolved"), "key-2").body)
    jsonschema.validate(resolved, SLACK_SCHEMA)
    assert resolved["text"].startswith(":white_check_mark:") and "Resolved" in resolved["blocks"][0]["text"]["text"]
    assert "Top drifted features" not in json.dumps(resolved)


def test_slack_limits_hold_for_long_and_hostile_text(settings: Settings) -> None:
    channel = build_channel("team-slack", settings.channels["team-slack"], settings)
    noisy = event(
        reason="<!channel> & " + "x" * 5000,
        model="m" * 300,
        findings=tuple(Finding(f"f{i}" * 40, "feature_drift", "psi", 1.0, 0.2) for i in range(10)),
    )
    body = json.loads(channel.request(noisy, "k").body)
    jsonschema.validate(body, SLACK_SCHEMA)
    assert "<!channel>" not in json.dumps(body) and "&lt;!channel&gt; &amp;" in json.dumps(body)


def test_pagerduty_trigger_acknowledge_and_resolve_share_one_dedup_key(settings: Settings) -> None:
    channel = build_channel("oncall", settings.channels["oncall"], settings)
    trigger_request = channel.request(event(), "k")
    assert trigger_request.url == "https://events.pagerduty.com/v2/enqueue"
    trigger = json.loads(trigger_request.body)
    jsonschema.validate(trigger, PAGERDUTY_SCHEMA)
    assert trigger["routing_key"] == PD_KEY and trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "model-monitor/fraud"
    assert trigger["payload"]["summary"].startswith("[fraud v3] dataset_drift: dataset drift")
    details = trigger["payload"]["custom_details"]
    assert details["features"][0]["name"] == "amount" and details["window_end"].startswith("2026-11-20T12:00")
    resolve = json.loads(channel.request(event("resolved"), "k2").body)
    jsonschema.validate(resolve, PAGERDUTY_SCHEMA)
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]
    acknowledge = json.loads(channel.request(event("acknowledged"), "k3").body)
    jsonschema.validate(acknowledge, PAGERDUTY_SCHEMA)
    assert acknowledge == {"routing_key": PD_KEY, "event_action": "acknowledge", "dedup_key": trigger["dedup_key"]}
    assert trigger["dedup_key"] == "model-monitor/fraud/dataset_drift"
    assert len(dedup_key("m" * 200, "r" * 200)) <= 255


def test_pagerduty_severities_map_one_to_one(settings: Settings) -> None:
    channel = build_channel("oncall", settings.channels["oncall"], settings)
    for severity in ("info", "warning", "error", "critical"):
        body = json.loads(channel.request(event(severity=severity), "k").body)
        assert body["payload"]["severity"] == severity


def test_webhook_body_is_signed_and_carries_the_idempotency_key(settings: Settings) -> None:
    channel = build_channel("retrain", settings.channels["retrain"], settings)
    request = channel.request(event(), "delivery-123")
    body = json.loads(request.body)
    jsonschema.validate(body, WEBHOOK_SCHEMA)
    assert len(body) <= 10  # fits GitHub's client_payload limit as it is
    assert (body["model"], body["version"], body["event"]) == ("fraud", "3", "alert.firing")
    assert body["window"] == {"start": "2026-11-20T11:00:00Z", "end": "2026-11-20T12:00:00Z"}
    assert body["drifted_features"][0] == {
        "name": "amount",
        "detector": "feature_drift",
        "statistic": "wasserstein_norm",
        "value": 0.23,
        "threshold": 0.1,
        "stats": {"ks": 0.11, "psi": 0.31},
    }
    expected = "sha256=" + hmac.new(b"s3cr3t-signing-key", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Monitor-Signature"] == expected
    assert request.headers["Idempotency-Key"] == "delivery-123"
    assert verify(request.body, "s3cr3t-signing-key", expected)
    assert not verify(request.body + b" ", "s3cr3t-signing-key", expected)
    assert not verify(request.body, "other", expected) and not verify(request.body, "x", None)
    assert sign(b"", "k") == "sha256=" + hmac.new(b"k", b"", hashlib.sha256).hexdigest()


def many_findings(count: int, total: int | None = None) -> AlertEvent:
    findings = tuple(
        Finding(f"f{i:03d}", "feature_drift", "ks_p_value", 10.0 ** -(count - i), 0.05, {"psi": 0.3})
        for i in range(count)
    )
    return event(findings=findings, findings_total=total)


def test_the_webhook_carries_every_drifted_feature_with_a_count(settings: Settings) -> None:
    channel = build_channel("retrain", settings.channels["retrain"], settings)
    body = json.loads(channel.request(many_findings(94), "k").body)
    jsonschema.validate(body, WEBHOOK_SCHEMA)
    assert len(body) <= 10  # the counts live in "alert": still fits GitHub's client_payload limit
    assert [f["name"] for f in body["drifted_features"]] == [f"f{i:03d}" for i in range(94)]
    assert body["alert"]["drifted_total"] == 94 and body["alert"]["drifted_truncated"] is False
    # the rules stopped short (more columns than alerts.rules.FINDINGS_MAX): the body says so
    cut = json.loads(channel.request(many_findings(3, total=2500), "k").body)
    assert len(cut["drifted_features"]) == 3 and cut["alert"]["drifted_total"] == 2500
    assert cut["alert"]["drifted_truncated"] is True
    # a template's ${drifted_features} is every name too
    hook = make_settings(
        channels={"t": {"type": "webhook", "url": "https://ci.example/t", "template": {"f": "${drifted_features}"}}}
    )
    templated = build_channel("t", hook.channels["t"], hook).request(many_findings(94), "k")
    assert len(json.loads(templated.body)["f"]) == 94


def test_slack_and_pagerduty_show_the_top_features_and_say_how_many_more(settings: Settings) -> None:
    slack = json.loads(
        build_channel("team-slack", settings.channels["team-slack"], settings).request(many_findings(94), "k").body
    )
    jsonschema.validate(slack, SLACK_SCHEMA)
    section = next(
        b["text"]["text"] for b in slack["blocks"] if "Top drifted features" in b.get("text", {}).get("text", "")
    )
    assert section.count("• `f") == 10 and section.endswith("…and 84 more")
    pager = json.loads(
        build_channel("oncall", settings.channels["oncall"], settings).request(many_findings(94), "k").body
    )
    jsonschema.validate(pager, PAGERDUTY_SCHEMA)
    details = pager["payload"]["custom_details"]
    assert len(details["features"]) == 10 and details["features_total"] == 94
    assert details["summary_lines"][-1] == "…and 84 more" and len(details["summary_lines"]) == 11
    # long names: fewer lines fit in a Slack section, and the count of the rest stays right
    long = event(findings=tuple(Finding(f"{i}" + "n" * 500, "feature_drift", "psi", 1.0, 0.2) for i in range(10)))
    body = json.loads(build_channel("team-slack", settings.channels["team-slack"], settings).request(long, "k").body)
    jsonschema.validate(body, SLACK_SCHEMA)
    section = next(
        b["text"]["text"] for b in body["blocks"] if "Top drifted features" in b.get("text", {}).get("text", "")
    )
    shown = section.count("• `")
    assert shown < 10 and section.endswith(f"…and {10 - shown} more")


def test_missing_secret_is_reported_by_variable_name_only(settings: Settings, monkeypatch) -> None:
    monkeypatch.delenv("TEST_PD_KEY")
    channel = build_channel("oncall", settings.channels["oncall"], settings)
    with pytest.raises(MissingSecret, match="TEST_PD_KEY"):
        channel.request(event(), "k")
    assert missing_secrets(settings) == ["TEST_PD_KEY"]


def test_an_invalid_whsec_secret_is_named_by_channel_and_variable_never_shown(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = "whsec_!!!not-base64!!!"
    monkeypatch.setenv("TEST_RETRAIN_SECRET", bad)
    channel = build_channel("retrain", settings.channels["retrain"], settings)
    with pytest.raises(InvalidSecret, match=r"channel retrain \(environment variable TEST_RETRAIN_SECRET\)") as raised:
        channel.request(event(), "k")
    assert bad not in str(raised.value) and raised.value.__cause__ is None
    # found at start-up too: an error per channel, the service still starts (the others work)
    (problem,) = invalid_secrets(settings)
    assert "retrain" in problem and "TEST_RETRAIN_SECRET" in problem and "!!!" not in problem
    check_channels(settings)
    monkeypatch.setenv("TEST_RETRAIN_SECRET", "whsec_" + "QUJD" * 8)
    assert invalid_secrets(settings) == []
    # written inline in the file, it is a configuration error like a template that does not parse
    inline = make_settings(channels={"hook": {"type": "webhook", "url": "https://ci.example/h", "secret": bad}})
    with pytest.raises(ConfigError, match=r"channel hook \(channels\.hook\.secret\)") as refused:
        check_channels(inline)
    assert bad not in str(refused.value)


def test_configured_secrets_cover_every_secret_a_channel_holds(settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("TEST_GH_TOKEN", "ghp_tokenvalue123")
    hook = make_settings(
        channels={
            "gh": {
                "type": "webhook",
                "url": "https://ci.example/hook?token=querytoken99",
                "secret": "inline-signing",
                "headers": {"Authorization": "Bearer ${env:TEST_GH_TOKEN}", "Accept": "application/json"},
            }
        }
    ).channels["gh"]
    assert {"querytoken99", "inline-signing", "ghp_tokenvalue123"} <= set(configured_secrets(hook))
    assert "application/json" not in configured_secrets(hook)
    assert {SLACK_URL, "XsecretXsecretX"} <= set(configured_secrets(settings.channels["team-slack"]))
    assert PD_KEY in configured_secrets(settings.channels["oncall"])
    assert "s3cr3t-signing-key" in configured_secrets(settings.channels["retrain"])


def test_templates_substitute_values_and_keep_json_types() -> None:
    structure = parse_template(
        '{"ref": "main", "inputs": {"model": "${model}", "features": "${drifted_features}",'
        ' "note": "drift on ${drifted_features} at ${window_end}", "cost": "$${not_a_var}", "share": "${value}"}}'
    )
    rendered = render(
        structure, {"model": "fraud", "drifted_features": ["amount", "age"], "window_end": "T", "value": 0.5}
    )
    assert rendered == {
        "ref": "main",
        "inputs": {
            "model": "fraud",
            "features": ["amount", "age"],
            "note": 'drift on ["amount","age"] at T',
            "cost": "${not_a_var}",
            "share": 0.5,
        },
    }
    with pytest.raises(ConfigError, match="unknown placeholder"):
        parse_template({"x": "${secret_key}"})


def test_header_values_resolve_env_at_send_time(monkeypatch) -> None:
    monkeypatch.setenv("TEST_GH_TOKEN", "ghp_tokenvalue123")
    settings = make_settings(
        channels={
            "gh": {
                "type": "webhook",
                "url": "https://api.github.com/repos/acme/models/dispatches",
                "headers": {"Authorization": "Bearer ${env:TEST_GH_TOKEN}", "Accept": "application/vnd.github+json"},
                "template": {"event_type": "retrain-${model}", "client_payload": "${payload}"},
            }
        }
    )
    channels = build_channels(settings)
    request = channels["gh"].request(event(), "k")
    assert request.headers["Authorization"] == "Bearer ghp_tokenvalue123"
    assert "ghp_tokenvalue123" in request.secrets
    assert "X-Monitor-Signature" not in request.headers  # no secret_env: unsigned
    body = json.loads(request.body)
    assert body["event_type"] == "retrain-fraud" and body["client_payload"]["model"] == "fraud"
    assert "ghp_tokenvalue123" not in json.dumps(redacted_channels(settings))


def test_redacted_view_holds_no_secret(settings: Settings, monkeypatch) -> None:
    view = redacted_channels(settings)
    text = json.dumps(view)
    for secret in (SLACK_URL, "T0SECRET", "XsecretX", PD_KEY, "s3cr3t-signing-key"):
        assert secret not in text
    assert view["team-slack"] == {"type": "slack", "url": "https://hooks.slack.com/***"}
    assert view["oncall"]["routing_key_env"] == "TEST_PD_KEY" and view["oncall"]["routing_key_env_set"] is True
    assert view["retrain"]["secret_env"] == "TEST_RETRAIN_SECRET" and view["retrain"]["send_resolved"] is False
    monkeypatch.delenv("TEST_RETRAIN_SECRET")
    assert redacted_channels(settings)["retrain"]["secret_env_set"] is False


def test_event_json_round_trips() -> None:
    original = event()
    assert AlertEvent.from_json(original.to_json()) == original
    counted = many_findings(3, total=2500)
    assert AlertEvent.from_json(counted.to_json()) == counted and counted.total_findings == 2500
    stored_before = json.loads(original.to_json())
    del stored_before["features_total"]  # an event stored before the count existed
    assert AlertEvent.from_json(json.dumps(stored_before)).total_findings == 2
