"""Retention: the TTL of every table that grows with the stream, from the ``retention:`` settings.

Every TTL counts from when a row was stored (``ingested_at``, ``received_at`` or ``stored_at``),
never from a time the row describes, so backfills are not deleted on arrival. Migration 0400 sets
the defaults; :func:`apply_retention` replaces them with the configured values
when the service or the consumer starts. It reads each table's current TTL from
``system.tables`` and changes only those that differ, because ``MODIFY TTL`` recomputes the TTL
of every existing part. Per-model retention (``retention.models``) applies to the tables keyed by
event (``events``, ``event_keys``, ``labels``): one ``multiIf`` over the configured models, so
the statement grows with the configuration, never with the data. Those tables expire rows a
retention period after they were stored (``ingested_at``), so a backfill of old events is kept for
the retention period instead of being deleted as it arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from monitor.storage.client import Storage
from monitor.storage.events import sql_string

if TYPE_CHECKING:
    from monitor.settings import RetentionSettings


def _seconds(value: timedelta) -> int:
    return max(1, int(value.total_seconds()))


def _per_model(time_column: str, default: timedelta, models: Mapping[str, timedelta]) -> str:
    if not models:
        return f"toDateTime({time_column}) + toIntervalSecond({_seconds(default)})"
    branches = ", ".join(f"model = {sql_string(m)}, {_seconds(d)}" for m, d in sorted(models.items()))
    return f"toDateTime({time_column}) + toIntervalSecond(multiIf({branches}, {_seconds(default)}))"


def ttl_expressions(retention: RetentionSettings) -> dict[str, str]:
    """``{table: TTL expression}`` for every table with a retention."""
    events = _per_model("ingested_at", retention.events, retention.models)

    def fixed(column: str, value: timedelta) -> str:
        return f"toDateTime({column}) + toIntervalSecond({_seconds(value)})"

    def stored(value: timedelta) -> str:
        return f"stored_at + toIntervalSecond({_seconds(value)})"

    return {
        "events": events,
        "event_keys": events,
        "labels": events,
        "dead_letters": fixed("received_at", retention.dead_letters),
        # All rows of one delivery are stored within its short life, so they expire together.
        "alert_outbox": stored(retention.delivered_outbox),
        "alerts": stored(retention.alerts),
        "alert_state": stored(retention.alerts),
        "detector_results": stored(retention.detector_results),
        "detector_runs": stored(retention.detector_results),
        "schedule_runs": stored(retention.detector_results),
    }


def _normalised(expression: str) -> str:
    return "".join(expression.split()).lower()


def current_ttls(storage: Storage) -> dict[str, str]:
    """The TTL clause each table has now, as ClickHouse prints it ('' if none)."""
    rows = storage.rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
        parameters={"db": storage.database},
    )
    found: dict[str, str] = {}
    for name, query in rows:
        _, _, after = str(query).partition(" TTL ")
        found[str(name)] = after.split(" SETTINGS ")[0].strip()
    return found


def apply_retention(storage: Storage, retention: RetentionSettings) -> list[str]:
    """Set each table's TTL to the configured retention; returns the tables changed."""
    current = current_ttls(storage)
    changed = []
    for table, expression in ttl_expressions(retention).items():
        if table not in current:
            continue
        if _normalised(current[table]) == _normalised(expression):
            continue
        storage.command(f"ALTER TABLE {storage.table(table)} MODIFY TTL {expression}")
        changed.append(table)
    return changed
