"""The SQL that turns a :class:`Sample` into small summaries: every scan of the data happens here.

Every query runs inside ClickHouse and returns a few numbers per column:

- :func:`profile_side`: one scan of one side for all its numerical columns: rows, missing, min/max,
  and for the reference its std and deciles (numpy's linear definition, with numpy's arithmetic:
  :func:`detectors.references.profile.numpy_quantiles`); one ``GROUP BY`` per categorical column for
  its category counts.
- small numerical columns (both sides up to ``exact_limit`` values): :func:`count_below_edges` (PSI/JS
  bin counts, one scan per side) and :func:`compare_numeric_exact` (exact KS and Wasserstein by sorting,
  all columns in one query).
- large numerical columns: :mod:`detectors.drift.large`, one histogram query per column and side that also
  yields the PSI/JS bin counts (:mod:`detectors.drift.histogram`); the reference's side can be computed once
  and kept (:mod:`detectors.drift.reference_side`).
- categorical columns: every column of a side in one scan (``GROUPING SETS``), not one query each,
  returning at most :data:`MAX_COUNTED_CATEGORIES` categories per column; a column with more (an ID) is
  compared inside ClickHouse by :mod:`detectors.drift.categories` instead.

Every query carries the samples' ClickHouse settings (:attr:`Sample.settings`, see :mod:`detectors.drift.pinning`).

Values are normalised here once: numerical ``ifNull(toFloat64(expr), nan)`` with every non-finite value
missing; categorical ``toString(expr)`` (booleans become ``'true'``/``'false'``) with NULL missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detectors.drift.sample import CATEGORICAL, NUMERICAL, Kind, Sample
from detectors.references.profile import ColumnSummary, spread_aggregates
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_float, sql_string
from monitor.storage.statements import batches, sql_bytes

FEW_VALUES_PROBE = 6  # distinct values fetched per side; more than 5 in total means "many"
FEW_REFERENCE_VALUES = 100  # a large column whose reference has at most this many values is counted by value
BOOLEAN_SPELLINGS = {"true": "true", "false": "false", "True": "true", "False": "false", "TRUE": "true"}
BOOLEAN_SPELLINGS["FALSE"] = "false"
GROUPING_BATCH = 32  # categorical columns counted per scan (ClickHouse's grouping() takes at most 64)
# Categories of one column of one side brought to Python; a column with more is marked ``truncated``
# (no frequencies) and its comparison runs inside ClickHouse (detectors.drift.categories).
MAX_COUNTED_CATEGORIES = 5_000


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


def settings_of(*samples: Sample) -> dict[str, Any] | None:
    """The ClickHouse settings for a query over these samples (None: the defaults)."""
    merged: dict[str, Any] = {}
    for sample in samples:
        merged |= dict(sample.settings)
    return merged or None


def with_settings(sql: str, settings: dict[str, Any] | None) -> str:
    """``sql`` with its settings as a trailing ``SETTINGS`` clause.

    For Arrow results clickhouse-connect applies per-call settings with ``SET`` statements before and
    after the query: two more round trips per query, a cost comparable to a small histogram query itself.
    """
    if not settings:
        return sql
    values = {k: v if isinstance(v, int | float) else sql_string(str(v)) for k, v in settings.items()}
    return f"{sql} SETTINGS {', '.join(f'{k} = {v}' for k, v in values.items())}"


def alias(index: int) -> str:
    """The name of the ``index``-th normalised column; unlike c0, c1, ... it cannot shadow a source column
    (in ClickHouse an alias is visible in its own SELECT and WHERE)."""
    return f"__drift_{index}"


def count_rows(storage: Storage, sample: Sample) -> int:
    """Rows of a sample (reads no feature column)."""
    sql = f"SELECT count() FROM {sample.from_sql} WHERE {sample.where_sql}"
    return int(storage.rows(sql, settings=settings_of(sample))[0][0])


def profile_side(
    storage: Storage,
    sample: Sample,
    names: Sequence[str],
    kinds: dict[str, Kind],
    reference: bool,
    rows: int | None = None,
) -> tuple[int, dict[str, ColumnSummary]]:
    """Scan one side once: ``(rows, {column: ColumnSummary})``; the reference also gets its std and deciles.

    ``rows``: the side's row count when the caller knows it (no scan at all for categorical columns only).
    """
    numeric = [n for n in names if kinds[n] == NUMERICAL]
    values_of: dict[str, Sequence[Any]] = {}
    if numeric or rows is None:
        # One scan for all numerical columns, or one per batch of them where naming them all would
        # take a statement past ClickHouse's max_query_size (wide models, long names).
        # A column's aggregates, besides its expression (the longest alias a batch can have).
        part_bytes = sql_bytes(", ".join(_numeric_aggregates(alias(len(numeric)), reference)))
        groups = batches(numeric, lambda n: sql_bytes(sample.columns[n].expr) + part_bytes) or [[]]
        for group in groups:
            aggregates = ["count()"]
            for index in range(len(group)):
                aggregates += _numeric_aggregates(alias(index), reference)
            row = storage.rows(
                f"SELECT {', '.join(aggregates)} FROM {side_sql(sample, group, kinds)}", settings=settings_of(sample)
            )[0]
            if group is groups[0]:
                rows = int(row[0])
            width = 6 if reference else 3
            for index, name in enumerate(group):
                values_of[name] = row[1 + index * width : 1 + (index + 1) * width]
    assert rows is not None
    categorical = [n for n in names if kinds[n] == CATEGORICAL]
    counted = category_counts(storage, sample, categorical) if categorical else {}
    result: dict[str, ColumnSummary] = {}
    for name in names:
        if kinds[name] == NUMERICAL:
            result[name] = _numeric_stats(rows, values_of[name], reference)
        else:
            missing, categories = counted[name]
            result[name] = ColumnSummary(
                kind=CATEGORICAL,
                count=rows - missing,
                missing=missing,
                frequencies=categories or {},
                truncated=categories is None,
            )
    return rows, result


def _numeric_aggregates(col: str, reference: bool) -> list[str]:
    """Missing, min and max of a numerical column; the reference's also its spread, deciles and distinct values."""
    ok = f"isFinite({col})"
    aggregates = [f"countIf(NOT {ok})", f"minIf({col}, {ok})", f"maxIf({col}, {ok})"]
    if reference:
        aggregates += [*spread_aggregates(col, ok), f"uniqUpToIf({FEW_REFERENCE_VALUES})({col}, {ok})"]
    return aggregates


