"""The service's multivariate_drift detector and alert rule on embedded ClickHouse: a correlation flip in
the window is flagged (while no feature drifts), the PCA is fitted once per reference and kept, and the
distance thresholds are calibrated (auto) and kept beside the reference summary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alerts.rules import evaluate_rule
from detectors.runner import run_detection
from monitor.settings import AlertRule
from monitor.storage import Storage
from tests.detectors.event_rows import T0, Rows, settings_for, spread, write_events

FEATURES = {"x": "numerical", "y": "numerical", "z": "numerical"}


def frame(n: int, rho: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xy = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], n)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "z": rng.normal(5, 2, n), "prediction": rng.random(n)})


def traffic(storage: Storage, n: int, rho: float, seed: int, end=T0) -> None:
    data = frame(n, rho, seed)
    write_events(
        storage,
        Rows(
            "corr",
            spread(n, end=end),
            {c: data[c].to_numpy() for c in FEATURES},
            prediction=data["prediction"].to_numpy(),
            event_ids=[f"{end.isoformat()}-{seed}-{i}" for i in range(n)],
        ),
    )


@pytest.fixture
def settings(storage: Storage, tmp_path: Path):
    path = tmp_path / "reference.parquet"
    frame(4000, 0.85, seed=1).to_parquet(path)
    config = {
        "features": FEATURES,
        "reference": {"file": str(path)},
        "min_samples": 200,
        "drift": {"multivariate": ["pca_reconstruction", "domain_classifier"]},
        "alerts": [{"when": "multivariate_drift", "notify": []}],
    }
    return settings_for(storage, tmp_path, {"corr": config})


def test_correlation_flip_alerts_and_the_fit_is_kept(storage: Storage, settings) -> None:
    traffic(storage, 1500, rho=0.85, seed=2, end=T0 - timedelta(hours=1))  # same relation
    traffic(storage, 1500, rho=-0.85, seed=3)  # flipped
    rule = settings.models["corr"].alerts[0]

    before = run_detection(storage, settings, "corr", window_end=T0 - timedelta(hours=1), now=T0)
    rows = {r.statistic: r for r in before.select(detector="multivariate_drift")}
    assert set(rows) == {"pca_reconstruction", "domain_classifier"}
    assert rows["pca_reconstruction"].drift is False and rows["domain_classifier"].drift is False
    assert rows["pca_reconstruction"].n_reference == 4000 and rows["pca_reconstruction"].n_current == 1500
    assert evaluate_rule(rule, before).outcome == "clear"

    after = run_detection(storage, settings, "corr", window_end=T0, now=T0)
    rows = {r.statistic: r for r in after.select(detector="multivariate_drift")}
    assert rows["pca_reconstruction"].drift is True and rows["domain_classifier"].drift is True
    assert rows["pca_reconstruction"].value > rows["pca_reconstruction"].threshold
    assert not [r.column for r in after.drifted_columns("feature_drift")]  # no single column drifted
    observation = evaluate_rule(rule, after)
    assert observation.outcome == "triggered" and "pca_reconstruction" in observation.reason
    only_pca = AlertRule.model_validate({"when": "multivariate_drift", "metric": "pca_reconstruction"})
    assert evaluate_rule(only_pca, after).outcome == "triggered"

    (fits,) = storage.rows(f"SELECT count() FROM {storage.table('multivariate_fits')} FINAL")[0]
    assert fits == 1  # fitted on the first run, read back by the second

    # distance thresholds: auto (calibrated, never below the default), kept beside the reference summary
    deciding = [r for r in after.select(detector="feature_drift") if r.column in FEATURES and r.threshold is not None]
    assert {r.statistic for r in deciding} == {"wasserstein_norm"}
    assert all(r.details["threshold_source"] in ("default", "calibrated") and r.threshold >= 0.1 for r in deciding)
    kept = storage.rows(
        f"SELECT count() FROM {storage.table('reference_sides')} FINAL WHERE level LIKE 'calibrated:%'"
    )[0][0]
    assert kept >= len(FEATURES)


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="multivariate_drift's metric"):
        AlertRule.model_validate({"when": "multivariate_drift", "metric": "ks"})
