"""Alert history (``alerts``) and current rule state (``alert_state``) in ClickHouse; the API's queries.

All SQL about alerts lives here. Every write is an insert: ``alert_state`` keeps the highest version
per (model, rule), ``alerts`` one row per event id. Acknowledgement is an ``acknowledged`` event in
the history rather than a state column, so an acknowledgement from the API can never be overwritten
by a detection run writing the state at the same moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from alerts.model import AlertEvent, event_id_for
from monitor.errors import InputError, NotFoundError
from monitor.storage import Storage
from monitor.windows import to_utc, utc_now

Status = Literal["ok", "pending", "firing"]

_STATE_COLUMNS = (
    "model",
    "rule",
    "condition",
    "severity",
    "status",
    "consecutive",
    "last_outcome",
    "last_window_start",
    "last_window_end",
    "last_value",
    "last_reason",
    "open_event_id",
    "opened_at",
    "last_notified_window_end",
    "evaluated_at",
    "version",
)
_EVENT_COLUMNS = (
    "event_id",
    "model",
    "rule",
    "kind",
    "condition",
    "severity",
    "model_version",
    "window_start",
    "window_end",
    "opened_event_id",
    "reason",
    "value",
    "threshold",
    "notify",
    "payload",
    "actor",
    "created_at",
)

_version_lock = threading.Lock()
_last_version = 0

# One lock per (database, model) for the whole process: the scheduler, the API's "detect now", an
# acknowledgement and the demo may each hold their own engine or store and still never change one
# model's alerts concurrently.
_MODEL_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_MODEL_LOCKS_GUARD = threading.Lock()


def model_lock(database: str, model: str) -> threading.Lock:
    with _MODEL_LOCKS_GUARD:
        return _MODEL_LOCKS.setdefault((database, model), threading.Lock())


def next_version() -> int:
    """Strictly increasing within the process (nanoseconds since the epoch), for ReplacingMergeTree."""
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns())
        return _last_version


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


@dataclass(frozen=True)
class RuleState:
    """The current state of one alert (model, rule)."""

    model: str
    rule: str
    condition: str
    severity: str
    status: Status = "ok"
    consecutive: int = 0
    last_outcome: str = "clear"
    last_window_start: datetime | None = None
    last_window_end: datetime | None = None
    last_value: float | None = None
    last_reason: str = ""
    open_event_id: str = ""
    opened_at: datetime | None = None
    last_notified_window_end: datetime | None = None
    evaluated_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def alert_id(self) -> str:
        return f"{self.model}/{self.rule}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alert_id"] = self.alert_id
        data["acknowledged"] = self.acknowledged_by is not None
        return data


@dataclass(frozen=True)
class HistoryEntry:
    """One row of ``alerts`` as the API shows it (the payload decoded)."""

    event: AlertEvent

    def as_dict(self) -> dict[str, Any]:
        return self.event.as_dict()


class AlertStore:
    """Reads and writes alert state and history for one database."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # ------------------------------------------------------------ writes

    def insert_events(self, events: Sequence[AlertEvent]) -> None:
        if not events:
            return
        rows = [
            (
                e.event_id,
                e.model,
                e.rule,
                e.kind,
                e.condition,
                e.severity,
                e.model_version,
                e.window_start,
                e.window_end,
                e.opened_event_id,
                e.reason,
                e.value,
                e.threshold,
                list(e.notify),
                e.to_json(),
                e.actor,
                e.created_at,
            )
            for e in events
        ]
        self.storage.insert_rows("alerts", rows, _EVENT_COLUMNS)

    def write_states(self, states: Sequence[RuleState]) -> None:
        if not states:
            return
        rows = [
            (
                s.model,
                s.rule,
                s.condition,
                s.severity,
                s.status,
                s.consecutive,
                s.last_outcome,
                s.last_window_start or datetime.fromtimestamp(0, UTC),
                s.last_window_end or datetime.fromtimestamp(0, UTC),
                s.last_value,
                s.last_reason,
                s.open_event_id,
                s.opened_at,
                s.last_notified_window_end,
                s.evaluated_at or utc_now(),
                next_version(),
            )
            for s in states
        ]
        self.storage.insert_rows("alert_state", rows, _STATE_COLUMNS)

    # ------------------------------------------------------------ reads

    def states(self, model: str | None = None) -> dict[tuple[str, str], RuleState]:
        """Current state per (model, rule), with acknowledgement folded in from the history."""
        where = "WHERE model = {model:String}" if model is not None else ""
        rows = self.storage.dicts(
            f"SELECT {', '.join(c for c in _STATE_COLUMNS if c != 'version')} "
            f"FROM {self.storage.table('alert_state')} FINAL {where}",
            parameters={"model": model} if model is not None else None,
        )
        states: dict[tuple[str, str], RuleState] = {}
        for row in rows:
            epoch = row["last_window_end"].timestamp() <= 0 if row["last_window_end"] else True
            states[(row["model"], row["rule"])] = RuleState(
                model=row["model"],
                rule=row["rule"],
                condition=row["condition"],
                severity=row["severity"],
                status=row["status"],
                consecutive=int(row["consecutive"]),
                last_outcome=row["last_outcome"],
                last_window_start=None if epoch else _utc(row["last_window_start"]),
                last_window_end=None if epoch else _utc(row["last_window_end"]),
                last_value=row["last_value"],
                last_reason=row["last_reason"],
                open_event_id=row["open_event_id"],
                opened_at=_utc(row["opened_at"]),
                last_notified_window_end=_utc(row["last_notified_window_end"]),
                evaluated_at=_utc(row["evaluated_at"]),
            )
        acks = self._acknowledgements(model)
        for key, state in states.items():
            ack = acks.get(state.open_event_id) if state.open_event_id else None
            if ack is not None and key == (ack[0], ack[1]):
                states[key] = replace(state, acknowledged_by=ack[2], acknowledged_at=ack[3])
        return states

    def latest_events(self, model: str) -> dict[str, AlertEvent]:
        """The newest notifying event (firing, repeat, resolved) of each rule of a model."""
        rows = self.storage.rows(
            f"SELECT rule, argMax(payload, (window_end, created_at)) FROM {self.storage.table('alerts')} FINAL "
            "WHERE model = {model:String} AND kind != 'acknowledged' GROUP BY rule",
            parameters={"model": model},
        )
        return {rule: AlertEvent.from_json(payload) for rule, payload in rows}

    def _acknowledgements(self, model: str | None) -> dict[str, tuple[str, str, str, datetime]]:
        where = " AND model = {model:String}" if model is not None else ""
        rows = self.storage.rows(
            f"SELECT opened_event_id, model, rule, argMax(actor, created_at), max(created_at) "
            f"FROM {self.storage.table('alerts')} FINAL WHERE kind = 'acknowledged'{where} "
            "GROUP BY opened_event_id, model, rule",
            parameters={"model": model} if model is not None else None,
        )
        return {r[0]: (r[1], r[2], r[3], to_utc(r[4])) for r in rows}

    def history(
        self,
        model: str | None = None,
        rule: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[AlertEvent]:
        """Alert events, newest first."""
        conditions: list[str] = []
        params: dict[str, Any] = {"limit": int(limit)}
        if model is not None:
            conditions.append("model = {model:String}")
            params["model"] = model
        if rule is not None:
            conditions.append("rule = {rule:String}")
            params["rule"] = rule
        if kinds:
            conditions.append("kind IN {kinds:Array(String)}")
            params["kinds"] = list(kinds)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self.storage.rows(
            f"SELECT payload FROM {self.storage.table('alerts')} FINAL {where} "
            "ORDER BY created_at DESC, window_end DESC LIMIT {limit:UInt32}",
            parameters=params,
        )
        return [AlertEvent.from_json(r[0]) for r in rows]

    def acknowledge(
        self,
        model: str,
        rule: str,
        actor: str,
        note: str = "",
        notify: Sequence[str] = (),
        configured: bool = True,
    ) -> tuple[RuleState, AlertEvent | None]:
        """Mark the open alert (model, rule) acknowledged: no repeats until it resolves.

        Returns the new state and the ``acknowledged`` event (addressed to ``notify``), or no event when
        the alert was acknowledged already. Raises :class:`InputError` when no such alert is firing (the
        API answers 409 with it), :class:`NotFoundError` when the rule has no stored state and is not
        ``configured`` for the model (404): a rule removed from the configuration while its alert is
        open keeps its state and can still be acknowledged.
        """
        state = self.states(model).get((model, rule))
        if state is None and not configured:
            raise NotFoundError(f"model {model!r} has no alert rule {rule!r}")
        if state is None:
            raise InputError(f"no alert {model}/{rule}")
        if state.status != "firing":
            raise InputError(f"alert {model}/{rule} is not firing (status {state.status})")
        if state.acknowledged_by is not None:
            return state, None
        now = utc_now()
        assert state.last_window_start is not None and state.last_window_end is not None
        event = AlertEvent(
            event_id=event_id_for(model, rule, f"acknowledged:{state.open_event_id}", now),
            model=model,
            rule=rule,
            kind="acknowledged",
            condition=state.condition,
            severity=state.severity,
            model_version="",
            window_start=state.last_window_start,
            window_end=state.last_window_end,
            reason=note or f"acknowledged by {actor}",
            created_at=now,
            opened_event_id=state.open_event_id,
            opened_at=state.opened_at,
            actor=actor,
            notify=tuple(notify),
        )
        self.insert_events([event])
        return replace(state, acknowledged_by=actor, acknowledged_at=now), event


# ---------------------------------------------------------------- functions for the API


def list_alerts(storage: Storage, model: str | None = None, status: str | None = None) -> list[RuleState]:
    """Current state of every alert that has been evaluated, firing first."""
    states = AlertStore(storage).states(model).values()
    chosen = [s for s in states if status is None or s.status == status]
    order = {"firing": 0, "pending": 1, "ok": 2}
    return sorted(chosen, key=lambda s: (order.get(s.status, 3), s.model, s.rule))


def open_alert_count(storage: Storage, model: str) -> int:
    """How many alerts of a model are firing now."""
    return sum(1 for s in AlertStore(storage).states(model).values() if s.status == "firing")


def alert_history(
    storage: Storage, model: str | None = None, rule: str | None = None, limit: int = 100
) -> list[AlertEvent]:
    return AlertStore(storage).history(model=model, rule=rule, limit=limit)
