"""Turn ``monitor estimate``'s files and flags into the estimator's arrays, or one clear error.

Files are read by :mod:`monitor.commands.file_tables` (text files as ``monitor drift`` reads them),
rows in file order. Class labels
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
from monitor.commands.file_tables import arrow_kind, open_files
from monitor.errors import InputError


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


@dataclass(frozen=True)
class Labels:
    """A class column: its distinct canonical texts and, per row, the index of its text
    (``len(values)`` for a missing value)."""

    values: tuple[str, ...]
    index: NDArray[np.int64]

    @property
    def missing(self) -> NDArray[np.bool_]:
        return np.asarray(self.index == len(self.values), dtype=bool)

    def texts(self) -> NDArray[Any]:
        return np.array([*self.values, None], dtype=object)[self.index]

    def codes(self, classes: tuple[str, ...]) -> NDArray[np.int64]:
        """Per row the index of its class in ``classes`` (binary: 0 negative, 1 positive); -1 when
        missing or not one of ``classes``."""
        lookup = {c: i for i, c in enumerate(classes)}
        mapping = [lookup.get(v, -1) for v in self.values]
        return np.array([*mapping, -1], dtype=np.int64)[self.index]


def _labels(column: pa.ChunkedArray) -> Labels:
    """Canonical class texts computed once per distinct value, not per row."""
    raw = _numpy(column)
    if raw.dtype == object and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        missing = raw == None  # noqa: E711 (elementwise): texts or None, compared and sorted in C, not per row
        present = raw[~missing].astype(str)
    elif raw.dtype == object:
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in raw], dtype=bool)
        present = np.array([str(v) if isinstance(v, str) else canonical(v) for v in raw[~missing]], dtype=object)
    else:
        missing = np.isnan(raw) if raw.dtype.kind == "f" else np.zeros(raw.size, dtype=bool)
        present = raw[~missing]
    distinct, inverse = np.unique(present, return_inverse=True) if present.size else (present, present)
    texts: dict[str, int] = {}
    remap = np.array([texts.setdefault(canonical(v), len(texts)) for v in distinct.tolist()], dtype=np.int64)
    index = np.full(raw.size, len(texts), dtype=np.int64)
    if present.size:
        index[~missing] = remap[inverse]
    return Labels(tuple(texts), index)


def _numpy(column: pa.ChunkedArray) -> NDArray[Any]:
    """The column as one numpy array: numbers and booleans from their Arrow buffers (NaN for null),
    anything else as Python objects (None for null). pyarrow's own conversions (``to_numpy``, ``cast``)
    import pandas or pyarrow.compute, most of the start-up of a command that needs neither."""
    parts = [_chunk_numpy(chunk) for chunk in column.chunks]
    return np.concatenate(parts) if parts else np.array([], dtype=np.float64)


def _bits(buffer: pa.Buffer, offset: int, length: int) -> NDArray[np.bool_]:
    raw = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[offset : offset + length].astype(bool)


def _chunk_numpy(chunk: pa.Array) -> NDArray[Any]:
    kind = chunk.type
    length, offset = len(chunk), chunk.offset
    buffers = chunk.buffers()
    if pa.types.is_boolean(kind):
        values: NDArray[Any] = _bits(buffers[1], offset, length).astype(np.float64)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        code = "f" if pa.types.is_floating(kind) else "i" if pa.types.is_signed_integer(kind) else "u"
        dtype = np.dtype(f"{code}{kind.bit_width // 8}")
        values = np.frombuffer(buffers[1], dtype=dtype, count=length, offset=offset * dtype.itemsize)
    else:
        return np.array(chunk.to_pylist(), dtype=object)
    if chunk.null_count:
        values = values.astype(np.float64)
        values[~_bits(buffers[0], offset, length)] = np.nan
    return values


def _floats(table: pa.Table, name: str, where: str, required: bool = True) -> NDArray[np.float64]:
    column = table.column(name)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        raise InputError(f"{where}: column {name!r} holds {column.type}, expected numbers")
    raw = _numpy(column)
    if raw.dtype == object:
        values = np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
    else:
        values = raw.astype(np.float64)
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
        values = _floats(table, request.target, where, required=False)
        finite = values[np.isfinite(values)]
        if finite.size and not np.all(finite == np.round(finite)):
            return "regression"
    if not request.scores:
        return "regression"
    return "binary"


def _classes(request: Request, task: Task, labels: Labels, where: str) -> tuple[str, ...]:
    seen = sorted(labels.values[i] for i in np.unique(labels.index) if i < len(labels.values))
    listed = ", ".join(seen[:10]) + (", ..." if len(seen) > 10 else "")
    if task == "multiclass":
        classes = tuple(str(label) for label, _ in request.scores)
        unknown = [v for v in seen if v not in classes]
        if unknown:
            raise InputError(f"{where}: target class {unknown[0]!r} has no --score CLASS=COLUMN")
        # A class the reference never shows has no calibration and no reference band, and would be
        # averaged into every macro metric as a class with no support.
        absent = [c for c in classes if c not in seen]
        if absent:
            raise InputError(f"{where}: --score class {absent[0]!r} is not in target {request.target!r} ({listed})")
        return classes
    named = request.scores[0][0]
    positive = named or "1"
    if named is None and not set(seen) <= {"0", "1"}:
        raise InputError(
            f"{where}: target {request.target!r} is not 0/1 or true/false; "
            "name the positive class: --score CLASS=COLUMN"
        )
    if named is not None and named not in seen:
        raise InputError(f"{where}: --score class {named!r} is not in target {request.target!r} ({listed})")
    others = [v for v in seen if v != positive]
    if len(others) > 1:
        raise InputError(f"{where}: target {request.target!r} has {len(seen)} classes; use --task multiclass")
    return (others[0] if others else "0" if positive != "0" else "1", positive)


def _classifier(
    table: pa.Table, request: Request, task: Task, classes: tuple[str, ...], where: str
) -> ClassifierInputs:
    columns = [_floats(table, column, where) for _, column in request.scores]
    scores = np.column_stack([1.0 - columns[0], columns[0]]) if task == "binary" else np.column_stack(columns)
    if request.prediction is None:
        predicted = (scores[:, 1] >= 0.5).astype(np.int64) if task == "binary" else np.argmax(scores, axis=1)
        return ClassifierInputs(scores, predicted.astype(np.int64))
    labels = _labels(table.column(request.prediction))
    if labels.missing.any():
        raise InputError(f"{where}: column {request.prediction!r} has missing predictions")
    predicted = labels.codes(classes)
    if (predicted < 0).any():
        bad = labels.values[labels.index[int(np.flatnonzero(predicted < 0)[0])]]
        if task == "multiclass":
            raise InputError(f"{where}: predicted class {bad!r} has no --score CLASS=COLUMN")
        raise InputError(
            f"{where}: --prediction {request.prediction!r} holds {bad!r}, not a class of the target "
            f"({classes[0]}, {classes[1]})"
        )
    return ClassifierInputs(scores, predicted)


def _feature_kinds(ref: pa.Table, cur: pa.Table, features: list[str], current: str) -> dict[str, bool]:
    """Per feature whether it is categorical (text or booleans), the same in both files.

    The loss models learn a feature as numbers or as categories from the reference; a column that
    changed kind in CURRENT (a number column now holding text, or categories now coded as numbers)
    would be read as all missing or all unseen and move every estimate without a word.
    """
    kinds: dict[str, bool] = {}
    for name in features:
        ref_kind, cur_kind = ref.column(name).type, cur.column(name).type
        if arrow_kind(ref_kind) != arrow_kind(cur_kind):
            raise InputError(f"{current}: feature {name!r} holds {cur_kind}, but {ref_kind} in the reference")
        kinds[name] = arrow_kind(ref_kind) == "categorical"
    return kinds


def _regressor(
    table: pa.Table, output: str, features: list[str], categorical: dict[str, bool], where: str
) -> RegressorInputs:
    columns: dict[str, NDArray[Any]] = {}
    for name in features:
        columns[name] = (
            _labels(table.column(name)).texts() if categorical[name] else _floats(table, name, where, required=False)
        )
    return RegressorInputs(columns, _floats(table, output, where))


def _check_score_range(reference: ClassifierInputs, current: ClassifierInputs, request: Request, where: str) -> None:
    """Scores the reference gives as probabilities are used as they are; out of [0, 1] in CURRENT they
    are not probabilities of the same model (another column, or a model that now emits margins)."""
    for k, (_, column) in enumerate(request.scores):
        index = -1 if len(request.scores) == 1 else k  # binary: the positive class's column is the last
        ref_scores, cur_scores = reference.scores[:, index], current.scores[:, index]
        if ref_scores.size and ref_scores.min() >= 0.0 and ref_scores.max() <= 1.0 and cur_scores.size:
            low, high = float(cur_scores.min()), float(cur_scores.max())
            if low < 0.0 or high > 1.0:
                raise InputError(
                    f"{where}: score column {column!r} spans {low:g} to {high:g}, outside [0, 1] "
                    "where the reference's are probabilities"
                )


def read_inputs(reference: Path, current: Path, request: Request) -> EstimationData:
    """Read the columns the request needs from both files (see :mod:`monitor.commands.file_tables`)."""
    with open_files(reference, current) as (ref, cur):
        model_columns = [c for _, c in request.scores] + ([request.prediction] if request.prediction else [])
        ref.require([request.target, *model_columns])
        cur.require(model_columns)
        used = {request.target, *model_columns}
        features = [c for c in ref.columns if c not in used and c in cur.columns]
        with_target = request.target in cur.columns
        ref_table = ref.read([request.target, *model_columns, *features])
        cur_table = cur.read([*model_columns, *features, *([request.target] if with_target else [])])
    task = _infer_task(request, ref_table, str(reference))
    notes: list[str] = []
    if task == "regression":
        output = request.prediction or request.scores[0][1]
        categorical = _feature_kinds(ref_table, cur_table, features, str(current))
        ref_in: Inputs = _regressor(ref_table, output, features, categorical, str(reference))
        cur_in: Inputs = _regressor(cur_table, output, features, categorical, str(current))
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
    ref_classes = _labels(ref_table.column(request.target))
    classes = _classes(request, task, ref_classes, str(reference))
    ref_in = _classifier(ref_table, request, task, classes, str(reference))
    cur_in = _classifier(cur_table, request, task, classes, str(current))
    _check_score_range(ref_in, cur_in, request, str(current))
    ref_codes = ref_classes.codes(classes)
    keep = ref_codes >= 0
    if not keep.all():
        notes.append(f"{int((~keep).sum())} reference rows without a target left out")
        ref_in, ref_codes = ref_in.where(keep), ref_codes[keep]
    if np.unique(ref_codes).size < 2:
        raise InputError(f"{reference}: target {request.target!r} needs at least two classes")
    cur_codes = None
    if with_target:
        cur_classes = _labels(cur_table.column(request.target))
        cur_codes = cur_classes.codes(classes)
        unknown = int((~cur_classes.missing & (cur_codes < 0)).sum())
        if unknown:
            notes.append(f"{unknown} current rows with a class the reference lacks left out of realized metrics")
    return EstimationData(task, classes, ref_in, ref_codes, cur_in, cur_codes, notes)
