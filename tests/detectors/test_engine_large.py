"""Large windows (> 200,000 values of a column): the histogram path within the contract's bounds.

Bounds (CONTRACT.md): KS statistic within 0.002 absolute and its p-value scipy's asymptotic one for the
reported statistic and sizes; wasserstein_norm within 1% relative; psi/js within 1e-6 relative.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors import histogram
from detectors.engine import DriftOptions, compare
from detectors.histogram import KS_TOLERANCE, compare_histograms
from monitor.storage import Storage
from tests.detectors.drift_oracle import expected_numeric, files_storage, parquet_sample

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


def numpy_query(ref: np.ndarray, cur: np.ndarray, center: float, scale: float) -> histogram.QueryFn:
    """The GROUP BY of detectors.collect in numpy (same key definition), for many cheap cases."""

    def ordered(x: np.ndarray) -> np.ndarray:
        raw = ((x - center) * scale).view(np.uint64)
        return np.where(raw >> np.uint64(63), ~raw, raw | np.uint64(1 << 63))

    def query(bits: int, parent_bits: int, parents: Sequence[int] | None) -> list[tuple]:
        rows: list[tuple] = []
        for side, x in enumerate((ref, cur)):
            if parents is not None:
                x = x[np.isin(ordered(x) >> np.uint64(64 - parent_bits), np.array(parents, dtype=np.uint64))]
            key = x if bits >= 64 else ordered(x) >> np.uint64(64 - bits)
            unique, inverse = np.unique(key, return_inverse=True)
            counts = np.bincount(inverse, minlength=len(unique))
            sums = np.bincount(inverse, weights=x, minlength=len(unique))
            rows += [(side, k, c, t) for k, c, t in zip(unique.tolist(), counts.tolist(), sums.tolist(), strict=True)]
        return rows

    return query


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_histogram_bounds_on_many_shapes(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    if seed == 3:  # exercise the two-step refinement (coarse split before exact values)
        monkeypatch.setattr(histogram, "REFINE_MAX_ROWS", 1000)
    for name, (ref, cur) in distributions(rng, 60_000, 90_000).items():
        center = float(np.quantile(ref, 0.5))
        std = float(np.std(ref))
        scale = 1.0 / std if std > 0 else 1.0
        result = compare_histograms(
            numpy_query(ref, cur, center, scale), len(ref), len(cur), center, scale, max(ref.max(), cur.max()), True
        )
        exact_d = float(stats.ks_2samp(ref, cur).statistic)
        assert exact_d - KS_TOLERANCE - 1e-12 <= result.ks_statistic <= exact_d + 1e-12, name
        assert result.ks_statistic + result.ks_bound >= exact_d - 1e-12, f"{name}: the stated bound holds"
        assert result.wasserstein == pytest.approx(stats.wasserstein_distance(ref, cur), rel=0.01), name


def test_few_values_are_counted_exactly() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice([0.0, 1.0, 2.5], 50_000, p=[0.5, 0.3, 0.2])
    cur = rng.choice([0.0, 1.0, 2.5, 7.0], 60_000, p=[0.4, 0.3, 0.2, 0.1])
    result = compare_histograms(numpy_query(ref, cur, 1.0, 1.0), len(ref), len(cur), 1.0, 1.0, 7.0, True)
    assert result.value_counts == {v: (int(np.sum(ref == v)), int(np.sum(cur == v))) for v in (0.0, 1.0, 2.5, 7.0)}
    assert result.ks_statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert result.wasserstein == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)
