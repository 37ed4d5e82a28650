"""The alert engine: a window's report in, alert events recorded and queued for delivery out.

Per rule the life cycle is ``ok -> pending -> firing -> (resolved) ok``:

- a window where the condition holds adds one to ``consecutive``; at ``for`` windows the alert fires;
- while it stays firing, it is re-notified (``repeat``) once ``cooldown`` (default
  ``alerting.default_cooldown``) has passed since the last notification, unless acknowledged;
- the first window where the condition is clear resolves it (a pending alert just returns to ok);
- an ``insufficient`` window changes nothing: it neither counts, nor resets, nor resolves.

Time in the rules is the window's end, never the wall clock, so a late or catch-up run decides exactly
as an on-time run would, and tests need no clock. A window is evaluated at most once per rule: a
report whose window does not end after the rule's last evaluated window is skipped, which makes a
rerun of ``monitor detect`` for the same window harmless.

Writes, in this order: the events (``alerts``), their deliveries (``alert_outbox``), the new states
(``alert_state``). A crash after the first leaves events without deliveries - the worker's
:meth:`Outbox.reconcile` enqueues them - and a crash before the last leaves a state older than its
newest event, which :meth:`AlertEngine._load_states` rolls forward, so nothing fires twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import quote

from alerts.model import AlertEvent, EventKind, Observation, event_id_for
from alerts.outbox import Outbox
from alerts.rules import evaluate_rule
from alerts.store import AlertStore, RuleState, model_lock
from detectors.report import WindowReport
from monitor import metrics
from monitor.logs import get_logger
from monitor.settings import AlertRule, Settings
from monitor.storage import Storage
from monitor.windows import to_utc, utc_now

log = get_logger(__name__)


@dataclass(frozen=True)
class RuleOutcome:
    """What happened to one rule in one window (for ``monitor detect``'s summary and the logs)."""

    rule: str
    outcome: str  # triggered | clear | insufficient | skipped | error
    status_before: str
    status_after: str
    reason: str
    event: AlertEvent | None = None


@dataclass(frozen=True)
class Evaluation:
    """Everything one report did to a model's alerts."""

    model: str
    window_end: datetime
    outcomes: tuple[RuleOutcome, ...]
    events: tuple[AlertEvent, ...]
    delivery_ids: tuple[str, ...]

    @property
    def event_ids(self) -> list[str]:
        return [e.event_id for e in self.events]


def transition(
    state: RuleState, observation: Observation, rule: AlertRule, window_end: datetime, cooldown: timedelta
) -> tuple[RuleState, EventKind | None]:
    """The next state of one alert and the event to emit, if any. Pure."""
    window_end = to_utc(window_end)
    if observation.outcome == "insufficient":
        return replace(state, last_outcome="insufficient", last_reason=observation.reason), None
    if observation.outcome == "clear":
        cleared = replace(state, status="ok", consecutive=0, last_outcome="clear")
        if state.status == "firing":
            return replace(cleared, open_event_id="", opened_at=None, acknowledged_by=None), "resolved"
        return cleared, None
    count = state.consecutive + 1
    held = replace(state, consecutive=count, last_outcome="triggered")
    if state.status == "firing":
        last = state.last_notified_window_end
        if state.acknowledged_by is None and (last is None or window_end - last >= cooldown):
            return replace(held, last_notified_window_end=window_end), "repeat"
        return held, None
    if count >= rule.for_:
        return replace(held, status="firing", last_notified_window_end=window_end), "firing"
    return replace(held, status="pending"), None


class AlertEngine:
    """Evaluates a model's alert rules against each new window report. Thread-safe.

    ``on_enqueued`` is called after deliveries were queued (the service passes the delivery worker's
    ``wake`` so notifications go out at once instead of at the next poll).
    """

    def __init__(self, storage: Storage, settings: Settings, on_enqueued: Callable[[], None] | None = None) -> None:
        self.storage = storage
        self.settings = settings
        self.store = AlertStore(storage)
        self.outbox = Outbox(storage)
        self.on_enqueued = on_enqueued

    def evaluate(self, report: WindowReport) -> Evaluation:
        """Apply every rule of ``report.model`` to the report; record and enqueue what changed."""
        model_settings = self.settings.models.get(report.model)
        rules = model_settings.alerts if model_settings is not None else []
        window_end = to_utc(report.window_end)
        if not rules:
            return Evaluation(report.model, window_end, (), (), ())
        with model_lock(self.storage.database, report.model):
            states = self._load_states(report.model, rules)
            outcomes: list[RuleOutcome] = []
            events: list[AlertEvent] = []
            new_states: list[RuleState] = []
            for rule in rules:
                state = states[rule.identity]
                if state.last_window_end is not None and window_end <= state.last_window_end:
                    outcomes.append(
                        RuleOutcome(
                            rule.identity,
                            "skipped",
                            state.status,
                            state.status,
                            f"window ending {window_end.isoformat()} already evaluated",
                        )
                    )
                    continue
                observation = self._observe(rule, report)
                cooldown = rule.cooldown or self.settings.alerting.default_cooldown
                new_state, kind = transition(state, observation, rule, window_end, cooldown)
                new_state = replace(
                    new_state,
                    condition=rule.when,
                    severity=rule.severity,
                    last_window_start=to_utc(report.window_start),
                    last_window_end=window_end,
                    last_value=observation.value,
                    last_reason=observation.reason,
                    evaluated_at=utc_now(),
                )
                event = None
                if kind is not None:
                    event = self._event(kind, rule, report, observation, state)
                    if kind == "firing":
                        new_state = replace(new_state, open_event_id=event.event_id, opened_at=event.created_at)
                    events.append(event)
                new_states.append(new_state)
                outcomes.append(
                    RuleOutcome(
                        rule.identity, observation.outcome, state.status, new_state.status, observation.reason, event
                    )
                )
            self.store.insert_events(events)
            delivery_ids = self.outbox.enqueue(events, self.settings)
            self.store.write_states(new_states)
        for event in events:
            metrics.ALERT_EVENTS.labels(event.model, event.kind).inc()
            log.info(
                "alert event",
                model=event.model,
                rule=event.rule,
                kind=event.kind,
                severity=event.severity,
                window_end=event.window_end.isoformat(),
                reason=event.reason,
                channels=list(event.notify),
            )
        if delivery_ids and self.on_enqueued is not None:
            self.on_enqueued()
        return Evaluation(report.model, window_end, tuple(outcomes), tuple(events), tuple(delivery_ids))

    def acknowledge(self, model: str, rule: str, actor: str, note: str = "") -> RuleState:
        """Acknowledge the firing alert (model, rule): no repeats until it resolves, and the rule's
        PagerDuty channels get an ``acknowledge`` for the incident. :class:`InputError` if not firing,
        :class:`NotFoundError` if the model has no such rule (neither configured nor ever evaluated:
        a rule removed from the configuration can still be acknowledged while its alert is open)."""
        model_settings = self.settings.models.get(model)
        configured = [r for r in (model_settings.alerts if model_settings else []) if r.identity == rule]
        notify = configured[0].notify if configured else []
        with model_lock(self.storage.database, model):
            state, event = self.store.acknowledge(model, rule, actor, note, notify, configured=bool(configured))
            delivery_ids = self.outbox.enqueue([event], self.settings) if event is not None else []
        if delivery_ids and self.on_enqueued is not None:
            self.on_enqueued()
        return state

    # ------------------------------------------------------------ internals

    def _observe(self, rule: AlertRule, report: WindowReport) -> Observation:
        try:
            return evaluate_rule(rule, report)
        except Exception as exc:  # a bug in one rule must not silence the others; logged, not swallowed
            log.exception("alert rule failed", model=report.model, rule=rule.identity)
            return Observation("insufficient", f"rule evaluation failed: {type(exc).__name__}: {exc}")

    def _load_states(self, model: str, rules: list[AlertRule]) -> dict[str, RuleState]:
        stored = self.store.states(model)
        latest = self.store.latest_events(model)
        states: dict[str, RuleState] = {}
        for rule in rules:
            state = stored.get((model, rule.identity)) or RuleState(model, rule.identity, rule.when, rule.severity)
            event = latest.get(rule.identity)
            if event is not None and (state.last_window_end is None or event.window_end > state.last_window_end):
                log.warning("alert state behind its history; rolling forward", model=model, rule=rule.identity)
                state = _roll_forward(state, event, rule)
            states[rule.identity] = state
        return states

    def _event(
        self, kind: EventKind, rule: AlertRule, report: WindowReport, observation: Observation, before: RuleState
    ) -> AlertEvent:
        now = utc_now()
        event_id = event_id_for(report.model, rule.identity, kind, report.window_end)
        opened_event_id = event_id if kind == "firing" else before.open_event_id
        public = self.settings.api.public_url
        return AlertEvent(
            event_id=event_id,
            model=report.model,
            rule=rule.identity,
            kind=kind,
            condition=rule.when,
            severity=rule.severity,
            model_version=report.model_version,
            window_start=to_utc(report.window_start),
            window_end=to_utc(report.window_end),
            reason=observation.reason,
            created_at=now,
            opened_event_id=opened_event_id,
            opened_at=now if kind == "firing" else before.opened_at,
            value=observation.value,
            threshold=observation.threshold,
            findings=observation.findings,
            findings_total=observation.findings_total,
            notify=tuple(rule.notify),
            dashboard_url=f"{public.rstrip('/')}/?model={quote(report.model)}" if public else None,
        )


def _roll_forward(state: RuleState, event: AlertEvent, rule: AlertRule) -> RuleState:
    """Rebuild the state an event implies, when the state write after it was lost."""
    base = replace(
        state,
        last_window_start=event.window_start,
        last_window_end=event.window_end,
        last_reason=event.reason,
        last_value=event.value,
    )
    if event.kind == "resolved":
        return replace(base, status="ok", consecutive=0, last_outcome="clear", open_event_id="", opened_at=None)
    return replace(
        base,
        status="firing",
        consecutive=max(state.consecutive, rule.for_),
        last_outcome="triggered",
        open_event_id=event.opened_event_id,
        opened_at=event.opened_at,
        last_notified_window_end=event.window_end,
    )
