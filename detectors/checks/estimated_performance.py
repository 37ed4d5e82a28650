"""The ``estimated_performance`` detector: a window's performance estimated before its labels arrive.

For a model whose reference carries labels and predictions, the estimator is fitted once on the
reference (calibration of the scores for a binary ``probability`` model or a ``class`` model whose
events carry ``probabilities``, two classes: binary with the positive label, more: multiclass; loss
models for a ``regression`` model; see :mod:`detectors.estimation`) and stored (:mod:`detectors.estimation_state`).
Each window then reads only its scores (and, for regressors, features) and gets one row per metric:
``value`` the estimate, ``drift`` whether it left the reference band, ``threshold`` the band's bad
side (lower for scores, upper for losses) and in ``details`` the confidence band (``lower``,
``upper``), both thresholds and the reference's own value. The realized metrics come from the
``performance`` detector as labels arrive, under the same metric names.

Segments are not estimated; a model without labelled reference rows (or a ``class`` model without
probabilities) gets no rows.

A regressor's inputs name every feature; for a wide model (1000 features with long names) one statement
would pass ClickHouse's ``max_query_size``, so the features are then read in batches of columns, one
statement each, ordered by a unique row key (the reference's ``row_id``, a window's ``(ts, event_id)``)
and checked to return the same rows (:func:`_wide_columns`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from detectors.checks.performance import _text, positive_text, settings_key
from detectors.context import RunContext
from detectors.estimation.estimator import ClassifierInputs, Fitted, Inputs, RegressorInputs, estimate, fit
from detectors.estimation.metrics import METRICS, REGRESSION_METRICS, Task
from detectors.estimation_state import fitted_state
from detectors.references.store import ROWS_TABLE
from detectors.report import DATASET, StatResult
from detectors.segments import Segment
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string
from monitor.storage.statements import batches, read_aligned, sql_bytes

DETECTOR = "estimated_performance"
LOSSES = frozenset(REGRESSION_METRICS)
MIN_REFERENCE_ROWS = 20


class TooFewReferenceRows(Exception):
    """The reference has too few labelled rows with a prediction to fit on: no estimate, not an error."""


def _task(ctx: RunContext) -> Task | None:
    if not (ctx.reference.has_label and ctx.reference.has_prediction):
        return None
    if ctx.prediction.type == "class":
        classes = _classes(ctx)
        return None if len(classes) < 2 else "binary" if len(classes) == 2 else "multiclass"
    return {"probability": "binary", "regression": "regression"}.get(ctx.prediction.type)  # type: ignore[return-value]


def _classes(ctx: RunContext) -> tuple[str, ...]:
    """A ``class`` model's classes: the keys of the probabilities its reference rows carry."""
    rows = ctx.storage.rows(
        f"SELECT DISTINCT arrayJoin(mapKeys(probabilities)) AS k FROM {ctx.storage.table(ROWS_TABLE)} "
        f"WHERE {ctx.reference.where_sql()} ORDER BY k"
    )
    return tuple(str(r[0]) for r in rows)


def _class_scores(ctx: RunContext, classes: tuple[str, ...]) -> list[str]:
    return [
        f"if(mapContains(probabilities, {sql_string(c)}), probabilities[{sql_string(c)}], nan) AS s{i}"
        for i, c in enumerate(classes)
    ]


def _class_inputs(ctx: RunContext, data: dict[str, NDArray[Any]], classes: tuple[str, ...]) -> ClassifierInputs:
    """Scores of every class and predicted codes of a ``class`` model (2 classes: binary, positive last)."""
    scores = np.column_stack([_floats(data[f"s{i}"]) for i in range(len(classes))])
    lookup = {c: i for i, c in enumerate(classes)}
    predicted = np.array([lookup.get(str(v), -1) for v in data["pred"]], dtype=np.int64)
    return ClassifierInputs(scores, predicted)


def _class_order(ctx: RunContext) -> tuple[str, ...]:
    """The classes with, for two classes, the configured positive label last (the binary convention)."""
    classes = _classes(ctx)
    if len(classes) == 2:
        positive = str(ctx.prediction.positive_label)
        positive = {"True": "1", "False": "0"}.get(positive, positive)
        if positive in classes:
            return (classes[0] if classes[1] == positive else classes[1], positive)
    return classes


