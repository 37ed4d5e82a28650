"""Reading a reference file: its columns and kinds, and the two ways of moving its rows into ClickHouse.

``describe_with_clickhouse`` + ``insert_from_file`` let ClickHouse read the file (embedded chDB);
``describe_with_arrow`` + ``insert_streamed`` read it with pyarrow in record batches and ship each
with ``insert_arrow`` (a ClickHouse server cannot see the client's files). Both apply the same
conversions, so a reference loaded either way has identical rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.file_format import check_file, data_lines, pandas_index, parquet_pandas_view
from detectors.references.profile import Kind
from detectors.text_columns import TextColumn, classify, refuse_non_utf8, text_file, text_source
from monitor.errors import InputError, StorageError
from monitor.settings import IngestSettings
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import feature_column
from monitor.storage.sqlfmt import sql_string
from monitor.storage.statements import PARTS_BUDGET, batches, sql_bytes

RESERVED = ("prediction", "label", "event_id", "timestamp", "model", "model_version")
STREAM_BATCH_ROWS = 100_000
_CSV_READ_BLOCK = 64 << 20
_NUMERIC_CH = re.compile(r"^(U?Int\d+|Float\d+|Decimal.*|BFloat16)$")
_TEXT_CH = re.compile(r"^(String|FixedString.*|Enum\d*\(.*|UUID|IPv[46])$")


@dataclass(frozen=True)
class LoadPlan:
    """What goes where: target column of reference_rows -> SQL expression over the source."""

    features: dict[str, Kind]
    exprs: dict[str, str]
    prediction_kind: Kind | None
    label_kind: Kind | None
    segment_keys: tuple[str, ...]


@dataclass(frozen=True)
class SourceColumn:
    """One column of the file: whether it holds numbers, booleans or text (``kind=None``: unusable)."""

    name: str
    type_name: str
    kind: Kind | None
    boolean: bool = False  # a real boolean type
    boolean_text: bool = False  # text holding only true/false (CSV written by pandas: True/False)
    text_value: str | None = None  # CSV/TSV: its value over the raw field (detectors.text_columns)

    @property
    def numeric(self) -> bool:
        return self.kind == "numerical"


def reason(exc: BaseException) -> str:
    """ClickHouse's error text without its code prefix and version suffix, on one short line."""
    text = str(exc).split(" failed: ", 1)[-1]
    text = re.sub(r"Code: \d+\. DB::Exception: ", "", text)
    text = re.sub(r"\s*\(version [^)]*\)", "", text)
    return text.strip().splitlines()[0].rstrip(". :")[:300] if text.strip() else type(exc).__name__


def file_format(path: Path) -> str:
    """ClickHouse format name for a reference file, checked as ``monitor drift`` checks its files
    (:func:`detectors.file_format.check_file`: Parquet by its magic bytes, else .csv or .tsv, optionally
    compressed)."""
    return check_file(path)[1]


def _strip(type_name: str) -> str:
    inner = type_name
    for wrapper in ("Nullable(", "LowCardinality("):
        while inner.startswith(wrapper):
            inner = inner[len(wrapper) : -1]
    return inner


