"""The typed feature columns of ``events``: naming, discovery and creation.

Every feature value is stored in one of two maps (``fnum`` numbers, ``fcat`` strings and booleans),
so the insert statement never depends on the features a batch carries. A feature a detector reads
also gets a typed column so that reading it reads one column (measured in BENCHMARKS.md against Map
and JSON layouts): ``n__<name>`` (Float64, NaN = missing) or ``c__<name>``
(LowCardinality(Nullable(String)), NULL = missing), whose DEFAULT expression takes the value from the
map. ClickHouse fills it at insert, and for rows stored before the column existed it computes it on
read, so typed columns can be added at any time without stalling or back-filling anything. Column
names are derived deterministically from the feature name, so every process agrees without
coordination; ``feature_columns`` records which model uses which typed column (columns are shared by
all models).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Container, Iterable
from typing import Literal

from monitor.storage.client import Storage, quote_identifier

FeatureKind = Literal["numerical", "categorical"]
NUMERICAL: FeatureKind = "numerical"
CATEGORICAL: FeatureKind = "categorical"

_PREFIX: dict[str, str] = {NUMERICAL: "n__", CATEGORICAL: "c__"}
_COLUMN_TYPE: dict[str, str] = {NUMERICAL: "Float64", CATEGORICAL: "LowCardinality(Nullable(String))"}
_MAP: dict[str, str] = {NUMERICAL: "fnum", CATEGORICAL: "fcat"}
_MISSING: dict[str, str] = {NUMERICAL: "nan", CATEGORICAL: "NULL"}
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


def sql_string(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def column_definition(feature: str, kind: FeatureKind) -> str:
    """The type and DEFAULT of ``feature``'s typed column: the value from the event's map.

    A map lookup scans the event's keys, and every typed column looks up its own key, so an insert
    costs (typed columns) x (features per event) comparisons a row. ``arrayElementOrNull`` finds a
    key and tells that it is missing in one scan, where ``mapContains`` and ``[]`` take two (migration
    0004 moves existing columns to it; BENCHMARKS.md, "Typed columns: one scan of the map").
    """
    return f"{_COLUMN_TYPE[kind]} DEFAULT {map_value(feature, kind)}"


def map_value(feature: str, kind: FeatureKind) -> str:
    """SQL reading ``feature`` from the event's map, NaN/NULL where missing: what its typed column holds.

    The DEFAULT of the typed column, so reading the map gives the same values as reading the column;
    readers use it for features that have no typed column (not created yet, or beyond the typed-column
    limits), which are then never mistaken for missing.
    """
    return f"ifNull(arrayElementOrNull({_MAP[kind]}, {sql_string(feature)}), {_MISSING[kind]})"


def feature_expr(feature: str, kind: FeatureKind, columns: Container[str]) -> str:
    """SQL for ``feature``'s values in ``events``: its typed column if ``columns`` (the table's columns)
    has it, otherwise the same values from the map (:func:`map_value`)."""
    column = feature_column(feature, kind)
    return quote_identifier(column) if column in columns else map_value(feature, kind)


def events_columns(storage: Storage) -> frozenset[str]:
    """The names of the columns ``events`` has now (typed columns are added while ingestion runs)."""
    return frozenset(
        r[0]
        for r in storage.rows(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'events'",
            parameters={"db": storage.database},
        )
    )


def logged_features(storage: Storage, model: str) -> dict[str, set[FeatureKind]]:
    """``{feature: kinds}`` of every feature the model has logged, with a typed column or not.

    Read from ``model_features`` (every admitted feature), not ``feature_columns`` (only those that got a
    typed column so far): a feature without a typed column is still logged, in the maps.
    """
    rows = storage.rows(
        f"SELECT DISTINCT feature, kind FROM {storage.table('model_features')} "
        "WHERE model = {model:String} AND feature != '' ORDER BY feature, kind",
        parameters={"model": model},
    )
    result: dict[str, set[FeatureKind]] = {}
    for feature, kind in rows:
        if kind in _PREFIX:
            result.setdefault(feature, set()).add(NUMERICAL if kind == NUMERICAL else CATEGORICAL)
    for feature, kinds in FeatureColumns(storage).for_model(model).items():  # written by older versions
        result.setdefault(feature, set()).update(kinds)
    return result


def retarget_typed_columns(storage: Storage) -> None:
    """Migration step: give every existing typed column today's DEFAULT (:func:`column_definition`).

    Metadata only (stored values are kept); afterwards rows inserted with the maps fill the column,
    and rows stored before the column existed read through the same expression.
    """
    rows = storage.rows(f"SELECT DISTINCT feature, toString(kind), column FROM {storage.table('feature_columns')}")
    existing = {
        r[0]
        for r in storage.rows(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'events'",
            parameters={"db": storage.database},
        )
    }
    for feature, kind, column in rows:
        if column in existing:
            storage.command(
                f"ALTER TABLE {storage.table('events')} MODIFY COLUMN {quote_identifier(column)} "
                f"{column_definition(feature, kind)}"
            )


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

    def has(self, entry: tuple[str, str, FeatureKind]) -> bool:
        """Whether (model, feature, kind) already has its typed column and registry row."""
        with self._lock:
            return entry in self._load()

    def column_exists(self, column: str) -> bool:
        with self._lock:
            self._load()
            return column in self._columns

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
                        f"{quote_identifier(column)} {column_definition(feature, kind)}"
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
