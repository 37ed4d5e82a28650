"""The exact two-sample KS p-value (BENCHMARKS.md, "KS exact p-value"): ours against scipy's.

For each pair of sizes (both at most 10,000: where ``ks_2samp(method="auto")`` is exact) and a D typical
of no drift, of clear drift and of disjoint samples, the CPU seconds of one p-value from
``detectors.drift.stats.ks.ks_p_value`` (numpy, one anti-diagonal per step) and of
``scipy.stats.ks_2samp(x, y, method="exact")`` on samples with that D (scipy's compiled loop, plus
sorting the samples), best of ``--runs``; the two p-values must be equal. Then the CPU seconds of
``import scipy.stats`` in a fresh process, which ``ks_p_value`` does not pay.

    .venv/bin/python bench/ks_exact.py [--runs 3]

The machine is shared: CPU seconds (``time.process_time``) are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
from scipy import stats

from detectors.drift.stats.ks import ks_p_value

SIZES = [(10_000, 9_999), (10_000, 7_000), (10_000, 1_000), (10_000, 50), (10_000, 10_000)]
SHIFTS = {"no drift": 0.0, "drift": 0.5, "disjoint": 100.0}


def best_cpu(runs: int, call: object) -> tuple[float, float]:
    """(best CPU seconds, result) of ``runs`` calls."""
    assert callable(call)
    best, result = float("inf"), 0.0
    for _ in range(runs):
        start = time.process_time()
        result = call()
        best = min(best, time.process_time() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    rng = np.random.default_rng(0)
    for n1, n2 in SIZES:
        for label, shift in SHIFTS.items():
            x, y = rng.normal(size=n1), rng.normal(shift, 1, size=n2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                scipy_s, result = best_cpu(runs, lambda x=x, y=y: stats.ks_2samp(x, y, method="exact"))
            d = float(result.statistic)
            ours_s, p = best_cpu(runs, lambda d=d, n1=n1, n2=n2: ks_p_value(d, n1, n2))
            assert p == float(result.pvalue), (n1, n2, d, p, result.pvalue)
            row = {"n1": n1, "n2": n2, "case": label, "d": round(d, 4), "p": p}
            print(json.dumps({**row, "ours_cpu_s": round(ours_s, 4), "scipy_cpu_s": round(scipy_s, 4)}))
    code = "import time; t = time.process_time(); import scipy.stats; print(time.process_time() - t)"
    imports = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)]
    imports += [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)]
    print(json.dumps({"import_scipy_stats_cpu_s": round(min(imports), 3)}))


if __name__ == "__main__":
    main()
