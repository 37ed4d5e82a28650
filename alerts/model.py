"""The alert vocabulary: what a rule observed in one window, and the event a state change produces.

``AlertEvent`` is channel-neutral and free of secrets: it is stored as JSON in ``alerts.payload`` and
``alert_outbox.payload`` and rendered into a Slack, PagerDuty or webhook request only at send time,
so a changed channel URL or rotated secret applies to deliveries already waiting in the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from monitor.windows import to_utc

Outcome = Literal["triggered", "clear", "insufficient"]
EventKind = Literal["firing", "repeat", "resolved", "acknowledged"]
NOTIFYING_KINDS: tuple[EventKind, ...] = ("firing", "repeat", "resolved", "acknowledged")

# Namespace for deterministic ids: the same (model, rule, kind, window) always gives the same event id,
# so a replayed write collapses into the row it repeats (ReplacingMergeTree) instead of duplicating it.
_NAMESPACE = uuid.UUID("0b7f6a52-4f5e-4c41-9c8e-6d3c1a1f2e90")


def event_id_for(model: str, rule: str, kind: str, window_end: datetime) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join((model, rule, kind, to_utc(window_end).isoformat()))))


def delivery_id_for(event_id: str, channel: str) -> str:
    """One delivery per (event, channel); also the ``Idempotency-Key`` every attempt carries."""
    return str(uuid.uuid5(_NAMESPACE, f"{event_id}\x1f{channel}"))


@dataclass(frozen=True)
class Finding:
    """One column that made a rule trigger, with the statistic that decided and its neighbours."""

    name: str
    detector: str
    statistic: str
    value: float | None
    threshold: float | None = None
    stats: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Observation:
    """What one rule saw in one window. ``insufficient`` neither fires nor resolves."""

    outcome: Outcome
    reason: str
    value: float | None = None
    threshold: float | None = None
    findings: tuple[Finding, ...] = ()
    findings_total: int | None = None  # columns that triggered, when ``findings`` had to stop short


@dataclass(frozen=True)
class AlertEvent:
    """One state change of one alert, as recorded in ``alerts`` and sent to the rule's channels."""

    event_id: str
    model: str
    rule: str
    kind: EventKind
    condition: str
    severity: str
    model_version: str
    window_start: datetime
    window_end: datetime
    reason: str
    created_at: datetime
    opened_event_id: str
    opened_at: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    findings: tuple[Finding, ...] = ()
    notify: tuple[str, ...] = ()
    dashboard_url: str | None = None
    actor: str = ""
    findings_total: int | None = None

    @property
    def alert_id(self) -> str:
        """The stable identity of the alert this event belongs to."""
        return f"{self.model}/{self.rule}"

    @property
    def total_findings(self) -> int:
        """How many columns triggered: ``findings`` lists them strongest first, up to a bound, so a
        channel that shows fewer (or a receiver given all of them) can say how many there were."""
        return max(self.findings_total or 0, len(self.findings))

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "alert_id": self.alert_id,
            "model": self.model,
            "rule": self.rule,
            "kind": self.kind,
            "condition": self.condition,
            "severity": self.severity,
            "model_version": self.model_version,
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
            "reason": self.reason,
            "created_at": _iso(self.created_at),
            "opened_event_id": self.opened_event_id,
            "opened_at": _iso(self.opened_at) if self.opened_at else None,
            "value": self.value,
            "threshold": self.threshold,
            "features": [f.as_dict() for f in self.findings],
            "features_total": self.findings_total,  # None: as many as "features" lists
            "notify": list(self.notify),
            "dashboard_url": self.dashboard_url,
            "actor": self.actor,
        }

    def to_json(self) -> str:
        return orjson.dumps(self.as_dict(), option=orjson.OPT_SERIALIZE_NUMPY).decode()

    @classmethod
    def from_json(cls, text: str) -> AlertEvent:
        data = orjson.loads(text)
        return cls(
            event_id=data["event_id"],
            model=data["model"],
            rule=data["rule"],
            kind=data["kind"],
            condition=data["condition"],
            severity=data["severity"],
            model_version=data.get("model_version", ""),
            window_start=_parse(data["window"]["start"]),
            window_end=_parse(data["window"]["end"]),
            reason=data.get("reason", ""),
            created_at=_parse(data["created_at"]),
            opened_event_id=data.get("opened_event_id", ""),
            opened_at=_parse(data["opened_at"]) if data.get("opened_at") else None,
            value=data.get("value"),
            threshold=data.get("threshold"),
            findings=tuple(Finding(**f) for f in data.get("features", [])),
            notify=tuple(data.get("notify", [])),
            dashboard_url=data.get("dashboard_url"),
            actor=data.get("actor", ""),
            findings_total=data.get("features_total"),  # absent in events stored before it existed
        )


def _iso(moment: datetime) -> str:
    return to_utc(moment).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
