"""The registered drift methods on summaries, against scipy and formulas written out here."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

import detectors.drift.stats as stats_package
from detectors.drift.bh import bh_adjust
from detectors.drift.methods import default_choice, get_method
from detectors.drift.stats import KINDS, REGISTRY, Distribution, Summary, Value
from detectors.drift.stats.chi2 import chi2_homogeneity
from detectors.drift.stats.hellinger import hellinger
from detectors.drift.stats.jensen_shannon import js_distance
from detectors.drift.stats.ks import ks_p_value
from detectors.drift.stats.psi import psi
from monitor.errors import InputError
from tests.detectors.drift_oracle import decile_proportions, hellinger_formula, psi_formula

EXPECTED_METHODS = {"ks", "wasserstein_norm", "psi", "jensen_shannon", "hellinger", "chi2", "z"}


def summary_from_arrays(ref: np.ndarray, cur: np.ndarray, kind: str) -> Summary:
    """A summary built with numpy/scipy (not the engine's SQL), to exercise methods alone."""
    if kind == "numerical":
        r, c = decile_proportions(ref, cur)
        return Summary(
            kind="numerical",
            n_reference=len(ref),
            n_current=len(cur),
            bins=Distribution(tuple(str(i) for i in range(len(r))), r * len(ref), c * len(cur)),
            ks_statistic=float(stats.ks_2samp(ref, cur).statistic),
            wasserstein=float(stats.wasserstein_distance(ref, cur)),
            reference_std=float(np.std(ref)),
        )
    labels = sorted(set(ref) | set(cur))
    return Summary(
        kind="categorical",
        n_reference=len(ref),
        n_current=len(cur),
        bins=Distribution(
            tuple(labels),
            np.array([np.sum(ref == k) for k in labels], dtype=float),
            np.array([np.sum(cur == k) for k in labels], dtype=float),
        ),
    )


# ---------------------------------------------------------------- registry


def test_registry_is_complete() -> None:
    assert set(REGISTRY) == EXPECTED_METHODS
    modules = {m.name for m in pkgutil.iter_modules(stats_package.__path__)} - {"registry"}
    registered_by = {REGISTRY[name].compute.__module__.rsplit(".", 1)[-1] for name in REGISTRY}
    assert modules == registered_by, "every method module registers exactly the methods it defines"
    keys = [m.stat_key for m in REGISTRY.values()]
    assert len(keys) == len(set(keys))
    for method in REGISTRY.values():
        assert method.kinds and method.kinds <= set(KINDS)
        assert method.score in ("p_value", "distance")
        assert 0 < method.default_threshold < 1
        assert method.description
        module = importlib.import_module(method.compute.__module__)
        assert method.name in (module.__doc__ or ""), f"{method.name}: module docstring names the method"


def test_unknown_method_lists_valid_choices() -> None:
    with pytest.raises(InputError, match="expected one of chi2, hellinger, jensen_shannon, ks, psi"):
        get_method("kolmogorov")
    with pytest.raises(InputError, match="does not apply to categorical columns"):
        get_method("ks", "categorical")


def _draws(kind: str, shift: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if kind == "numerical":
        return rng.normal(size=3000), rng.normal(3.0 if shift else 0.0, 1, size=2000)
    # Two categories so that the z-test (at most two values) applies as well.
    ref = rng.choice(["a", "b"], size=3000, p=[0.5, 0.5])
    cur = rng.choice(["a", "b"], size=2000, p=[0.95, 0.05] if shift else [0.5, 0.5])
    return ref, cur


@pytest.mark.parametrize(("name", "kind"), [(n, k) for n in sorted(REGISTRY) for k in KINDS if k in REGISTRY[n].kinds])
def test_conformance(name: str, kind: str) -> None:
    """Every method, every kind it accepts: identical data never drifts, a gross shift always does.

    (Random draws of one distribution may drift at a p-value method's nominal rate: see the false-alarm
    tests in test_engine_rates.py.)"""
    method = REGISTRY[name]
    rng = np.random.default_rng(7)
    same = summary_from_arrays(*_draws(kind, False, rng), kind)
    ref = _draws(kind, False, rng)[0]
    identical = summary_from_arrays(ref, ref.copy(), kind)
    shifted = summary_from_arrays(*_draws(kind, True, rng), kind)
    for summary in (same, identical, shifted):
        value = method.compute(summary)
        assert np.isfinite(value.statistic)
        assert (value.p_value is not None) == (method.score == "p_value")
        assert method.compute(summary) == value, "deterministic"
    assert not method.drifted(method.decisive(method.compute(identical)), method.default_threshold)
    assert method.drifted(method.decisive(method.compute(shifted)), method.default_threshold)
    if method.score == "distance":
        assert method.compute(identical).statistic == pytest.approx(0.0, abs=1e-12)
        assert method.direction == "drift when at or above"
    else:
        assert method.compute(identical).p_value == pytest.approx(1.0)
        assert method.direction == "drift when below"


# ---------------------------------------------------------------- each statistic


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (5, 7, 0.5),
        (40, 40, 0.3),
        (100, 250, 0.2),
        (999, 1000, 0.05),
        (3000, 10_000, 0.05),
        (10_001, 400, 0.1),
        (50_000, 80_000, 0.01),
        (200, 200, 5.0),
    ],
)
def test_ks_p_value_matches_scipy(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, 1, size=n2)
    expected = stats.ks_2samp(a, b)
    got = ks_p_value(float(expected.statistic), n1, n2)
    assert got == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-300)


