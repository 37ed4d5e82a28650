"""Prometheus gauges read from ClickHouse at scrape time: what the database knows, not one process.

Counters in :mod:`monitor.metrics` count what *this* process did; these gauges describe the shared
state (latest drift statistics, open alerts, freshness), so every replica reports the same values and
a restart loses nothing. Results are cached for a few seconds so a burst of scrapes costs one query
each. Label sets are bounded: model, detector, column and statistic come from configuration and the
detectors' fixed vocabulary, never from event ids or values.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.errors import MonitorError
from monitor.service import queries
from monitor.storage import Storage

log = logging.getLogger(__name__)

# Extra families computed from the database; other packages (detector results, alerts) plug in here.
FamilySource = Callable[[Storage], Iterable[Metric]]


class DatabaseCollector(Collector):
    """Collects gauges from ClickHouse on scrape, cached for ``ttl`` seconds."""

    def __init__(self, storage: Storage, sources: list[FamilySource], ttl: float = 10.0) -> None:
        self.storage = storage
        self.sources = sources
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._at = 0.0

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                self._cached = self._collect_now()
                self._at = time.monotonic()
            return list(self._cached)

    def _collect_now(self) -> list[Metric]:
        families: list[Metric] = []
        ok = 1.0
        for source in self.sources:
            try:
                families.extend(source(self.storage))
            except MonitorError as exc:  # the scrape still answers; the failure is visible as a gauge
                ok = 0.0
                log.warning("metrics source %s failed: %s", getattr(source, "__name__", source), exc)
        up = GaugeMetricFamily("monitor_database_scrape_ok", "1 if every database-backed gauge could be read")
        up.add_metric([], ok)
        families.append(up)
        return families


def activity_families(storage: Storage) -> Iterable[Metric]:
    """Freshness per model and events stored in the last hour (duplicates counted once)."""
    now = datetime.now(UTC)
    activity = queries.model_activity(storage, now - timedelta(hours=1), now + timedelta(minutes=5))
    last = GaugeMetricFamily(
        "monitor_model_last_event_timestamp_seconds", "Event time of the newest stored event", labels=["model"]
    )
    recent = GaugeMetricFamily(
        "monitor_model_events_last_hour", "Distinct events stored with a timestamp in the last hour", labels=["model"]
    )
    for model, item in sorted(activity.items()):
        if item.last_event is not None:
            last.add_metric([model], item.last_event.timestamp())
        recent.add_metric([model], float(item.events))
    return [last, recent]


def dead_letter_families(storage: Storage) -> Iterable[Metric]:
    """Dead letters received in the last 24 hours by model ('' when the model could not be read)."""
    counts = queries.dead_letter_counts(storage, datetime.now(UTC) - timedelta(hours=24))
    family = GaugeMetricFamily(
        "monitor_model_dead_letters_last_day", "Dead letters received in the last 24 hours", labels=["model", "kind"]
    )
    for model, kinds in sorted(counts.items()):
        for kind, count in sorted(kinds.items()):
            family.add_metric([model, kind], float(count))
    return [family]


def drift_families(storage: Storage) -> Iterable[Metric]:
    """The newest window's drift statistics per model, column and statistic, and the verdicts."""
    from detectors import results as stored_results

    rows = stored_results.latest_statistics(storage)
    value = GaugeMetricFamily(
        "monitor_drift_statistic",
        "Drift statistic of the newest evaluated window ('' column = dataset level)",
        labels=["model", "detector", "column", "statistic"],
    )
    verdict = GaugeMetricFamily(
        "monitor_drift_detected",
        "1 if the column (or, for column '', the dataset) drifted in the newest window",
        labels=["model", "detector", "column"],
    )
    for row in rows:
        value.add_metric([row["model"], row["detector"], row["column"], row["statistic"]], float(row["value"]))
        if row["drift"] is not None:
            verdict.add_metric([row["model"], row["detector"], row["column"]], 1.0 if row["drift"] else 0.0)
    return [value, verdict]


def alert_families(storage: Storage) -> Iterable[Metric]:
    """Alerts firing now, by model and severity (every evaluated rule appears, 0 when not firing)."""
    from alerts.store import list_alerts

    counts: dict[tuple[str, str], int] = {}
    for state in list_alerts(storage):
        key = (state.model, state.severity)
        counts[key] = counts.get(key, 0) + (1 if state.status == "firing" else 0)
    family = GaugeMetricFamily("monitor_open_alerts", "Alerts firing now", labels=["model", "severity"])
    for (model, severity), count in sorted(counts.items()):
        family.add_metric([model, severity], float(count))
    return [family]


def build_registry(storage: Storage, extra: list[FamilySource] | None = None, ttl: float = 10.0) -> CollectorRegistry:
    """A registry holding only the database-backed gauges of one service instance."""
    registry = CollectorRegistry(auto_describe=False)
    sources = [activity_families, dead_letter_families, drift_families, alert_families, *(extra or [])]
    registry.register(DatabaseCollector(storage, sources, ttl))
    return registry
