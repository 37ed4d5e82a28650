"""Data quality of a window, measured against the reference's profile.

Per feature (one scan of the window for all features): ``missing_share`` (NaN/NULL, with the
reference's share in ``details``), ``out_of_range_share`` (share of present numerical values outside
the reference's [min, max]), ``new_categories`` (how many categories the reference never had; the
first few and their share of rows in ``details``) and ``absent_key_share`` (events whose
``feature_keys`` lacks the key: the producer stopped sending it, as opposed to sending null).
Dataset level: ``unexpected_features`` and ``absent_features`` from the keys the window's events
carried. If the one-scan query fails, each feature is retried alone so a single broken column
becomes one error row instead of hiding the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.context import RunContext, error_result
from detectors.references.profile import ColumnSummary
from detectors.references.store import ROWS_TABLE
from detectors.report import DATASET, StatResult
from detectors.segments import Segment, segment_label
from monitor.errors import StorageError
from monitor.logs import get_logger
from monitor.storage import quote_identifier
from monitor.storage.events import feature_column
from monitor.storage.sqlfmt import sql_float, sql_string_array
from monitor.storage.statements import batches, sql_bytes

log = get_logger(__name__)
DETECTOR = "data_quality"
MAX_LISTED = 20
# Bytes of a reference's category list written into the statement; a longer list (many or long category
# names: 10,000 UUIDs are 400 kB, past ClickHouse's max_query_size) is read from the reference rows instead.
INLINE_CATEGORIES_BYTES = 32_000


def _feature_parts(ctx: RunContext, feature: str, where: str) -> list[str]:
    """Aggregates for one feature over the window's rows (``where``): missing, out of range, new-category
    rows/distinct/examples."""
    expr = ctx.event_expr(feature)
    kind = ctx.features[feature]
    profile = ctx.reference_profile(feature)
    if kind == "numerical":
        missing = f"countIf(NOT isFinite({expr}))"
        if profile is not None and profile.min is not None and profile.max is not None:
            outside = f"{expr} < {sql_float(profile.min)} OR {expr} > {sql_float(profile.max)}"
            oor = f"countIf(isFinite({expr}) AND ({outside}))"
        else:
            oor = "toUInt64(0)"
        return [missing, oor, "toUInt64(0)", "toUInt64(0)", "CAST([], 'Array(String)')"]
    missing = f"countIf(isNull({expr}))"
    if profile is None:
        return [missing, "toUInt64(0)", "toUInt64(0)", "toUInt64(0)", "CAST([], 'Array(String)')"]
    listed = None if profile.truncated else sql_string_array(sorted(profile.frequencies))
    if listed is None or sql_bytes(listed) > INLINE_CATEGORIES_BYTES:  # too long to inline: ask the reference rows
        # Only the reference's categories the window holds: the set ClickHouse builds for IN is then as
        # large as the window's categories, not the reference's (an ID column: 1,000,000 of them).
        column = quote_identifier(feature_column(feature, "categorical"))
        known = (
            f"{expr} IN (SELECT DISTINCT {column} FROM {ctx.storage.table(ROWS_TABLE)} "
            f"WHERE {ctx.reference.where_sql()} AND {column} IS NOT NULL "
            f"AND {column} IN (SELECT {expr} FROM {ctx.events_from} WHERE {where}))"
        )
    else:
        known = f"has({listed}, assumeNotNull({expr}))"
    new = f"{expr} IS NOT NULL AND NOT ({known})"
    return [
        missing,
        "toUInt64(0)",
        f"countIf({new})",
        f"uniqExactIf({expr}, {new})",
        f"arraySort(groupUniqArrayIf({MAX_LISTED})(assumeNotNull({expr}), {new}))",
    ]


def _rows_for(
    ctx: RunContext, feature: str, values: tuple[Any, ...], n: int, key_present: int, segment: Segment
) -> list[StatResult]:
    missing, oor, new_rows, new_distinct = (int(v) for v in values[:4])
    examples = values[4]
    label = segment_label(segment)
    status = ctx.status_for(n)
    profile: ColumnSummary | None = ctx.reference_profile(feature)
    present = n - missing
    common: dict[str, Any] = {
        "segment": label,
        "status": status,
        "n_current": n,
        "n_reference": profile.rows if profile else 0,
    }
    results = [
        StatResult(
            DETECTOR,
            feature,
            "missing_share",
            missing / n if n else None,
            details={"reference": profile.missing_share if profile else None, "missing": missing},
            **common,
        ),
        StatResult(
            DETECTOR,
            feature,
            "absent_key_share",
            (n - key_present) / n if n else None,
            details={"absent": n - key_present},
            **common,
        ),
    ]
    if ctx.features[feature] == "numerical":
        has_range = profile is not None and profile.min is not None
        results.append(
            StatResult(
                DETECTOR,
                feature,
                "out_of_range_share",
                oor / present if present and has_range else None,
                details={"min": profile.min if profile else None, "max": profile.max if profile else None, "rows": oor},
                **common,
            )
        )
    else:
        results.append(
            StatResult(
                DETECTOR,
                feature,
                "new_categories",
                float(new_distinct) if profile is not None and n else None,
                details={
                    "categories": list(examples),
                    "share": new_rows / present if present else None,
                    "rows": new_rows,
                    **({} if profile is not None else {"reason": "feature not in the reference"}),
                },
                **common,
            )
        )
    return results


def _isolated(features: list[str], run: Callable[[list[str]], list[StatResult]], segment: Segment) -> list[StatResult]:
    """Run all features at once; if that fails, one by one, turning each failure into an error row."""
    try:
        return run(features)
    except StorageError:
        if len(features) == 1:
            raise
    results: list[StatResult] = []
    for feature in features:
        try:
            results.extend(run([feature]))
        except StorageError as exc:
            log.error("data quality failed for a column", feature=feature, error=str(exc))
            results.append(error_result(DETECTOR, feature, segment, exc))
    return results


def data_quality(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    n = ctx.count(segment)
    where = ctx.events_where(segment=segment)
    # How many events carried each key: one pass over feature_keys for every feature at once.
    seen = {
        str(key): int(count)
        for key, count in ctx.storage.rows(
            f"SELECT key, count() FROM (SELECT arrayJoin(feature_keys) AS key FROM {ctx.events_from} "
            f"WHERE {where}) GROUP BY key ORDER BY key"
        )
    }

    def run(features: list[str]) -> list[StatResult]:
        # One scan, or one per batch of features where naming them all would take the statement past
        # ClickHouse's max_query_size (wide models: features read from the maps by their names).
        parts = {feature: ", ".join(_feature_parts(ctx, feature, where)) for feature in features}
        row: list[Any] = []
        for group in batches(features, lambda feature: sql_bytes(parts[feature])):
            query = f"SELECT {', '.join(parts[f] for f in group)} FROM {ctx.events_from} WHERE {where}"
            row += ctx.storage.rows(query)[0]
        out: list[StatResult] = []
        for index, feature in enumerate(features):
            values = tuple(row[index * 5 : index * 5 + 5])
            out.extend(_rows_for(ctx, feature, values, n, seen.get(feature, 0), segment))
        return out

    results = _isolated(sorted(ctx.features), run, segment) if ctx.features else []
    results.extend(_feature_keys(ctx, segment, n, seen))
    return results


def _feature_keys(ctx: RunContext, segment: Segment, n: int, seen: dict[str, int]) -> list[StatResult]:
    expected = set(ctx.features)
    unexpected = sorted(set(seen) - expected)
    absent = sorted(expected - set(seen))
    label = segment_label(segment)
    status = ctx.status_for(n)
    return [
        StatResult(
            DETECTOR,
            DATASET,
            "unexpected_features",
            float(len(unexpected)) if n else None,
            segment=label,
            status=status,
            n_current=n,
            details={"features": unexpected[:100], "events": {k: seen[k] for k in unexpected[:100]}},
        ),
        StatResult(
            DETECTOR,
            DATASET,
            "absent_features",
            float(len(absent)) if n else None,
            segment=label,
            status=status,
            n_current=n,
            details={"features": absent[:100]},
        ),
    ]
