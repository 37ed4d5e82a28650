"""The exact KS/Wasserstein query (BENCHMARKS.md, "Fleet"): one window over the values against the former
GROUP BY value, then window functions.

Both sides of ``--columns`` numerical columns (``--rows`` values each per side) are written to Parquet
files and compared in one query by :func:`detectors.drift.collect.compare_numeric_exact` (one window
over each column's sorted values), and by the query it replaced (kept here, not in the code: ``GROUP
BY`` column and value first, then window functions over each column's distinct values).
Both answers are checked against scipy's ``ks_2samp`` and ``wasserstein_distance``; the wall seconds
of each query are the best of ``--runs``; each query runs in a process of its own, which reports how far
its peak RSS rose above its level after opening the database (the query's memory).

    .venv/bin/python bench/exact_compare.py [--rows 100000] [--columns 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.drift.collect import compare_numeric_exact, merged_values
from detectors.drift.sample import Sample
from monitor.storage import Storage, connect_dsn


def window_query(reference: Sample, current: Sample, names: list[str], sizes: dict[str, tuple[int, int]]) -> str:
    """The former query: one row per (column, distinct value), then running sums by window functions."""
    values, (n1, n2) = merged_values(reference, current, names, sizes)
    return f"""
WITH d AS (
    SELECT k, v, countIf(s = 0) AS cr, countIf(s = 1) AS cc FROM ({values}) GROUP BY k, v
), e AS (
    SELECT k, v, cr, cc,
        sum(cr) OVER w / {n1}[k + 1] - sum(cc) OVER w / {n2}[k + 1] AS g,
        leadInFrame(v) OVER (PARTITION BY k ORDER BY v ASC ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS nv,
        row_number() OVER w AS rn,
        count() OVER (PARTITION BY k) AS distinct_values
    FROM d WINDOW w AS (PARTITION BY k ORDER BY v ASC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT k, max(abs(g)), sumIf(abs(g) * (nv - v), rn < distinct_values) FROM e GROUP BY k ORDER BY k"""


def measure(which: str, folder: str, names: list[str], rows: int, runs: int) -> tuple[float, object, int]:
    """Best wall seconds of ``runs`` runs of one query, its result and the process's peak RSS rise (MiB)."""
    storage: Storage = connect_dsn(f"chdb://{folder}/db", "default")
    reference = Sample.from_file(storage, Path(folder) / "r.parquet")
    current = Sample.from_file(storage, Path(folder) / "c.parquet")
    sizes = {n: (rows, rows) for n in names}
    storage.rows("SELECT 1")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        if which == "ours":
            result = compare_numeric_exact(storage, reference, current, names, sizes)
        else:
            result = storage.rows(window_query(reference, current, names, sizes))
        best = min(best, time.perf_counter() - started)
    storage.close()
    return best, result, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="values per column and side")
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    names = [f"x{i}" for i in range(args.columns)]
    ref = pd.DataFrame({n: rng.normal(0, 1, args.rows) for n in names})
    cur = pd.DataFrame({n: rng.normal(0.02 * i, 1, args.rows) for i, n in enumerate(names)})
    with tempfile.TemporaryDirectory() as folder:
        ref.to_parquet(Path(folder) / "r.parquet", index=False)
        cur.to_parquet(Path(folder) / "c.parquet", index=False)
        spawn = multiprocessing.get_context("spawn")
        measured = {}
        for which in ("ours", "former"):  # one process each, one at a time (the database has one owner)
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                measured[which] = pool.submit(measure, which, folder, names, args.rows, args.runs).result()
        (ours_s, ours, ours_mib), (former_s, former, former_mib) = measured["ours"], measured["former"]
    worst = {"ours": 0.0, "former": 0.0}
    for k, name in enumerate(names):
        d = stats.ks_2samp(ref[name], cur[name]).statistic
        w = stats.wasserstein_distance(ref[name], cur[name])
        got = ours[name]  # type: ignore[index]
        worst["ours"] = max(worst["ours"], abs(got.ks_statistic - d), abs(got.wasserstein - w) / w)
        row = former[k]  # type: ignore[index]
        worst["former"] = max(worst["former"], abs(row[1] - d), abs(row[2] - w) / w)
    assert max(worst.values()) < 1e-9, worst
    print(
        json.dumps(
            {
                "values_per_query": 2 * args.rows * args.columns,
                "ours_s": round(ours_s, 3),
                "former_s": round(former_s, 3),
                "speedup": round(former_s / ours_s, 1),
                "ours_rss_rise_mib": ours_mib,
                "former_rss_rise_mib": former_mib,
                "worst_error_vs_scipy": worst,
            }
        )
    )


if __name__ == "__main__":
    main()
