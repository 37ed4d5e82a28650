"""The SQL that turns a :class:`Sample` into small summaries: every scan of the data happens here.

Every query runs inside ClickHouse and returns a few numbers per column:

- :func:`profile_side`: one scan of one side for all its numerical columns: rows, missing, min/max,
  and for the reference its std and deciles (numpy's linear definition = ClickHouse
  ``quantilesExactInclusive``); one ``GROUP BY`` per categorical column for its category counts.
- small numerical columns (both sides up to ``exact_limit`` values): :func:`count_below_edges` (PSI/JS
  bin counts, one scan per side) and :func:`compare_numeric_exact` (exact KS and Wasserstein by sorting,
  all columns in one query).
- large numerical columns: :func:`compare_numeric_large`, one histogram query per column over both sides
  that also yields the PSI/JS bin counts (:mod:`detectors.histogram`).

Values are normalised here once: numerical ``ifNull(toFloat64(expr), nan)`` with every non-finite value
missing; categorical ``toString(expr)`` (booleans become ``'true'``/``'false'``) with NULL missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from detectors.histogram import EXACT_BITS, MISSING_PART, Columns, Grid, compare_histograms, key_sql, part_sql
from detectors.sample import CATEGORICAL, NUMERICAL, Kind, Sample
from detectors.sqlfmt import sql_float
from monitor.storage import Storage

DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))
FEW_VALUES_PROBE = 6  # distinct values fetched per side; more than 5 in total means "many"
FEW_REFERENCE_VALUES = 100  # a large column whose reference has at most this many values is counted by value
BOOLEAN_SPELLINGS = {"true": "true", "false": "false", "True": "true", "False": "false", "TRUE": "true"}
BOOLEAN_SPELLINGS["FALSE"] = "false"


def numeric_value(expr: str) -> str:
    """The Float64 value of a numerical expression; NULL becomes NaN (then missing like NaN and ±inf)."""
    return f"ifNull(toFloat64({expr}), nan)"


def categorical_value(expr: str) -> str:
    return f"toString({expr})"


def side_sql(sample: Sample, names: Sequence[str], kinds: dict[str, Kind]) -> str:
    """A subquery with one normalised column ``c<i>`` per name (in order), over the sample's rows."""
    parts = []
    for index, name in enumerate(names):
        expr = sample.columns[name].expr
        value = numeric_value(expr) if kinds[name] == NUMERICAL else categorical_value(expr)
        parts.append(f"{value} AS {alias(index)}")
    return f"(SELECT {', '.join(parts) or f'1 AS {alias(0)}'} FROM {sample.from_sql} WHERE {sample.where_sql})"


def alias(index: int) -> str:
    """The name of the ``index``-th normalised column; unlike c0, c1, ... it cannot shadow a source column
    (in ClickHouse an alias is visible in its own SELECT and WHERE)."""
    return f"__drift_{index}"


@dataclass(frozen=True)
class SideStats:
    """One column on one side: sizes, extent, and what the methods and the default choice need."""

    kind: Kind
    rows: int
    missing: int
    minimum: float | None = None
    maximum: float | None = None
    std: float | None = None  # reference only
    deciles: tuple[float, ...] = ()  # reference only
    below_edges: tuple[int, ...] = ()  # values below each reference bin edge (numerical)
    distinct: int | None = None  # reference: distinct values, counted up to FEW_REFERENCE_VALUES + 1
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Values that are not missing."""
        return self.rows - self.missing

    @property
    def missing_share(self) -> float | None:
        return self.missing / self.rows if self.rows else None

    @property
    def edges(self) -> tuple[float, ...]:
        """The distinct deciles: the contract's bin edges for PSI, JS and Hellinger."""
        return tuple(sorted(set(self.deciles)))

    def bin_counts(self) -> tuple[int, ...]:
        """Counts in (-inf, e1), [e1, e2), ..., [ek, +inf) from the counts below each edge."""
        below = [0, *self.below_edges, self.n]
        return tuple(b - a for a, b in pairwise(below))


def count_rows(storage: Storage, sample: Sample) -> int:
    """Rows of a sample (reads no feature column)."""
    return int(storage.rows(f"SELECT count() FROM {sample.from_sql} WHERE {sample.where_sql}")[0][0])