def _features(ctx: RunContext) -> list[str]:
    """Features the reference and the configuration agree on (same kind): the loss models' inputs."""
    return sorted(f for f, kind in ctx.features.items() if ctx.reference.columns.get(f) == kind)


def _column(storage: Storage, sql: str) -> dict[str, NDArray[Any]]:
    return _arrays(storage.arrow(sql))


def _arrays(table: pa.Table) -> dict[str, NDArray[Any]]:
    return {name: np.asarray(table.column(name).to_numpy(zero_copy_only=False)) for name in table.column_names}


def _wide_columns(
    storage: Storage, parts: list[str], fixed: list[str], source: str, key: str, ordered: bool = True
) -> dict[str, NDArray[Any]]:
    """``SELECT parts + fixed FROM source``: one statement (ordered by ``key`` if ``ordered``), or, when
    ``parts`` are too long for one, one per batch of them (``fixed`` read with the first), each ordered by
    the unique row ``key`` and checked to return the same rows (read again, once, if rows were written in
    between)."""
    groups = batches(parts, lambda part: sql_bytes(part) + 2)
    if len(groups) <= 1:
        order = f" ORDER BY {key}" if ordered else ""
        return _column(storage, f"SELECT {', '.join([*parts, *fixed])} FROM {source}{order}")
    statements = [
        f"SELECT {', '.join([*group, *(fixed if index == 0 else []), f'cityHash64({key}) AS __row_key'])} "
        f"FROM {source} ORDER BY {key}"
        for index, group in enumerate(groups)
    ]
    data: dict[str, NDArray[Any]] = {}
    for table in read_aligned(storage, statements, "__row_key"):
        data.update(_arrays(table))
    return data


def _floats(values: NDArray[Any]) -> NDArray[np.float64]:
    if values.dtype == object:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return values.astype(np.float64)


def _reference_data(ctx: RunContext, task: Task) -> tuple[Inputs, NDArray[Any]]:
    storage, ref = ctx.storage, ctx.reference
    rows = f"{storage.table(ROWS_TABLE)} WHERE {ref.where_sql()}"
    if ctx.prediction.type == "class":
        classes = _class_order(ctx)
        label, pred = _text("label_cat", "label_num"), _text("prediction_cat", "prediction_num")
        data = _column(
            storage,
            f"SELECT {', '.join(_class_scores(ctx, classes))}, {label} AS y, {pred} AS pred FROM {rows} "
            f"AND y IS NOT NULL AND pred IS NOT NULL ORDER BY row_id",
        )
        inputs = _class_inputs(ctx, data, classes)
        lookup = {c: i for i, c in enumerate(classes)}
        labels = np.array([lookup.get(str(v), -1) for v in data["y"]], dtype=np.int64)
        keep = (labels >= 0) & (inputs.predicted >= 0) & np.isfinite(inputs.scores).all(axis=1)
        return inputs.where(keep), labels[keep]
    if task == "binary":
        label = _text("label_cat", "label_num")
        data = _column(
            storage,
            f"SELECT prediction_num AS score, toInt64(({label}) = {positive_text(ctx.prediction)}) AS y FROM {rows} "
            f"AND ({label}) IS NOT NULL AND isFinite(prediction_num) ORDER BY row_id",
        )
        return _classifier(ctx, _floats(data["score"])), data["y"].astype(np.int64)
    names = _features(ctx)
    parts = [f"{ref.column_expr(f)} AS f{i}" for i, f in enumerate(names)]
    data = _wide_columns(
        storage,
        parts,
        ["prediction_num AS p", "label_num AS y"],
        f"{rows} AND isFinite(label_num) AND isFinite(prediction_num)",
        "row_id",
    )
    return _regressor(ctx, names, data), _floats(data["y"])


