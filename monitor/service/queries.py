"""Read queries the API needs that no other package owns: activity per model, event samples,
feature distributions of a window, dead letters. SQL for these lives here and only here.

Every read of ``events`` and ``labels`` uses ``FINAL`` so an event delivered twice counts once.
Time bounds are half-open ``[start, end)`` like every detector window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.storage import Storage, quote_identifier
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureColumns, FeatureKind
from monitor.storage.sqlfmt import datetime_param
from monitor.windows import as_utc

MAX_CATEGORIES = 50


@dataclass(frozen=True)
class ModelActivity:
    model: str
    events: int
    last_event: datetime | None
    versions: tuple[str, ...]


def _window_params(start: datetime, end: datetime) -> dict[str, Any]:
    return {"start": datetime_param(start), "end": datetime_param(end)}


_WINDOW = "ts >= toDateTime64({start:String}, 3, 'UTC') AND ts < toDateTime64({end:String}, 3, 'UTC')"


def model_activity(storage: Storage, since: datetime, until: datetime) -> dict[str, ModelActivity]:
    """Events per model in ``[since, until)`` and each model's latest event time (over all time)."""
    counts = storage.rows(
        f"SELECT model, count(), groupUniqArray(10)(model_version) FROM {storage.table('events')} FINAL "
        f"WHERE {_WINDOW} GROUP BY model",
        parameters=_window_params(since, until),
    )
    # max(ts) is unaffected by duplicates, and the primary key (model, ts) makes it cheap without FINAL.
    latest = storage.rows(f"SELECT model, max(ts) FROM {storage.table('events')} GROUP BY model")
    result = {model: ModelActivity(model, 0, as_utc(ts) if ts else None, ()) for model, ts in latest}
    for model, count, versions in counts:
        prior = result.get(model)
        result[model] = ModelActivity(
            model, int(count), prior.last_event if prior else None, tuple(sorted(v for v in versions if v))
        )
    return result


def known_models(storage: Storage) -> set[str]:
    """Models that have logged at least one feature (cheap: the small ``feature_columns`` table)."""
    rows = storage.rows(f"SELECT DISTINCT model FROM {storage.table('feature_columns')}")
    return {r[0] for r in rows}


def _feature_value(kind: str, value: Any) -> Any:
    if kind == NUMERICAL:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    if value == "true":
        return True
    if value == "false":
        return False
    return value


