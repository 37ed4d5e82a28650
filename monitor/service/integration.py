"""The API's view of the other packages (detector results, references, alerts).

Each function here calls the owning package's query function and shapes the answer for the API, so a
change in another package's interface is absorbed in one place. Where a package is not part of this
installation the function says so with ``None`` instead of failing the whole request.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from monitor.service import queries
from monitor.storage import Storage
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureColumns, FeatureKind


def model_features(storage: Storage, model: str) -> dict[str, dict[FeatureKind, str]]:
    return FeatureColumns(storage).for_model(model)


def last_run_started(storage: Storage, model: str) -> datetime | None:
    from detectors import results as stored_results

    return stored_results.last_run_started(storage, model)


def latest_drift(storage: Storage, model: str) -> dict[str, Any] | None:
    """The newest feature-drift verdict of a model: ``{"dataset_drift", "drift_share", "window_end", ...}``."""
    from detectors import results as stored_results

    return stored_results.latest_drift(storage, model)


def open_alert_count(storage: Storage, model: str) -> int | None:
    from alerts.store import open_alert_count as count

    return count(storage, model)


def reference_profile(storage: Storage, model: str, feature: str) -> dict[str, Any] | None:
    """The newest reference's view of one feature: ``{"edges": [...], "proportions": [...]}`` (numbers,
    proportions per bin counted in ClickHouse over the reference rows) or ``{"categories": {value:
    proportion}}``, with ``missing_share``, ``version`` and ``count``."""
    from detectors.references.store import get_reference

    reference = get_reference(storage, model)
    if reference is None or feature not in reference.profile.columns or feature not in reference.columns:
        return None
    column = reference.profile.columns[feature]
    base = {"version": reference.version, "count": column.count, "missing_share": column.missing_share}
    if column.kind == NUMERICAL:
        edges = list(column.edges)
        expr = f"toFloat64({reference.column_expr(feature)})"
        present = f"NOT isNaN(ifNull({expr}, nan))"
        cumulative = ", ".join(f"countIf({present} AND {expr} < {float(e)!r})" for e in edges)
        row = storage.rows(
            f"SELECT countIf({present}){', ' + cumulative if cumulative else ''} "
            f"FROM {reference.from_sql(storage)} WHERE {reference.where_sql()}"
        )[0]
        total = int(row[0])
        cum = [int(v) for v in row[1:]] + [total]
        counts = [cum[0]] + [cum[i] - cum[i - 1] for i in range(1, len(cum))]
        return {**base, "edges": edges, "proportions": _proportions(counts)}
    # Shares of every value present: a profile keeps only the most frequent categories of a column
    # that holds very many, and their sum would inflate each share.
    total = column.count
    return {**base, "categories": {k: v / total for k, v in column.frequencies.items()} if total else {}}


def _proportions(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def distribution(
    storage: Storage, model: str, feature: str, kind: FeatureKind, column: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """Reference vs current for one feature: the reference's bins (its deciles) when a profile exists,
    otherwise the window's own deciles, so the two sides are always compared on the same bins."""
    profile = reference_profile(storage, model, feature)
    body: dict[str, Any] = {"model": model, "feature": feature, "kind": kind, "start": start, "end": end}
    if kind == NUMERICAL:
        edges = list(profile["edges"]) if profile and "edges" in profile else None
        if edges is None:
            edges = queries.numeric_deciles(storage, model, column, start, end)
        counts, missing, total = queries.numeric_histogram(storage, model, column, start, end, edges)
        labels = _bin_labels(edges)
        body.update(
            bins=labels,
            edges=edges,
            current={"counts": counts, "proportions": _proportions(counts), "missing": missing, "total": total},
            reference=(
                {
                    "proportions": list(profile["proportions"]),
                    "missing_share": profile.get("missing_share"),
                    "version": profile["version"],
                }
                if profile and "proportions" in profile
                else None
            ),
        )
        return body
    counts_by_cat, missing, total = queries.category_counts(storage, model, column, start, end)
    ref_cats: dict[str, float] = dict(profile["categories"]) if profile and "categories" in profile else {}
    # Show the categories that matter on either side (a reference may hold thousands); shares are of
    # every value present in the window, listed or not.
    cur_total = (total - missing) or 1
    categories = sorted(
        set(counts_by_cat) | set(ref_cats),
        key=lambda c: (-max(counts_by_cat.get(c, 0) / cur_total, ref_cats.get(c, 0.0)), c),
    )[: queries.MAX_CATEGORIES]
    cur_counts = [counts_by_cat.get(c, 0) for c in categories]
    body.update(
        bins=categories,
        current={
            "counts": cur_counts,
            "proportions": [c / cur_total for c in cur_counts],
            "missing": missing,
            "total": total,
        },
        reference=(
            {
                "proportions": [ref_cats.get(c, 0.0) for c in categories],
                "missing_share": profile.get("missing_share"),
                "version": profile["version"],
            }
            if profile and "categories" in profile
            else None
        ),
    )
    assert kind == CATEGORICAL
    return body


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _bin_labels(edges: list[float]) -> list[str]:
    bounds = [-math.inf, *edges, math.inf]
    return [f"[{_fmt(bounds[i])}, {_fmt(bounds[i + 1])})" for i in range(len(bounds) - 1)]
