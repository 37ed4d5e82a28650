"""Large windows (> 200,000 values of a column): the histogram path within the contract's bounds.

Bounds (docs/drift.md): KS statistic within 0.002 absolute and its p-value scipy's asymptotic one for the
reported statistic and sizes; wasserstein_norm within 1% relative; psi/js within 1e-6 relative.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from detectors.drift import histogram
from detectors.drift.engine import DriftOptions, compare
from detectors.drift.histogram import KS_TOLERANCE, Grid, compare_histograms
from monitor.storage import Storage
from tests.detectors.drift_oracle import (
    compare_tables,
    decile_proportions,
    expected_numeric,
    files_storage,
    parquet_sample,
)

__all__ = ["files_storage"]


def distributions(rng: np.random.Generator, n_ref: int, n_cur: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Unchanged, drifted and adversarial pairs: ties, spikes, heavy tails, outliers, constant reference."""
    spike = 0.3
    return {
        "normal": (rng.normal(size=n_ref), rng.normal(size=n_cur)),
        "shift": (rng.normal(size=n_ref), rng.normal(0.05, 1, n_cur)),
        "lognormal": (rng.lognormal(size=n_ref), rng.lognormal(size=n_cur)),
        "poisson_ties": (rng.poisson(5, n_ref).astype(float), rng.poisson(5.1, n_cur).astype(float)),
        "spike_at_zero": (
            np.where(rng.random(n_ref) < spike, 0.0, rng.normal(size=n_ref)),
            np.where(rng.random(n_cur) < spike, 0.0, rng.normal(size=n_cur)),
        ),
        "pareto_tail": (rng.pareto(1.0, n_ref), rng.pareto(1.0, n_cur)),
        "narrow_current": (rng.normal(size=n_ref), rng.normal(0.3, 0.001, n_cur)),
        "constant_reference": (np.full(n_ref, 3.0), np.where(rng.random(n_cur) < 0.5, 3.0, rng.normal(3, 1, n_cur))),
        "outlier": (np.r_[rng.normal(size=n_ref - 1), 1e12], rng.normal(size=n_cur)),
        "large_offset": (1e6 + rng.normal(0, 1e-3, n_ref), 1e6 + rng.normal(1e-4, 1e-3, n_cur)),
        "negative": (-rng.lognormal(size=n_ref), -rng.lognormal(0.01, 1, n_cur)),
    }


def check_large(column: dict, ref: np.ndarray, cur: np.ndarray) -> None:
    want = expected_numeric(ref, cur)
    got = column["stats"]
    d = got["ks"]["statistic"]
    assert want.ks - KS_TOLERANCE - 1e-12 <= d <= want.ks + 1e-12, "never above the exact D, at most 0.0015 below"
    n1, n2 = len(ref[np.isfinite(ref)]), len(cur[np.isfinite(cur)])
    asymptotic = stats.kstwo.sf(d, round(n1 * n2 / (n1 + n2)))
    assert got["ks"]["p_value"] == pytest.approx(asymptotic, rel=1e-9, abs=1e-300)
    assert got["wasserstein_norm"] == pytest.approx(want.wasserstein_norm, rel=0.01)
    for key in ("psi", "js", "hellinger"):
        assert got[key] == pytest.approx(getattr(want, key), rel=1e-6, abs=1e-12)
    assert column["approximate"] is True


@pytest.mark.slow
def test_large_windows_within_contract_bounds(files_storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(2026)
    pairs = distributions(rng, 120_000, 150_000)
    ref = pd.DataFrame({name: pair[0] for name, pair in pairs.items()})
    cur = pd.DataFrame({name: pair[1] for name, pair in pairs.items()})
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "ref", ref),
        parquet_sample(files_storage, tmp_path, "cur", cur),
    ).to_contract()
    for name, (r, c) in pairs.items():
        check_large(doc["columns"][name], r, c)


