"""The exact KS/Wasserstein query of :func:`detectors.drift.collect.compare_numeric_exact` against scipy,
and its per-value counts against numpy, on columns with heavy ties, few values, one side's values all
below the other's, and negative values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.drift.collect import compare_numeric_exact
from monitor.storage import Storage
from tests.detectors.drift_oracle import files_storage, parquet_sample

__all__ = ["files_storage"]  # the fixture, imported


def test_exact_statistics_and_value_counts(files_storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame(
        {
            "normal": rng.normal(0, 1, 900),
            "ties": rng.integers(-6, 6, 900).astype(float),
            "three": rng.choice([-1.5, 0.0, 2.0], 900, p=[0.2, 0.5, 0.3]),
            "apart": rng.uniform(-3, -1, 900),
        }
    )
    cur = pd.DataFrame(
        {
            "normal": rng.normal(0.3, 1.2, 700),
            "ties": rng.integers(-3, 9, 700).astype(float),
            "three": rng.choice([-1.5, 0.0, 2.0], 700, p=[0.4, 0.4, 0.2]),
            "apart": rng.uniform(1, 4, 700),
        }
    )
    ref.loc[:49, "normal"] = np.nan  # missing values take no part
    names = list(ref.columns)
    sizes = {n: (int(ref[n].notna().sum()), int(cur[n].notna().sum())) for n in names}
    got = compare_numeric_exact(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", ref),
        parquet_sample(files_storage, tmp_path, "c", cur),
        names,
        sizes,
    )
    for name in names:
        a, b = ref[name].dropna().to_numpy(), cur[name].dropna().to_numpy()
        assert got[name].ks_statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12), name
        assert got[name].wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9), name
    values, ref_counts = np.unique(ref["three"], return_counts=True)
    cur_counts = [int((cur["three"] == v).sum()) for v in values]
    assert got["three"].value_counts == {
        float(v): (int(r), c) for v, r, c in zip(values, ref_counts, cur_counts, strict=True)
    }
    assert got["normal"].value_counts is None and got["ties"].value_counts is None  # more than 5 values