def test_ks_p_value_asymptotic_when_statistic_is_approximate() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(0.2, 1, size=500)
    d = float(stats.ks_2samp(a, b).statistic)
    asymptotic = float(stats.ks_2samp(a, b, method="asymp").pvalue)
    assert ks_p_value(d, 300, 500, exact=False) == pytest.approx(asymptotic, rel=1e-12)


def test_psi_js_hellinger_formulas() -> None:
    r = np.array([0.2, 0.3, 0.5, 0.0])
    c = np.array([0.1, 0.3, 0.4, 0.2])
    # written out: zero proportions replaced by 1e-4, no renormalisation
    by_hand = (0.1 - 0.2) * np.log(0.1 / 0.2) + 0 + (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.2 - 1e-4) * np.log(0.2 / 1e-4)
    assert psi(r, c) == pytest.approx(by_hand, rel=1e-12)
    assert psi(r, c) == pytest.approx(psi_formula(r, c), rel=1e-12)
    assert js_distance(r, c) == pytest.approx(distance.jensenshannon(r, c, base=2), rel=1e-12)
    assert js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert hellinger(r, c) == pytest.approx(hellinger_formula(r, c), rel=1e-12)
    assert hellinger(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        ([50, 30, 20], [40, 40, 20]),
        ([50, 30, 20, 0], [40, 40, 10, 10]),  # a category unseen in the reference
        ([500, 1], [5, 300]),
        ([7, 0, 3], [0, 0, 9]),  # a category absent on both sides is dropped
    ],
)
def test_chi2_matches_scipy(ref: list[int], cur: list[int]) -> None:
    table = np.array([ref, cur], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(table, correction=False)
    statistic, p = chi2_homogeneity(np.array(ref, dtype=float), np.array(cur, dtype=float))
    assert statistic == pytest.approx(float(expected.statistic), rel=1e-12)
    assert p == pytest.approx(float(expected.pvalue), rel=1e-9)
    assert np.isfinite(statistic)


def test_chi2_single_category_and_empty_side() -> None:
    assert chi2_homogeneity(np.array([10.0]), np.array([3.0])) == (0.0, 1.0)
    assert chi2_homogeneity(np.array([10.0, 0.0]), np.array([3.0, 0.0])) == (0.0, 1.0)


def test_categories_grouped_by_their_counts_give_every_categorys_statistics() -> None:
    """A distribution grouped by (reference count, current count) pairs, weighted by how many categories
    share each pair, gives scipy's chi2 (degrees of freedom counted per category) and the formulas' PSI,
    JS and Hellinger over every category; a method that ignores weights is handed the expanded one."""
    pairs = np.array([[1, 0, 30_000], [0, 1, 9_000], [1, 1, 2_000], [0, 3, 40], [250, 4, 3], [7, 0, 1]], dtype=float)
    grouped = Distribution(tuple(map(str, range(len(pairs)))), pairs[:, 0], pairs[:, 1], pairs[:, 2])
    counts = pairs[:, 2].astype(int)
    ref, cur = np.repeat(pairs[:, 0], counts), np.repeat(pairs[:, 1], counts)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    statistic, p = chi2_homogeneity(grouped.reference, grouped.current, grouped.weights)
    assert statistic == pytest.approx(float(expected.statistic), rel=1e-9)
    assert p == pytest.approx(float(expected.pvalue), rel=1e-9)
    rp, cp = ref / ref.sum(), cur / cur.sum()
    summary = Summary(kind="categorical", n_reference=int(ref.sum()), n_current=int(cur.sum()), bins=grouped)
    assert REGISTRY["psi"].evaluate(summary).statistic == pytest.approx(psi_formula(rp, cp), rel=1e-9)
    assert REGISTRY["jensen_shannon"].evaluate(summary).statistic == pytest.approx(
        float(distance.jensenshannon(rp, cp, base=2)), rel=1e-9
    )
    assert REGISTRY["hellinger"].evaluate(summary).statistic == pytest.approx(hellinger_formula(rp, cp), rel=1e-9)
    assert grouped.expanded().reference.tolist() == ref.tolist()
    seen: list[int] = []
    unweighted = dataclasses.replace(
        REGISTRY["psi"], weighted=False, compute=lambda s: seen.append(len(s.bins.labels)) or Value(0.0)
    )
    unweighted.evaluate(summary)
    assert seen == [int(counts.sum())] and not unweighted.weighted


def test_z_test_as_evidently_writes_it() -> None:
    ref = np.array(["x"] * 60 + ["y"] * 40)
    cur = np.array(["x"] * 35 + ["y"] * 65)
    value = REGISTRY["z"].compute(summary_from_arrays(ref, cur, "categorical"))
    # Evidently: share of "not the first sorted key", pooled standard error, two-sided normal p-value.
    p1, p2 = 0.4, 0.65
    pooled = (p1 * 100 + p2 * 100) / 200
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert value.statistic == pytest.approx(z)
    assert value.p_value == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))))
    same = REGISTRY["z"].compute(summary_from_arrays(np.array(["x"] * 5), np.array(["x"] * 9), "categorical"))
    assert same.p_value == 1.0


