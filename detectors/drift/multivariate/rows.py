"""Bounded row samples for the multivariate methods, drawn inside ClickHouse.

The column-by-column engine only ever moves summaries out of ClickHouse; the multivariate methods need
rows, so at most ``limit`` of them per side are drawn uniformly (``ORDER BY rand64() LIMIT``) and only
the compared columns come back. When a side has no more rows than the limit, every row is read (in
storage order) and nothing random happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from detectors.drift.collect import categorical_value, numeric_value
from detectors.drift.large import numpy_column
from detectors.drift.sample import NUMERICAL, Kind, Sample
from monitor.storage import Storage, quote_identifier
from monitor.storage.sqlfmt import sql_string

ABSENT = "\x00absent"  # what the query returns for a missing category (Arrow nulls would cost a pandas import)
DEFAULT_ROWS = 50_000  # per side: bounds memory (50,000 x 100 columns of float64 is 40 MB)


@dataclass(frozen=True)
class Rows:
    """Rows of named columns: numbers as float64 (missing = NaN), categories as object arrays (missing = None)."""

    numerical: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    count: int
    total: int  # rows the side holds (``count`` of them were drawn)

    @property
    def names(self) -> list[str]:
        return [*self.numerical, *self.categorical]

    def take(self, index: np.ndarray) -> Rows:
        """The rows at ``index`` (a subset, for cross-fitting and splits)."""
        return Rows(
            {n: v[index] for n, v in self.numerical.items()},
            {n: v[index] for n, v in self.categorical.items()},
            len(index),
            len(index),
        )


def draw(storage: Storage, sample: Sample, names: Sequence[str], kinds: dict[str, Kind], limit: int) -> Rows:
    """At most ``limit`` rows of ``names`` from ``sample`` (uniformly drawn when it holds more)."""
    parts = []
    for index, name in enumerate(names):
        expr = sample.columns[name].expr
        value = (
            numeric_value(expr)
            if kinds[name] == NUMERICAL
            else f"ifNull(toNullable({categorical_value(expr)}), {sql_string(ABSENT)})"
        )
        parts.append(f"{value} AS {quote_identifier(f'c{index}')}")
    settings = dict(sample.settings) or None
    select = f"SELECT {', '.join(parts)} FROM {sample.from_sql} WHERE {sample.where_sql}"
    table = storage.arrow(f"{select} LIMIT {int(limit) + 1}", settings=settings)  # the usual case: all of them
    total = table.num_rows
    if total > limit:  # more than the limit: a uniform draw instead
        count_sql = f"SELECT count() FROM {sample.from_sql} WHERE {sample.where_sql}"
        total = int(storage.rows(count_sql, settings=settings)[0][0])
        table = storage.arrow(f"{select} ORDER BY rand64() LIMIT {int(limit)}", settings=settings)
    numerical: dict[str, np.ndarray] = {}
    categorical: dict[str, np.ndarray] = {}
    for index, name in enumerate(names):
        column = table.column(f"c{index}")
        if kinds[name] == NUMERICAL:
            values = numpy_column(column).astype(np.float64)  # a copy: writable
            values[~np.isfinite(values)] = np.nan
            numerical[name] = values
        else:
            categorical[name] = _objects(column)
    return Rows(numerical, categorical, table.num_rows, total)


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """Strings (None where missing: the query sends :data:`ABSENT`) as an object array, through a
    dictionary: one Python string per distinct value, not per row (and no pandas, which pyarrow's own
    conversions import)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column.combine_chunks())
    lookup = np.asarray([None if v == ABSENT else v for v in encoded.dictionary.to_pylist()], dtype=object)
    result: np.ndarray = lookup[numpy_column(encoded.indices)]
    return result
