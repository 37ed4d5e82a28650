"""detectors.drift.kolmogorov carries scipy's KS distributions (kstwo.sf, and the exact two-sample p-value of
ks_2samp) so a KS p-value needs no scipy.stats import and no private scipy module: the same numbers, bit for bit."""

from __future__ import annotations

import itertools
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

from detectors.drift.kolmogorov import ks_2samp_exact, kstwo_sf
from detectors.drift.stats.ks import ks_p_value

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


# --- the exact two-sided two-sample p-value: scipy.stats.ks_2samp(method="exact" / "auto"), bit for bit ---


def samples_along(path: np.ndarray, tie_width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two samples whose merged sorted order is ``path`` (True: the first sample's value comes next).

    Values are the positions in the merged order, divided by ``tie_width`` and floored, so a width
    above 1 makes runs of ties across both samples.
    """
    values = (np.arange(len(path)) // tie_width).astype(np.float64)
    return values[path], values[~path]


def ks_2samp_p(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    """scipy's (statistic, p-value), silencing its warning when the exact computation falls back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ks_2samp(x, y, method=method)
    return float(result.statistic), float(result.pvalue)


TINY = range(1, 7)


@pytest.mark.parametrize("n1", TINY)
def test_every_statistic_of_tiny_sizes_gets_scipys_exact_p_value(n1: int) -> None:
    """Every order of two small samples: each distinct D of sizes (n1, n2 <= 6) once, equal sizes too."""
    seen = 0
    for n2 in TINY:
        by_d: dict[int, np.ndarray] = {}
        for chosen in itertools.combinations(range(n1 + n2), n1):
            path = np.zeros(n1 + n2, dtype=bool)
            path[list(chosen)] = True
            gap = np.abs(np.cumsum(np.where(path, n2, -n1)))  # n1 * n2 * |F1 - F2| after each value
            by_d.setdefault(int(gap.max()), path)
        for path in by_d.values():
            x, y = samples_along(path)
            d, expected = ks_2samp_p(x, y, "exact")
            assert ks_p_value(d, n1, n2) == expected, (n1, n2, d)
            assert ks_p_value(d, n2, n1) == expected, (n2, n1, d)
            # a D computed elsewhere (ClickHouse) is a float near the lattice value: same p-value
            assert ks_p_value(d * (1 + 4e-16), n1, n2) == expected == ks_p_value(d * (1 - 4e-16), n1, n2)
            seen += 1
    assert seen >= len(TINY) * 2


def near_one(n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint samples but for one value of each: D = 1 - 1/max(n1, n2) or so."""
    path = np.array([True] * (n1 - 1) + [False, True] + [False] * (n2 - 1))
    return samples_along(path)


def interleaved(n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    """Two evenly spread grids: about the smallest D these sizes allow (1/min(n1, n2) or so)."""
    return np.arange(n1) / n1, np.arange(n2) / n2 + 0.5 / (n1 * n2)


def datasets(n1: int, n2: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Samples of sizes n1 and n2 whose D covers 0, tiny, typical, large and near 1, with and without ties."""
    return {
        "identical (D = 0)": (np.zeros(n1), np.zeros(n2)),
        "evenly interleaved": interleaved(n1, n2),
        "no drift": (rng.normal(size=n1), rng.normal(size=n2)),
        "small drift": (rng.normal(size=n1), rng.normal(0.1, 1, size=n2)),
        "heavy ties": (rng.integers(0, 4, size=n1).astype(float), rng.integers(0, 5, size=n2).astype(float)),
        "drift with ties": (rng.integers(0, 20, size=n1) // 3 * 1.0, rng.integers(2, 22, size=n2) // 3 * 1.0),
        "large drift": (rng.normal(size=n1), rng.normal(1.5, 1, size=n2)),
        "near 1": near_one(n1, n2),
        "disjoint (D = 1)": (np.zeros(n1), np.ones(n2)),
    }


SIZES_2SAMP = [
    (1, 1),
    (1, 2),
    (2, 3),
    (3, 3),
    (1, 10_000),
    (3, 9_999),
    (50, 50),  # equal sizes: the square formula
    (1_000, 1_000),
    (9_999, 9_999),
    (10_000, 10_000),
    (97, 101),  # coprime
    (1_000, 999),
    (2_999, 1_000),
    (600, 900),  # large gcd
    (4_000, 6_000),
    (2_500, 7_500),
    (7, 2_401),
]


@pytest.mark.parametrize(("n1", "n2"), SIZES_2SAMP)
def test_p_value_equals_ks_2samp_auto(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 * 100_003 + n2)
    for name, (x, y) in datasets(n1, n2, rng).items():
        d, expected = ks_2samp_p(x, y, "auto")
        assert ks_p_value(d, n1, n2) == expected, (name, d)


@pytest.mark.parametrize(("n1", "n2", "shift"), [(10_000, 9_999, 0.0), (9_973, 10_000, 0.05), (8_192, 10_000, 0.2)])
def test_sizes_near_the_exact_limit_equal_ks_2samp_exact(n1: int, n2: int, shift: float) -> None:
    """Coprime sizes near 10,000 (the longest exact computation): scipy's method="exact" and ours agree."""
    rng = np.random.default_rng(n1 + n2)
    x, y = rng.normal(size=n1), rng.normal(shift, 1, size=n2)
    d, expected = ks_2samp_p(x, y, "exact")
    assert ks_p_value(d, n1, n2) == expected


def test_where_the_exact_computation_fails_the_asymptotic_p_value_of_the_lattice_d_is_used() -> None:
    """P(D >= 2/60) for two samples of 60 rounds to just above 1: scipy warns and takes the asymptotic p-value."""
    success, d, prob = ks_2samp_exact(60, 60, 2 / 60 + 0.004)
    assert not success and prob > 1 and d == 2 / 60
    x, y = samples_along(np.array([True, True] + [False, True] * 58 + [False, False]))
    with pytest.warns(RuntimeWarning, match="Exact calculation unsuccessful"):
        result = stats.ks_2samp(x, y, method="exact")
    assert float(result.statistic) == 2 / 60
    asymptotic = kstwo_sf(2 / 60, 30)
    assert float(result.pvalue) == asymptotic < 1.0
    assert ks_p_value(2 / 60, 60, 60) == asymptotic
    # a D off the lattice is moved onto it first, as scipy does, also for the asymptotic p-value
    assert ks_p_value(2 / 60 + 0.004, 60, 60) == asymptotic != kstwo_sf(2 / 60 + 0.004, 30)


def test_ks_p_value_imports_no_scipy_stats_and_no_private_scipy_module() -> None:
    """Exact (equal and unequal sizes, and the fallback) and asymptotic p-values: none loads scipy.stats."""
    code = (
        "import sys; from detectors.drift.stats.ks import ks_p_value; "
        "ps = [ks_p_value(0.02, 9_999, 10_000), ks_p_value(0.1, 500, 500), ks_p_value(0.2, 5, 5), "
        "ks_p_value(0.003, 300_000, 300_000), ks_p_value(0.3, 100, 40, exact=False)]; "
        "assert all(0 <= p <= 1 for p in ps), ps; "
        "print(sorted(m for m in sys.modules if m.startswith('scipy.stats')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
