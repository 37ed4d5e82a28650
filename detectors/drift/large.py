"""Large numerical columns: the SQL of the fine histograms (:mod:`detectors.drift.histogram`), one side at a time.

The first level of a column's histogram is read per side by one ``GROUP BY`` over that side only. The
reference's side depends on nothing but the reference (its grid comes from the reference's own median,
std and deciles), so :class:`ReferenceLevels` can be computed once and reused by every comparison
with that reference (:mod:`detectors.drift.reference_side`); a comparison then reads only the current side.
Refinements of the few bins that need it read both sides again, filtered to those bins.

The current side is read exactly once per column at the first level: its query also counts its missing
values and the PSI/JS bin of every value (no profile scan, no bin-edge scan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from detectors.drift.collect import (
    FEW_REFERENCE_VALUES,
    NumericComparison,
    alias,
    settings_of,
    side_sql,
    with_settings,
)
from detectors.drift.histogram import (
    BITS,
    EXACT_BITS,
    FEW_VALUES_FIRST,
    MISSING_PART,
    Columns,
    Grid,
    QueryFn,
    bins_of,
    compare_histograms,
    key_sql,
    part_sql,
)
from detectors.drift.sample import NUMERICAL, Kind, Sample
from detectors.references.profile import ColumnSummary
from monitor.storage import Storage

REFERENCE, CURRENT = 0, 1  # the `side` of histogram rows


@dataclass
class ReferenceLevels:
    """The reference's rows of one numerical column at the first histogram level (side 0, missing rows
    included): ``binned`` at :data:`histogram.BITS`, and ``by_value`` when the reference holds at most
    :data:`FEW_REFERENCE_VALUES` distinct values (then the first pass counts by value). Either may be
    None until needed."""

    binned: Columns | None = None
    by_value: Columns | None = None
    computed: list[str] = field(default_factory=list)  # which levels were read now (for progress and tests)


def numpy_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric Arrow column without nulls as a numpy array, read from its buffers.

    pyarrow's own ``to_numpy`` imports pandas on first use, a large share of a short ``monitor drift`` run.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    kind = column.type
    code = "f" if pa.types.is_floating(kind) else "u" if pa.types.is_unsigned_integer(kind) else "i"
    dtype = np.dtype(f"{code}{kind.bit_width // 8}")
    parts = []
    for chunk in chunks:
        if chunk.null_count:
            raise ValueError("numpy_column: the column has NULLs")
        if len(chunk):
            offset = chunk.offset * dtype.itemsize
            parts.append(np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=offset))
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def grid_of(ref: ColumnSummary) -> Grid:
    """The histogram grid of a column: centred on the reference median, scaled by its std, its deciles."""
    center = ref.deciles[4] if ref.deciles else 0.0
    scale = 1.0 / ref.std if ref.std else 1.0
    return Grid(center, scale, np.asarray(ref.edges, dtype=float))


def few_values(ref: ColumnSummary) -> bool:
    return ref.distinct is not None and ref.distinct <= FEW_REFERENCE_VALUES


def side_level(
    storage: Storage, sample: Sample, name: str, grid: Grid, side: int, by_value: bool, max_keys: int | None = None
) -> Columns | None:
    """One side's first level: every row, missing ones as part :data:`MISSING_PART`; None past ``max_keys``."""
    v0 = alias(0)
    ok = f"isFinite({v0})"
    source = side_sql(sample, [name], {name: NUMERICAL})
    edges = tuple(float(e) for e in grid.edges)
    if by_value:
        sql = (
            f"SELECT if({ok}, {v0}, 0) AS v, if({ok}, 0, {MISSING_PART}) AS p, count(), sum({v0}) "
            f"FROM {source} GROUP BY v, p"
        )
    else:  # bin and part packed in one UInt64 key (unpacked here): a single-key GROUP BY is the fastest
        binned = f"bitOr(bitShiftLeft({key_sql(v0, grid.center, grid.scale, BITS)}, 4), {part_sql(v0, edges)})"
        sql = f"SELECT if({ok}, {binned}, {MISSING_PART}) AS k, count(), sum({v0}) FROM {source} GROUP BY k"
    settings = settings_of(sample) or {}
    if max_keys is not None:  # 'any': past max_keys groups new keys are dropped (bounded memory); we see the cap
        settings |= {"max_rows_to_group_by": max_keys, "group_by_overflow_mode": "any"}
    table = storage.arrow(with_settings(sql, settings))
    if max_keys is not None and table.num_rows >= max_keys:
        return None
    if by_value:
        key, part, count, total = (numpy_column(table.column(i)) for i in range(4))
    else:
        packed, count, total = (numpy_column(table.column(i)) for i in range(3))
        key, part = packed >> np.uint64(4), packed & np.uint64(15)
    return (np.full(len(key), side, dtype=np.int64), key, part, count, total)