def event_sample(storage: Storage, model: str, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` events of ``model`` in the window, with features rebuilt from typed columns.

    A key the event did not carry is left out of ``features``; an explicit null is kept as ``None``.
    """
    columns = FeatureColumns(storage).for_model(model)
    selected: list[tuple[str, FeatureKind, str]] = []  # (feature, kind, alias)
    exprs = []
    for i, (feature, kinds) in enumerate(sorted(columns.items())):
        for kind, column in sorted(kinds.items()):
            alias = f"f{i}_{kind[0]}"
            selected.append((feature, kind, alias))
            exprs.append(f"{quote_identifier(column)} AS {alias}")
    feature_sql = (", " + ", ".join(exprs)) if exprs else ""
    rows = storage.dicts(
        "SELECT event_id, ts, model_version, prediction_num, prediction_cat, probabilities, segment, "
        f"feature_keys{feature_sql} FROM {storage.table('events')} FINAL "
        f"WHERE model = {{model:String}} AND {_WINDOW} ORDER BY ts DESC, event_id LIMIT {int(limit)}",
        parameters={"model": model, **_window_params(start, end)},
    )
    sample = []
    for row in rows:
        keys = set(row["feature_keys"])
        features: dict[str, Any] = {}
        for feature, kind, alias in selected:
            if feature not in keys:
                continue
            value = _feature_value(kind, row[alias])
            if value is not None or feature not in features:
                features[feature] = value
        prediction: Any = row["prediction_cat"] if row["prediction_cat"] is not None else row["prediction_num"]
        if isinstance(prediction, float) and math.isnan(prediction):
            prediction = None
        sample.append(
            {
                "event_id": row["event_id"],
                "timestamp": as_utc(row["ts"]),
                "model_version": row["model_version"],
                "prediction": prediction,
                "probabilities": dict(row["probabilities"]) or None,
                "segment": dict(row["segment"]) or None,
                "features": features,
            }
        )
    return sample


def feature_kind(storage: Storage, model: str, feature: str) -> tuple[FeatureKind, str] | None:
    """The kind and column of a model's feature (numerical wins if the feature was logged as both)."""
    kinds = FeatureColumns(storage).for_model(model).get(feature)
    if not kinds:
        return None
    kind: FeatureKind = NUMERICAL if NUMERICAL in kinds else CATEGORICAL
    return kind, kinds[kind]


def numeric_histogram(
    storage: Storage, model: str, column: str, start: datetime, end: datetime, edges: list[float]
) -> tuple[list[int], int, int]:
    """Counts per bin ``(-inf, e1), [e1, e2), ..., [ek, +inf)``, the missing count and the total."""
    col = quote_identifier(column)
    bins = ", ".join(f"countIf(NOT isNaN({col}) AND {col} < {float(e)!r})" for e in edges)
    sql = (
        f"SELECT count(), countIf(isNaN({col})), countIf(NOT isNaN({col}))"
        f"{', ' + bins if bins else ''} FROM {storage.table('events')} FINAL "
        f"WHERE model = {{model:String}} AND {_WINDOW}"
    )
    row = storage.rows(sql, parameters={"model": model, **_window_params(start, end)})[0]
    total, missing, present = int(row[0]), int(row[1]), int(row[2])
    cumulative = [int(v) for v in row[3:]] + [present]
    counts = [cumulative[0]] + [cumulative[i] - cumulative[i - 1] for i in range(1, len(cumulative))]
    return counts, missing, total


def numeric_deciles(storage: Storage, model: str, column: str, start: datetime, end: datetime) -> list[float]:
    """Distinct 10%..90% quantiles of the window (used as bin edges when no reference profile exists)."""
    col = quote_identifier(column)
    row = storage.rows(
        f"SELECT quantilesExactInclusive(0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9)({col}) "
        f"FROM {storage.table('events')} FINAL WHERE model = {{model:String}} AND {_WINDOW} AND NOT isNaN({col})",
        parameters={"model": model, **_window_params(start, end)},
    )[0]
    values = [float(v) for v in (row[0] or []) if v is not None and not math.isnan(float(v))]
    return sorted(set(values))


def category_counts(
    storage: Storage, model: str, column: str, start: datetime, end: datetime
) -> tuple[dict[str, int], int, int]:
    """Counts of the most frequent categories (at most :data:`MAX_CATEGORIES`), missing count, total."""
    col = quote_identifier(column)
    params = {"model": model, **_window_params(start, end)}
    rows = storage.rows(
        f"SELECT toString({col}) AS v, count() AS c FROM {storage.table('events')} FINAL "
        f"WHERE model = {{model:String}} AND {_WINDOW} AND isNotNull({col}) GROUP BY v ORDER BY c DESC, v "
        f"LIMIT {MAX_CATEGORIES}",
        parameters=params,
    )
    total, missing = storage.rows(
        f"SELECT count(), countIf(isNull({col})) FROM {storage.table('events')} FINAL "
        f"WHERE model = {{model:String}} AND {_WINDOW}",
        parameters=params,
    )[0]
    return {str(v): int(c) for v, c in rows}, int(missing), int(total)


def dead_letter_counts(storage: Storage, since: datetime) -> dict[str, dict[str, int]]:
    """Dead letters received since ``since``: ``{model or '': {error_kind: count}}``."""
    rows = storage.rows(
        f"SELECT model, error_kind, count() FROM {storage.table('dead_letters')} FINAL "
        "WHERE received_at >= toDateTime64({since:String}, 3, 'UTC') GROUP BY model, error_kind",
        parameters={"since": datetime_param(since)},
    )
    result: dict[str, dict[str, int]] = {}
    for model, kind, count in rows:
        result.setdefault(model, {})[kind] = int(count)
    return result


def recent_dead_letters(storage: Storage, model: str | None, limit: int) -> list[dict[str, Any]]:
    """The latest dead letters (raw bytes shown as text, cut at 2,000 characters)."""
    where = "WHERE model = {model:String}" if model is not None else ""
    return storage.dicts(
        "SELECT received_at, topic, partition, offset, substring(raw, 1, 2000) AS raw, reason, error_kind, model "
        f"FROM {storage.table('dead_letters')} FINAL {where} ORDER BY received_at DESC LIMIT {int(limit)}",
        parameters={"model": model} if model is not None else None,
    )
