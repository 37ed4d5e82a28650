"""Turn ``monitor estimate``'s files and flags into the estimator's arrays, or one clear error.

Files are read through embedded ClickHouse exactly as ``monitor drift`` reads them
(:meth:`detectors.sample.Sample.from_file`), one thread so rows keep their file order. Class labels
compare as text with booleans and 1/0 unified (``True``, ``true``, ``1`` and ``1.0`` are one class),
as realized performance does in the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from detectors.estimation.estimator import ClassifierInputs, Inputs, RegressorInputs
from detectors.estimation.metrics import Task
from monitor.errors import InputError

# Read in file order: one thread, and Parquet row groups in order.
ORDERED = {"max_threads": 1, "input_format_parquet_preserve_order": 1}


@dataclass(frozen=True)
class Request:
    """The columns asked for on the command line."""

    target: str
    scores: tuple[tuple[str | None, str], ...]  # (class or None, column)
    prediction: str | None
    task: Task | None

    @classmethod
    def parse(cls, target: str, scores: list[str], prediction: str | None, task: str | None) -> Request:
        parsed: list[tuple[str | None, str]] = []
        for entry in scores:
            label, sep, column = entry.rpartition("=")
            if sep and not (label.strip() and column.strip()):
                raise InputError(f"--score {entry!r}: expected COLUMN or CLASS=COLUMN")
            parsed.append((canonical(label.strip()) if sep else None, column.strip()))
        if len(parsed) > 1 and any(label is None for label, _ in parsed):
            raise InputError("several --score: name each one's class as CLASS=COLUMN")
        classes = [label for label, _ in parsed]
        if len(set(classes)) != len(classes):
            raise InputError("--score: a class is named twice")
        if task in ("binary", "multiclass") and not parsed:
            raise InputError(f"--task {task} needs --score")
        if task == "binary" and len(parsed) > 1:
            raise InputError("--task binary takes one --score (the positive class's probability)")
        if task == "multiclass" and len(parsed) < 2:
            raise InputError("--task multiclass needs --score CLASS=COLUMN for every class")
        if task == "regression" and not prediction and len(parsed) != 1:
            raise InputError("--task regression needs --prediction (or one --score) with the model's output")
        if not parsed and not prediction:
            raise InputError("give --score (classifiers) or --prediction (regressors)")
        return cls(target, tuple(parsed), prediction, task)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EstimationData:
    """Both sides ready for the estimator; ``current_labels`` None when CUR has no target column."""

    task: Task
    classes: tuple[str, ...]
    reference: Inputs
    reference_labels: NDArray[Any]
    current: Inputs
    current_labels: NDArray[Any] | None
    notes: list[str] = field(default_factory=list)


def canonical(value: object) -> str:
    """A class label as text: booleans and whole numbers unified (True, 'true', 1, 1.0 -> '1')."""
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value)
    lowered = text.lower()
    if lowered == "true":
        return "1"
    if lowered == "false":
        return "0"
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _texts(column: pa.ChunkedArray) -> list[str | None]:
    cache: dict[object, str] = {}
    out: list[str | None] = []
    for value in column.to_pylist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
            continue
        text = cache.get(value)
        if text is None:
            text = cache[value] = canonical(value)
        out.append(text)
    return out


def _floats(table: pa.Table, name: str, where: str, required: bool = True) -> NDArray[np.float64]:
    column = table.column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        raise InputError(f"{where}: column {name!r} holds text, expected numbers")
    values = np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    missing = int((~np.isfinite(values)).sum())
    if required and missing:
        raise InputError(f"{where}: column {name!r} has {missing} missing or non-finite value(s)")
    return values


def _infer_task(request: Request, table: pa.Table, where: str) -> Task:
    if request.task is not None:
        return request.task
    if len(request.scores) > 1:
        return "multiclass"
    column = table.column(request.target)
    if pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        if finite.size and not np.all(finite == np.round(finite)):
            return "regression"
    if not request.scores:
        return "regression"
    return "binary"


def _classes(request: Request, task: Task, labels: list[str | None], where: str) -> tuple[str, ...]:
    seen = sorted({v for v in labels if v is not None})
    if task == "multiclass":
        classes = tuple(str(label) for label, _ in request.scores)
        unknown = [v for v in seen if v not in classes]
        if unknown:
            raise InputError(f"{where}: target class {unknown[0]!r} has no --score CLASS=COLUMN")
        return classes
    positive = request.scores[0][0] or "1"
    others = [v for v in seen if v != positive]
    if request.scores[0][0] is None and not set(seen) <= {"0", "1"}:
        raise InputError(
            f"{where}: target {request.target!r} is not 0/1 or true/false; "
            "name the positive class: --score CLASS=COLUMN"
        )
    if len(others) > 1:
        raise InputError(f"{where}: target {request.target!r} has {len(seen)} classes; use --task multiclass")
    return (others[0] if others else "0" if positive != "0" else "1", positive)


def _codes(labels: list[str | None], classes: tuple[str, ...], binary: bool) -> NDArray[np.int64]:
    lookup = {c: i for i, c in enumerate(classes)}
    if binary:
        return np.array([-1 if v is None else int(v == classes[1]) for v in labels], dtype=np.int64)
    return np.array([-1 if v is None else lookup.get(v, -1) for v in labels], dtype=np.int64)


def _classifier(
    table: pa.Table, request: Request, task: Task, classes: tuple[str, ...], where: str
) -> ClassifierInputs:
    columns = [_floats(table, column, where) for _, column in request.scores]
    scores = np.column_stack([1.0 - columns[0], columns[0]]) if task == "binary" else np.column_stack(columns)
    if request.prediction is None:
        predicted = (scores[:, 1] >= 0.5).astype(np.int64) if task == "binary" else np.argmax(scores, axis=1)
        return ClassifierInputs(scores, predicted.astype(np.int64))
    texts = _texts(table.column(request.prediction))
    if any(v is None for v in texts):
        raise InputError(f"{where}: column {request.prediction!r} has missing predictions")
    predicted = _codes(texts, classes, task == "binary")
    if task == "multiclass" and (predicted < 0).any():
        bad = texts[int(np.flatnonzero(predicted < 0)[0])]
        raise InputError(f"{where}: predicted class {bad!r} has no --score CLASS=COLUMN")
    return ClassifierInputs(scores, predicted)


def _regressor(table: pa.Table, output: str, features: list[str], where: str) -> RegressorInputs:
    columns: dict[str, NDArray[Any]] = {}
    for name in features:
        column = table.column(name)
        if pa.types.is_boolean(column.type) or pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns[name] = np.array(_texts(column), dtype=object)
        else:
            columns[name] = _floats(table, name, where, required=False)
    return RegressorInputs(columns, _floats(table, output, where))


def read_inputs(workdir: Path, reference: Path, current: Path, request: Request) -> EstimationData:
    """Read both files through a private embedded ClickHouse under ``workdir``."""
    from detectors.sample import Sample
    from monitor.storage import connect_dsn, quote_identifier

    storage = connect_dsn(f"chdb://{workdir / 'db'}", "estimate")
    try:
        ref = Sample.from_file(storage, reference)
        cur = Sample.from_file(storage, current)
        model_columns = [c for _, c in request.scores] + ([request.prediction] if request.prediction else [])
        for sample, needed in ((ref, [request.target, *model_columns]), (cur, model_columns)):
            for name in needed:
                if name in sample.skipped:
                    raise InputError(f"{sample.description}: column {name!r} cannot be read ({sample.skipped[name]})")
                if name not in sample.columns:
                    raise InputError(f"{sample.description}: no column {name!r}")
        used = {request.target, *model_columns}
        features = [c for c in ref.columns if c not in used and c in cur.columns]
        with_target = request.target in cur.columns

        def read(sample: Sample, names: list[str]) -> pa.Table:
            select = ", ".join(quote_identifier(n) for n in dict.fromkeys(names))
            return storage.arrow(f"SELECT {select} FROM {sample.from_sql}", settings=ORDERED)

        ref_table = read(ref, [request.target, *model_columns, *features])
        cur_table = read(cur, [*model_columns, *features, *([request.target] if with_target else [])])
    finally:
        storage.close()
    task = _infer_task(request, ref_table, str(reference))
    notes: list[str] = []
    if task == "regression":
        output = request.prediction or request.scores[0][1]
        ref_in: Inputs = _regressor(ref_table, output, features, str(reference))
        cur_in: Inputs = _regressor(cur_table, output, features, str(current))
        ref_labels: NDArray[Any] = _floats(ref_table, request.target, str(reference), required=False)
        keep = np.isfinite(ref_labels)
        if not keep.any():
            raise InputError(f"{reference}: target {request.target!r} has no values")
        if not keep.all():
            notes.append(f"{int((~keep).sum())} reference rows without a target left out")
            ref_in, ref_labels = ref_in.where(keep), ref_labels[keep]
        cur_labels = _floats(cur_table, request.target, str(current), required=False) if with_target else None
        return EstimationData(task, (), ref_in, ref_labels, cur_in, cur_labels, notes)
    if task == "binary" and len(request.scores) != 1:
        raise InputError("--task binary takes one --score (the positive class's probability)")
    ref_texts = _texts(ref_table.column(request.target))
    classes = _classes(request, task, ref_texts, str(reference))
    ref_in = _classifier(ref_table, request, task, classes, str(reference))
    cur_in = _classifier(cur_table, request, task, classes, str(current))
    ref_codes = _codes(ref_texts, classes, task == "binary")
    keep = ref_codes >= 0
    if not keep.all():
        notes.append(f"{int((~keep).sum())} reference rows without a target left out")
        ref_in, ref_codes = ref_in.where(keep), ref_codes[keep]
    if np.unique(ref_codes).size < 2:
        raise InputError(f"{reference}: target {request.target!r} needs at least two classes")
    cur_codes = None
    if with_target:
        cur_texts = _texts(cur_table.column(request.target))
        cur_codes = _codes(cur_texts, classes, task == "binary")
        unknown = sum(1 for t, c in zip(cur_texts, cur_codes, strict=True) if t is not None and c < 0)
        if unknown:
            notes.append(f"{unknown} current rows with a class the reference lacks left out of realized metrics")
    return EstimationData(task, classes, ref_in, ref_codes, cur_in, cur_codes, notes)
