"""Rows of many chunks drawn in one query (``draw_groups``) are those of one query per chunk (``draw``), and
score the same; columns named like the query's own aliases (c0, c1, ...) are read as themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.drift.multivariate import pca
from detectors.drift.multivariate.rows import MISSING, distinct_values, draw, draw_groups
from detectors.drift.sample import Sample
from monitor.storage import Storage

KINDS = {"c2": "categorical", "c0": "numerical", "c1": "numerical"}  # an alias c0 would shadow column c0


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Columns named c0, c1, c2 (the names a query's aliases once took), a categorical one with gaps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    tier = rng.choice(np.array(["a", "b", "c", "zeta"], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05])
    tier[rng.random(n) < 0.05] = None
    return pd.DataFrame({"row": np.arange(n), "c0": x, "c1": 2 * x + rng.normal(0, 0.5, n), "c2": tier})


def test_columns_named_like_aliases_are_read_as_themselves(storage: Storage, tmp_path: Path) -> None:
    frame = _frame(1000, 1)
    frame.to_parquet(tmp_path / "f.parquet")
    drawn = draw(storage, Sample.from_file(storage, tmp_path / "f.parquet"), list(KINDS), KINDS, 10_000)  # type: ignore[arg-type]
    np.testing.assert_array_equal(drawn.numerical["c0"], frame["c0"].to_numpy())
    np.testing.assert_array_equal(drawn.numerical["c1"], frame["c1"].to_numpy())
    assert list(drawn.categorical["c2"]) == list(frame["c2"])
    values, codes = drawn.distinct("c2")  # the codes from the query are np.unique's over the strings
    expected_values, expected_codes = distinct_values(drawn.categorical["c2"])
    assert values == expected_values and values[0] == MISSING
    np.testing.assert_array_equal(codes, expected_codes)


@pytest.mark.parametrize("limit", [10_000, 300])
def test_one_query_for_all_chunks_equals_a_query_per_chunk(storage: Storage, tmp_path: Path, limit: int) -> None:
    """With the limit above every chunk, the same rows and values; below (300 of 400 rows), each chunk drawn
    alone as :func:`draw` does (a uniform draw: same count and total)."""
    _frame(5000, 2).to_parquet(tmp_path / "ref.parquet")
    _frame(4000, 3).to_parquet(tmp_path / "cur.parquet")
    names = list(KINDS)
    fitted = pca.fit(draw(storage, Sample.from_file(storage, tmp_path / "ref.parquet"), names, KINDS, 10_000))  # type: ignore[arg-type]
    current = Sample.from_file(storage, tmp_path / "cur.parquet")
    groups = draw_groups(storage, current, names, KINDS, "intDiv(row, 400)", limit)  # type: ignore[arg-type]
    assert groups.keys == tuple(range(10))
    values = fitted.group_values(groups)
    for index, key in enumerate(groups.keys):
        alone = Sample(current.from_sql, current.columns, f"intDiv(row, 400) = {key}")
        drawn = draw(storage, alone, names, KINDS, limit)  # type: ignore[arg-type]
        group = groups.group(index)
        assert (group.count, group.total) == (drawn.count, drawn.total) == (min(400, limit), 400)
        if limit >= 400:
            np.testing.assert_array_equal(group.numerical["c0"], drawn.numerical["c0"])
            assert list(group.categorical["c2"]) == list(drawn.categorical["c2"])
            assert values[index] == pytest.approx(fitted.value(drawn), rel=1e-12)
        else:
            assert set(group.numerical["c0"]) <= set(_frame(4000, 3)["c0"])
            assert values[index] == pytest.approx(fitted.value(group), rel=1e-12)