def describe_with_clickhouse(storage: Storage, path: Path, fmt: str) -> list[SourceColumn]:
    """Column kinds as ClickHouse reads the file (what ``INSERT ... FROM file()`` will read).

    Parquet carries its types. CSV and TSV columns are classified over every row as pandas reads
    them (:mod:`detectors.text_columns`), as ``monitor drift`` reads the same file.
    """
    source = f"file({sql_string(str(path))}, {sql_string(fmt)})"
    if fmt != "Parquet":
        text, settings = text_file(str(path), fmt)
        try:
            _, classified = classify(storage, text, settings)
        except StorageError as exc:
            if data_lines(path) == 0:  # a header alone: ClickHouse cannot infer a structure from it
                raise InputError(f"{path}: the file has no rows") from exc
            raise InputError(f"{path}: cannot read as {fmt}: {reason(exc)}") from exc
        refuse_non_utf8(path, classified)
        return [_from_text(c) for c in classified]
    try:
        described = storage.rows(f"DESCRIBE TABLE {source}")
    except StorageError as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {reason(exc)}") from exc
    index, not_features = parquet_pandas_view(path)
    columns: list[SourceColumn] = []
    text_columns: list[str] = []
    for name, type_name, *_ in described:
        inner = _strip(type_name)
        if name in index:  # pandas reads it as the frame's index, not a column (as monitor drift skips it)
            continue
        if name in not_features:
            columns.append(SourceColumn(name, not_features[name], None))
        elif inner == "Bool":
            columns.append(SourceColumn(name, type_name, "categorical", boolean=True))
        elif _NUMERIC_CH.match(inner):
            columns.append(SourceColumn(name, type_name, "numerical"))
        elif _TEXT_CH.match(inner):
            columns.append(SourceColumn(name, type_name, "categorical"))
            text_columns.append(name)
        else:
            columns.append(SourceColumn(name, type_name, None))
    if text_columns:
        counts: list[int] = []
        for group in batches(text_columns, lambda name: 2 * sql_bytes(name) + 160):  # max_query_size
            parts = []
            for name in group:
                value = f"toString({quote_identifier(name)})"
                parts.append(f"countIf({value} IS NOT NULL AND lower({value}) NOT IN ('true', 'false'))")
                parts.append(f"countIf({value} IS NOT NULL)")
            counts += storage.rows(f"SELECT {', '.join(parts)} FROM {source}")[0]
        booleans = {n for i, n in enumerate(text_columns) if counts[2 * i] == 0 and counts[2 * i + 1] > 0}
        columns = [
            SourceColumn(c.name, c.type_name, c.kind, boolean_text=True) if c.name in booleans else c for c in columns
        ]
    return columns


def _from_text(column: TextColumn) -> SourceColumn:
    if column.kind is None:
        return SourceColumn(column.name, "dates or times", None, text_value=column.value)
    type_name = "Float64" if column.kind == "numerical" else "String"
    return SourceColumn(column.name, type_name, column.kind, boolean_text=column.boolean, text_value=column.value)


def file_source(path: Path, fmt: str, columns: list[SourceColumn]) -> str:
    """What ``INSERT ... SELECT`` reads: the file, or for CSV/TSV its columns as classified."""
    if fmt == "Parquet":
        return f"file({sql_string(str(path))}, {sql_string(fmt)})"
    source, settings = text_file(str(path), fmt)
    text = [TextColumn(c.name, c.kind, c.text_value or quote_identifier(c.name), c.boolean_text) for c in columns]
    return text_source(source, text, settings)


def _arrow_kind(data_type: pa.DataType) -> tuple[Kind | None, bool]:
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_boolean(data_type):
        return "categorical", True
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "numerical", False
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "categorical", False
    if pa.types.is_null(data_type):
        return "categorical", False
    return None, False


def _open_csv(path: Path, fmt: str) -> Any:
    import pyarrow.csv as pacsv

    # An empty CSV field is missing, as ClickHouse reads it into a Nullable column. TSV: CSV quoting
    # with a tab between fields, as pandas.read_csv(sep="\t") reads it.
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_READ_BLOCK),
        parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "TSVWithNames" else ","),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
    )


def _batches(path: Path, fmt: str) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    try:
        if fmt == "Parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=STREAM_BATCH_ROWS)
        else:
            yield from _open_csv(path, fmt)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from exc


