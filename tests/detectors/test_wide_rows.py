"""Multivariate row samples of a wide model: 1000 features of 256 characters (three bytes each in UTF-8)
cannot be named in one statement, so their columns are read in batches; every statement stays under
half of ``max_query_size`` and the batches come back as the same rows in the same order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.drift.multivariate.rows import Rows, column_batches, draw, draw_groups
from detectors.drift.sample import Sample
from monitor.errors import StorageError
from monitor.storage import Storage
from monitor.storage.statements import MAX_QUERY_SIZE, read_aligned
from tests.detectors.statement_sizes import statements

__all__ = ["statements"]  # the fixture, imported

ROWS = 90
NAMES = [f"{j:03d}" + "名" * 253 for j in range(1000)]
CATEGORICAL = set(NAMES[::50])  # every 50th feature a category: 20 of them


def _value(row: int, j: int) -> float:
    return float(row * 1000 + j)  # which row a value came from, in every column


@pytest.fixture
def sample(storage: Storage, tmp_path: Path) -> Sample:
    rows = np.arange(ROWS)
    columns = {
        name: pa.array([f"r{r}" for r in rows]) if name in CATEGORICAL else pa.array(rows * 1000.0 + j)
        for j, name in enumerate(NAMES)
    }
    pq.write_table(pa.table(columns), tmp_path / "wide.parquet")
    return Sample.from_file(storage, tmp_path / "wide.parquet")


def _rows_of(drawn: Rows) -> np.ndarray:
    """Each drawn row's source row, checked to be the same in every column (the batches are aligned)."""
    kinds = dict.fromkeys(NAMES, "numerical") | dict.fromkeys(CATEGORICAL, "categorical")
    assert set(drawn.numerical) | set(drawn.categorical) == set(kinds)
    source = (drawn.numerical[NAMES[1]] - 1) / 1000
    assert np.array_equal(source, np.round(source))
    for j, name in enumerate(NAMES):
        if name in CATEGORICAL:
            assert list(drawn.categorical[name]) == [f"r{int(r)}" for r in source], name
        else:
            np.testing.assert_array_equal(drawn.numerical[name], source * 1000 + j, err_msg=name)
    return source.astype(np.int64)


def _kinds(sample: Sample) -> dict:
    return {name: sample.columns[name].kind for name in NAMES}


def test_wide_columns_are_read_in_batches_of_aligned_rows(sample: Sample, storage: Storage, statements) -> None:
    kinds = _kinds(sample)
    assert len(column_batches(sample, NAMES, kinds)) > 4  # 1000 x 768 bytes of names and more

    everything = draw(storage, sample, NAMES, kinds, ROWS)  # every row
    assert everything.count == everything.total == ROWS
    assert sorted(_rows_of(everything)) == list(range(ROWS))

    drawn = draw(storage, sample, NAMES, kinds, 25)  # a uniform draw, the same in each batch
    assert drawn.count == 25 and drawn.total == ROWS
    assert len(set(_rows_of(drawn))) == 25
    values, codes = drawn.distinct(NAMES[0])  # the categories' codes, read with their batch
    assert [values[c] for c in codes] == list(drawn.categorical[NAMES[0]])

    assert statements and max(statements) < MAX_QUERY_SIZE // 2


def test_wide_groups_are_read_in_batches_of_aligned_rows(sample: Sample, storage: Storage, statements) -> None:
    kinds = _kinds(sample)
    group_sql = f"intDiv(toInt64({sample.columns[NAMES[1]].expr}), 1000) % 3"  # the source row modulo 3
    groups = draw_groups(storage, sample, NAMES, kinds, group_sql, ROWS)  # (a group above the limit: ``draw``)
    assert groups.keys == (0, 1, 2) and groups.totals == (ROWS // 3,) * 3
    for index, key in enumerate(groups.keys):
        rows = _rows_of(groups.group(index))
        assert sorted(rows) == list(range(key, ROWS, 3))
    assert statements and max(statements) < MAX_QUERY_SIZE // 2


def test_batches_of_columns_must_read_the_same_rows(storage: Storage) -> None:
    """Columns read in several statements are joined by position only after their row keys agree."""
    rows = "(SELECT number AS k, number * 10 AS a, number * 100 AS b FROM numbers(50))"
    same = [f"SELECT k, a FROM {rows} ORDER BY k", f"SELECT k, b FROM {rows} ORDER BY k"]
    first, second = read_aligned(storage, same, "k")
    assert first.column_names == ["a"] and second.column_names == ["b"]
    assert [b // 10 for b in second.column("b").to_pylist()] == first.column("a").to_pylist()
    other_order = [same[0], f"SELECT k, b FROM {rows} ORDER BY k DESC"]
    with pytest.raises(StorageError, match="changed while their columns were read"):
        read_aligned(storage, other_order, "k")
