"""Bounded row samples for the multivariate methods, drawn inside ClickHouse.

The column-by-column engine only ever moves summaries out of ClickHouse; the multivariate methods need
rows, so at most ``limit`` of them per side are drawn uniformly (``ORDER BY rand64() LIMIT``) and only
the compared columns come back. When a side has no more rows than the limit, every row is read (in
storage order) and nothing random happens.

A statement naming every column of a wide model (1000 features with long names) would pass ClickHouse's
``max_query_size``; the columns are then read in batches (:func:`monitor.storage.statements.batches`), one
statement each, and every statement must return the same rows in the same order. There is no row id
common to every source (a file, a window of ``events``, a stored reference), so rows are ordered by
the hash of the whole source row (:data:`ROW_KEY`): equal keys are equal rows, whose columns are equal
too, so the order is the same whatever columns a statement selects. A draw then keeps the rows of
least ``sipHash64(key, seed)`` for a seed chosen per draw (uniform, like ``rand64()``, but the same in
each statement). Each statement also returns the key, and batches whose keys differ (rows written
between two statements) are read again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from detectors.drift.collect import categorical_value, numeric_value
from detectors.drift.large import numpy_column
from detectors.drift.sample import NUMERICAL, Kind, Sample
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string
from monitor.storage.statements import batches, read_aligned, sql_bytes

ABSENT = "\x00absent"  # what the query returns for a missing category (Arrow nulls would cost a pandas import)
MISSING = "\x00missing"  # a missing category among a column's distinct values
Distinct = tuple[tuple[str, ...], np.ndarray]  # sorted distinct values (missing as MISSING), each row's index
DEFAULT_ROWS = 50_000  # per side: bounds memory (50,000 x 100 columns of float64 is 40 MB)
ROW_KEY = "cityHash64(tuple(*))"  # a source row's key (``tuple``: a NULL anywhere would make the hash NULL)
KEY = "__mv_key"
ALIAS_SLACK = 32  # bytes an alias may grow by in a batch (``__mv_0`` vs ``__mv_999``) plus the separator
Columns = tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Distinct]]


@dataclass(frozen=True)
class Rows:
    """Rows of named columns: numbers as float64 (missing = NaN), categories as object arrays (missing = None)."""

    numerical: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    count: int
    total: int  # rows the side holds (``count`` of them were drawn)
    codes: Mapping[str, Distinct] = field(default_factory=dict)  # categorical columns' codes, when the query gave them

    def distinct(self, name: str) -> tuple[list[str], np.ndarray]:
        """The distinct values of categorical column ``name`` (sorted; missing as :data:`MISSING`) and each
        row's index into them: from the query's dictionary when known, else computed."""
        if name in self.codes:
            values, inverse = self.codes[name]
            return list(values), inverse
        return distinct_values(self.categorical[name])

    @property
    def names(self) -> list[str]:
        return [*self.numerical, *self.categorical]

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        """The rows of ``parts`` one after the other (same columns in each)."""
        first = parts[0]
        codes = {  # kept where every part has the same distinct values
            n: (values, np.concatenate([p.codes[n][1] for p in parts]))
            for n, (values, _) in first.codes.items()
            if all(n in p.codes and p.codes[n][0] == values for p in parts)
        }
        return Rows(
            {n: np.concatenate([p.numerical[n] for p in parts]) for n in first.numerical},
            {n: np.concatenate([p.categorical[n] for p in parts]) for n in first.categorical},
            sum(p.count for p in parts),
            sum(p.total for p in parts),
            codes,
        )

    def take(self, index: np.ndarray) -> Rows:
        """The rows at ``index`` (a subset, for cross-fitting and splits)."""
        return Rows(
            {n: v[index] for n, v in self.numerical.items()},
            {n: v[index] for n, v in self.categorical.items()},
            len(index),
            len(index),
            {n: (values, inverse[index]) for n, (values, inverse) in self.codes.items()},
        )


def _alias(index: int, part: str = "") -> str:
    """The ``index``-th column's name in a query: unlike c0, c1, ... it cannot shadow a source column (in
    ClickHouse an alias is visible in its whole SELECT, so ``toString(c0)`` read the alias ``c0``)."""
    return f"__mv{part}_{index}"


def _select(sample: Sample, names: Sequence[str], kinds: dict[str, Kind]) -> str:
    parts = []
    for index, name in enumerate(names):
        expr = sample.columns[name].expr
        value = (
            numeric_value(expr)
            if kinds[name] == NUMERICAL
            else f"ifNull(toNullable({categorical_value(expr)}), {sql_string(ABSENT)})"
        )
        parts.append(f"{value} AS {_alias(index)}")
        if kinds[name] != NUMERICAL:  # a category's hash: its code, found in numpy instead of per row in Python
            parts.append(f"cityHash64({value}) AS {_alias(index, 'h')}")
    return ", ".join(parts)


def _columns(
    table: pa.Table, names: Sequence[str], kinds: dict[str, Kind]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Distinct]]:
    numerical: dict[str, np.ndarray] = {}
    categorical: dict[str, np.ndarray] = {}
    codes: dict[str, Distinct] = {}
    for index, name in enumerate(names):
        column = table.column(_alias(index))
        if kinds[name] == NUMERICAL:
            values = numpy_column(column).astype(np.float64)  # a copy: writable
            values[~np.isfinite(values)] = np.nan
            numerical[name] = values
        else:
            categorical[name], codes[name] = _objects(column, table.column(_alias(index, "h")))
    return numerical, categorical, codes


def _settings(sample: Sample) -> dict[str, Any] | None:
    return dict(sample.settings) or None


def column_batches(sample: Sample, names: Sequence[str], kinds: dict[str, Kind]) -> list[list[str]]:
    """``names`` in batches whose selected SQL fits one statement (one batch for all but wide models)."""
    return batches(list(names), lambda name: sql_bytes(_select(sample, [name], kinds)) + ALIAS_SLACK)


def _read(
    storage: Storage,
    sample: Sample,
    groups: Sequence[Sequence[str]],
    kinds: dict[str, Kind],
    statement: Callable[[str], str],
) -> tuple[Columns, pa.Table]:
    """The columns of ``groups`` (batches of names), one ``statement(select list)`` per batch, and the
    first batch's table (for the extra columns a statement adds). With several batches, every statement
    must order its rows by :data:`KEY` (:data:`ROW_KEY`, added to the select list here), and
    :func:`~monitor.storage.statements.read_aligned` proves they read the same rows."""
    selects = [_select(sample, batch, kinds) for batch in groups]
    if len(groups) > 1:
        statements = [statement(f"{ROW_KEY} AS {KEY}, {select}") for select in selects]
        tables = read_aligned(storage, statements, KEY, _settings(sample))
    else:
        tables = [storage.arrow(statement(selects[0]), settings=_settings(sample))]
    numerical: dict[str, np.ndarray] = {}
    categorical: dict[str, np.ndarray] = {}
    codes: dict[str, Distinct] = {}
    for table, batch in zip(tables, groups, strict=True):
        more = _columns(table, batch, kinds)
        numerical.update(more[0])
        categorical.update(more[1])
        codes.update(more[2])
    return (numerical, categorical, codes), tables[0]


def draw(storage: Storage, sample: Sample, names: Sequence[str], kinds: dict[str, Kind], limit: int) -> Rows:
    """At most ``limit`` rows of ``names`` from ``sample`` (uniformly drawn when it holds more)."""
    settings = _settings(sample)
    groups = column_batches(sample, names, kinds)
    source = f"FROM {sample.from_sql} WHERE {sample.where_sql}"
    count_sql = f"SELECT count() {source}"
    if len(groups) > 1:  # a wide model: several statements, each ordered by the row key
        total = int(storage.rows(count_sql, settings=settings)[0][0])
        if total > limit:
            seed = secrets.randbits(63)
            tail = f"ORDER BY sipHash64({KEY}, {seed}), {KEY} LIMIT {int(limit)}"
        else:
            tail = f"ORDER BY {KEY} LIMIT {total}"
        (numerical, categorical, codes), table = _read(
            storage, sample, groups, kinds, lambda select: f"SELECT {select} {source} {tail}"
        )
        return Rows(numerical, categorical, table.num_rows, total, codes)
    select = f"SELECT {_select(sample, names, kinds)} {source}"
    table = storage.arrow(f"{select} LIMIT {int(limit) + 1}", settings=settings)  # the usual case: all of them
    total = table.num_rows
    if total > limit:  # more than the limit: a uniform draw instead
        total = int(storage.rows(count_sql, settings=settings)[0][0])
        table = storage.arrow(f"{select} ORDER BY rand64() LIMIT {int(limit)}", settings=settings)
    numerical, categorical, codes = _columns(table, names, kinds)
    return Rows(numerical, categorical, table.num_rows, total, codes)


@dataclass(frozen=True)
class Groups:
    """Rows of several groups (windows, chunks): group ``i`` is ``keys[i]``, rows ``bounds[i]`` of ``rows``."""

    rows: Rows
    keys: tuple[int, ...]
    bounds: tuple[tuple[int, int], ...]
    totals: tuple[int, ...]  # rows each group holds (more than it drew when above the limit)

    def group(self, index: int) -> Rows:
        start, end = self.bounds[index]
        return replace(self.rows.take(np.arange(start, end)), total=self.totals[index])


def draw_groups(
    storage: Storage, sample: Sample, names: Sequence[str], kinds: dict[str, Kind], group_sql: str, limit: int
) -> Groups:
    """:func:`draw` for each value of the integer expression ``group_sql`` (e.g. a chunk number), with one
    query for all groups instead of one per group: every group's rows (at most ``limit + 1``) come back
    together, in storage order, and are split here; a group holding more than ``limit`` rows is then
    drawn alone, uniformly, as :func:`draw` does. Memory: up to ``limit + 1`` rows per group."""
    groups_of_names = column_batches(sample, names, kinds)
    sort = f"ORDER BY __mv_group, {KEY} " if len(groups_of_names) > 1 else ""  # wide: the same rows each time
    (numerical, categorical, codes), table = _read(
        storage,
        sample,
        groups_of_names,
        kinds,
        lambda select: (
            f"SELECT {select}, toInt64({group_sql}) AS __mv_group FROM {sample.from_sql} "
            f"WHERE {sample.where_sql} {sort}LIMIT {int(limit) + 1} BY __mv_group"
        ),
    )
    group = numpy_column(table.column("__mv_group"))
    everything = Rows(numerical, categorical, table.num_rows, table.num_rows, codes)
    if group.size and np.any(group[1:] < group[:-1]):  # not already in group order (a file in row order is)
        order = np.argsort(group, kind="stable")  # storage order within a group
        everything, group = everything.take(order), group[order]
    keys, starts, counts = np.unique(group, return_index=True, return_counts=True)
    groups = list(zip(keys.tolist(), starts.tolist(), counts.tolist(), strict=True))
    if all(count <= limit for _, _, count in groups):  # the usual case: every group read whole
        bounds = [(start, start + count) for _, start, count in groups]
        return Groups(everything, tuple(keys.tolist()), tuple(bounds), tuple(counts.tolist()))
    parts: list[Rows] = []
    for key, start, count in groups:
        if count > limit:
            alone = replace(sample, where_sql=f"({sample.where_sql}) AND ({group_sql}) = {int(key)}")
            parts.append(draw(storage, alone, names, kinds, limit))
        else:
            parts.append(everything.take(np.arange(start, start + count)))
    ends = np.cumsum([part.count for part in parts]).tolist()
    bounds = [(end - part.count, end) for part, end in zip(parts, ends, strict=True)]
    totals = tuple(part.total for part in parts)
    return Groups(Rows.concat(parts), tuple(keys.tolist()), tuple(bounds), totals)


def _objects(column: pa.ChunkedArray, hashes: pa.ChunkedArray) -> tuple[np.ndarray, Distinct]:
    """Strings (None where missing: the query sends :data:`ABSENT`) as an object array, and their codes.

    Rows are told apart by the hash of their string (ClickHouse's ``cityHash64``, 64 bits: two of a
    column's categories sharing one is vanishingly unlikely), so the only Python strings made are one per
    distinct value, read from a row that holds it; no pandas (which pyarrow's own conversions import).
    The distinct values are those that occur, sorted, as :func:`distinct_values` gives them.
    """
    keys = numpy_column(hashes)
    if not keys.size:
        return np.empty(0, dtype=object), ((), np.zeros(0, dtype=np.int64))
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    words = [column[int(i)].as_py() for i in first]
    words = [MISSING if w == ABSENT else str(w) for w in words]
    order = np.argsort(np.array(words, dtype=object), kind="stable")  # the distinct values, sorted
    present = tuple(words[i] for i in order)
    position = np.empty(len(words), dtype=np.int64)
    position[order] = np.arange(len(words))
    codes = position[inverse.reshape(-1)]
    lookup = np.asarray([None if w == MISSING else w for w in present], dtype=object)
    objects: np.ndarray = lookup[codes]
    return objects, (present, codes)


def distinct_values(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct values (missing as :data:`MISSING`) and each row's index into them, without a Python
    call per row (a window's rows are many, its categories few)."""
    if not len(values):
        return [], np.zeros(0, dtype=np.int64)
    filled = np.where(values == None, MISSING, values).astype(str)  # noqa: E711 (elementwise)
    distinct, inverse = np.unique(filled, return_inverse=True)
    return [str(c) for c in distinct], inverse.reshape(-1)
