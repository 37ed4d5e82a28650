"""A reference's profile: the summaries a detector run needs, computed once when the reference is added.

Per numerical column: count, missing, min, max, mean, population std, the 10%..90% quantiles by
numpy's default (linear) definition, computed as numpy computes it (:func:`numpy_quantiles`), the
distinct bin edges derived from them, and the number of distinct values. Per categorical column: the
frequency of every category (up to :data:`MAX_CATEGORIES`, most frequent first) and missing. The
prediction and label columns are profiled the same way. Stored as JSON in ``references.profile``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any, Literal

from monitor.storage import Storage
from monitor.storage.statements import batches, sql_bytes

Kind = Literal["numerical", "categorical"]
DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))
MAX_CATEGORIES = 10_000


@dataclass(frozen=True)
class ColumnSummary:
    """The one summary of one column of one side: a registered reference's profile, and each side of a
    drift comparison (the engine fills what its methods need). Missing values are NaN/NULL (numerical)
    or NULL (categorical).

    ``distinct`` is exact in a reference's profile; on a side of a comparison it is counted only up to
    the few-values limit of the default method choice (or not at all: None). ``below_edges`` holds a
    comparison side's counts below each reference bin edge; ``truncated`` says that ``frequencies`` keeps
    only the most frequent :data:`MAX_CATEGORIES` categories.
    """

    kind: Kind
    count: int  # values present
    missing: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    deciles: tuple[float, ...] = ()
    below_edges: tuple[int, ...] = ()
    distinct: int | None = None
    frequencies: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def n(self) -> int:
        """Values that are not missing (the sample size of a statistic)."""
        return self.count

    @property
    def missing_share(self) -> float | None:
        return self.missing / self.rows if self.rows else None

    @property
    def edges(self) -> tuple[float, ...]:
        """The distinct decile values: the contract's bin edges for PSI, JS and Hellinger."""
        return tuple(sorted(set(self.deciles)))

    def bin_counts(self) -> tuple[int, ...]:
        """Counts in (-inf, e1), [e1, e2), ..., [ek, +inf) from the counts below each edge."""
        below = [0, *self.below_edges, self.n]
        return tuple(b - a for a, b in pairwise(below))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["deciles"] = list(self.deciles)
        data["below_edges"] = list(self.below_edges)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnSummary:
        values = dict(data)
        values["deciles"] = tuple(values.get("deciles") or ())
        values["below_edges"] = tuple(values.get("below_edges") or ())
        values["frequencies"] = dict(values.get("frequencies") or {})
        return cls(**values)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def numpy_quantiles(sorted_values: str, levels: tuple[float, ...]) -> str:
    """``numpy.quantile(x, levels)`` (method "linear") of an ascending array, operation for operation.

    ClickHouse's ``quantilesExactInclusive`` is the same definition but not the same arithmetic: its
    interpolated edges can differ from numpy's in the last bit (0.10000000000000009 for 0.1), and a value
    sitting exactly on an edge then lands in the other bin. numpy computes the virtual index
    ``(n - 1)*q``, takes its floor and fraction ``g`` (the last value from index ``n - 1`` on), and
    interpolates with ``a + (b - a)*g``, or ``b - (b - a)*(1 - g)`` from ``g >= 0.5`` on. Same IEEE
    operations, same edges.
    """
    listed = ", ".join(repr(float(q)) for q in levels)
    n = "length(s)"
    virtual = f"({n} - 1) * q"
    return (
        f"arrayMap(s -> arrayMap(q -> if({n} = 0, nan, "
        f"if(({virtual}) >= {n} - 1, s[{n}], if(({virtual}) < 0, s[1], "
        f"arrayMap((a, b, g) -> if(g >= 0.5, b - (b - a) * (1 - g), a + (b - a) * g), "
        f"[s[toUInt64(floor({virtual})) + 1]], [s[toUInt64(floor({virtual})) + 2]], "
        f"[({virtual}) - floor({virtual})])[1]))), [{listed}]), [{sorted_values}])[1]"
    )


def spread_aggregates(value: str, present: str) -> list[str]:
    """The population std and the 10%..90% quantiles (numpy's linear definition, to the bit) of
    ``value`` where ``present``: the one definition of a reference's spread and decile bin edges, used by
    profiles and by the drift engine's reference side alike."""
    values = f"arraySort(groupArrayIf(toFloat64({value}), {present}))"
    # Squares overflow past 1e154: such values get the std of the values scaled by 2^-520, scaled back
    # (exact powers of two: no rounding); smaller ones keep the plain std, scaling would underflow theirs.
    std = (
        f"ifNotFinite(stddevPopStableIf({value}, {present}), "
        f"stddevPopStableIf(toFloat64({value}) * exp2(-520), {present}) * exp2(520))"
    )
    return [std, numpy_quantiles(values, DECILES)]