def test_exact_limit_switches_paths(files_storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    r, c = rng.normal(size=3000), rng.normal(0.1, 1, 2000)
    ref = parquet_sample(files_storage, tmp_path, "r", pd.DataFrame({"x": r}))
    cur = parquet_sample(files_storage, tmp_path, "c", pd.DataFrame({"x": c}))
    large = compare(files_storage, ref, cur, DriftOptions(exact_limit=1000)).to_contract()["columns"]["x"]
    exact = compare(files_storage, ref, cur).to_contract()["columns"]["x"]
    assert "approximate" not in exact
    check_large(large, r, c)
    want = expected_numeric(r, c)
    assert exact["stats"]["ks"]["statistic"] == pytest.approx(want.ks, abs=1e-12)
    assert exact["stats"]["ks"]["p_value"] == pytest.approx(want.ks_p, rel=0.01)


# ---------------------------------------------------------------- the histogram arithmetic alone


def numpy_query(ref: np.ndarray, cur: np.ndarray, grid: Grid) -> histogram.QueryFn:
    """The GROUP BY of detectors.drift.collect in numpy (same key definition), for many cheap cases."""

    def ordered(x: np.ndarray) -> np.ndarray:
        raw = ((x - grid.center) * grid.scale).view(np.uint64)
        return np.where(raw >> np.uint64(63), ~raw, raw | np.uint64(1 << 63))

    def query(
        bits: int, parent_bits: int, parents: Sequence[int] | None, max_keys: int | None
    ) -> histogram.Columns | None:
        rows: list[tuple] = []
        for side, x in enumerate((ref, cur)):
            missing = int(np.sum(~np.isfinite(x)))
            x = x[np.isfinite(x)]
            if parents is None and missing:
                rows.append((side, 0, histogram.MISSING_PART, missing, 0.0))
            if parents is not None:
                x = x[np.isin(ordered(x) >> np.uint64(64 - parent_bits), np.array(parents, dtype=np.uint64))]
            if bits >= 64:
                unique, inverse = np.unique(x, return_inverse=True)
                counts = np.bincount(inverse, minlength=len(unique))
                sums = np.bincount(inverse, weights=x, minlength=len(unique))
                rows += [
                    (side, v, 0, c, t) for v, c, t in zip(unique.tolist(), counts.tolist(), sums.tolist(), strict=True)
                ]
                continue
            key = ordered(x) >> np.uint64(64 - bits)
            part = np.searchsorted(grid.edges, x, side="right").astype(np.uint64)
            pairs = np.stack([key, part], axis=1)
            unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            counts = np.bincount(inverse, minlength=len(unique))
            sums = np.bincount(inverse, weights=x, minlength=len(unique))
            rows += [
                (side, int(k), int(p), int(c), float(t))
                for (k, p), c, t in zip(unique.tolist(), counts.tolist(), sums.tolist(), strict=True)
            ]
        if max_keys is not None and len(rows) >= max_keys:
            return None
        columns = list(zip(*rows, strict=True)) if rows else [[]] * 5
        dtypes = (np.int64, np.float64 if bits >= 64 else np.uint64, np.int64, np.int64, np.float64)
        return tuple(np.array(c, dtype=t) for c, t in zip(columns, dtypes, strict=True))  # type: ignore[return-value]

    return query


def grid_of(ref: np.ndarray) -> Grid:
    std = float(np.std(ref))
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    return Grid(float(np.quantile(ref, 0.5)), 1.0 / std if std > 0 else 1.0, edges)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_histogram_bounds_on_many_shapes(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    if seed == 3:  # exercise the two-step refinement (a finer split before exact values)
        monkeypatch.setattr(histogram, "MAX_EXACT_VALUES", 50)
    for name, (ref, cur) in distributions(rng, 30_000, 45_000).items():
        cur = cur.copy()
        cur[::97] = np.nan  # missing values are counted by the histogram query itself
        grid = grid_of(ref)
        result = compare_histograms(numpy_query(ref, cur, grid), grid, True, seed == 2)
        assert (result.n_current, result.missing_current) == (int(np.isfinite(cur).sum()), int(np.isnan(cur).sum()))
        cur = cur[np.isfinite(cur)]
        exact_d = float(stats.ks_2samp(ref, cur).statistic)
        assert exact_d - KS_TOLERANCE - 1e-12 <= result.ks_statistic <= exact_d + 1e-12, name
        assert result.ks_statistic + result.ks_bound >= exact_d - 1e-12, f"{name}: the stated bound holds"
        assert result.wasserstein == pytest.approx(stats.wasserstein_distance(ref, cur), rel=0.01), name
        r, c = decile_proportions(ref, cur)
        assert np.allclose(np.array(result.reference_bins) / len(ref), r, rtol=0, atol=1e-15), name
        assert np.allclose(np.array(result.current_bins) / len(cur), c, rtol=0, atol=1e-15), name


def test_few_values_are_counted_exactly() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice([0.0, 1.0, 2.5], 50_000, p=[0.5, 0.3, 0.2])
    cur = rng.choice([0.0, 1.0, 2.5, 7.0], 60_000, p=[0.4, 0.3, 0.2, 0.1])
    grid = Grid(1.0, 1.0, np.array([0.0, 1.0, 2.5]))
    result = compare_histograms(numpy_query(ref, cur, grid), grid, True)
    assert result.value_counts == {v: (int(np.sum(ref == v)), int(np.sum(cur == v))) for v in (0.0, 1.0, 2.5, 7.0)}
    assert result.ks_statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert result.wasserstein == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)


def test_refinement_with_a_cap_on_distinct_values_in_clickhouse(
    files_storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spike inside continuous data forces refinement; with the exact step capped, the finer step runs."""
    monkeypatch.setattr(histogram, "MAX_EXACT_VALUES", 100)
    rng = np.random.default_rng(12)
    ref = np.where(rng.random(20_000) < 0.3, 0.0, rng.normal(0, 1e-6, 20_000))
    cur = np.where(rng.random(30_000) < 0.2, 0.0, rng.normal(0, 1e-6, 30_000))
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", pd.DataFrame({"x": ref})),
        parquet_sample(files_storage, tmp_path, "c", pd.DataFrame({"x": cur})),
        DriftOptions(exact_limit=1000),
    ).to_contract()
    check_large(doc["columns"]["x"], ref, cur)


def test_missing_values_on_the_large_path(files_storage: Storage, tmp_path: Path) -> None:
    """The histogram query counts the current side's missing values (NULL and NaN) itself."""
    rng = np.random.default_rng(31)
    ref = rng.normal(size=150_000)
    ref[::50] = np.nan
    cur = rng.normal(0.02, 1, 150_000)
    cur[::4] = np.nan
    cur_null = pa.array(np.where(np.arange(150_000) % 7 == 0, None, cur), pa.float64())  # NULLs and NaNs
    few_ref = rng.normal(size=100_000)
    few_cur = np.where(rng.random(150_000) < 0.9, np.nan, rng.normal(0.1, 1, 150_000))  # 115k values in all
    doc = compare_tables(
        files_storage,
        tmp_path,
        pa.table({"x": ref, "few": few_ref[np.arange(150_000) % 100_000]}),
        pa.table({"x": cur_null, "few": few_cur}),
    )
    x = doc["columns"]["x"]
    cur_values = np.where(np.arange(150_000) % 7 == 0, np.nan, cur)
    assert x["missing_share"]["current"] == pytest.approx(np.isnan(cur_values).mean())
    assert x["missing_share"]["reference"] == pytest.approx(np.isnan(ref).mean())
    assert x["n_current"] == int(np.isfinite(cur_values).sum())
    check_large(x, ref, cur_values)
    few = doc["columns"]["few"]
    few_ref_values = few_ref[np.arange(150_000) % 100_000]
    assert "approximate" not in few, "150k + 15k values: the exact path, decided after counting"
    want = expected_numeric(few_ref_values, few_cur)
    assert few["stats"]["ks"]["statistic"] == pytest.approx(want.ks, abs=1e-9)
    assert few["stats"]["wasserstein_norm"] == pytest.approx(want.wasserstein_norm, rel=1e-9)