def describe_with_arrow(path: Path, fmt: str) -> list[SourceColumn]:
    """Column kinds as pyarrow reads the file (the streaming path)."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path) if fmt == "Parquet" else _open_csv(path, fmt).schema
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from exc
    index = pandas_index(schema) if fmt == "Parquet" else set()
    columns = []
    for arrow_field in schema:
        if arrow_field.name in index:  # pandas reads it as the frame's index, not a column
            continue
        kind, boolean = _arrow_kind(arrow_field.type)
        columns.append(SourceColumn(arrow_field.name, str(arrow_field.type), kind, boolean=boolean))
    return columns


def check_width(path: Path, fmt: str, segment_keys: tuple[str, ...], limits: IngestSettings) -> None:
    """Refuse a file with more feature columns than a model may have, from its header alone.

    Classifying a file's columns reads every row of every column, which takes minutes for thousands
    of columns; the header (read by pyarrow, cheap) already says that the file is too wide. Columns
    that :func:`plan_load` would skip for their names are not counted; a file pyarrow cannot read is
    left to the full reading, which reports it.
    """
    try:
        names = [c.name for c in describe_with_arrow(path, fmt)]
    except InputError:
        return
    usable = [n for n in names if _may_be_feature(n, segment_keys) and len(n) <= limits.max_feature_name_length]
    if len(usable) > limits.max_features_per_model:
        raise _too_wide(path, len(usable), limits)


def _may_be_feature(name: str, segment_keys: tuple[str, ...]) -> bool:
    """Whether a file column can be a feature when none are configured (not a reserved or segment column)."""
    return name not in RESERVED and name not in segment_keys and name != "__index_level_0__"


def _too_wide(path: Path, count: int, limits: IngestSettings) -> InputError:
    return InputError(
        f"{path}: {count:,} feature columns, more than one model may have "
        f"(ingest.max_features_per_model = {limits.max_features_per_model:,}); "
        f"list the ones to monitor in models.<model>.features"
    )


def plan_load(
    path: Path,
    columns: list[SourceColumn],
    features: dict[str, Kind] | None,
    segment_keys: tuple[str, ...],
    progress: Callable[[str], None],
    limits: IngestSettings | None = None,
) -> LoadPlan:
    """Which file column becomes which reference_rows column, with its kind checked against the config.

    Without configured features every usable column is one, within ingestion's ``limits``: a column
    whose name is longer than events' feature names may be is skipped (with a warning), and more
    feature columns than one model may have is an error.
    """
    limits = limits or IngestSettings()
    by_name = {c.name: c for c in columns}
    chosen: dict[str, Kind] = {}
    too_long: list[str] = []
    if features:
        for feature, kind in features.items():
            column = by_name.get(feature)
            if column is None:
                progress(f"warning: configured feature {feature!r} is not a column of {path.name}")
                continue
            if column.kind is None:
                raise InputError(f"{path}: column {feature!r} has unsupported type {column.type_name}")
            if kind == "numerical" and not column.numeric and not column.boolean:
                raise InputError(f"{path}: column {feature!r} holds text but is configured numerical")
            chosen[feature] = kind
    else:
        for column in columns:
            if not _may_be_feature(column.name, segment_keys):
                continue
            if column.kind is None:
                progress(f"skipping column {column.name!r} of unsupported type {column.type_name}")
                continue
            if len(column.name) > limits.max_feature_name_length:
                too_long.append(column.name)
                continue
            chosen[column.name] = column.kind
    if too_long:
        shown = ", ".join(f"{name[:40]!r}..." for name in too_long[:3]) + (", ..." if len(too_long) > 3 else "")
        progress(
            f"skipping {len(too_long):,} column(s) with names longer than ingest.max_feature_name_length = "
            f"{limits.max_feature_name_length} characters (events cannot carry them): {shown}"
        )
    if not chosen:
        raise InputError(f"{path}: no usable feature columns")
    if len(chosen) > limits.max_features_per_model:
        raise _too_wide(path, len(chosen), limits)
    exprs = {feature_column(f, k): _expr(by_name[f], k) for f, k in chosen.items()}
    kinds: dict[str, Kind | None] = {}
    for special in ("prediction", "label"):
        column = by_name.get(special)
        special_kind = None if column is None else column.kind
        kinds[special] = special_kind
        if column is not None and special_kind is not None:
            exprs[f"{special}_{'num' if special_kind == 'numerical' else 'cat'}"] = _expr(column, special_kind)
    present = tuple(k for k in segment_keys if k in by_name)
    if present:
        pairs = ", ".join(f"{sql_string(k)}, ifNull(toString({quote_identifier(k)}), '')" for k in present)
        exprs["segment"] = f"mapFilter((k, v) -> v != '', map({pairs}))"
    return LoadPlan(chosen, exprs, kinds["prediction"], kinds["label"], present)


def _expr(column: SourceColumn, kind: Kind) -> str:
    """SQL converting a file column to its reference_rows type (as events stores the same values)."""
    quoted = quote_identifier(column.name)
    if kind == "numerical":
        return f"ifNull(toFloat64({quoted}), nan)"
    if column.boolean_text:
        return f"lower(toString({quoted}))"
    return f"toString({quoted})" if column.boolean or column.numeric else f"CAST({quoted}, 'Nullable(String)')"


def file_insert_sql(
    storage: Storage, path: Path, fmt: str, plan: LoadPlan, load_id: str, columns: list[SourceColumn]
) -> str:
    """The one ``INSERT ... SELECT ... FROM file()`` that loads the whole file (every column at once)."""
    targets = ["load_id", "row_id", *plan.exprs]
    values = [sql_string(load_id), "rowNumberInAllBlocks()", *plan.exprs.values()]
    return (
        f"INSERT INTO {storage.table('reference_rows')} ({', '.join(quote_identifier(t) for t in targets)}) "
        f"SELECT {', '.join(values)} FROM {file_source(path, fmt, columns)}"
    )


def fits_one_statement(storage: Storage, path: Path, fmt: str, plan: LoadPlan, columns: list[SourceColumn]) -> bool:
    """Whether :func:`file_insert_sql` stays well under ClickHouse's ``max_query_size``.

    It names every column of the file, by the file's own names (up to 256 characters, up to four bytes
    each): a wide file cannot be loaded by one such statement, and the rows of one load cannot be split
    by columns, so a file that does not fit is streamed instead (:func:`insert_streamed`, whose
    statement names only the typed columns, of bounded length).
    """
    return sql_bytes(file_insert_sql(storage, path, fmt, plan, "0" * 32, columns)) <= PARTS_BUDGET


def insert_from_file(
    storage: Storage, path: Path, fmt: str, columns: list[SourceColumn], plan: LoadPlan
) -> Callable[[str], int]:
    """An ``insert(load_id) -> rows`` that has ClickHouse read the file itself."""

    def insert(load_id: str) -> int:
        try:
            storage.command(file_insert_sql(storage, path, fmt, plan, load_id, columns))
        except StorageError as exc:
            raise InputError(f"{path}: cannot load: {reason(exc)}") from exc
        return int(
            storage.rows(
                f"SELECT count() FROM {storage.table('reference_rows')} WHERE load_id = {sql_string(load_id)}"
            )[0][0]
        )

    return insert


def _convert(array: pa.Array | pa.ChunkedArray, column: SourceColumn, kind: Kind) -> pa.Array:
    """The Arrow twin of :func:`_expr`."""
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if kind == "numerical":
        return pc.fill_null(pc.cast(array, pa.float64()), np.nan)
    if column.boolean:
        return pc.if_else(array, "true", "false")
    if column.boolean_text:
        return pc.utf8_lower(pc.cast(array, pa.string()))
    return pc.cast(array, pa.string())


def insert_streamed(
    storage: Storage,
    path: Path,
    fmt: str,
    columns: list[SourceColumn],
    plan: LoadPlan,
    progress: Callable[[str], None],
) -> Callable[[str], int]:
    """An ``insert(load_id) -> rows`` that streams the file in Arrow batches through ``insert_arrow``."""
    by_name = {c.name: c for c in columns}
    mapping: dict[str, tuple[str, Kind]] = {feature_column(f, k): (f, k) for f, k in plan.features.items()}
    for special, kind in (("prediction", plan.prediction_kind), ("label", plan.label_kind)):
        if kind is not None:
            mapping[f"{special}_{'num' if kind == 'numerical' else 'cat'}"] = (special, kind)

    def insert(load_id: str) -> int:
        offset = 0
        for batch in _batches(path, fmt):
            n = batch.num_rows
            if n == 0:
                continue
            data: dict[str, pa.Array] = {
                "load_id": pa.array([load_id] * n, pa.string()),
                "row_id": pa.array(np.arange(offset, offset + n, dtype=np.uint64)),
            }
            for target, (source, kind) in mapping.items():
                data[target] = _convert(batch.column(source), by_name[source], kind)
            if plan.segment_keys:
                texts = [pc.cast(batch.column(k), pa.string()).to_pylist() for k in plan.segment_keys]
                data["segment"] = pa.array(
                    [
                        [(k, v) for k, v in zip(plan.segment_keys, values, strict=True) if v not in (None, "")]
                        for values in zip(*texts, strict=True)
                    ],
                    pa.map_(pa.string(), pa.string()),
                )
            storage.insert_arrow("reference_rows", pa.table(data))
            offset += n
            progress(f"streamed {offset:,} rows")
        return offset

    return insert
