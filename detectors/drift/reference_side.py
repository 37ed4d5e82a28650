"""The reference side of a comparison, computed once and reused: what the engine needs from a reference.

:func:`detectors.drift.engine.compare` needs from the reference only small summaries: per column its
:class:`~detectors.drift.collect.ColumnSummary` (rows, missing, min/max, std, deciles, distinct values, category
counts) and, per numerical column, the first level of its fine histogram
(:class:`~detectors.drift.large.ReferenceLevels`). All of them depend on the reference's rows alone, so a
registered reference (whose rows never change: a new registration is a new ``load_id``) is summarised
once and the summary kept in ``reference_sides`` (migration 0101). Every later comparison with it reads
the current window only; just the few histogram bins that need refining are re-read on both sides.

``monitor drift`` (two files) summarises the reference in-process with :func:`summarize` and keeps
nothing; the service loads or stores summaries with :func:`cached_side`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from detectors.drift.calibration import Calibration, CalibrationKey
from detectors.drift.large import REFERENCE, ReferenceLevels, numpy_column, reference_levels
from detectors.drift.parallel import in_parallel, profile_in_parallel, single_threaded
from detectors.drift.sample import NUMERICAL, ColumnSpec, Kind, Sample
from detectors.drift.verdict import DriftOptions
from detectors.references.profile import ColumnSummary
from detectors.references.store import Reference
from detectors.report import PREDICTION_COLUMN
from monitor.logs import get_logger
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string

log = get_logger(__name__)
TABLE = "reference_sides"
MISSING_EXPR: dict[str, str] = {"numerical": "nan", "categorical": "CAST(NULL, 'Nullable(String)')"}
CALIBRATED_LEVEL = "calibrated:"  # level of a calibrated threshold: calibrated:<method>:<window rows>
# Bump when the histogram grid (detectors.drift.histogram.BITS, key or part encoding) or the stored
# column summary changes: older rows are then ignored and computed again.
LAYOUT = 3  # 3: a categorical column with more than MAX_COUNTED_CATEGORIES keeps no frequencies


@dataclass(frozen=True)
class ReferenceSide:
    """A reference's summary for the drift engine: its rows, each column's stats and first levels."""

    rows: int
    stats: Mapping[str, ColumnSummary]
    levels: Mapping[str, ReferenceLevels] = field(default_factory=dict)

    def covers(self, sample: Sample, names: Sequence[str]) -> bool:
        """Whether it holds every column of ``names`` with the kind ``sample`` gives it."""
        return all(n in self.stats and self.stats[n].kind == sample.columns[n].kind for n in names)


def summarize(
    storage: Storage, reference: Sample, names: Sequence[str] | None = None, workers: int = 0
) -> ReferenceSide:
    """Summarise ``reference`` (its columns ``names``, default all): the profile scan (categories counted
    in the same pass), then the first histogram levels of every numerical column, ``workers`` at a time
    (0: one per CPU)."""
    wanted = list(reference.columns) if names is None else list(names)
    kinds: dict[str, Kind] = {n: reference.columns[n].kind for n in wanted}
    parallelism = DriftOptions(workers=workers).parallelism()
    rows, stats = profile_in_parallel(storage, reference, wanted, kinds, True, parallelism)
    numeric = [n for n in wanted if kinds[n] == NUMERICAL and stats[n].n > 0]
    sample = single_threaded(reference) if parallelism > 1 and len(numeric) > 1 else reference
    computed = in_parallel(
        storage, parallelism, numeric, lambda connection, n: reference_levels(connection, sample, n, stats[n], True)
    )
    return ReferenceSide(rows, stats, dict(zip(numeric, computed, strict=True)))


def cached_side(storage: Storage, load_id: str, reference: Sample) -> ReferenceSide:
    """The summary of a registered reference's sample (rows of ``load_id``): stored, or computed and stored.

    Keyed by the sample's WHERE (a segment of the reference is another summary) and each column's
    expression, so nothing stale can be read back. Storing is best effort: a failure is logged and the
    summary still returned.
    """
    names = list(reference.columns)
    found = _load(storage, load_id, reference)
    missing = [n for n in names if n not in found.stats or (_numeric_with_values(found, n) and n not in found.levels)]
    if not missing:
        return found
    fresh = summarize(storage, reference, missing)
    try:
        _store(storage, load_id, reference, fresh)
    except Exception as exc:  # the comparison does not depend on it; the next run tries again
        log.warning("could not store the reference summary", load_id=load_id, error=str(exc))
    return ReferenceSide(
        fresh.rows if not found.stats else found.rows,
        {**found.stats, **fresh.stats},
        {**found.levels, **fresh.levels},
    )


class StoredCalibrations:
    """Calibrated thresholds of a registered reference's sample, kept beside its summary in
    ``reference_sides`` (one row per column, method and window size; the numbers as JSON in ``stats``)."""

    def __init__(self, storage: Storage, load_id: str, reference: Sample) -> None:
        self._storage, self._load_id, self._scope = storage, load_id, reference.where_sql

    def get_many(self, keys: list[CalibrationKey]) -> dict[CalibrationKey, Calibration]:
        """The stored calibrations among ``keys``, read in one query (all of this sample's, few rows)."""
        rows = self._storage.rows(
            f"SELECT column, expr, level, stats FROM {self._storage.table(TABLE)} FINAL "
            f"WHERE load_id = {sql_string(self._load_id)} AND scope = {sql_string(self._scope)} "
            f"AND layout = {LAYOUT} AND startsWith(level, {sql_string(CALIBRATED_LEVEL)})"
        )
        stored = {(column, expr, level): stats for column, expr, level, stats in rows}
        found: dict[CalibrationKey, Calibration] = {}
        for key in keys:
            column, expr, method, n_current = key
            stats = stored.get((column, expr, f"{CALIBRATED_LEVEL}{method}:{n_current}"))
            if stats is not None:
                found[key] = Calibration(**json.loads(stats))
        return found

    def put_many(self, found: list[tuple[str, str, Calibration]]) -> None:
        """Store calibrations (column, its expression, calibration) in one insert."""
        rows = [
            (
                self._load_id,
                self._scope,
                column,
                expr,
                LAYOUT,
                f"{CALIBRATED_LEVEL}{calibration.method}:{calibration.n_current}",
                json.dumps(asdict(calibration)),
            )
            for column, expr, calibration in found
        ]
        try:
            self._storage.insert_rows(TABLE, rows, ["load_id", "scope", "column", "expr", "layout", "level", "stats"])
        except Exception as exc:  # best effort: the next run calibrates again
            log.warning("could not store calibrated thresholds", columns=len(rows), error=str(exc))


def registered_sample(
    storage: Storage, reference: Reference, columns: Mapping[str, Kind], segment: tuple[str, str] | None = None
) -> Sample:
    """The rows of a registered reference (of one segment where it carries the key) as a :class:`Sample`.

    ``__prediction__`` reads the reference's own predictions; a column the reference lacks (with that kind)
    is all-missing.
    """
    specs: dict[str, ColumnSpec] = {}
    for name, kind in columns.items():
        expr: str | None = None
        if name == PREDICTION_COLUMN:
            expr = reference.prediction_expr()
        elif reference.columns.get(name) == kind:
            expr = reference.column_expr(name)
        specs[name] = ColumnSpec(expr=expr or MISSING_EXPR[kind], kind=kind)
    return Sample(
        from_sql=reference.from_sql(storage),
        columns=specs,
        where_sql=reference.where_sql(segment),
        description=f"reference {reference.version} of {reference.model}",
    )


def precompute(storage: Storage, reference: Reference) -> None:
    """Summarise a newly registered reference (every feature and its predictions) so that even the first
    detection run reads only the window. Best effort: a run computes whatever is missing."""
    columns: dict[str, Kind] = dict(reference.columns)
    if reference.prediction_kind is not None:
        columns[PREDICTION_COLUMN] = reference.prediction_kind
    try:
        cached_side(storage, reference.load_id, registered_sample(storage, reference, columns))
    except Exception as exc:
        log.warning(
            "could not summarise the reference", model=reference.model, load_id=reference.load_id, error=str(exc)
        )


def forget(storage: Storage, load_id: str) -> None:
    """Delete the summaries (and multivariate fits) of a load whose rows are dropped (a replaced version)."""
    from detectors.drift.multivariate import store

    storage.command(f"DELETE FROM {storage.table(TABLE)} WHERE load_id = {sql_string(load_id)}")
    store.forget(storage, load_id)


def _numeric_with_values(side: ReferenceSide, name: str) -> bool:
    stats = side.stats.get(name)
    return stats is not None and stats.kind == NUMERICAL and stats.n > 0


def _stats_json(stats: ColumnSummary) -> str:
    return json.dumps(stats.to_json())


def _stats_from(text: str) -> ColumnSummary:
    return ColumnSummary.from_json(json.loads(text))


def _store(storage: Storage, load_id: str, reference: Sample, side: ReferenceSide) -> None:
    """One row per column and level; the arrays go in as Arrow lists (tens of thousands of bins each)."""
    import pyarrow as pa

    scope = reference.where_sql
    meta: list[tuple[str, str, str, str]] = []  # column, expr, level, stats
    arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    empty = np.zeros(0)
    for name, stats in side.stats.items():
        expr = f"{stats.kind}:{reference.columns[name].expr}"
        meta.append((name, expr, "stats", _stats_json(stats)))
        arrays.append((empty, empty, empty, empty))
        levels = side.levels.get(name) or ReferenceLevels()
        for level, columns in (("binned", levels.binned), ("by_value", levels.by_value)):
            if columns is not None:
                meta.append((name, expr, level, ""))
                arrays.append(tuple(np.asarray(c) for c in columns[1:]))  # type: ignore[arg-type]

    def lists(index: int, kind: pa.DataType) -> pa.ListArray:
        parts = [np.asarray(a[index]) for a in arrays]
        offsets = np.concatenate([[0], np.cumsum([len(x) for x in parts])]).astype(np.int32)
        values = np.concatenate(parts) if parts else np.zeros(0)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(kind.to_pandas_dtype()), kind))

    table = pa.table(
        {
            "load_id": pa.array([load_id] * len(meta)),
            "scope": pa.array([scope] * len(meta)),
            "column": pa.array([m[0] for m in meta]),
            "expr": pa.array([m[1] for m in meta]),
            "layout": pa.array([LAYOUT] * len(meta), pa.uint16()),
            "level": pa.array([m[2] for m in meta]),
            "stats": pa.array([m[3] for m in meta]),
            "keys": lists(0, pa.float64()),
            "parts": lists(1, pa.uint8()),
            "counts": lists(2, pa.uint64()),
            "sums": lists(3, pa.float64()),
        }
    )
    storage.insert_arrow(TABLE, table)