def category_counts(
    storage: Storage, sample: Sample, names: Sequence[str], limit: int = MAX_COUNTED_CATEGORIES
) -> dict[str, tuple[int, dict[str, int] | None]]:
    """``{column: (missing, {category: count})}`` of categorical columns (NULL: missing), in one scan;
    None instead of the counts for a column with more than ``limit`` categories (its missing rows are
    still counted).

    One ``GROUP BY`` per column would select the rows once per column; ``GROUPING SETS`` counts up to
    :data:`GROUPING_BATCH` columns in the same pass, and ``grouping()`` says which column a row is about.
    ``LIMIT ... BY`` returns each column's NULL row first and then at most ``limit + 1`` categories (one
    more than kept, to tell a column past the limit): an ID column's million categories stay inside ClickHouse.
    """
    groups = batches(names, lambda n: sql_bytes(sample.columns[n].expr) + 100, max_items=GROUPING_BATCH)
    if len(groups) > 1:
        return {k: v for group in groups for k, v in category_counts(storage, sample, group, limit).items()}
    kinds: dict[str, Kind] = dict.fromkeys(names, CATEGORICAL)
    keys = [alias(i) for i in range(len(names))]
    # Within one column's rows the other keys are all NULL (or all ''), so the most NULL keys is its NULL row.
    nulls = " + ".join(f"isNull({k})" for k in keys)
    if len(names) == 1:
        sql = (
            f"SELECT 0, {keys[0]}, count() FROM {side_sql(sample, names, kinds)} GROUP BY {keys[0]} "
            f"ORDER BY {nulls} DESC LIMIT {int(limit) + 2}"
        )
    else:
        sets = ", ".join(f"({k})" for k in keys)
        sql = (
            f"SELECT grouping({', '.join(keys)}) AS g, {', '.join(keys)}, count() "
            f"FROM {side_sql(sample, names, kinds)} GROUP BY GROUPING SETS ({sets}) "
            f"ORDER BY {nulls} DESC LIMIT {int(limit) + 2} BY g"
        )
    full = (1 << len(names)) - 1
    index_of = {full ^ (1 << (len(names) - 1 - i)): i for i in range(len(names))} if len(names) > 1 else {0: 0}
    found: dict[int, list[tuple[str | None, int]]] = {i: [] for i in range(len(names))}
    for row in storage.rows(sql, settings=settings_of(sample)):
        i = index_of[int(row[0])]
        found[i].append((row[1 + i] if len(names) > 1 else row[1], int(row[-1])))
    result: dict[str, tuple[int, dict[str, int] | None]] = {}
    for i, name in enumerate(names):
        present = [(v, c) for v, c in found[i] if v is not None]
        missing = sum(c for v, c in found[i] if v is None)
        if len(present) > limit:
            result[name] = (missing, None)
            continue
        result[name] = (missing, _normalise_booleans([v for v, _ in present], [c for _, c in present]))
    return result


def _numeric_stats(rows: int, values: Sequence[Any], reference: bool) -> ColumnSummary:
    missing, lo, hi, *rest = values
    present = rows - int(missing) > 0
    std, quantiles, distinct = (rest[0], rest[1], int(rest[2])) if reference else (None, (), None)
    if present and std is not None and lo == hi:
        std = 0.0  # exactly constant, whatever the summation's rounding says
    return ColumnSummary(
        kind=NUMERICAL,
        count=rows - int(missing),
        missing=int(missing),
        min=float(lo) if present else None,
        max=float(hi) if present else None,
        std=float(std) if (present and std is not None) else None,
        deciles=tuple(float(q) for q in quantiles) if present else (),
        distinct=distinct,
    )


