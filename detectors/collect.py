"""The SQL that turns a :class:`Sample` into small summaries: every scan of the data happens here.

Every query runs inside ClickHouse and returns a few numbers per column:

- :func:`profile_side`: one scan of one side for all its columns: rows, missing, min/max, the
  reference's std and deciles (numpy's linear definition = ClickHouse ``quantilesExactInclusive``),
  the current side's counts below the reference's bin edges, and category counts;
  :func:`count_below_edges` the same counts for the reference (a second, cheap scan of it).
- one numerical column across both sides: exact KS statistic and Wasserstein distance by sorting
  (:func:`compare_numeric_exact`), or from fine histograms on large windows (:func:`compare_numeric_large`).

Values are normalised here once: numerical ``ifNull(toFloat64(expr), nan)`` with every non-finite value
missing; categorical ``toString(expr)`` (booleans become ``'true'``/``'false'``) with NULL missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from detectors.histogram import EXACT_BITS, compare_histograms, key_sql
from detectors.sample import CATEGORICAL, NUMERICAL, Kind, Sample
from detectors.sqlfmt import sql_float
from monitor.storage import Storage

DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))
FEW_VALUES_PROBE = 6  # distinct values fetched per side; more than 5 in total means "many"
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


def profile_side(
    storage: Storage,
    sample: Sample,
    names: Sequence[str],
    kinds: dict[str, Kind],
    reference: bool,
    edges: dict[str, tuple[float, ...]] | None = None,
) -> tuple[int, dict[str, SideStats]]:
    """Scan one side once: ``(rows, {column: SideStats})``.

    The reference gets its std and deciles; the current side counts its values below the reference's
    bin edges (``edges``), so no later pass over it is needed for PSI, JS and Hellinger.
    """
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
                parts += [f"stddevPopStableIf({col}, {ok})", f"quantilesExactInclusiveIf({levels})({col}, {ok})"]
            parts += [f"countIf({col} < {sql_float(e)})" for e in (edges or {}).get(name, ())]
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
    std, quantiles = (rest[0], rest[1]) if reference else (None, ())
    below = rest[2:] if reference else rest
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
        below_edges=tuple(int(b) for b in below),
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
    storage: Storage,
    reference: Sample,
    current: Sample,
    name: str,
    ref: SideStats,
    cur: SideStats,
) -> NumericComparison:
    """KS statistic (within 0.0015) and Wasserstein distance from fine histograms (:mod:`detectors.histogram`)."""
    kinds: dict[str, Kind] = {name: NUMERICAL}
    sides = {"reference": side_sql(reference, [name], kinds), "current": side_sql(current, [name], kinds)}
    center = ref.deciles[4] if ref.deciles else 0.0
    scale = 1.0 / ref.std if ref.std else 1.0

    def query(bits: int, parent_bits: int, parents: Sequence[int] | None) -> list[tuple]:
        v0 = alias(0)
        key = v0 if bits >= EXACT_BITS else key_sql(v0, center, scale, bits)
        where = f"isFinite({v0})"
        if parents is not None:
            where += f" AND {key_sql(v0, center, scale, parent_bits)} IN ({', '.join(map(str, parents))})"
        both = " UNION ALL ".join(
            f"SELECT {flag} AS s, {key} AS k, {v0} AS v FROM {sides[side]} WHERE {where}"
            for flag, side in ((0, "reference"), (1, "current"))
        )
        return storage.rows(f"SELECT s, k, count(), sum(v) FROM ({both}) GROUP BY s, k")

    maximum = max(x for x in (ref.maximum, cur.maximum) if x is not None)
    result = compare_histograms(query, ref.n, cur.n, center, scale, maximum, want_values=True)
    return NumericComparison(
        ks_statistic=result.ks_statistic,
        ks_exact=False,
        wasserstein=result.wasserstein,
        value_counts=result.value_counts,
        ks_bound=result.ks_bound,
    )