def _load(storage: Storage, load_id: str, reference: Sample) -> ReferenceSide:
    table = storage.arrow(
        f"SELECT column, expr, level, stats, keys, parts, counts, sums FROM {storage.table(TABLE)} FINAL "
        f"WHERE load_id = {sql_string(load_id)} AND scope = {sql_string(reference.where_sql)} AND layout = {LAYOUT}"
    ).combine_chunks()
    stats: dict[str, ColumnSummary] = {}
    levels: dict[str, ReferenceLevels] = {}
    meta = zip(*(table.column(c).to_pylist() for c in ("column", "expr", "level", "stats")), strict=True)
    lists = [table.column(c).chunk(0) if table.num_rows else None for c in ("keys", "parts", "counts", "sums")]
    for index, (name, expr, level, text) in enumerate(meta):
        spec = reference.columns.get(name)
        if spec is None or expr != f"{spec.kind}:{spec.expr}":
            continue
        if level == "stats":
            stats[name] = _stats_from(text)
            continue
        if level.startswith(CALIBRATED_LEVEL):  # read by StoredCalibrations
            continue
        keys, parts, counts, sums = (numpy_column(lst[index].values) for lst in lists)  # type: ignore[index]
        columns = (
            np.full(len(keys), REFERENCE, dtype=np.int64),
            keys if level == "by_value" else keys.astype(np.uint64),
            parts.astype(np.int64),
            counts.astype(np.int64),
            sums.astype(np.float64),
        )
        found = levels.setdefault(name, ReferenceLevels())
        if level == "binned":
            found.binned = columns
        else:
            found.by_value = columns
    rows = next(iter(stats.values())).rows if stats else 0
    return ReferenceSide(rows, stats, {n: lv for n, lv in levels.items() if n in stats})