def profile_side(
    storage: Storage,
    sample: Sample,
    names: Sequence[str],
    kinds: dict[str, Kind],
    reference: bool,
) -> tuple[int, dict[str, SideStats]]:
    """Scan one side once: ``(rows, {column: SideStats})``; the reference also gets its std and deciles."""
    aggregates = ["count()"]
    layout: list[int] = []
    numeric_index = {n: i for i, n in enumerate(n for n in names if kinds[n] == NUMERICAL)}
    for name in names:
        col = alias(numeric_index.get(name, 0))
        if kinds[name] == NUMERICAL:
            ok = f"isFinite({col})"
            parts = [f"countIf(NOT {ok})", f"minIf({col}, {ok})", f"maxIf({col}, {ok})"]
            if reference:
                levels = ", ".join(str(q) for q in DECILES)
                parts += [
                    f"stddevPopStableIf({col}, {ok})",
                    f"quantilesExactInclusiveIf({levels})({col}, {ok})",
                    f"uniqUpToIf({FEW_REFERENCE_VALUES})({col}, {ok})",
                ]
        else:
            parts = []  # categories: one GROUP BY per column below (far cheaper than sumMap)
        aggregates += parts
        layout.append(len(parts))
    numeric = [n for n in names if kinds[n] == NUMERICAL]
    row = storage.rows(f"SELECT {', '.join(aggregates)} FROM {side_sql(sample, numeric, kinds)}")[0]
    rows = int(row[0])
    result: dict[str, SideStats] = {}
    position = 1
    for name, width in zip(names, layout, strict=True):
        values = row[position : position + width]
        position += width
        if kinds[name] == NUMERICAL:
            result[name] = _numeric_stats(rows, values, reference)
        else:
            result[name] = _category_counts(storage, sample, name, rows)
    return rows, result


def _category_counts(storage: Storage, sample: Sample, name: str, rows: int) -> SideStats:
    """Counts per category of one categorical column (NULL: missing)."""
    counted = storage.rows(
        f"SELECT {alias(0)} AS v, count() FROM {side_sql(sample, [name], {name: CATEGORICAL})} GROUP BY v"
    )
    missing = sum(int(c) for v, c in counted if v is None)
    present = [(v, c) for v, c in counted if v is not None]
    return SideStats(
        kind=CATEGORICAL,
        rows=rows,
        missing=missing,
        categories=_normalise_booleans([v for v, _ in present], [c for _, c in present]),
    )


def _numeric_stats(rows: int, values: Sequence, reference: bool) -> SideStats:
    missing, lo, hi, *rest = values
    present = rows - int(missing) > 0
    std, quantiles, distinct = (rest[0], rest[1], int(rest[2])) if reference else (None, (), None)
    if present and std is not None and lo == hi:
        std = 0.0  # exactly constant, whatever the summation's rounding says
    return SideStats(
        kind=NUMERICAL,
        rows=rows,
        missing=int(missing),
        minimum=float(lo) if present else None,
        maximum=float(hi) if present else None,
        std=float(std) if (present and std is not None) else None,
        deciles=tuple(float(q) for q in quantiles) if present else (),
        distinct=distinct,
    )


def count_below_edges(
    storage: Storage, sample: Sample, edges: dict[str, tuple[float, ...]], kinds: dict[str, Kind]
) -> dict[str, tuple[int, ...]]:
    """Values below each bin edge, for every numerical column with edges, in one scan."""
    names = [n for n, e in edges.items() if e]
    if not names:
        return {n: () for n in edges}
    parts = [f"countIf({alias(i)} < {sql_float(e)})" for i, n in enumerate(names) for e in edges[n]]
    row = storage.rows(f"SELECT {', '.join(parts)} FROM {side_sql(sample, names, kinds)}")[0]
    result: dict[str, tuple[int, ...]] = {n: () for n in edges}
    position = 0
    for name in names:
        result[name] = tuple(int(x) for x in row[position : position + len(edges[name])])
        position += len(edges[name])
    return result


def _normalise_booleans(keys: Sequence[str], counts: Sequence[int]) -> dict[str, int]:
    """Category counts; a side whose only values are spellings of true/false (CSV) reads as 'true'/'false'."""
    categories: dict[str, int] = {}
    as_boolean = bool(keys) and all(k in BOOLEAN_SPELLINGS for k in keys)
    for key, count in zip(keys, counts, strict=True):
        label = BOOLEAN_SPELLINGS[key] if as_boolean else key
        categories[label] = categories.get(label, 0) + int(count)
    return categories


@dataclass(frozen=True)
class NumericComparison:
    """The KS statistic and Wasserstein distance of one column, and its values when there are at most 5."""

    ks_statistic: float
    ks_exact: bool
    wasserstein: float
    value_counts: dict[float, tuple[int, int]] | None  # value -> (reference, current), at most 5 values
    ks_bound: float = 0.0  # large windows: the exact D is within [ks_statistic, ks_statistic + ks_bound]
    reference_bins: tuple[int, ...] = ()  # large windows: PSI/JS bin counts from the histogram (exact)
    current_bins: tuple[int, ...] = ()
    n_current: int | None = None  # large windows: the current side's values and missing rows, as counted
    missing_current: int | None = None


