"""False-alarm rates of fixed and calibrated distance thresholds per window size (BENCHMARKS.md and
docs/drift.md, "Calibrated thresholds").

Same-distribution data only, so every alarm is a false one. For each window size (1,000, 10,000 and
100,000 rows) and each distance method: ``--references`` references of 50,000 values, each calibrated
once (``detectors.drift.calibration.calibrate``, 100 replicates, as the service does), then ``--windows``
fresh windows from the same distribution compared with it. The statistics are the engine's own
functions (PSI, Jensen-Shannon and Hellinger from ``detectors.drift.stats``, the Wasserstein distance by
scipy, which the engine's ClickHouse query equals), on the contract's decile bins. Reports the share of
windows that alarm with the fixed 0.1, with the calibrated threshold, and with ``auto`` (the larger of
the two, the service's default); and the mean calibrated threshold.

Numerical data is log-normal (skewed, like amounts); ``--categorical`` also runs a 6-category column.

    .venv/bin/python bench/calibration.py [--references 10] [--windows 50] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy.stats import wasserstein_distance  # noqa: E402

from detectors.drift.calibration import calibrate  # noqa: E402
from detectors.drift.stats.hellinger import hellinger  # noqa: E402
from detectors.drift.stats.jensen_shannon import js_distance  # noqa: E402
from detectors.drift.stats.psi import psi  # noqa: E402

METHODS = ("wasserstein_norm", "psi", "jensen_shannon", "hellinger")
FIXED = 0.1
REFERENCE_ROWS = 50_000
SHARES = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])


def draw(rng: np.random.Generator, n: int, categorical: bool) -> np.ndarray:
    if categorical:
        return rng.choice(len(SHARES), n, p=SHARES)
    return rng.lognormal(3.0, 0.8, n)


MEASURES = {"psi": psi, "jensen_shannon": js_distance, "hellinger": hellinger}


def statistic(method: str, reference: np.ndarray, window: np.ndarray, categorical: bool) -> float:
    """The engine's statistic on the drawn values (decile bins of the reference, or the categories)."""
    if method == "wasserstein_norm":
        return float(wasserstein_distance(reference, window) / reference.std())
    if categorical:
        k = len(SHARES)
        p, q = np.bincount(reference, minlength=k) / len(reference), np.bincount(window, minlength=k) / len(window)
    else:
        edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
        bins = len(edges) + 1
        p = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins) / len(reference)
        q = np.bincount(np.searchsorted(edges, window, side="right"), minlength=bins) / len(window)
    return MEASURES[method](p, q)


def measure(method: str, size: int, references: int, windows: int, categorical: bool) -> dict:
    rng = np.random.default_rng(size + len(method) + 7 * categorical)
    alarms = {"fixed": 0, "calibrated": 0, "auto": 0}
    thresholds = []
    for index in range(references):
        reference = draw(rng, REFERENCE_ROWS, categorical)
        pool = reference.astype(object) if categorical else reference
        found = calibrate(pool, "categorical" if categorical else "numerical", method, REFERENCE_ROWS, size, seed=index)
        thresholds.append(found.threshold)
        for _ in range(windows):
            value = statistic(method, reference, draw(rng, size, categorical), categorical)
            alarms["fixed"] += value >= FIXED
            alarms["calibrated"] += value >= found.threshold
            alarms["auto"] += value >= max(FIXED, found.threshold)
    total = references * windows
    return {
        "method": method,
        "kind": "categorical" if categorical else "numerical",
        "window": size,
        "windows": total,
        "false_alarm_fixed": alarms["fixed"] / total,
        "false_alarm_calibrated": alarms["calibrated"] / total,
        "false_alarm_auto": alarms["auto"] / total,
        "mean_calibrated_threshold": float(np.mean(thresholds)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--references", type=int, default=10)
    parser.add_argument("--windows", type=int, default=50)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--categorical", action="store_true")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        for categorical in (False, True) if args.categorical else (False,):
            for method in METHODS:
                if categorical and method == "wasserstein_norm":
                    continue
                start = time.perf_counter()
                row = measure(method, size, args.references, args.windows, categorical)
                row["seconds"] = round(time.perf_counter() - start, 1)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
