"""Registering a reference: load its rows into ``reference_rows``, profile them once, record it.

Files (Parquet or CSV) are read by ClickHouse itself where it can see them: on embedded chDB an
``INSERT ... SELECT ... FROM file()`` moves the rows without Python touching a value. A server cannot
read the client's files, so there the file is streamed in Arrow record batches (``insert_arrow``)
with the same conversions. A time range of logged events is copied with ``INSERT ... SELECT`` from
``events FINAL`` joined with ``labels FINAL``.

Conversions follow ``events``: numbers (not booleans) go to ``n__<feature>`` (Float64, NaN for
missing), strings and booleans to ``c__<feature>`` (booleans as 'true'/'false'; a CSV column holding
only True/False text counts as boolean). Columns ``prediction`` and ``label`` carry the reference's
own predictions and ground truth; ``event_id``, ``timestamp``, ``model`` and ``model_version`` are
never features.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from detectors.checks.performance import compute_metrics, infer_prediction, reference_rows_sql, settings_key
from detectors.drift.reference_side import forget, precompute
from detectors.references import sources
from detectors.references.profile import Kind, profile_rows
from detectors.references.sources import LoadPlan
from detectors.references.store import (
    REFERENCE_KINDS,
    REFERENCES_TABLE,
    ROWS_TABLE,
    Reference,
    get_reference,
    next_version,
)
from monitor.errors import InputError, MonitorError
from monitor.settings import IngestSettings, PredictionSettings, reference_version_problem
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import events_columns, feature_column, logged_features
from monitor.storage.sqlfmt import sql_string, window_condition
from monitor.storage.statements import batches, sql_bytes
from monitor.windows import Window, to_utc
from monitor_sdk.validation import model_name_problem

Progress = Callable[[str], None]
_COLUMN_TYPE = {"numerical": "Float64 DEFAULT nan", "categorical": "LowCardinality(Nullable(String))"}
_MAPPED = {"numerical": "e.__map_num", "categorical": "e.__map_cat"}  # add_events: values of map-only features


def _quiet(_: str) -> None:
    return None


def check_names(model: str, version: str | None) -> None:
    """The model and version rules of events and the API, before anything is read or written.

    A model name events cannot carry (blank, with '/', too long) would register a reference that no
    window ever matches; a version that is no URL path segment could not be read back through the API.
    """
    problem = model_name_problem(model)
    if problem is not None:
        raise InputError(f"model name {model[:40]!r} {problem}")
    problem = None if version is None else reference_version_problem(version)
    if problem is not None:
        raise InputError(f"version {problem}")


def ensure_row_columns(storage: Storage, features: dict[str, Kind]) -> None:
    """Add the typed feature columns reference_rows needs (same names and types as in events)."""
    existing = {
        r[0]
        for r in storage.rows(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            parameters={"db": storage.database, "t": ROWS_TABLE},
        )
    }
    missing = [
        f"ADD COLUMN IF NOT EXISTS {quote_identifier(column)} {_COLUMN_TYPE[kind]}"
        for column, kind in ((feature_column(f, k), k) for f, k in features.items())
        if column not in existing
    ]
    # One ALTER per batch of columns: each ALTER costs more the wider the table already is, so adding
    # 1000 columns one statement at a time took minutes where a few statements take a second.
    for group in batches(missing, sql_bytes, max_items=500):
        storage.command(f"ALTER TABLE {storage.table(ROWS_TABLE)} {', '.join(group)}")


def _register(
    storage: Storage,
    model: str,
    version: str | None,
    kind: str,
    source: str,
    plan: LoadPlan,
    insert: Callable[[str], int],
    progress: Progress,
    prediction: PredictionSettings | None = None,
) -> Reference:
    """Shared tail of every registration: insert rows, profile, write the registry row, drop the old load."""
    if kind not in REFERENCE_KINDS:
        raise InputError(f"unknown reference kind {kind!r}; expected one of {', '.join(REFERENCE_KINDS)}")
    version = version or next_version(storage, model)
    previous = get_reference(storage, model, version)
    load_id = uuid.uuid4().hex
    ensure_row_columns(storage, plan.features)
    started = time.monotonic()
    try:
        rows = insert(load_id)
        if rows == 0:
            raise InputError(f"{source}: the reference holds no rows")
        progress(f"loaded {rows:,} rows in {time.monotonic() - started:.1f}s; profiling")
        where = f"load_id = {sql_string(load_id)}"
        profile = profile_rows(
            storage,
            storage.table(ROWS_TABLE),
            where,
            {f: (k, quote_identifier(feature_column(f, k))) for f, k in plan.features.items()},
            _special("prediction", plan.prediction_kind),
            _special("label", plan.label_kind),
            rows,
        )
        if plan.prediction_kind is not None and plan.label_kind is not None:
            if prediction is None:  # not configured: what a run will infer from the same profile
                shape = profile.prediction
                assert shape is not None
                prediction = infer_prediction(shape.kind == "categorical", shape.min, shape.max)
            metrics = compute_metrics(storage, reference_rows_sql(storage, where), prediction)["metrics"]
            profile = replace(profile, performance={"settings": settings_key(prediction), "metrics": metrics})
        storage.insert_rows(
            REFERENCES_TABLE,
            [
                (
                    model,
                    version,
                    kind,
                    source,
                    rows,
                    load_id,
                    json.dumps(plan.features),
                    list(plan.segment_keys),
                    int(plan.prediction_kind is not None),
                    int(plan.label_kind is not None),
                    json.dumps(profile.to_json(), allow_nan=False),
                )
            ],
            [
                "model",
                "version",
                "kind",
                "source",
                "rows",
                "load_id",
                "columns",
                "segment_keys",
                "has_prediction",
                "has_label",
                "profile",
            ],
        )
    except (MonitorError, OSError, ValueError):
        _drop_load(storage, load_id)
        raise
    if previous is not None:
        _drop_load(storage, previous.load_id)
        progress(f"replaced version {version} (previous rows dropped)")
    reference = get_reference(storage, model, version)
    assert reference is not None
    progress("summarising it for drift comparisons (stored with it: runs then read only the window)")
    precompute(storage, reference)
    progress(f"registered {reference.describe()} in {time.monotonic() - started:.1f}s")
    return reference


def _special(name: str, kind: Kind | None) -> tuple[Kind, str] | None:
    """The profile spec of the prediction or label column: (kind, column) or None if absent."""
    if kind is None:
        return None
    return kind, f"{name}_num" if kind == "numerical" else f"{name}_cat"


def _drop_load(storage: Storage, load_id: str) -> None:
    storage.command(f"ALTER TABLE {storage.table(ROWS_TABLE)} DROP PARTITION {sql_string(load_id)}")
    forget(storage, load_id)


def add_file(
    storage: Storage,
    model: str,
    path: Path,
    *,
    version: str | None = None,
    kind: str = "training",
    features: dict[str, Kind] | None = None,
    segment_keys: tuple[str, ...] = (),
    mode: str = "auto",
    prediction: PredictionSettings | None = None,
    progress: Progress = _quiet,
    source_name: str | None = None,
    limits: IngestSettings | None = None,
) -> Reference:
    """Register a Parquet or CSV file as a reference of ``model`` (re-adding a version replaces it).

    ``features`` (from the configuration) selects the feature columns and their kinds; without it
    every usable column except the reserved ones is a feature with the kind its data has. ``mode``:
    ``file`` (ClickHouse reads the file; embedded only), ``stream`` (Arrow batches from Python) or
    ``auto`` (``file`` on chDB, ``stream`` on a server). ``source_name`` is what the registry stores
    as the source (default the absolute path); the API passes a name that says nothing about the host.
    ``limits`` are ingestion's (``ingest.*``): a feature column events could never carry is refused.
    """
    check_names(model, version)
    limits = limits or IngestSettings()
    path = Path(path).expanduser().resolve()
    fmt = sources.file_format(path)
    if mode == "auto":
        mode = "file" if storage.embedded else "stream"
    if not features:
        sources.check_width(path, fmt, segment_keys, limits)
    columns = (
        sources.describe_with_clickhouse(storage, path, fmt)
        if mode == "file"
        else sources.describe_with_arrow(path, fmt)
    )
    plan = sources.plan_load(path, columns, features, segment_keys, progress, limits)
    if mode == "file" and not sources.fits_one_statement(storage, path, fmt, plan, columns):
        progress(f"{path.name} has too many or too long column names for one statement: streaming it")
        mode = "stream"
        columns = sources.describe_with_arrow(path, fmt)
        plan = sources.plan_load(path, columns, features, segment_keys, _quiet, limits)
    progress(f"loading {path.name} into ClickHouse ({len(plan.features)} features, {mode} mode)")
    if mode == "file":
        insert = sources.insert_from_file(storage, path, fmt, columns, plan)
    else:
        insert = sources.insert_streamed(storage, path, fmt, columns, plan, progress)
    return _register(storage, model, version, kind, source_name or str(path), plan, insert, progress, prediction)


def add_events(
    storage: Storage,
    model: str,
    start: datetime,
    end: datetime,
    *,
    version: str | None = None,
    kind: str = "window",
    features: dict[str, Kind] | None = None,
    prediction_kind: Kind | None = None,
    prediction: PredictionSettings | None = None,
    progress: Progress = _quiet,
) -> Reference:
    """Register the model's logged events in ``[start, end)`` (with their labels) as a reference."""
    check_names(model, version)
    window = Window(to_utc(start), to_utc(end))
    logged = logged_features(storage, model)
    chosen: dict[str, Kind] = {}
    for feature, kinds in logged.items():
        if features and feature not in features:
            continue
        chosen[feature] = features[feature] if features else ("numerical" if "numerical" in kinds else "categorical")
    for feature, feature_kind in (features or {}).items():
        chosen.setdefault(feature, feature_kind)
    typed = events_columns(storage)
    base = f"model = {sql_string(model)} AND {window_condition(window)}"
    labelled = f"SELECT event_id FROM {storage.table('labels')} FINAL WHERE model = {sql_string(model)}"
    counts = storage.rows(
        f"SELECT count(), countIf(prediction_cat IS NOT NULL), countIf(event_id IN ({labelled})) "
        f"FROM {storage.table('events')} FINAL WHERE {base}"
    )[0]
    if int(counts[0]) == 0:
        raise InputError(f"model {model!r} logged no events in {window}: nothing to use as a reference")
    if prediction_kind is None and prediction is not None:
        prediction_kind = "categorical" if prediction.type == "class" else "numerical"
    if prediction_kind is None:
        prediction_kind = "categorical" if int(counts[1]) > 0 else "numerical"
    has_label = int(counts[2]) > 0
    exprs: dict[str, str] = {}
    # Features without a typed column in events are read from the maps. Their keys go in as two array
    # parameters, looked up once per row, so the statement names each feature by its (bounded) column
    # name only, whatever the length of the feature names (ClickHouse's max_query_size).
    map_keys: dict[str, list[str]] = {"numerical": [], "categorical": []}
    for feature, feature_kind in chosen.items():
        column = feature_column(feature, feature_kind)
        if feature_kind not in logged.get(feature, set()):
            exprs[column] = "nan" if feature_kind == "numerical" else "CAST(NULL, 'Nullable(String)')"
        elif column in typed:
            exprs[column] = f"e.{quote_identifier(column)}"
        else:
            keys = map_keys[feature_kind]
            keys.append(feature)
            exprs[column] = f"{_MAPPED[feature_kind]}[{len(keys)}]"
    plan = LoadPlan(
        features=chosen,
        exprs=exprs,
        prediction_kind=prediction_kind,
        label_kind=("numerical" if prediction_kind == "numerical" else "categorical") if has_label else None,
        segment_keys=(),
    )
    label_table = storage.table("labels")

    def insert(load_id: str) -> int:
        targets = ["load_id", "row_id", *exprs, "prediction_num", "prediction_cat", "probabilities", "segment"]
        values = [sql_string(load_id), "rowNumberInAllBlocks()", *exprs.values()]
        values += ["e.prediction_num", "e.prediction_cat", "e.probabilities", "e.segment"]
        mapped = (
            "arrayMap(k -> ifNull(arrayElementOrNull(fnum, k), nan), {numerical_keys:Array(String)}) AS __map_num, "
            "arrayMap(k -> arrayElementOrNull(fcat, k), {categorical_keys:Array(String)}) AS __map_cat"
        )
        if has_label:
            targets += ["label_num", "label_cat"]
            values += ["if(l.has_label = 1, l.label_num, nan)", "l.label_cat"]
        storage.command(
            f"INSERT INTO {storage.table(ROWS_TABLE)} ({', '.join(quote_identifier(t) for t in targets)}) "
            f"SELECT {', '.join(values)} "
            f"FROM (SELECT *, {mapped} FROM {storage.table('events')} FINAL WHERE {base}) AS e "
            f"LEFT ANY JOIN (SELECT event_id, label_num, label_cat, toUInt8(1) AS has_label FROM {label_table} FINAL "
            f"WHERE model = {sql_string(model)}) AS l ON e.event_id = l.event_id",
            parameters={"numerical_keys": map_keys["numerical"], "categorical_keys": map_keys["categorical"]},
        )
        return int(
            storage.rows(f"SELECT count() FROM {storage.table(ROWS_TABLE)} WHERE load_id = {sql_string(load_id)}")[0][0]
        )

    progress(f"copying {int(counts[0]):,} logged events of {model} in {window}")
    source = f"events:{window.start.isoformat()}/{window.end.isoformat()}"
    return _register(storage, model, version, kind, source, plan, insert, progress, prediction)
