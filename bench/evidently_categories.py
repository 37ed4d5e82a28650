"""Benchmark: Evidently 0.7's DataDriftPreset on one categorical column of k values.

Why the report (``monitor drift --report``, the API's report) leaves out a column of more than
``REPORT_MAX_CATEGORIES`` distinct values: Evidently's time grows faster than the categories. Two
frames of ``--rows`` rows (the report's sample size), a standard normal column and a column drawn
uniformly from k values, through ``Report([DataDriftPreset()]).run`` and the HTML rendering.

    .venv/bin/python bench/evidently_categories.py [--rows 50000] [--k 10 1000 3000 10000 15000 20000 30000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows per side (default: the report's sample)")
    parser.add_argument("--k", type=int, nargs="+", default=[10, 1_000, 3_000, 10_000, 15_000, 20_000, 30_000])
    args = parser.parse_args()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(0)
    definition = DataDefinition(numerical_columns=["x"], categorical_columns=["c"])
    print("k,distinct_in_both_samples,run_s,html_s")
    for k in args.k:
        ref, cur = (
            pd.DataFrame({"x": rng.normal(size=args.rows), "c": rng.integers(0, k, args.rows).astype(str)})
            for _ in range(2)
        )
        distinct = pd.concat([ref["c"], cur["c"]]).nunique()
        started = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
        )
        ran = time.perf_counter()
        snapshot.get_html_str(as_iframe=False)
        print(f"{k},{distinct},{ran - started:.1f},{time.perf_counter() - ran:.1f}", flush=True)


if __name__ == "__main__":
    main()
