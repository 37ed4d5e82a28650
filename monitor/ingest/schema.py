"""Typed feature columns, added off the insert path, a few at a time.

Events carry their features in maps (:mod:`monitor.storage.events`), so storing them never waits
for a column. A typed column makes one feature fast to read; this module decides which features
get one and adds them within a time budget per batch (``ingest.schema_seconds_per_batch``), so a
flood of new names delays typed columns, never ingestion. Configured features come first; other
features get one up to ``ingest.typed_columns_per_model`` per model and
``ingest.max_typed_columns`` in all. Beyond that a feature stays in the maps only (readable with
``fnum['name']`` / ``fcat['name']``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from monitor.errors import StorageError
from monitor.ingest.limits import IngestPolicy
from monitor.logs import get_logger
from monitor.storage import Storage
from monitor.storage.events import FeatureColumns, FeatureKind, feature_column

log = get_logger(__name__)


class TypedColumns:
    """A queue of (model, feature, kind) waiting for a typed column. Used by the writer thread only."""

    def __init__(self, storage: Storage, policy: IngestPolicy, columns: FeatureColumns | None = None) -> None:
        self._storage = storage
        self._policy = policy
        self.columns = columns or FeatureColumns(storage)
        self._queued: set[tuple[str, str, FeatureKind]] = set()
        self._counted: dict[str, int] | None = None  # model -> typed features
        self._total = 0

    def _load(self) -> dict[str, int]:
        if self._counted is None:
            counted: dict[str, int] = {}
            for model, n in self._storage.rows(
                f"SELECT model, uniqExact(feature) FROM {self._storage.table('feature_columns')} GROUP BY model"
            ):
                counted[model] = int(n)
            self._counted = counted
            self._total = int(
                self._storage.rows(
                    "SELECT count() FROM system.columns WHERE database = {db:String} AND table = 'events' "
                    "AND (startsWith(name, 'n__') OR startsWith(name, 'c__'))",
                    parameters={"db": self._storage.database},
                )[0][0]
            )
        return self._counted

    def want(self, entries: Iterable[tuple[str, str, FeatureKind]]) -> None:
        """Queue features that have no typed column yet (cheap when they all have one)."""
        self._queued.update(e for e in entries if not self.columns.has(e))

    @property
    def waiting(self) -> int:
        return len(self._queued)

    def _priority(self, entry: tuple[str, str, FeatureKind]) -> tuple[int, str, str, str]:
        model, feature, kind = entry
        configured = feature in self._policy.configured.get(model, frozenset())
        return (0 if configured else 1, model, feature, kind)

    def add_some(self) -> int:
        """Add queued columns until the time budget is spent; returns how many were added."""
        if not self._queued:
            return 0
        limits = self._policy.limits
        deadline = time.monotonic() + limits.schema_seconds_per_batch
        added = 0
        try:
            counted = self._load()
            for entry in sorted(self._queued, key=self._priority):
                if time.monotonic() >= deadline:
                    break
                model, feature, kind = entry
                configured = feature in self._policy.configured.get(model, frozenset())
                new_column = not self.columns.column_exists(feature_column(feature, kind))
                if not configured and (
                    counted.get(model, 0) >= limits.typed_columns_per_model
                    or (new_column and self._total >= limits.max_typed_columns)
                ):
                    self._queued.discard(entry)
                    continue  # stays in the maps only
                try:
                    self.columns.ensure([entry])
                except StorageError as exc:
                    if exc.code is None:
                        raise
                    log.warning(
                        "cannot add a typed column; the feature stays in the maps", feature=feature[:64], error=str(exc)
                    )
                    self._queued.discard(entry)
                    continue
                self._queued.discard(entry)
                counted[model] = counted.get(model, 0) + 1
                self._total += int(new_column)
                added += 1
        except StorageError as exc:  # ClickHouse unreachable: the events are stored; try again later
            log.warning("adding typed columns failed; will retry with the next batch", error=str(exc))
        return added
