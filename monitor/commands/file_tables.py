"""Chosen columns of a data file, in file order, as an Arrow table (for ``monitor estimate``).

Text files (CSV, TSV, compressed or not) are read by embedded ClickHouse exactly as ``monitor drift``
reads them (:meth:`detectors.drift.sample.Sample.from_file`: same type inference, same messages), one thread
so that rows keep their order. Parquet files carry their own types, so they are read by pyarrow
directly: no type inference can differ, row order is the file's by construction, and the command does
not pay for starting the ClickHouse engine (BENCHMARKS.md, "Performance estimation"). Either way a file
that cannot be used is one :class:`InputError` line, checked first by :func:`detectors.file_format.check_file`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from monitor.errors import InputError

# Read in file order: one thread, and Parquet row groups in order.
ORDERED = {"max_threads": 1, "input_format_parquet_preserve_order": 1}


@dataclass(frozen=True)
class FileTable:
    """A file's readable columns (name -> numerical/categorical), those it cannot read, and a reader."""

    description: str
    columns: dict[str, str]
    skipped: dict[str, str]
    read: Callable[[list[str]], pa.Table]

    def require(self, names: list[str]) -> None:
        for name in names:
            if name in self.skipped:
                raise InputError(f"{self.description}: column {name!r} cannot be read ({self.skipped[name]})")
            if name not in self.columns:
                raise InputError(f"{self.description}: no column {name!r}")


def arrow_kind(kind: pa.DataType) -> str | None:
    """``numerical``, ``categorical`` (text, booleans, dictionaries of text) or None for an Arrow type."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "categorical"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return "numerical"
    return None


def _parquet(path: Path) -> FileTable:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read as Parquet: {str(exc).splitlines()[0][:300]}") from exc
    if handle.metadata.num_rows == 0:
        raise InputError(f"{path}: the file has no rows")
    columns: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for field in handle.schema_arrow:
        kind = arrow_kind(field.type)
        if kind is None:
            skipped[field.name] = f"unsupported type {field.type}"
        else:
            columns[field.name] = kind

    def read(names: list[str]) -> pa.Table:
        try:
            table = handle.read(columns=list(dict.fromkeys(names)))
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: cannot read as Parquet: {str(exc).splitlines()[0][:300]}") from exc
        return pa.table(
            {
                name: column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
                for name, column in zip(table.column_names, table.columns, strict=True)
            }
        )

    return FileTable(str(path), columns, skipped, read)


@contextmanager
def open_files(*paths: Path) -> Iterator[list[FileTable]]:
    """A :class:`FileTable` per path; text files share one private embedded ClickHouse, open meanwhile."""
    from detectors.file_format import check_file

    formats = [check_file(p)[1] for p in paths]
    if all(fmt == "Parquet" for fmt in formats):
        yield [_parquet(p) for p in paths]
        return
    import shutil

    from detectors.drift.sample import Sample
    from monitor.storage import connect_dsn, quote_identifier

    workdir = Path(tempfile.mkdtemp(prefix="monitor-estimate-"))
    storage = connect_dsn(f"chdb://{workdir / 'db'}", "estimate")
    try:
        tables = []
        for path, fmt in zip(paths, formats, strict=True):
            if fmt == "Parquet":
                tables.append(_parquet(path))
                continue
            sample = Sample.from_file(storage, path)

            def read(names: list[str], sample: Sample = sample) -> pa.Table:
                select = ", ".join(quote_identifier(n) for n in dict.fromkeys(names))
                return storage.arrow(f"SELECT {select} FROM {sample.from_sql}", settings=ORDERED)

            kinds = {name: str(spec.kind) for name, spec in sample.columns.items()}
            tables.append(FileTable(sample.description, kinds, dict(sample.skipped), read))
        yield tables
    finally:
        storage.close()
        shutil.rmtree(workdir, ignore_errors=True)
