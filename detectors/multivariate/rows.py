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

from detectors.collect import categorical_value, numeric_value
from detectors.sample import NUMERICAL, Kind, Sample
from monitor.storage import Storage, quote_identifier

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
        value = numeric_value(expr) if kinds[name] == NUMERICAL else f"toNullable({categorical_value(expr)})"
        parts.append(f"{value} AS {quote_identifier(f'c{index}')}")
    settings = dict(sample.settings) or None
    total = int(
        storage.rows(f"SELECT count() FROM {sample.from_sql} WHERE {sample.where_sql}", settings=settings)[0][0]
    )
    order = f" ORDER BY rand64() LIMIT {int(limit)}" if total > limit else ""
    table = storage.arrow(
        f"SELECT {', '.join(parts)} FROM {sample.from_sql} WHERE {sample.where_sql}{order}", settings=settings
    )
    numerical: dict[str, np.ndarray] = {}
    categorical: dict[str, np.ndarray] = {}
    for index, name in enumerate(names):
        column = table.column(f"c{index}")
        if kinds[name] == NUMERICAL:
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            values[~np.isfinite(values)] = np.nan
            numerical[name] = values
        else:
            categorical[name] = np.asarray(column.to_pylist(), dtype=object)
    return Rows(numerical, categorical, table.num_rows, total)
