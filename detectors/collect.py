"""The SQL that turns a :class:`Sample` into small summaries: every scan of the data happens here.

Two kinds of query, both run inside ClickHouse and return a few numbers per column:

- :func:`profile_side`: one scan of one side for all its columns: rows, missing, min/max/std, the
  distinct values when there are at most 5 of them, the reference's deciles (numpy's linear
  definition = ClickHouse ``quantilesExactInclusive``), and category counts.
- numerical comparison of one column across both sides (:mod:`detectors.ecdf`): the KS statistic, the
  Wasserstein distance and the counts per decile bin.

Values are normalised here once: numerical ``ifNull(toFloat64(expr), nan)`` with every non-finite value
missing; categorical ``toString(expr)`` (booleans become ``'true'``/``'false'``) with NULL missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

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
        parts.append(f"{value} AS c{index}")
    return f"(SELECT {', '.join(parts) or '1 AS c0'} FROM {sample.from_sql} WHERE {sample.where_sql})"


@dataclass(frozen=True)
class SideStats:
    """One column on one side: sizes, and what the methods and the default choice need."""

    kind: Kind
    rows: int
    missing: int
    minimum: float | None = None
    maximum: float | None = None
    std: float | None = None
    deciles: tuple[float, ...] = ()
    few_values: tuple[float, ...] | None = None  # the distinct values when at most FEW_VALUES_PROBE - 1
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


def profile_side(
    storage: Storage, sample: Sample, names: Sequence[str], kinds: dict[str, Kind], deciles: bool
) -> tuple[int, dict[str, SideStats]]:
    """Scan one side once: ``(rows, {column: SideStats})``. ``deciles`` for the reference only."""
    aggregates = ["count()"]
    for index, name in enumerate(names):
        col = f"c{index}"
        if kinds[name] == NUMERICAL:
            ok = f"isFinite({col})"
            aggregates += [
                f"countIf(NOT {ok})",
                f"minIf({col}, {ok})",
                f"maxIf({col}, {ok})",
                f"stddevPopStableIf({col}, {ok})",
                f"groupUniqArrayIf({FEW_VALUES_PROBE})({col}, {ok})",
            ]
            if deciles:
                levels = ", ".join(str(q) for q in DECILES)
                aggregates.append(f"quantilesExactInclusiveIf({levels})({col}, {ok})")
        else:
            aggregates += [
                f"countIf(isNull({col}))",
                f"sumMapIf(([assumeNotNull({col})], [toUInt64(1)]), isNotNull({col}))",
            ]
    row = storage.rows(f"SELECT {', '.join(aggregates)} FROM {side_sql(sample, names, kinds)}")[0]
    rows = int(row[0])
    result: dict[str, SideStats] = {}
    position = 1
    for name in names:
        if kinds[name] == NUMERICAL:
            width = 6 if deciles else 5
            missing, lo, hi, std, values, *quantiles = row[position : position + width]
            position += width
            present = rows - int(missing) > 0
            few = tuple(sorted(float(v) for v in values)) if len(values) < FEW_VALUES_PROBE else None
            if present and lo == hi:
                std = 0.0  # exactly constant, whatever the summation's rounding says
            result[name] = SideStats(
                kind=NUMERICAL,
                rows=rows,
                missing=int(missing),
                minimum=float(lo) if present else None,
                maximum=float(hi) if present else None,
                std=float(std) if present else None,
                deciles=tuple(float(q) for q in quantiles[0]) if (quantiles and present) else (),
                few_values=few,
            )
        else:
            missing, (keys, counts) = row[position : position + 2]
            position += 2
            result[name] = SideStats(
                kind=CATEGORICAL, rows=rows, missing=int(missing), categories=_normalise_booleans(keys, counts)
            )
    return rows, result


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
    """What the numerical methods need from one column compared across both sides."""

    ks_statistic: float
    ks_exact: bool
    wasserstein: float
    reference_bins: tuple[int, ...]  # counts in (-inf, e1), [e1, e2), ..., [ek, +inf)
    current_bins: tuple[int, ...]
    value_counts: dict[float, tuple[int, int]] | None = None  # value -> (reference, current), few values only


def compare_numeric_exact(
    storage: Storage,
    reference: Sample,
    current: Sample,
    name: str,
    n_reference: int,
    n_current: int,
    edges: Sequence[float],
    want_values: bool,
) -> NumericComparison:
    """Exact KS statistic, Wasserstein distance and decile-bin counts of one column, in one query.

    The two sides are merged and grouped by distinct value; running sums over the sorted values give
    both ECDFs at every distinct value (ties handled as scipy's ``searchsorted(side='right')``).
    """
    kinds: dict[str, Kind] = {name: NUMERICAL}
    ref = side_sql(reference, [name], kinds)
    cur = side_sql(current, [name], kinds)
    below = ", ".join(f"sumIf(cr, v < {sql_float(e)}), sumIf(cc, v < {sql_float(e)})" for e in edges)
    n1, n2 = sql_float(float(n_reference)), sql_float(float(n_current))
    sql = f"""
WITH d AS (
    SELECT v, countIf(s = 0) AS cr, countIf(s = 1) AS cc FROM (
        SELECT c0 AS v, 0 AS s FROM {ref} WHERE isFinite(c0)
        UNION ALL
        SELECT c0 AS v, 1 AS s FROM {cur} WHERE isFinite(c0)
    ) GROUP BY v
), e AS (
    SELECT v, cr, cc,
        sum(cr) OVER w / {n1} - sum(cc) OVER w / {n2} AS g,
        leadInFrame(v) OVER (ORDER BY v ASC ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS nv,
        row_number() OVER w AS rn
    FROM d WINDOW w AS (ORDER BY v ASC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT max(abs(g)), sumIf(abs(g) * (nv - v), rn < (SELECT count() FROM d)),
    groupArrayIf({FEW_VALUES_PROBE})((v, cr, cc), {int(want_values)}) {", " + below if below else ""}
FROM e"""
    row = storage.rows(sql)[0]
    d, w, values = float(row[0]), float(row[1]), row[2]
    cumulative = [int(x) for x in row[3:]]
    ref_below = [0, *cumulative[0::2], n_reference]
    cur_below = [0, *cumulative[1::2], n_current]
    return NumericComparison(
        ks_statistic=d,
        ks_exact=True,
        wasserstein=w,
        reference_bins=tuple(b - a for a, b in itertools.pairwise(ref_below)),
        current_bins=tuple(b - a for a, b in itertools.pairwise(cur_below)),
        value_counts={float(v): (int(a), int(b)) for v, a, b in values} if want_values else None,
    )
