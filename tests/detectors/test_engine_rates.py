"""Default methods on unchanged data (false alarms at or under nominal) and on injected drift (found exactly).

Many independent draws are laid out as many columns of one file pair, so one compare() run gives
hundreds of seeded draws.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.drift.engine import compare
from monitor.storage import Storage
from tests.detectors.drift_oracle import files_storage, parquet_sample

__all__ = ["files_storage"]

NOMINAL = 0.05
MARGIN = 0.001  # one-sided binomial test: "rate <= nominal" is rejected only below this level


def allowed_false_alarms(draws: int) -> int:
    """The most false alarms consistent with a rate at or under NOMINAL (binomial, one-sided, level MARGIN)."""
    return int(stats.binom.ppf(1 - MARGIN, draws, NOMINAL))


@pytest.mark.slow
def test_false_alarm_rate_small_reference(files_storage: Storage, tmp_path: Path) -> None:
    """Reference ≤ 1,000 values: KS / chi-square / z at p < 0.05 flag about 5% of unchanged columns, not more."""
    rng = np.random.default_rng(123)
    n_ref, n_cur, draws = 600, 500, 120
    categories = ["a", "b", "c", "d", "e"]
    weights = [0.3, 0.25, 0.2, 0.15, 0.1]
    ref = {f"n{i}": rng.normal(size=n_ref) for i in range(draws)}
    cur = {f"n{i}": rng.normal(size=n_cur) for i in range(draws)}
    ref |= {f"c{i}": rng.choice(categories, n_ref, p=weights) for i in range(draws)}
    cur |= {f"c{i}": rng.choice(categories, n_cur, p=weights) for i in range(draws)}
    ref |= {f"b{i}": rng.choice(["yes", "no"], n_ref, p=[0.3, 0.7]) for i in range(draws)}
    cur |= {f"b{i}": rng.choice(["yes", "no"], n_cur, p=[0.3, 0.7]) for i in range(draws)}
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", pd.DataFrame(ref)),
        parquet_sample(files_storage, tmp_path, "c", pd.DataFrame(cur)),
    ).to_contract()
    for prefix, method in (("n", "ks"), ("c", "chi2"), ("b", "z")):
        columns = [c for name, c in doc["columns"].items() if name.startswith(prefix)]
        assert {c["method"] for c in columns} == {method}
        alarms = sum(c["drift"] for c in columns)
        assert alarms <= allowed_false_alarms(draws), f"{method}: {alarms} false alarms in {draws} draws"
        assert alarms > 0, f"{method}: a p-value test at 0.05 that never fires in {draws} draws is broken"


def test_false_alarms_large_reference_and_injected_drift(files_storage: Storage, tmp_path: Path) -> None:
    """Reference > 1,000 values: Wasserstein / Jensen-Shannon at 0.1 stay quiet on unchanged data and flag
    exactly the columns where drift was injected."""
    rng = np.random.default_rng(99)
    n_ref, n_cur = 4000, 3000
    drifted = {"x3", "x11", "country_2"}
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    for i in range(15):
        ref[f"x{i}"] = rng.gamma(2.0 + i, 1.0, n_ref)
        cur[f"x{i}"] = rng.gamma(2.0 + i, 1.0, n_cur) + (0.5 * np.sqrt(2.0 + i) if f"x{i}" in drifted else 0.0)
    categories = np.array(["DE", "FR", "IT", "ES", "NL"])
    for i in range(5):
        name = f"country_{i}"
        ref[name] = rng.choice(categories, n_ref, p=[0.4, 0.2, 0.2, 0.1, 0.1])
        p_cur = [0.1, 0.2, 0.2, 0.1, 0.4] if name in drifted else [0.4, 0.2, 0.2, 0.1, 0.1]
        cur[name] = rng.choice(categories, n_cur, p=p_cur)
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", pd.DataFrame(ref)),
        parquet_sample(files_storage, tmp_path, "c", pd.DataFrame(cur)),
    ).to_contract()
    found = {name for name, column in doc["columns"].items() if column["drift"]}
    assert found == drifted
    assert {c["method"] for n, c in doc["columns"].items() if n.startswith("x")} == {"wasserstein_norm"}
    assert {c["method"] for n, c in doc["columns"].items() if n.startswith("country")} == {"jensen_shannon"}
    assert doc["drift_share"] == pytest.approx(3 / 20) and doc["dataset_drift"] is False