def profile_numerical(
    storage: Storage, from_sql: str, where_sql: str, exprs: dict[str, str]
) -> dict[str, ColumnSummary]:
    """Profile numerical expressions in one scan (NULL, NaN and ±inf are missing, as in the drift engine).

    One scan per batch of expressions, in fact: every expression is named a dozen times, so a wide
    reference (1000 features, long names) would make one statement larger than ClickHouse's
    ``max_query_size``.
    """
    if not exprs:
        return {}
    parts = []
    for expr in exprs.values():
        value = f"toFloat64({expr})"
        present = f"isFinite(ifNull({value}, nan))"
        std, deciles = spread_aggregates(value, present)
        parts.append(
            f"countIf({present}), countIf(NOT ({present})), minIf({value}, {present}), maxIf({value}, {present}), "
            f"avgIf({value}, {present}), {std}, {deciles}, uniqExactIf({value} + 0.0, {present})"
        )
    row: list[Any] = []
    for group in batches(parts, sql_bytes):
        row += storage.rows(f"SELECT {', '.join(group)} FROM {from_sql} WHERE {where_sql}")[0]
    result: dict[str, ColumnSummary] = {}
    for index, name in enumerate(exprs):
        count, missing, lo, hi, mean, std, quantiles, distinct = row[index * 8 : index * 8 + 8]
        has_values = int(count) > 0
        result[name] = ColumnSummary(
            kind="numerical",
            count=int(count),
            missing=int(missing),
            min=_number(lo) if has_values else None,
            max=_number(hi) if has_values else None,
            mean=_number(mean) if has_values else None,
            std=_number(std) if has_values else None,
            deciles=tuple(float(q) for q in quantiles) if has_values else (),
            distinct=int(distinct),
        )
    return result


def profile_categorical(storage: Storage, from_sql: str, where_sql: str, expr: str) -> ColumnSummary:
    """Category frequencies of one text expression (NULL is missing), most frequent first."""
    rows = storage.rows(
        f"SELECT v, count() AS n FROM (SELECT {expr} AS v FROM {from_sql} WHERE {where_sql}) "
        f"GROUP BY v ORDER BY isNull(v) DESC, n DESC, v LIMIT {MAX_CATEGORIES + 2}"
    )
    missing = 0
    frequencies: dict[str, int] = {}
    for value, count in rows:
        if value is None:
            missing = int(count)
        elif len(frequencies) < MAX_CATEGORIES:
            frequencies[str(value)] = int(count)
    truncated = len(rows) - (1 if missing else 0) > MAX_CATEGORIES
    if truncated:
        total, distinct = storage.rows(
            f"SELECT count(v), uniqExact(v) FROM (SELECT {expr} AS v FROM {from_sql} WHERE {where_sql})"
        )[0]
    else:
        total, distinct = sum(frequencies.values()), len(frequencies)
    return ColumnSummary(
        kind="categorical",
        count=int(total),
        missing=missing,
        distinct=int(distinct),
        frequencies=frequencies,
        truncated=truncated,
    )


@dataclass(frozen=True)
class ReferenceProfile:
    """Profiles of every feature, the prediction and the label, plus the reference's own performance."""

    rows: int
    columns: dict[str, ColumnSummary]
    prediction: ColumnSummary | None = None
    label: ColumnSummary | None = None
    performance: dict[str, Any] = field(default_factory=dict)  # {"settings": key, "metrics": {...}}

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": {name: p.to_json() for name, p in self.columns.items()},
            "prediction": self.prediction.to_json() if self.prediction else None,
            "label": self.label.to_json() if self.label else None,
            "performance": self.performance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceProfile:
        return cls(
            rows=int(data.get("rows", 0)),
            columns={name: ColumnSummary.from_json(p) for name, p in (data.get("columns") or {}).items()},
            prediction=ColumnSummary.from_json(data["prediction"]) if data.get("prediction") else None,
            label=ColumnSummary.from_json(data["label"]) if data.get("label") else None,
            performance=dict(data.get("performance") or {}),
        )


def profile_rows(
    storage: Storage,
    from_sql: str,
    where_sql: str,
    columns: dict[str, tuple[Kind, str]],
    prediction: tuple[Kind, str] | None,
    label: tuple[Kind, str] | None,
    rows: int,
) -> ReferenceProfile:
    """Profile feature columns ``{name: (kind, expr)}`` and the optional prediction and label expressions."""
    numerical = {name: expr for name, (kind, expr) in columns.items() if kind == "numerical"}
    extra: dict[str, str] = {}
    if prediction and prediction[0] == "numerical":
        extra["\0prediction"] = prediction[1]
    if label and label[0] == "numerical":
        extra["\0label"] = label[1]
    numeric_profiles = profile_numerical(storage, from_sql, where_sql, {**numerical, **extra})
    profiles: dict[str, ColumnSummary] = {}
    for name, (kind, expr) in columns.items():
        profiles[name] = (
            numeric_profiles[name] if kind == "numerical" else profile_categorical(storage, from_sql, where_sql, expr)
        )

    def special(key: str, spec: tuple[Kind, str] | None) -> ColumnSummary | None:
        if spec is None:
            return None
        if spec[0] == "numerical":
            return numeric_profiles[key]
        return profile_categorical(storage, from_sql, where_sql, spec[1])

    return ReferenceProfile(
        rows=rows,
        columns=profiles,
        prediction=special("\0prediction", prediction),
        label=special("\0label", label),
    )