def compare_numeric_exact(
    storage: Storage,
    reference: Sample,
    current: Sample,
    names: Sequence[str],
    sizes: dict[str, tuple[int, int]],
) -> dict[str, NumericComparison]:
    """Exact KS statistics and Wasserstein distances of several columns, in one query.

    Both sides' values of every column are merged (``arrayJoin`` over the columns) and grouped by
    (column, distinct value); running sums over the sorted values of each column give both ECDFs at every
    distinct value (ties as scipy's ``searchsorted(side='right')``): the largest gap is D, and
    Σ |F_r - F_c| x (next value - value) is W1. ``sizes``: non-missing (reference, current) counts.
    """
    if not names:
        return {}
    kinds: dict[str, Kind] = dict.fromkeys(names, NUMERICAL)
    pairs = ", ".join(f"({i}, {alias(i)})" for i in range(len(names)))
    n1 = "[" + ", ".join(sql_float(float(sizes[n][0])) for n in names) + "]"
    n2 = "[" + ", ".join(sql_float(float(sizes[n][1])) for n in names) + "]"
    sides = []
    for flag, sample in ((0, reference), (1, current)):
        sides.append(
            f"SELECT pair.1 AS k, pair.2 AS v, {flag} AS s FROM {side_sql(sample, names, kinds)} "
            f"ARRAY JOIN [{pairs}] AS pair WHERE isFinite(v)"
        )
    sql = f"""
WITH d AS (
    SELECT k, v, countIf(s = 0) AS cr, countIf(s = 1) AS cc FROM ({sides[0]} UNION ALL {sides[1]}) GROUP BY k, v
), e AS (
    SELECT k, v, cr, cc,
        sum(cr) OVER w / {n1}[k + 1] - sum(cc) OVER w / {n2}[k + 1] AS g,
        leadInFrame(v) OVER (PARTITION BY k ORDER BY v ASC ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS nv,
        row_number() OVER w AS rn,
        count() OVER (PARTITION BY k) AS distinct_values
    FROM d WINDOW w AS (PARTITION BY k ORDER BY v ASC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT k, max(abs(g)), sumIf(abs(g) * (nv - v), rn < distinct_values), count(),
    groupArray({FEW_VALUES_PROBE})((v, cr, cc))
FROM e GROUP BY k"""
    result: dict[str, NumericComparison] = {}
    for k, d, w, distinct, values in storage.rows(sql):
        result[names[int(k)]] = NumericComparison(
            ks_statistic=float(d),
            ks_exact=True,
            wasserstein=float(w),
            value_counts={float(v): (int(a), int(b)) for v, a, b in values} if int(distinct) <= 5 else None,
        )
    return result


def compare_numeric_large(
    storage: Storage, reference: Sample, current: Sample, name: str, ref: SideStats
) -> NumericComparison:
    """KS statistic (within 0.0015), Wasserstein distance, PSI/JS bin counts and sizes from fine histograms.

    Only the reference's profile is needed beforehand (median, std, bin edges): the current side is read
    once, by the histogram query itself, which also counts its missing values (:mod:`detectors.histogram`).
    """
    kinds: dict[str, Kind] = {name: NUMERICAL}
    sides = ((0, side_sql(reference, [name], kinds)), (1, side_sql(current, [name], kinds)))
    center = ref.deciles[4] if ref.deciles else 0.0
    scale = 1.0 / ref.std if ref.std else 1.0
    grid = Grid(center, scale, np.asarray(ref.edges, dtype=float))
    v0 = alias(0)
    ok = f"isFinite({v0})"

    def query(bits: int, parent_bits: int, parents: Sequence[int] | None, max_keys: int | None) -> Columns | None:
        # The first level reads every row (missing ones become part MISSING_PART); refinements only values.
        where = (
            "1"
            if parents is None
            else f"{ok} AND {key_sql(v0, center, scale, parent_bits)} IN ({', '.join(map(str, parents))})"
        )
        part = f"if({ok}, {part_sql(v0, ref.edges)}, {MISSING_PART})"
        if bits >= EXACT_BITS:  # by value
            both = " UNION ALL ".join(
                f"SELECT {flag} AS s, if({ok}, {v0}, 0) AS v, if({ok}, 0, {MISSING_PART}) AS p FROM {sql} WHERE {where}"
                for flag, sql in sides
            )
            sql = f"SELECT s, v, p, count(), sum(v) FROM ({both}) GROUP BY s, v, p"
        else:  # bin, part and side packed in one UInt64 key: a single-key GROUP BY is the fastest
            key = f"if({ok}, {key_sql(v0, center, scale, bits)}, 0)"
            packed = f"bitOr(bitShiftLeft(bitOr(bitShiftLeft({key}, 4), {part}), 1), {{flag}})"
            both = " UNION ALL ".join(
                f"SELECT {packed.format(flag=flag)} AS k, if({ok}, {v0}, 0) AS v FROM {sql} WHERE {where}"
                for flag, sql in sides
            )
            grouped = f"SELECT k, count() AS c, sum(v) AS t FROM ({both}) GROUP BY k"
            sql = f"SELECT bitAnd(k, 1), bitShiftRight(k, 5), bitAnd(bitShiftRight(k, 1), 15), c, t FROM ({grouped})"
        # 'any': past max_keys groups, rows of new keys are dropped (bounded memory); we then see the cap.
        limits = None if max_keys is None else {"max_rows_to_group_by": max_keys, "group_by_overflow_mode": "any"}
        table = storage.arrow(sql, settings=limits)  # columnar: tens of thousands of bins per query
        if max_keys is not None and table.num_rows >= max_keys:
            return None
        return tuple(table.column(i).to_numpy() for i in range(5))

    few = ref.distinct is not None and ref.distinct <= FEW_REFERENCE_VALUES
    result = compare_histograms(query, grid, want_values=True, values_first=few)
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
