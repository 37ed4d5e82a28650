"""The alert life cycle against real ClickHouse: for N windows, cooldown, acknowledgement, resolve,
insufficient windows, stable identity and history, and recovery from a write lost half-way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from alerts.engine import AlertEngine, transition
from alerts.model import Observation
from alerts.outbox import Outbox
from alerts.store import AlertStore, RuleState, alert_history, list_alerts, open_alert_count
from monitor.errors import InputError, StorageError
from monitor.settings import AlertRule
from monitor.storage import Storage
from tests.alerts.helpers import T0, drift_report, make_settings, window_end

CHANNELS = {
    "team-slack": {"type": "slack", "url": "http://127.0.0.1:9/slack"},
    "oncall": {"type": "pagerduty", "routing_key_env": "TEST_PD_KEY", "url": "http://127.0.0.1:9/pd"},
    "retrain": {"type": "webhook", "url": "http://127.0.0.1:9/retrain", "secret_env": "TEST_SECRET"},
}


def engine_for(storage: Storage, rules: list[dict[str, Any]], **extra: Any) -> AlertEngine:
    settings = make_settings(channels=CHANNELS, models={"fraud": {"alerts": rules}}, **extra)
    return AlertEngine(storage, settings)


def kinds(engine: AlertEngine, sequence: list[str]) -> list[list[str]]:
    """Evaluate one report per entry (drift / clear / thin) on consecutive windows; event kinds per window."""
    found = []
    for index, what in enumerate(sequence):
        drifted = {"amount": 0.8, "age": 0.4} if what == "drift" else {}
        status = "insufficient_data" if what == "thin" else "ok"
        evaluation = engine.evaluate(drift_report("fraud", window_end(index), drifted, status=status))
        found.append([e.kind for e in evaluation.events])
    return found


def test_for_two_fires_on_the_second_consecutive_drifted_window(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "for": 2, "notify": ["team-slack", "oncall"]}])
    assert kinds(engine, ["drift", "drift"]) == [[], ["firing"]]
    state = list_alerts(storage, "fraud")[0]
    assert (state.status, state.consecutive, state.alert_id) == ("firing", 2, "fraud/dataset_drift")
    assert open_alert_count(storage, "fraud") == 1
    fired = alert_history(storage, "fraud")[0]
    assert fired.window_end == window_end(1) and fired.notify == ("team-slack", "oncall")
    assert [f.name for f in fired.findings] == ["amount", "age"]
    assert len(Outbox(storage).for_events([fired.event_id])) == 2  # one delivery per channel


def test_a_clear_window_resets_the_count(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "for": 2}])
    assert kinds(engine, ["drift", "clear", "drift", "clear"]) == [[], [], [], []]
    assert list_alerts(storage, "fraud")[0].status == "ok"


def test_an_insufficient_window_neither_fires_nor_resolves_nor_resets(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "for": 2}])
    assert kinds(engine, ["drift", "thin", "drift", "thin", "thin", "clear"]) == [
        [],
        [],
        ["firing"],  # the thin window did not reset the count of 1
        [],  # still firing, not resolved
        [],
        ["resolved"],
    ]
    state = list_alerts(storage, "fraud")[0]
    assert (state.status, state.last_outcome, state.open_event_id) == ("ok", "clear", "")


def test_cooldown_suppresses_repeats_until_it_has_passed(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "cooldown": "20m"}])  # windows every 5 minutes
    assert kinds(engine, ["drift"] * 10) == [["firing"], [], [], [], ["repeat"], [], [], [], ["repeat"], []]
    repeat = alert_history(storage, "fraud", limit=1)[0]
    assert repeat.kind == "repeat" and repeat.opened_event_id == alert_history(storage, "fraud")[-1].event_id


def test_default_cooldown_comes_from_settings(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift"}], alerting={"default_cooldown": "10m"})
    assert kinds(engine, ["drift"] * 4) == [["firing"], [], ["repeat"], []]


def test_acknowledged_alert_is_not_repeated_but_still_resolves(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "cooldown": "5m", "notify": ["team-slack"]}])
    assert kinds(engine, ["drift"]) == [["firing"]]
    with pytest.raises(InputError, match="no alert"):
        engine.acknowledge("fraud", "nonsense", "ana")
    state = engine.acknowledge("fraud", "dataset_drift", "ana", "looking into it")
    assert state.acknowledged_by == "ana"
    assert list_alerts(storage, "fraud")[0].acknowledged_by == "ana"
    for index in range(1, 4):
        assert engine.evaluate(drift_report("fraud", window_end(index), {"amount": 0.9, "age": 0.9})).events == ()
    resolved = engine.evaluate(drift_report("fraud", window_end(4), {}))
    assert [e.kind for e in resolved.events] == ["resolved"]
    with pytest.raises(InputError, match="not firing"):
        engine.acknowledge("fraud", "dataset_drift", "ana")
    # the next occurrence is a new alert: not acknowledged, repeats again
    again = engine.evaluate(drift_report("fraud", window_end(5), {"amount": 0.9, "age": 0.9}))
    assert [e.kind for e in again.events] == ["firing"]
    assert list_alerts(storage, "fraud")[0].acknowledged_by is None
    history = [e.kind for e in alert_history(storage, "fraud")]
    assert history == ["firing", "resolved", "acknowledged", "firing"]


def test_rules_are_independent_alerts_with_stable_identity(storage: Storage) -> None:
    rules = [
        {"when": "dataset_drift", "notify": ["team-slack"]},
        {"when": "feature_drift", "features": ["country"], "notify": ["oncall"], "severity": "critical"},
        {"when": "feature_drift", "features": ["amount"], "name": "amount-drift", "notify": ["retrain"]},
    ]
    engine = engine_for(storage, rules)
    evaluation = engine.evaluate(drift_report("fraud", T0, {"amount": 0.7}))
    assert sorted((e.rule, e.severity) for e in evaluation.events) == [("amount-drift", "warning")]
    evaluation = engine.evaluate(drift_report("fraud", window_end(1), {"amount": 0.7, "country": 0.5}))
    assert sorted(e.alert_id for e in evaluation.events) == ["fraud/dataset_drift", "fraud/feature_drift:country"]
    states = {s.rule: s.status for s in list_alerts(storage, "fraud")}
    assert states == {"dataset_drift": "firing", "feature_drift:country": "firing", "amount-drift": "firing"}
    assert len(list_alerts(storage, status="firing")) == 3 and list_alerts(storage, status="ok") == []


def test_a_window_is_evaluated_once(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "for": 2}])
    engine.evaluate(drift_report("fraud", T0, {"amount": 0.9, "age": 0.9}))
    # monitor detect rerun of the same window, then an older one
    again = engine.evaluate(drift_report("fraud", T0, {"amount": 0.9, "age": 0.9}))
    older = engine.evaluate(drift_report("fraud", T0 - timedelta(hours=1), {"amount": 0.9, "age": 0.9}))
    assert [o.outcome for o in again.outcomes + older.outcomes] == ["skipped", "skipped"]
    assert list_alerts(storage, "fraud")[0].consecutive == 1  # not double-counted


def test_resolution_goes_to_slack_and_pagerduty_but_not_to_a_retraining_hook(storage: Storage) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "notify": ["team-slack", "oncall", "retrain"]}])
    fired = engine.evaluate(drift_report("fraud", T0, {"amount": 0.9, "age": 0.9}))
    resolved = engine.evaluate(drift_report("fraud", window_end(1), {}))
    assert len(fired.delivery_ids) == 3
    channels = {d.channel for d in Outbox(storage).for_events(resolved.event_ids)}
    assert channels == {"team-slack", "oncall"}


def test_a_lost_state_write_is_rolled_forward_and_nothing_fires_twice(storage: Storage, monkeypatch) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "for": 2, "notify": ["team-slack"]}])
    engine.evaluate(drift_report("fraud", T0, {"amount": 0.9, "age": 0.9}))

    def lost(states: object) -> None:
        raise StorageError("connection reset while writing alert_state")

    monkeypatch.setattr(engine.store, "write_states", lost)
    with pytest.raises(StorageError):
        engine.evaluate(drift_report("fraud", window_end(1), {"amount": 0.9, "age": 0.9}))  # fires, state lost
    monkeypatch.undo()
    assert AlertStore(storage).states("fraud")[("fraud", "dataset_drift")].status == "pending"  # stale
    later = engine.evaluate(drift_report("fraud", window_end(2), {"amount": 0.9, "age": 0.9}))
    assert later.events == ()  # rolled forward to firing: no second firing event
    assert [e.kind for e in alert_history(storage, "fraud")] == ["firing"]
    assert list_alerts(storage, "fraud")[0].status == "firing"


def test_events_without_deliveries_are_reconciled_once(storage: Storage, monkeypatch) -> None:
    engine = engine_for(storage, [{"when": "dataset_drift", "notify": ["team-slack", "oncall"]}])

    def lost(events: object, settings: object) -> list[str]:
        raise StorageError("server went away")

    monkeypatch.setattr(engine.outbox, "enqueue", lost)
    with pytest.raises(StorageError):
        engine.evaluate(drift_report("fraud", T0, {"amount": 0.9, "age": 0.9}))
    monkeypatch.undo()
    outbox = Outbox(storage)
    assert outbox.counts() == {}
    assert outbox.reconcile(engine.settings, older_than=timedelta(0)) == 1
    assert outbox.reconcile(engine.settings, older_than=timedelta(0)) == 0
    assert outbox.counts() == {"pending": 2}


def test_transition_is_pure() -> None:
    rule = AlertRule.model_validate({"when": "dataset_drift", "for": 3})
    state = RuleState("m", "dataset_drift", "dataset_drift", "warning")
    hot = Observation("triggered", "drift")
    cooldown = timedelta(hours=1)
    emitted = []
    for index in range(4):
        state, kind = transition(state, hot, rule, window_end(index), cooldown)
        emitted.append(kind)
    assert emitted == [None, None, "firing", None]
    assert state.consecutive == 4 and state.last_notified_window_end == window_end(2)
    state, kind = transition(state, hot, rule, window_end(2) + cooldown, cooldown)
    assert kind == "repeat"
    state, kind = transition(state, Observation("insufficient", "thin"), rule, window_end(20), cooldown)
    assert (kind, state.status) == (None, "firing")
    state, kind = transition(state, Observation("clear", "fine"), rule, window_end(21), cooldown)
    assert (kind, state.status, state.consecutive) == ("resolved", "ok", 0)