def count_below_edges(
    storage: Storage, sample: Sample, edges: dict[str, tuple[float, ...]], kinds: dict[str, Kind]
) -> dict[str, tuple[int, ...]]:
    """Values below each bin edge, for every numerical column with edges, in one scan."""
    names = [n for n, e in edges.items() if e]
    result: dict[str, tuple[int, ...]] = {n: () for n in edges}
    # One scan, or one per batch of columns that keeps the statement under max_query_size.
    for group in batches(names, lambda n: sql_bytes(sample.columns[n].expr) + 60 * (len(edges[n]) + 1)):
        parts = [f"countIf({alias(i)} < {sql_float(e)})" for i, n in enumerate(group) for e in edges[n]]
        row = storage.rows(
            f"SELECT {', '.join(parts)} FROM {side_sql(sample, group, kinds)}", settings=settings_of(sample)
        )[0]
        position = 0
        for name in group:
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


def merged_values(
    reference: Sample, current: Sample, names: Sequence[str], sizes: dict[str, tuple[int, int]]
) -> tuple[str, tuple[str, str]]:
    """Both sides' finite values of every column as rows (``k`` the column's position, ``v`` the value,
    ``s`` 0 for the reference and 1 for the current side), and each side's sizes as SQL arrays indexed by
    ``k + 1``."""
    kinds: dict[str, Kind] = dict.fromkeys(names, NUMERICAL)
    pairs = ", ".join(f"({i}, {alias(i)})" for i in range(len(names)))
    sides = [
        f"SELECT pair.1 AS k, pair.2 AS v, {flag} AS s FROM {side_sql(sample, names, kinds)} "
        f"ARRAY JOIN [{pairs}] AS pair WHERE isFinite(v)"
        for flag, sample in ((0, reference), (1, current))
    ]
    n1, n2 = ("[" + ", ".join(sql_float(float(sizes[n][side])) for n in names) + "]" for side in (0, 1))
    return f"{sides[0]} UNION ALL {sides[1]}", (n1, n2)


def compare_numeric_exact(
    storage: Storage,
    reference: Sample,
    current: Sample,
    names: Sequence[str],
    sizes: dict[str, tuple[int, int]],
) -> dict[str, NumericComparison]:
    """Exact KS statistics and Wasserstein distances of several columns, in one query.

    Both sides' values of every column are merged (``ARRAY JOIN`` over the columns) and sorted per
    column; one window over them carries, at every value, how many values of each side come before it
    and the previous value. At the first position of each distinct value those counts are both ECDFs at
    the previous distinct value (ties as scipy's ``searchsorted(side='right')``): the largest gap is D,
    and Σ |F_r - F_c| x (value - previous value) is W1. One window over the values themselves rather than
    a ``GROUP BY`` value first: a continuous column has as many distinct values as values, so the
    grouping only added a hash table as large as the data and a second sort (BENCHMARKS.md, "Fleet").
    ``sizes``: non-missing (reference, current) counts.
    """
    if not names:
        return {}
    values, (n1, n2) = merged_values(reference, current, names, sizes)
    # br, bc: values of the reference and of the current side before this row; pv: the previous value
    # (-inf on the first row); a row with v != pv is the first of its distinct value.
    gap = f"abs(br / {n1}[k + 1] - bc / {n2}[k + 1])"
    sql = f"""
SELECT k, maxIf({gap}, v != pv), sumIf({gap} * (v - pv), pv != -inf), countIf(v != pv),
    groupArrayIf({FEW_VALUES_PROBE})((v, br, bc), v != pv), countIf(s = 0), countIf(s = 1)
FROM (
    SELECT k, v, s, sum(s = 0) OVER w - (s = 0) AS br, sum(s = 1) OVER w - (s = 1) AS bc,
        lagInFrame(v, 1, -inf) OVER w AS pv
    FROM ({values})
    WINDOW w AS (PARTITION BY k ORDER BY v ASC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
GROUP BY k"""
    result: dict[str, NumericComparison] = {}
    for k, d, w, distinct, starts, nr, nc in storage.rows(sql, settings=settings_of(reference, current)):
        result[names[int(k)]] = NumericComparison(
            ks_statistic=float(d),
            ks_exact=True,
            wasserstein=float(w),
            value_counts=_counts_by_value(sorted(starts), (int(nr), int(nc))) if int(distinct) <= 5 else None,
        )
    return result


def _counts_by_value(starts: Sequence[tuple[float, int, int]], totals: tuple[int, int]) -> dict[float, tuple[int, int]]:
    """Each distinct value's (reference, current) count, from how many values of each side sort before
    it (``starts``: every distinct value, in order) and each side's total."""
    ends = [(int(r), int(c)) for _, r, c in starts[1:]] + [totals]
    return {float(v): (end[0] - int(r), end[1] - int(c)) for (v, r, c), end in zip(starts, ends, strict=True)}
