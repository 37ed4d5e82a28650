"""What the drift engine compares: a set of rows inside ClickHouse and the SQL expression of each column.

A :class:`Sample` never holds data. It names where the rows are (``from_sql`` + ``where_sql``) and, per
column, an expression and a kind, so the engine can push every statistic into ClickHouse. The same
engine therefore reads a Parquet/CSV file through chDB's ``file()`` table function (``monitor drift``),
a window of ``events`` (``FINAL``, one model, one time range) and a stored reference alike.

Expressions are raw: the engine normalises them itself. A numerical expression may be any numeric type,
Nullable or not; NULL, NaN and ±inf are missing. A categorical expression may be a String, Nullable
String, Enum or Bool; NULL is missing and booleans compare as ``'true'``/``'false'`` (how ``events``
stores them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from detectors.file_format import check_file, data_lines, parquet_pandas_view
from detectors.text_columns import classify, refuse_non_utf8, text_file, text_source
from monitor.errors import InputError, StorageError
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import events_columns, feature_expr, logged_features
from monitor.storage.sqlfmt import sql_datetime, sql_string

Kind = Literal["numerical", "categorical"]
NUMERICAL: Kind = "numerical"
CATEGORICAL: Kind = "categorical"

_NUMERIC_TYPE = re.compile(r"^(U?Int\d+|Float\d+|BFloat16|Decimal\d*\(.*\)|Decimal)$")
_TEXT_TYPE = re.compile(r"^(String|FixedString\(\d+\)|Enum(8|16)?\(.*\)|Bool)$")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a sample: the SQL expression of its value inside the sample's FROM, and its kind."""

    expr: str
    kind: Kind


