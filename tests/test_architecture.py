"""The floor plan is enforced, and a drift method is one module.

* ``lint-imports`` keeps the contracts in pyproject.toml on the real tree, and breaks them on a copy of
  the tree where a foundation module imports a detector (an upward import) or two modules import each
  other (a cycle): the contracts can fail, so their passing means something.
* A new statistic dropped into ``detectors/drift/stats/`` of a copy of the tree, with no other file
  changed, is reported by ``monitor drift`` for every column it accepts and can decide verdicts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

PACKAGES = ("monitor", "detectors", "alerts", "dashboards")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def copy_tree(target: Path) -> Path:
    """The project's packages and pyproject.toml, as source, in ``target``."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_floors(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    windows = tree / "monitor" / "windows.py"
    windows.write_text(windows.read_text() + "\nfrom detectors.report import WindowReport  # noqa: E402,F401\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "Floors" in result.stdout and "BROKEN" in result.stdout
    assert "monitor.windows -> detectors.report" in result.stdout


def test_a_cycle_between_modules_breaks_the_contract(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    segments = tree / "detectors" / "segments.py"
    segments.write_text(segments.read_text() + "\nfrom detectors import context  # noqa: E402,F401\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "No import cycle" in result.stdout and "BROKEN" in result.stdout


TOTAL_VARIATION = '''
"""``total_variation``: half the L1 distance between the binned proportions (a test's new method)."""

from __future__ import annotations

import numpy as np

from detectors.drift.stats.registry import Method, Summary, Value, register


def _compute(summary: Summary) -> Value:
    reference, current = summary.bins.proportions()
    return Value(float(np.abs(reference - current).sum() / 2))


TOTAL_VARIATION = register(
    Method(
        name="total_variation",
        kinds=frozenset({"numerical", "categorical"}),
        score="distance",
        default_threshold=0.1,
        compute=_compute,
        description="total variation distance on the decile bins or categories",
        stat_key="total_variation",
        report_key="tv",
    )
)
'''


def test_a_new_drift_method_is_one_module(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path / "tree")
    (tree / "detectors" / "drift" / "stats" / "total_variation.py").write_text(TOTAL_VARIATION)
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"amount": rng.normal(0, 1, 2000), "country": rng.choice(["DE", "FR"], 2000)})
    current = pd.DataFrame(
        {"amount": rng.normal(1.0, 1, 2000), "country": rng.choice(["DE", "FR"], 2000, p=[0.5, 0.5])}
    )
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    reference.to_parquet(ref_path)
    current.to_parquet(cur_path)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "monitor", "drift", "--reference", str(ref_path), "--current", str(cur_path)]
    result = subprocess.run(
        [*command, "--format", "json", "--method", "total_variation"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    amount, country = document["columns"]["amount"], document["columns"]["country"]
    assert amount["method"] == country["method"] == "total_variation"
    # Independent computation on the contract's bins: the reference's deciles, (-inf, e1), ..., [e9, inf).
    edges = np.unique(np.quantile(reference["amount"], np.arange(1, 10) / 10))
    ref_bins = np.bincount(np.searchsorted(edges, reference["amount"], side="right"), minlength=len(edges) + 1)
    cur_bins = np.bincount(np.searchsorted(edges, current["amount"], side="right"), minlength=len(edges) + 1)
    expected = np.abs(ref_bins / ref_bins.sum() - cur_bins / cur_bins.sum()).sum() / 2
    assert amount["statistic"] == pytest.approx(expected, rel=1e-9)
    assert amount["stats"]["tv"] == pytest.approx(expected, rel=1e-9)
    assert amount["drift"] is True  # the mean moved by one standard deviation
    assert "tv" in country["stats"] and country["drift"] is False
    assert {"ks", "wasserstein_norm", "psi", "js"} <= set(amount["stats"])  # the others still reported
