"""detectors.drift.kolmogorov carries scipy's kstwo.sf so the KS p-value needs no scipy.stats import: same numbers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from detectors.drift.kolmogorov import kstwo_sf

# n around every branch boundary of Simard & L'Ecuyer's algorithm: n <= 140 (Durbin matrix, Pomeranz,
# Miller), n <= 100,000 with n x^1.5 <= 1.4 (Durbin matrix), Pelz-Good, 2 x Smirnov, 0 past n x^2 = 370.
SIZES = [1, 2, 3, 7, 50, 100, 140, 141, 999, 20_000, 100_000, 100_001, 150_000, 1_000_000, 5_000_000]


@pytest.mark.parametrize("n", SIZES)
def test_equals_scipy_kstwo_sf_on_every_branch(n: int) -> None:
    rng = np.random.default_rng(n)
    grid = np.linspace(0.0, 1.0, 41)
    scaled = rng.random(30) * 4 / np.sqrt(n)  # where the p-values of real comparisons lie
    edges = [0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, 0.4999, 0.5, 1 - 1 / n, 1.0, np.sqrt(2.2 / n), np.sqrt(370 / n)]
    for d in [*grid, *scaled, *edges]:
        # 2.2 <= n d^2 < 370 is cephes' exact Smirnov sum, O(n) per call (~1.8 s at n = 1e6): a few suffice there
        if n > 20_000 and 2.2 <= n * d * d < 370 and d not in edges:
            continue
        assert kstwo_sf(float(d), n) == float(stats.kstwo.sf(d, n)), (n, d)


def test_rejects_a_size_below_one() -> None:
    with pytest.raises(ValueError):
        kstwo_sf(0.1, 0)


def test_a_large_window_p_value_imports_no_scipy_stats() -> None:
    """What the module exists for: ``monitor drift`` on large files never pays for ``import scipy.stats``."""
    code = (
        "import sys; from detectors.drift.stats.ks import ks_p_value; "
        "p = ks_p_value(0.003, 300_000, 300_000, exact=False); "
        "assert 0 < p < 1; print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