@dataclass(frozen=True)
class Sample:
    """A set of rows inside ClickHouse: FROM + WHERE, and the SQL expression of each column.

    ``from_sql`` is anything that may follow ``FROM``: ``file('/abs/ref.parquet', 'Parquet')``,
    ``\\`db\\`.\\`events\\` FINAL``, ``\\`db\\`.\\`reference_rows\\```. ``description`` is for messages only.
    """

    from_sql: str
    columns: Mapping[str, ColumnSpec]
    where_sql: str = "1"
    description: str = ""
    skipped: Mapping[str, str] = field(default_factory=dict)  # column -> why it cannot be compared
    settings: Mapping[str, Any] = field(default_factory=dict)  # ClickHouse settings for queries over these rows

    def select(self, names: Iterable[str]) -> Sample:
        """The same rows with only ``names`` (in that order)."""
        wanted = list(names)
        return Sample(
            self.from_sql,
            {n: self.columns[n] for n in wanted},
            self.where_sql,
            self.description,
            {n: r for n, r in self.skipped.items() if n in set(wanted)},
            dict(self.settings),
        )

    def materialize(self, storage: Storage, table: str) -> Sample:
        """Copy this sample's columns into a Memory table ``table`` of the storage's database (created).

        Every later query then reads memory instead of decoding the file again: worth it when a file is
        queried once per column and small enough to hold (``monitor drift`` decides by file size).
        """
        storage.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(storage.database)}")
        target = storage.table(table)
        parts = ", ".join(f"{spec.expr} AS {quote_identifier(name)}" for name, spec in self.columns.items())
        storage.command(f"DROP TABLE IF EXISTS {target}")
        storage.command(
            f"CREATE TABLE {target} ENGINE = Memory AS SELECT {parts or '1 AS `_`'} FROM {self.from_sql} "
            f"WHERE {self.where_sql}",
            settings=dict(self.settings) or None,
        )
        columns = {name: ColumnSpec(quote_identifier(name), spec.kind) for name, spec in self.columns.items()}
        return Sample(target, columns, "1", self.description, dict(self.skipped))

    @classmethod
    def from_file(cls, storage: Storage, path: str | Path, columns: Sequence[str] | None = None) -> Sample:
        """A Parquet or CSV/TSV file read in place by ClickHouse's ``file()`` (embedded chDB, or a server's files).

        Kinds come from the data: numbers (not booleans) are numerical, strings and booleans categorical.
        Parquet carries its types: a column that is neither (dates, arrays, ...) is listed in
        ``skipped``. CSV and TSV columns are classified over every row as pandas reads them
        (:mod:`detectors.text_columns`); a column with no value at all is numerical.
        Raises :class:`InputError` for a missing, unreadable, empty or unsupported file.
        """
        resolved, fmt = check_file(path)
        text_settings: dict[str, Any] = {}
        if fmt == "Parquet":
            from_sql = f"file({sql_string(str(resolved))}, {sql_string(fmt)})"
        else:
            from_sql, text_settings = text_file(str(resolved), fmt)
        specs: dict[str, ColumnSpec] = {}
        skipped: dict[str, str] = {}
        try:
            if fmt == "Parquet":
                described = storage.rows(f"DESCRIBE TABLE {from_sql}")
                (rows,) = storage.rows(f"SELECT count() FROM {from_sql}")[0]
            else:
                rows, text_columns = classify(storage, from_sql, text_settings)
        except StorageError as exc:
            if fmt != "Parquet" and data_lines(resolved) == 0:
                raise InputError(f"{path}: the file has no rows") from exc
            raise InputError(f"{path}: cannot read as {fmt}: {_reason(exc)}") from exc
        if int(rows) == 0:
            raise InputError(f"{path}: the file has no rows")
        if fmt == "Parquet":
            index, not_features = parquet_pandas_view(resolved)
            for name, ch_type, *_ in described:
                kind = kind_of_type(ch_type)
                if name in index:
                    skipped[name] = "the pandas index, not a column"
                elif name in not_features:
                    skipped[name] = f"unsupported type {not_features[name]}"
                elif kind is None:
                    skipped[name] = f"unsupported type {_one_line(ch_type)}"
                else:
                    specs[name] = ColumnSpec(quote_identifier(name), kind)
        else:
            # Text files: classified over every row as pandas.read_csv does (detectors.text_columns).
            refuse_non_utf8(path, text_columns)
            from_sql = text_source(from_sql, text_columns, text_settings)
            for column in text_columns:
                if column.kind is None:
                    skipped[column.name] = "unsupported type: dates or times"
                else:
                    specs[column.name] = ColumnSpec(quote_identifier(column.name), column.kind)
        sample = cls(from_sql, specs, "1", str(path), skipped)
        if columns is not None:
            unknown = [c for c in columns if c not in specs and c not in skipped]
            if unknown:
                raise InputError(f"{path}: no column {', '.join(repr(c) for c in unknown)}")
            sample = sample.select([c for c in columns if c in specs])
        return sample

    @classmethod
    def for_events(
        cls,
        storage: Storage,
        model: str,
        start: datetime,
        end: datetime,
        features: Mapping[str, Kind] | Sequence[str] | None = None,
        where_sql: str = "1",
    ) -> Sample:
        """The events of ``model`` with ``start <= ts < end`` (read with FINAL, so redeliveries count once).

        ``features``: ``{name: kind}`` (the configured kinds), names (kinds from what the model logged)
        or None (every logged feature). A feature logged with both kinds and no configured kind is
        compared as numerical. Features never logged (with that kind) are listed in ``skipped``.
        """
        logged = logged_features(storage, model)
        typed = events_columns(storage)
        wanted: Mapping[str, Kind | None]
        if features is None:
            wanted = dict.fromkeys(logged)
        elif isinstance(features, Mapping):
            wanted = dict(features)
        else:
            wanted = dict.fromkeys(features)
        specs: dict[str, ColumnSpec] = {}
        skipped: dict[str, str] = {}
        for name, configured in wanted.items():
            kinds = logged.get(name, set())
            kind: Kind = configured or (CATEGORICAL if set(kinds) == {CATEGORICAL} else NUMERICAL)
            if kind not in kinds:
                skipped[name] = f"never logged as {kind}" if kinds else "never logged by this model"
                continue
            specs[name] = ColumnSpec(feature_expr(name, kind, typed), kind)
        where = (
            f"model = {sql_string(model)} AND ts >= {sql_datetime(start)} AND ts < {sql_datetime(end)}"
            f" AND ({where_sql})"
        )
        return cls(f"{storage.table('events')} FINAL", specs, where, f"{model} events", skipped)


def kind_of_type(ch_type: str) -> Kind | None:
    """The kind of a ClickHouse column type, or None when it is neither a number nor text."""
    inner = ch_type
    for wrapper in ("LowCardinality(", "Nullable("):
        if inner.startswith(wrapper) and inner.endswith(")"):
            inner = inner[len(wrapper) : -1]
    for wrapper in ("LowCardinality(", "Nullable("):  # LowCardinality(Nullable(...)) either way round
        if inner.startswith(wrapper) and inner.endswith(")"):
            inner = inner[len(wrapper) : -1]
    if inner == "Bool":
        return CATEGORICAL
    if _NUMERIC_TYPE.match(inner):
        return NUMERICAL
    if _TEXT_TYPE.match(inner):
        return CATEGORICAL
    return None


def _one_line(ch_type: str) -> str:
    """A type ClickHouse spells on several lines (``Tuple(\\n    a Int64)``) on one."""
    return re.sub(r"\(\s+", "(", " ".join(ch_type.split()))


def _reason(exc: BaseException) -> str:
    """ClickHouse's message, without its codes and version, nor the wrapper of a failed schema inference."""
    text = str(exc).split("ClickHouse query failed: ", 1)[-1]
    text = re.sub(r"\s*\(version [^)]*\)", "", text)
    text = re.sub(r"Code: \d+\. DB::Exception: ", "", text)
    text = re.sub(r"The table structure cannot be extracted from a \w+ format file\. Error: ", "", text)
    text = re.sub(r"\.? \([A-Z_]+\)", "", text)
    return text.strip().rstrip(".")[:300]
