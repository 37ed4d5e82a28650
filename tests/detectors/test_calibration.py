"""Calibrated thresholds: mean + 3 std (log scale) of the distance between same-distribution samples of the real sizes,
recomputed here independently (scipy's Wasserstein distance, the contract's PSI and JS formulas) from the
same draws; and ``monitor drift --threshold calibrated --multivariate`` as users run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from detectors.drift.calibration import REPLICATES, calibrate, seed_of, window_bucket

MONITOR = str(Path(sys.executable).parent / "monitor")


def _psi(r: np.ndarray, c: np.ndarray) -> float:
    r, c = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
    return float(np.sum((c - r) * np.log(c / r)))


def _decile_shares(ref: np.ndarray, values: np.ndarray) -> np.ndarray:
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    index = np.array([np.sum(v >= edges) for v in values])  # bin (-inf, e1) is 0, [e1, e2) is 1, ...
    return np.bincount(index, minlength=len(edges) + 1) / len(values)


def expected(pool: np.ndarray, method: str, n_ref: int, n_cur: int, seed: int, categorical: bool = False) -> float:
    """The same draws from the sorted pool (``rng.choice``), each statistic computed on the drawn values."""
    rng = np.random.default_rng(seed)
    pool = np.sort(pool.astype(str) if categorical else pool)
    values = np.unique(pool, return_inverse=True)[1] if categorical else pool
    found = []
    for _ in range(REPLICATES):
        ref, cur = rng.choice(values, n_ref), rng.choice(values, n_cur)
        if categorical:
            k = values.max() + 1
            p, q = np.bincount(ref, minlength=k) / n_ref, np.bincount(cur, minlength=k) / n_cur
        elif method != "wasserstein_norm":
            p, q = _decile_shares(ref, ref), _decile_shares(ref, cur)
        if method == "wasserstein_norm":
            found.append(wasserstein_distance(ref, cur) / ref.std())
        elif method == "psi":
            found.append(_psi(p, q))
        else:
            found.append(jensenshannon(p, q, base=2))
    logs = np.log(found)
    return float(np.exp(np.mean(logs) + 3 * np.std(logs, ddof=1)))


@pytest.mark.parametrize("method", ["wasserstein_norm", "psi", "jensen_shannon"])
def test_threshold_is_mean_plus_three_std_of_log_same_distribution_draws(method: str) -> None:
    pool = np.random.default_rng(1).lognormal(0, 1, 3000)
    found = calibrate(pool, "numerical", method, 3000, 400, seed=11)
    assert found.threshold == pytest.approx(expected(pool, method, 3000, 400, 11), rel=1e-9)
    assert found.replicates == REPLICATES and found.n_current == 400


def test_categorical_threshold_and_window_size_dependence() -> None:
    pool = np.random.default_rng(2).choice(["a", "b", "c", "d"], 2000, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    small = calibrate(pool, "categorical", "jensen_shannon", 2000, 200, seed=3)
    large = calibrate(pool, "categorical", "jensen_shannon", 2000, 20_000, seed=3)
    assert small.threshold == pytest.approx(expected(pool, "jensen_shannon", 2000, 200, 3, categorical=True))
    assert large.threshold < small.threshold / 2  # distances between same-distribution samples shrink with n


def test_window_bucket() -> None:
    assert window_bucket(10) == 10
    assert window_bucket(1480) == window_bucket(1512) == 1448  # 2 ** 10.5
    assert all(window_bucket(n) <= n < window_bucket(n) * 2**0.25 + 1 for n in (17, 100, 999, 12_345, 10**6))


def test_cli_calibrated_thresholds_and_multivariate_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"amount": rng.normal(0, 1, 2500), "tier": rng.choice(["a", "b", "c"], 2500)})
    cur = pd.DataFrame({"amount": rng.normal(0.05, 1, 300), "tier": rng.choice(["a", "b", "c"], 300)})
    ref["fee"] = ref["amount"] + rng.normal(0, 0.3, 2500)  # correlated: PCA keeps fewer components than columns
    cur["fee"] = cur["amount"] + rng.normal(0, 0.3, 300)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    args = [MONITOR, "drift", "--reference", tmp_path / "ref.parquet", "--current", tmp_path / "cur.parquet"]
    done = subprocess.run(
        [*map(str, args), "--threshold", "calibrated", "--multivariate", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    amount, tier = doc["columns"]["amount"], doc["columns"]["tier"]
    assert amount["method"] == "wasserstein_norm" and amount["threshold_source"] == "calibrated"
    pool = ref["amount"].to_numpy()  # the engine's pool: every value
    assert amount["threshold"] == pytest.approx(
        expected(pool, "wasserstein_norm", 2500, 300, seed_of("amount", 300)), rel=1e-6
    )
    assert amount["threshold"] > 0.1  # 300 rows: the fixed 0.1 would alarm on noise
    assert tier["method"] == "jensen_shannon" and tier["threshold_source"] == "calibrated"
    tier_pool = ref["tier"].to_numpy()
    assert tier["threshold"] == pytest.approx(
        expected(tier_pool, "jensen_shannon", 2500, 300, seed_of("tier", 300), categorical=True), rel=1e-6
    )
    assert [set(m) for m in doc["multivariate"]] == [{"method", "value", "threshold", "drift"}] * 2
    assert [m["method"] for m in doc["multivariate"]] == ["pca_reconstruction", "domain_classifier"]
    assert all(m["drift"] is False and 0 < m["value"] < m["threshold"] for m in doc["multivariate"])

    plain = subprocess.run(
        [
            *map(str, args),
            "--threshold",
            "calibrated",
            "--threshold",
            "tier=0.2",
            "--format",
            "table",
            "--multivariate",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    assert "multivariate pca_reconstruction:" in plain.stdout and "multivariate domain_classifier:" in plain.stdout
    lines = {line.split()[0]: line for line in plain.stdout.splitlines() if line.split()}
    assert "(calibrated)" in lines["amount"]  # the global mode
    assert " 0.2 " in lines["tier"] and "(calibrated)" not in lines["tier"]  # a configured number wins
    bad = subprocess.run([*map(str, args), "--threshold", "soon"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "neither a number nor 'calibrated'" in bad.stderr