def reference_levels(
    storage: Storage, reference: Sample, name: str, ref: ColumnSummary, binned: bool
) -> ReferenceLevels:
    """The reference's first level of a column: by value if it has few values, and binned if asked."""
    grid = grid_of(ref)
    levels = ReferenceLevels()
    if few_values(ref):
        levels.by_value = side_level(storage, reference, name, grid, REFERENCE, by_value=True)
        levels.computed.append("by_value")
    if binned or levels.by_value is None:
        levels.binned = side_level(storage, reference, name, grid, REFERENCE, by_value=False)
        levels.computed.append("binned")
    return levels


def _concat(a: Columns, b: Columns) -> Columns:
    return tuple(np.concatenate([np.asarray(x), np.asarray(y)]) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def compare_numeric_large(
    storage: Storage,
    reference: Sample,
    current: Sample,
    name: str,
    ref: ColumnSummary,
    levels: ReferenceLevels | None = None,
) -> NumericComparison:
    """KS statistic (within 0.0015), Wasserstein distance, PSI/JS bin counts and sizes from fine histograms.

    Only the reference's profile is needed beforehand (median, std, bin edges) and, if given, its first
    histogram level (``levels``, else read now): the current side is read once, by its first-level query,
    which also counts its missing values.
    """
    grid = grid_of(ref)
    levels = levels if levels is not None else reference_levels(storage, reference, name, ref, binned=False)
    first = None
    if few_values(ref) and levels.by_value is not None:  # counts, ratings: by value unless there are many
        cur = side_level(storage, current, name, grid, CURRENT, by_value=True, max_keys=FEW_VALUES_FIRST)
        if cur is not None:
            first = bins_of(_concat(levels.by_value, cur), EXACT_BITS, grid)
    if first is None:
        if levels.binned is None:
            levels.binned = side_level(storage, reference, name, grid, REFERENCE, by_value=False)
            levels.computed.append("binned")
        cur = side_level(storage, current, name, grid, CURRENT, by_value=False)
        assert cur is not None and levels.binned is not None
        first = bins_of(_concat(levels.binned, cur), BITS, grid)
    result = compare_histograms(_refinements(storage, reference, current, name, grid), grid, True, first=first)
    return NumericComparison(
        ks_statistic=result.ks_statistic,
        ks_exact=False,
        wasserstein=result.wasserstein,
        value_counts=result.value_counts,
        ks_bound=result.ks_bound,
        reference_bins=result.reference_bins,
        current_bins=result.current_bins,
        n_current=result.n_current,
        missing_current=result.missing_current,
    )


def _refinements(storage: Storage, reference: Sample, current: Sample, name: str, grid: Grid) -> QueryFn:
    """The :data:`histogram.QueryFn` for refinements: both sides, rows of the given parent bins only."""
    kinds: dict[str, Kind] = {name: NUMERICAL}
    sides = ((REFERENCE, side_sql(reference, [name], kinds)), (CURRENT, side_sql(current, [name], kinds)))
    v0 = alias(0)
    ok = f"isFinite({v0})"
    edges = tuple(float(e) for e in grid.edges)

    def query(bits: int, parent_bits: int, parents: Sequence[int] | None, max_keys: int | None) -> Columns | None:
        assert parents is not None, "the first level is read per side (side_level)"
        where = f"{ok} AND {key_sql(v0, grid.center, grid.scale, parent_bits)} IN ({', '.join(map(str, parents))})"
        if bits >= EXACT_BITS:  # by value
            both = " UNION ALL ".join(f"SELECT {flag} AS s, {v0} AS v FROM {sql} WHERE {where}" for flag, sql in sides)
            sql = f"SELECT s, v, 0, count(), sum(v) FROM ({both}) GROUP BY s, v"
        else:
            binned = f"bitOr(bitShiftLeft({key_sql(v0, grid.center, grid.scale, bits)}, 4), {part_sql(v0, edges)})"
            key = f"bitOr(bitShiftLeft({binned}, 1), {{flag}})"
            both = " UNION ALL ".join(
                f"SELECT {key.format(flag=flag)} AS k, {v0} AS v FROM {sql} WHERE {where}" for flag, sql in sides
            )
            grouped = f"SELECT k, count() AS c, sum(v) AS t FROM ({both}) GROUP BY k"
            sql = f"SELECT bitAnd(k, 1), bitShiftRight(k, 5), bitAnd(bitShiftRight(k, 1), 15), c, t FROM ({grouped})"
        settings = settings_of(reference, current) or {}
        if max_keys is not None:
            settings |= {"max_rows_to_group_by": max_keys, "group_by_overflow_mode": "any"}
        table = storage.arrow(with_settings(sql, settings))
        if max_keys is not None and table.num_rows >= max_keys:
            return None
        return tuple(numpy_column(table.column(i)) for i in range(5))  # type: ignore[return-value]

    return query


__all__ = [
    "ReferenceLevels",
    "compare_numeric_large",
    "few_values",
    "grid_of",
    "numpy_column",
    "reference_levels",
    "side_level",
]
