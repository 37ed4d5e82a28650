"""What the columns of a CSV or TSV file hold, decided on every row as pandas.read_csv decides.

ClickHouse's own schema inference guesses a type from the first 25,000 rows and reads the rest into
it: a later text value fails the whole read, a quoted number (``"1.5"``, how ``QUOTE_ALL`` or a
one-column pandas frame with a missing value writes it) makes the column text, and values and
headers lose their surrounding spaces. Users check the figures against pandas, so the file is read
here as text, untouched, and each column classified over all its rows, in one pass:

- missing: an empty field or one of pandas' default markers (``NA``, ``null``, ``NaN``, ...);
- numerical: every other value is a number (spaces around it allowed, as pandas allows them);
  whole numbers that fit 64 bits stay integers;
- categorical: anything else; a column of only ``True``/``False`` is boolean (``'true'``/``'false'``,
  as booleans compare everywhere else);
- neither (``kind`` None): a column of only dates or times (ISO 8601), compared by no statistic here.

The numbers are parsed with ``precise_float_parsing``, so a decimal reads as the float Python reads.
Empty lines at the end are no rows (pandas skips them). A TSV file is read by CSV rules with a tab
between fields, as ``pandas.read_csv(sep="\\t")`` reads it: quoted fields may hold tabs, newlines and
doubled quotes, and a backslash is a backslash (ClickHouse's own TSV format would unescape it).
Values that are not UTF-8 are counted per column (``not_utf8``): pandas refuses such a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from monitor.errors import InputError
from monitor.storage import Storage, quote_identifier
from monitor.storage.sqlfmt import sql_string, sql_string_array

TextKind = Literal["numerical", "categorical"]

# ISO 8601 dates and times (SQL string literal of a re2 pattern)
_DATE_OR_TIME = (
    r"'^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?$'"
)

# pandas.read_csv's default missing-value markers (pandas._libs.parsers.STR_NA_VALUES).
MISSING_MARKERS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
_TRUE = ("True", "TRUE", "true")
_FALSE = ("False", "FALSE", "false")

# Every column as the text of its field: no type guessed from a first block, nothing trimmed. Every
# column is text, so the header and one row name the columns: inference reads no further (it does not
# skip trailing empty lines, the reading does).
READ_AS_TEXT = {
    "input_format_csv_use_best_effort_in_schema_inference": 0,
    "input_format_tsv_use_best_effort_in_schema_inference": 0,
    "input_format_csv_trim_whitespaces": 0,
    "input_format_csv_skip_trailing_empty_lines": 1,
    "input_format_max_rows_to_read_for_schema_inference": 1,
    "precise_float_parsing": 1,
}
# A TSV file read as pandas reads it: CSV quoting with a tab between fields.
_TSV_AS_CSV = {"format_csv_delimiter": "\t", "input_format_csv_allow_whitespace_or_tab_as_delimiter": 1}


# Named once per statement (a WITH clause), so each column's expression stays short.
_MARKERS = "__missing_markers"
_WITH = f"WITH {sql_string_array(list(MISSING_MARKERS))} AS {_MARKERS}"


def _missing(x: str) -> str:
    return f"({x} IS NULL OR has({_MARKERS}, {x}))"


@dataclass(frozen=True)
class TextColumn:
    """A column of a text file: its kind and the SQL expression of its value over the raw field ``x``."""

    name: str
    kind: TextKind | None  # None: dates or times
    value: str  # over the column's field, quoted by name
    boolean: bool = False  # only True/False: the value is 'true' or 'false'
    not_utf8: int = 0  # values that are not UTF-8 text


def text_file(path: str, fmt: str) -> tuple[str, dict[str, Any]]:
    """The ``file()`` table function reading a CSV or TSV file (ClickHouse format ``fmt``) and its settings."""
    if fmt == "TSVWithNames":
        return f"file({sql_string(path)}, 'CSVWithNames')", READ_AS_TEXT | _TSV_AS_CSV
    return f"file({sql_string(path)}, {sql_string(fmt)})", dict(READ_AS_TEXT)


def _settings_clause(settings: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{name} = {sql_string(value) if isinstance(value, str) else value}" for name, value in settings.items()
    )


def text_source(table_function: str, columns: list[TextColumn], settings: Mapping[str, Any] = READ_AS_TEXT) -> str:
    """A subquery yielding each column as its typed value, readable wherever a FROM clause is.

    The reading settings travel inside it, so every query over it parses the file the same way.
    """
    parts = ", ".join(f"{column.value} AS {quote_identifier(column.name)}" for column in columns) or "1 AS `_`"
    return f"({_WITH} SELECT {parts} FROM {table_function} SETTINGS {_settings_clause(settings)})"


def classify(
    storage: Storage, table_function: str, settings: Mapping[str, Any] = READ_AS_TEXT
) -> tuple[int, list[TextColumn]]:
    """The file's row count and its columns, classified in one pass (the statement's size is fixed)."""
    settings = dict(settings)
    described = storage.rows(f"DESCRIBE TABLE {table_function}", settings=settings)
    names = [row[0] for row in described]
    x = "x"
    present = f"NOT {_missing(x)}"
    counts = (
        f"countIf({present}), "
        f"countIf({present} AND toFloat64OrNull(trimBoth({x})) IS NULL), "
        f"countIf({present} AND toInt64OrNull(trimBoth({x})) IS NULL), "
        f"countIf({present} AND NOT has({sql_string_array([*_TRUE, *_FALSE])}, {x})), "
        f"countIf({present} AND NOT match({x}, {_DATE_OR_TIME})), "
        f"countIf(NOT isValidUTF8(ifNull({x}, '')))"
    )
    row = storage.rows(
        f"{_WITH} SELECT count(), * APPLY(({x}) -> ({counts})) FROM {table_function}", settings=settings
    )[0]
    rows, per_column = int(row[0]), row[1:]
    return rows, [_column(name, *map(int, c)) for name, c in zip(names, per_column, strict=True)]


def _column(
    name: str, present: int, not_number: int, not_integer: int, not_boolean: int, not_date: int, not_utf8: int
) -> TextColumn:
    if not_utf8:
        return TextColumn(name, "categorical", quote_identifier(name), not_utf8=not_utf8)
    x = quote_identifier(name)
    missing = _missing(x)
    if present and not not_date:
        return TextColumn(name, None, f"if({missing}, NULL, {x})")
    if present == 0:
        return TextColumn(name, "numerical", "CAST(NULL AS Nullable(Float64))")
    if not_boolean == 0:
        value = f"if({missing}, NULL, if(has({sql_string_array(list(_TRUE))}, {x}), 'true', 'false'))"
        return TextColumn(name, "categorical", value, boolean=True)
    if not_integer == 0:
        return TextColumn(name, "numerical", f"if({missing}, NULL, toInt64OrNull(trimBoth({x})))")
    if not_number == 0:
        return TextColumn(name, "numerical", f"if({missing}, NULL, toFloat64OrNull(trimBoth({x})))")
    return TextColumn(name, "categorical", f"if({missing}, NULL, {x})")


def refuse_non_utf8(path: object, columns: list[TextColumn]) -> None:
    """A one-line :class:`InputError` for the first column holding text that is not UTF-8 (pandas
    refuses such a file; read as bytes, its values would become categories of hex)."""
    for column in columns:
        if column.not_utf8:
            raise InputError(
                f"{path}: column {column.name!r} holds text that is not UTF-8 ({column.not_utf8:,} values); "
                "save the file as UTF-8"
            )