def test_wasserstein_norm_divides_by_reference_std_or_1e3() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 2, 500), rng.normal(1, 2, 400)
    value = REGISTRY["wasserstein_norm"].compute(summary_from_arrays(ref, cur, "numerical")).statistic
    assert value == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-12)
    constant = summary_from_arrays(np.full(50, 3.0), np.full(40, 3.5), "numerical")
    assert REGISTRY["wasserstein_norm"].compute(constant).statistic == pytest.approx(0.5 / 1e-3)


def test_benjamini_hochberg_as_written_out() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2]
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    expected = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):  # from the largest p-value down
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        expected[i] = running
    assert bh_adjust(p) == pytest.approx(expected)
    assert bh_adjust([]) == []
    assert bh_adjust([0.9, 0.95]) == pytest.approx([0.95, 0.95])


@pytest.mark.parametrize(
    ("kind", "n_reference", "n_distinct", "expected", "as_categories"),
    [
        ("numerical", 1000, 6, "ks", False),
        ("numerical", 1000, 5, "chi2", True),
        ("numerical", 1000, 2, "z", True),
        ("numerical", 1001, 6, "wasserstein_norm", False),
        ("numerical", 1001, 5, "jensen_shannon", True),
        ("categorical", 1000, 3, "chi2", False),
        ("categorical", 1000, 2, "z", False),
        ("categorical", 1001, 2, "jensen_shannon", False),
    ],
)
def test_default_choice_table(kind: str, n_reference: int, n_distinct: int, expected: str, as_categories: bool) -> None:
    choice = default_choice(kind, n_reference, n_distinct)  # type: ignore[arg-type]
    assert choice.method.name == expected
    assert choice.as_categories == as_categories
    assert choice.threshold == REGISTRY[expected].default_threshold
