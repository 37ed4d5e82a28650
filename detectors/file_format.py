"""Which data files the offline commands read, checked cheaply before any engine starts.

Kept apart from :mod:`detectors.drift.sample` (which imports the ClickHouse client) so that a command reading
Parquet without ClickHouse (``monitor estimate``) checks its files the same way ``monitor drift`` does
without importing the client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.errors import InputError

# File suffixes chDB reads directly (compression is recognised by ClickHouse from the last suffix).
_FORMATS: dict[str, str] = {
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".csv": "CSVWithNames",
    ".tsv": "TSVWithNames",
}
_COMPRESSION = (".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4")


def check_file(path: str | Path) -> tuple[Path, str]:
    """The absolute path and ClickHouse format of a data file, or :class:`InputError` with a one-line reason.

    Cheap checks only (existence, readability, emptiness, format), so a command can fail fast before
    it opens ClickHouse.
    """
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise InputError(f"{path}: no such file")
    if not resolved.is_file():
        raise InputError(f"{path}: not a file")
    try:
        with resolved.open("rb") as handle:
            head = handle.read(4)
            if head == b"PAR1":  # Parquet starts and ends so; a text file starting so (a column PAR1) does not end so
                handle.seek(-4, 2)
                head = head if handle.read(4) == b"PAR1" else b""
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not head and resolved.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    return resolved.resolve(), file_format(resolved, head)


def file_format(path: Path, head: bytes = b"") -> str:
    """The ClickHouse input format of a data file: Parquet by its magic bytes whatever its name (a
    Parquet file saved as ``data.csv`` is still Parquet), otherwise from its suffix."""
    if head == b"PAR1":
        return "Parquet"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _FORMATS:
        return _FORMATS[suffixes[-1]]
    raise InputError(f"{path}: unsupported format (expected .parquet, .csv or .tsv, optionally compressed)")


def data_lines(path: Path, limit: int = 2) -> int:
    """Non-blank lines after the header of a text file (counted up to ``limit``; compressed files: unknown)."""
    if path.suffix.lower() in _COMPRESSION:
        return limit
    with path.open("rb") as handle:
        lines = 0
        for raw in handle:
            lines += bool(raw.strip())
            if lines > limit:
                break
    return max(lines - 1, 0)


def pandas_index(schema: Any) -> set[str]:
    """The columns of a Parquet schema (a ``pyarrow.Schema``) that pandas reads as the frame's index."""
    return {entry for entry in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(entry, str)}


def parquet_pandas_view(path: Path) -> tuple[set[str], dict[str, str]]:
    """What the Parquet footer says that ClickHouse's types do not: the columns pandas reads as the
    frame's index (``df.to_parquet`` writes a filtered or named index as ``__index_level_0__`` or by its
    name), and columns ClickHouse reads as text or numbers that are neither: bytes (``binary``; pandas
    reads ``bytes``) and durations (ClickHouse reads them as plain integers, without their unit).
    Only the footer is read; a footer pyarrow cannot read changes nothing.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError):
        return set(), {}
    index = pandas_index(schema)
    not_features: dict[str, str] = {}
    for arrow_field in schema:
        data_type = arrow_field.type
        if pa.types.is_dictionary(data_type):
            data_type = data_type.value_type
        if (
            pa.types.is_binary(data_type)
            or pa.types.is_large_binary(data_type)
            or pa.types.is_fixed_size_binary(data_type)
            or pa.types.is_duration(data_type)
        ):
            not_features[arrow_field.name] = str(data_type)
    return index, not_features