def _window_data(ctx: RunContext, task: Task) -> Inputs:
    if ctx.prediction.type == "class":
        classes = _class_order(ctx)
        pred = _text("prediction_cat", "prediction_num")
        data = _column(
            ctx.storage,
            f"SELECT {', '.join(_class_scores(ctx, classes))}, {pred} AS pred FROM {ctx.events_from} "
            f"WHERE {ctx.events_where()} AND pred IS NOT NULL",
        )
        inputs = _class_inputs(ctx, data, classes)
        return inputs.where((inputs.predicted >= 0) & np.isfinite(inputs.scores).all(axis=1))
    where = f"{ctx.events_where()} AND isFinite(prediction_num)"
    if task == "binary":
        data = _column(ctx.storage, f"SELECT prediction_num AS score FROM {ctx.events_from} WHERE {where}")
        return _classifier(ctx, _floats(data["score"]))
    names = _features(ctx)
    parts = [f"{ctx.event_expr(f)} AS f{i}" for i, f in enumerate(names)]
    data = _wide_columns(
        ctx.storage, parts, ["prediction_num AS p"], f"{ctx.events_from} WHERE {where}", "ts, event_id", ordered=False
    )
    return _regressor(ctx, names, data)


def _classifier(ctx: RunContext, score: NDArray[np.float64]) -> ClassifierInputs:
    predicted = (score >= float(ctx.prediction.threshold)).astype(np.int64)
    return ClassifierInputs(np.column_stack([1.0 - score, score]), predicted)


def _regressor(ctx: RunContext, names: list[str], data: dict[str, NDArray[Any]]) -> RegressorInputs:
    columns: dict[str, NDArray[Any]] = {}
    for i, name in enumerate(names):
        values = data[f"f{i}"]
        columns[name] = values.astype(object) if ctx.features[name] == "categorical" else _floats(values)
    return RegressorInputs(columns, _floats(data["p"]))


def fitted_for(ctx: RunContext, task: Task) -> Fitted:
    """The estimator fitted on the context's reference (stored after the first fit)."""
    metrics = METRICS[task]
    classes = _class_order(ctx) if ctx.prediction.type == "class" else ("0", "1") if task == "binary" else ()
    key = f"{task}|{settings_key(ctx.prediction)}|{','.join(metrics)}|{','.join(_features(ctx))}|{','.join(classes)}"

    def fit_now() -> Fitted:
        inputs, labels = _reference_data(ctx, task)
        if inputs.rows < MIN_REFERENCE_ROWS:
            raise TooFewReferenceRows(f"{inputs.rows} labelled reference rows with a prediction")
        return fit(task, inputs, labels, classes, metrics, ctx.settings.min_samples)

    return fitted_state(ctx.storage, ctx.model, ctx.reference.load_id, key, fit_now)


def estimated_performance(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    """One row per estimated metric for the whole window (no rows for models it does not apply to)."""
    task = _task(ctx)
    if task is None or segment is not None:
        return []
    try:
        fitted = fitted_for(ctx, task)
    except TooFewReferenceRows as exc:
        return [
            StatResult(DETECTOR, DATASET, name, None, status="insufficient_data", details={"reason": str(exc)})
            for name in METRICS[task]
        ]
    inputs = _window_data(ctx, task)
    n = inputs.rows
    if n < 2:
        return [
            StatResult(DETECTOR, DATASET, name, None, status="insufficient_data", n_reference=fitted.reference_rows)
            for name in fitted.metrics
        ]
    status = ctx.status_for(n)
    out = []
    for name, e in estimate(fitted, inputs, seed=0).items():
        loss = name in LOSSES
        out.append(
            StatResult(
                DETECTOR,
                DATASET,
                name,
                e.value,
                threshold=e.threshold_upper if loss else e.threshold_lower,
                drift=e.alert if e.value is not None else None,
                status=status if e.value is not None else "insufficient_data",
                n_reference=fitted.reference_rows,
                n_current=n,
                details={
                    "lower": e.lower,
                    "upper": e.upper,
                    "threshold_lower": e.threshold_lower,
                    "threshold_upper": e.threshold_upper,
                    "reference": fitted.reference.get(name),
                    "calibrated": bool(fitted.meta.get("calibrated", False)),
                },
            )
        )
    return out
