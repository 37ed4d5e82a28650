"""Multivariate drift: a correlation flip that no column shows, caught by PCA reconstruction and the domain
classifier; same-distribution data alarming at most at the nominal rate; PCA checked against scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from detectors.drift.engine import DriftOptions, compare
from detectors.drift.multivariate import domain, pca
from detectors.drift.multivariate.compare import MultivariateOptions, compare_rows
from detectors.drift.multivariate.result import METHODS
from detectors.drift.multivariate.rows import Rows, draw
from detectors.drift.sample import Sample
from monitor.storage import Storage


def correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    """Two standard normal features with correlation ``rho`` (each marginal is N(0, 1) whatever rho),
    and an independent categorical one."""
    rng = np.random.default_rng(seed)
    xy = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], n)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "tier": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})


def rows_of(frame: pd.DataFrame) -> Rows:
    return Rows(
        {c: frame[c].to_numpy(float) for c in ("x", "y")},
        {"tier": frame["tier"].to_numpy(object)},
        len(frame),
        len(frame),
    )


def test_correlation_flip_is_caught_while_no_column_drifts(storage: Storage, tmp_path: Path) -> None:
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    correlated(4000, 0.8, seed=1).to_parquet(ref_path)
    correlated(3000, -0.8, seed=2).to_parquet(cur_path)  # the same marginals, the opposite relation
    reference, current = Sample.from_file(storage, ref_path), Sample.from_file(storage, cur_path)
    result = compare(storage, reference, current, DriftOptions(multivariate=METHODS))
    assert {c.column: c.drift for c in result.columns.values()} == {"x": False, "y": False, "tier": False}
    assert {c.column: c.stats["ks"]["p_value"] > 0.01 for c in result.columns.values() if c.kind == "numerical"} == {
        "x": True,
        "y": True,
    }
    verdicts = {m.method: m for m in result.multivariate or ()}
    assert set(verdicts) == set(METHODS)
    assert verdicts["pca_reconstruction"].drift is True
    assert verdicts["pca_reconstruction"].value > 2 * verdicts["pca_reconstruction"].threshold
    assert verdicts["domain_classifier"].drift is True and verdicts["domain_classifier"].value > 0.75
    assert verdicts["pca_reconstruction"].n_reference == 4000 and verdicts["pca_reconstruction"].n_current == 3000


def test_same_correlation_is_not_flagged(storage: Storage, tmp_path: Path) -> None:
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    correlated(4000, 0.8, seed=3).to_parquet(ref_path)
    correlated(3000, 0.8, seed=4).to_parquet(cur_path)
    reference, current = Sample.from_file(storage, ref_path), Sample.from_file(storage, cur_path)
    result = compare(storage, reference, current, DriftOptions(multivariate=METHODS))
    assert [m.drift for m in result.multivariate or ()] == [False, False]


def test_rows_are_bounded_per_side(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    correlated(5000, 0.5, seed=5).to_parquet(path)
    sample = Sample.from_file(storage, path)
    drawn = draw(storage, sample, ["x", "tier"], {"x": "numerical", "tier": "categorical"}, limit=700)
    assert drawn.count == 700 and drawn.total == 5000 and len(drawn.numerical["x"]) == 700
    assert set(drawn.categorical["tier"]) <= {"a", "b", "c"}


def test_pca_matches_scikit_learn() -> None:
    """The kept components span scikit-learn's PCA(n_components=0.65) subspace and the per-row errors are
    the distances to scikit-learn's reconstruction, on the same standardised matrix."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(3000, 3))
    numbers = {f"f{i}": base @ rng.normal(size=3) + rng.normal(0, 0.3, 3000) for i in range(6)}
    numbers["f0"][::50] = np.nan  # imputed with the reference mean
    reference = Rows(numbers, {}, 3000, 3000)
    fitted = pca.fit(reference)
    matrix = fitted.encoder.transform(reference)
    ours_std = np.nanstd(numbers["f1"])
    assert matrix[:, 1] == pytest.approx((numbers["f1"] - np.nanmean(numbers["f1"])) / ours_std)
    sk = PCA(n_components=0.65, svd_solver="full").fit(matrix)
    assert fitted.components.shape == sk.components_.shape
    projector = fitted.components.T @ fitted.components
    assert projector == pytest.approx(sk.components_.T @ sk.components_, abs=1e-8)
    rebuilt = sk.inverse_transform(sk.transform(matrix))
    assert fitted.errors(reference) == pytest.approx(np.linalg.norm(matrix - rebuilt, axis=1), abs=1e-8)


def test_pca_threshold_is_the_spread_of_reference_chunks() -> None:
    """mean + 3 std of the mean error over chunks of the window's size, drawn from fresh reference-like
    rows, agrees with the fitted threshold (which uses out-of-fold errors and sigma / sqrt(m))."""
    fitted = pca.fit(rows_of(correlated(20_000, 0.8, seed=8)))
    fresh = fitted.errors(rows_of(correlated(200_000, 0.8, seed=9)))
    for m in (500, 2000):
        chunks = fresh[: len(fresh) // m * m].reshape(-1, m).mean(axis=1)
        assert fitted.threshold(m) == pytest.approx(chunks.mean() + 3 * chunks.std(ddof=1), rel=0.03)


def test_same_distribution_alarms_at_or_below_the_nominal_rate() -> None:
    """Mean + 3 std is a one-sided 0.13% rate for a normal mean; over 200 seeds of 2,000 reference and
    1,000 window rows (binomial: P(3 or more) < 0.3% at that rate), at most 2 alarms."""
    alarms = 0
    for seed in range(200):
        ref = rows_of(correlated(2000, 0.6, seed=10_000 + seed))
        cur = rows_of(correlated(1000, 0.6, seed=20_000 + seed))
        (found,) = compare_rows(ref, cur, MultivariateOptions(methods=("pca_reconstruction",), seed=seed))
        alarms += bool(found.drift)
    assert alarms <= 2


def test_domain_classifier_same_distribution_and_null_threshold() -> None:
    alarms = 0
    aucs = []
    for seed in range(8):
        ref, cur = rows_of(correlated(600, 0.6, seed=30_000 + seed)), rows_of(correlated(600, 0.6, seed=40_000 + seed))
        found = domain.classify(ref, cur, seed=seed)
        aucs.append(found.auc)
        alarms += found.auc >= found.threshold
    assert alarms <= 1
    assert abs(np.mean(aucs) - 0.5) < 0.03  # no leak between folds: indistinguishable sides score 0.5
    # Mann-Whitney's null std for 600 vs 600 is sqrt(1201 / (12 * 600 * 600)) = 0.0167: 0.5 + 3 std = 0.550
    assert domain.null_threshold(600, 600) == pytest.approx(0.55, abs=1e-3)
    assert domain.null_threshold(100, 100) == pytest.approx(0.5 + 3 * np.sqrt(201 / (12 * 100 * 100)))
