"""The typed feature columns of ``events``: naming, discovery and creation.

Each feature gets its own column per value kind so a detector reading one feature of one model reads
one column (measured in BENCHMARKS.md against Map and JSON layouts). Numbers go to
``n__<name>`` (Float64, NaN = missing); strings and booleans to ``c__<name>``
(LowCardinality(Nullable(String)), NULL = missing). Column names are derived deterministically from
the feature name, so every process agrees without coordination; ``feature_columns`` records which
model uses which feature, because columns are shared by all models.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from typing import Literal

from monitor.storage.client import Storage, quote_identifier

FeatureKind = Literal["numerical", "categorical"]
NUMERICAL: FeatureKind = "numerical"
CATEGORICAL: FeatureKind = "categorical"

_PREFIX: dict[str, str] = {NUMERICAL: "n__", CATEGORICAL: "c__"}
_COLUMN_TYPE: dict[str, str] = {
    NUMERICAL: "Float64 DEFAULT nan",
    CATEGORICAL: "LowCardinality(Nullable(String))",
}
_SAFE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def feature_column(feature: str, kind: FeatureKind) -> str:
    """The column that stores ``feature`` values of ``kind``: readable where possible, always unique.

    Names that are not plain identifiers (or are long) get a sanitised stem plus a hash of the
    original, so ``"a b"`` and ``"a_b"`` never share a column.
    """
    if _SAFE.match(feature):
        return _PREFIX[kind] + feature
    stem = re.sub(r"[^A-Za-z0-9_]", "_", feature)[:40]
    digest = hashlib.sha1(feature.encode("utf-8")).hexdigest()[:10]
    return f"{_PREFIX[kind]}{stem}__{digest}"


def missing_condition(column: str, kind: FeatureKind) -> str:
    """SQL that is true where the stored value is missing (absent key or explicit null)."""
    quoted = quote_identifier(column)
    return f"isNaN({quoted})" if kind == NUMERICAL else f"isNull({quoted})"


class FeatureColumns:
    """Creates feature columns on first sight and answers which features a model has.

    Safe to share between threads; the set of known (model, feature, kind) is cached in memory and
    filled from ``feature_columns`` on first use, so the hot path costs one set lookup.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._lock = threading.Lock()
        self._known: set[tuple[str, str, str]] | None = None
        self._columns: set[str] = set()

    def _load(self) -> set[tuple[str, str, str]]:
        if self._known is None:
            rows = self._storage.rows(
                f"SELECT model, feature, toString(kind) FROM {self._storage.table('feature_columns')} FINAL"
            )
            self._known = {(m, f, k) for m, f, k in rows}
            self._columns = {
                r[0]
                for r in self._storage.rows(
                    "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'events'",
                    parameters={"db": self._storage.database},
                )
            }
        return self._known

    def ensure(self, entries: Iterable[tuple[str, str, FeatureKind]]) -> None:
        """Make sure every (model, feature, kind) has its column and registry row."""
        with self._lock:
            known = self._load()
            missing = sorted({e for e in entries if e not in known})
            if not missing:
                return
            for _model, feature, kind in missing:
                column = feature_column(feature, kind)
                if column not in self._columns:
                    self._storage.command(
                        f"ALTER TABLE {self._storage.table('events')} ADD COLUMN IF NOT EXISTS "
                        f"{quote_identifier(column)} {_COLUMN_TYPE[kind]}"
                    )
                    self._columns.add(column)
            self._storage.insert_rows(
                "feature_columns",
                [(m, f, k, feature_column(f, k)) for m, f, k in missing],
                ["model", "feature", "kind", "column"],
            )
            known.update(missing)

    def for_model(self, model: str) -> dict[str, dict[FeatureKind, str]]:
        """``{feature: {kind: column}}`` for every feature the model has logged (read fresh)."""
        rows = self._storage.rows(
            f"SELECT feature, toString(kind), column FROM {self._storage.table('feature_columns')} FINAL "
            "WHERE model = {model:String} ORDER BY feature",
            parameters={"model": model},
        )
        result: dict[str, dict[FeatureKind, str]] = {}
        for feature, kind, column in rows:
            result.setdefault(feature, {})[kind] = column
        return result
