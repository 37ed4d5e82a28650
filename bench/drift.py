"""Drift benchmarks (BENCHMARKS.md, "Drift engine"). Two measurements:

``cli``: the same 300,000 x 25 Parquet pair (20 numerical, 5 categorical; drift injected into 6
columns) through whole-process ``monitor drift --format json`` and through a whole process running
Evidently 0.7's DataDriftPreset, alternating; reports wall and CPU seconds, peak RSS, and whether the
per-column verdicts agree.

``window``: a 10,000,000-row production window (20 numerical, 5 categorical features) in the real
``events`` layout (migrations + FeatureColumns.ensure, insert_arrow) against a 1,000,000-row reference
(earlier events of the same model), in embedded ClickHouse. In one measuring process, alternating: a
plain scan of the same columns (``SELECT sum(...)`` over the same rows, same FINAL) of the window and
of the reference, the full feature-drift run as a scheduled run does it (``detectors.drift.engine.compare``
with the reference's stored summary, computed once before the runs and timed on its own), and the
same run without a summary (the reference is profiled and read again); peak RSS of that process.

    .venv/bin/python bench/drift.py cli [--rows 300000] [--runs 3]
    .venv/bin/python bench/drift.py window [--rows 10000000] [--reference-rows 1000000] [--runs 3]
    .venv/bin/python bench/drift.py          # both, with these defaults (make bench)

Each prints one JSON line per run and a summary line. The machine is shared: timings are noisy, CPU
seconds (user + system of the measured process) are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PYTHON = sys.executable
MONITOR = str(Path(sys.executable).parent / "monitor")
N_NUM, N_CAT = 20, 5
DRIFTED = ("f1", "f4", "f7", "f10", "c1", "c3")
CATEGORIES = ["DE", "FR", "US", "BR", "IN", "JP", "GB", "ES"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def frame(rows: int, seed: int, drift: bool):
    """20 numerical columns of assorted shapes and 5 categorical ones; ``drift`` shifts DRIFTED."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = {}
    for i in range(N_NUM):
        shift = 0.5 if (drift and f"f{i}" in DRIFTED) else 0.0
        shape = i % 4
        if shape == 0:
            data[f"f{i}"] = rng.normal(shift, 1.0, rows)
        elif shape == 1:
            data[f"f{i}"] = rng.lognormal(shift, 1.0, rows)
        elif shape == 2:
            data[f"f{i}"] = rng.gamma(2.0, 1.0, rows) + shift * 1.4
        else:
            data[f"f{i}"] = rng.poisson(20 + 10 * shift, rows).astype(float)
    for i in range(N_CAT):
        p = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])
        if drift and f"c{i}" in DRIFTED:
            p = p[::-1]
        data[f"c{i}"] = rng.choice(CATEGORIES, rows, p=p)
    return pd.DataFrame(data)


def run_child(args: list[str]) -> dict:
    """Run a whole process: wall seconds, and its own CPU seconds and peak RSS (wait4), plus its output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "wall": wall,
            "stdout": out.read(),
            "stderr": err.read(),
            "returncode": proc.returncode,
            "cpu": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024,
        }


EVIDENTLY_SCRIPT = """
import json, sys
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
num = [c for c in ref.columns if c.startswith("f")]
cat = [c for c in ref.columns if c.startswith("c")]
definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
snapshot = Report([DataDriftPreset()]).run(
    Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
)
verdicts = {}
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        p_value = "p_value" in config["method"]
        value, threshold = metric["value"], config["threshold"]
        verdicts[config["column"]] = bool(value < threshold if p_value else value >= threshold)
print(json.dumps({"verdicts": verdicts}))
"""


def cli(rows: int, runs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    try:
        ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
        frame(rows, 1, drift=False).to_parquet(ref_path, index=False)
        frame(rows, 2, drift=True).to_parquet(cur_path, index=False)
        script = folder / "evidently_run.py"
        script.write_text(EVIDENTLY_SCRIPT)
        figures: dict[str, list[dict]] = {"monitor": [], "evidently": []}
        for run in range(runs):
            for name in ("monitor", "evidently"):
                if name == "monitor":
                    args = [
                        MONITOR,
                        "drift",
                        "--reference",
                        str(ref_path),
                        "--current",
                        str(cur_path),
                        "--format",
                        "json",
                    ]
                else:
                    args = [PYTHON, str(script), str(ref_path), str(cur_path)]
                result = run_child(args)
                if result["returncode"] not in (0, 1):
                    raise SystemExit(f"{name} failed: {result['stderr'][-2000:]}")
                doc = json.loads(result["stdout"])
                verdicts = {c: v["drift"] for c, v in doc["columns"].items()} if name == "monitor" else doc["verdicts"]
                figure = {
                    "tool": name,
                    "run": run,
                    "wall_s": round(result["wall"], 2),
                    "cpu_s": round(result["cpu"], 2),
                    "peak_rss_mb": round(result["peak_rss_mb"]),
                    "drifted": sorted(c for c, v in verdicts.items() if v),
                    "verdicts": verdicts,
                }
                figures[name].append(figure)
                print(json.dumps({k: v for k, v in figure.items() if k != "verdicts"}), flush=True)
        agree = all(
            m["verdicts"] == e["verdicts"] for m, e in zip(figures["monitor"], figures["evidently"], strict=True)
        )
        med = {n: sorted(f["wall_s"] for f in figs)[len(figs) // 2] for n, figs in figures.items()}
        cpu = {n: sorted(f["cpu_s"] for f in figs)[len(figs) // 2] for n, figs in figures.items()}
        print(
            json.dumps(
                {
                    "summary": "cli",
                    "rows": rows,
                    "median_wall_s": med,
                    "median_cpu_s": cpu,
                    "speedup_wall": round(med["evidently"] / med["monitor"], 1),
                    "speedup_cpu": round(cpu["evidently"] / cpu["monitor"], 1),
                    "same_verdicts": agree,
                    "injected": sorted(DRIFTED),
                }
            )
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the 10M-row window


def generate(path: Path, rows: int, reference_rows: int) -> None:
    """Events of model ``bench``: the reference range first (1 day before), then the window."""
    import numpy as np
    import pyarrow as pa

    from monitor.settings import ClickHouseSettings
    from monitor.storage import open_storage
    from monitor.storage.events import FeatureColumns, feature_column

    storage = open_storage(ClickHouseSettings(dsn=f"chdb://{path}", database="monitor"))
    features = [(f"f{i}", "numerical") for i in range(N_NUM)] + [(f"c{i}", "categorical") for i in range(N_CAT)]
    FeatureColumns(storage).ensure([("bench", f, k) for f, k in features])  # type: ignore[misc]
    batch = 1_000_000
    for label, total, start, drift, seed in (
        ("reference", reference_rows, START - timedelta(days=1), False, 10),
        ("window", rows, START, True, 20),
    ):
        batches = -(-total // batch)
        slot_ms = 4 * 3_600_000 // batches  # the rows cover four hours, batch after batch in time order
        for offset in range(0, total, batch):
            n = min(batch, total - offset)
            data = frame(n, seed + offset // batch, drift)
            ms = (offset // batch) * slot_ms + np.sort(np.random.default_rng(offset).integers(0, slot_ms, n))
            ts = np.datetime64(start.replace(tzinfo=None), "ms") + ms.astype("timedelta64[ms]")
            columns = {
                "model": pa.array(["bench"] * n),
                "event_id": pa.array([f"{label}-{offset + i}" for i in range(n)]),
                "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            }
            for name, kind in features:
                values = data[name].to_numpy()
                columns[feature_column(name, kind)] = pa.array(values, pa.float64() if kind == "numerical" else None)
            storage.insert_arrow("events", pa.table(columns))
            print(f"generated {label} {offset + n:,}/{total:,}", file=sys.stderr, flush=True)
    storage.command(f"OPTIMIZE TABLE {storage.table('events')} FINAL")
    storage.close()


class PeakRss:
    """Samples this process's RSS every 20 ms (chDB's memory included: it runs in-process)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            with open("/proc/self/statm") as handle:
                self.peak = max(self.peak, int(handle.read().split()[1]) * page)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(path: Path, runs: int) -> None:
    from detectors.drift.engine import compare
    from detectors.drift.reference_side import summarize
    from detectors.drift.sample import Sample
    from monitor.settings import ClickHouseSettings
    from monitor.storage import open_storage
    from monitor.storage.events import feature_column

    storage = open_storage(ClickHouseSettings(dsn=f"chdb://{path}", database="monitor"), migrate=False)
    features = {f"f{i}": "numerical" for i in range(N_NUM)} | {f"c{i}": "categorical" for i in range(N_CAT)}
    reference = Sample.for_events(storage, "bench", START - timedelta(days=1), START, features)  # type: ignore[arg-type]
    current = Sample.for_events(storage, "bench", START, START + timedelta(days=1), features)  # type: ignore[arg-type]
    columns = [feature_column(f, k) for f, k in features.items()]  # type: ignore[arg-type]
    sums = ", ".join(f"sum(`{c}`)" if c.startswith("n__") else f"count(`{c}`)" for c in columns)

    def scan(sample: Sample) -> None:
        storage.rows(f"SELECT count(), {sums} FROM {sample.from_sql} WHERE {sample.where_sql}")

    def timed(fn) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), os.times()
        fn()
        c1 = os.times()
        return time.perf_counter() - t0, (c1.user - c0.user) + (c1.system - c0.system)

    results = []
    sides = []
    with PeakRss() as rss:
        summary = timed(lambda: sides.append(summarize(storage, reference)))
        print(json.dumps({"reference_summary_s": round(summary[0], 2), "cpu_s": round(summary[1], 2)}), flush=True)
        for run in range(runs):
            scan_cur = timed(lambda: scan(current))
            scan_ref = timed(lambda: scan(reference))
            drift = timed(lambda: results.append(compare(storage, reference, current, reference_side=sides[0])))
            full = timed(lambda: results.append(compare(storage, reference, current)))
            both = (scan_cur[0] + scan_ref[0], scan_cur[1] + scan_ref[1])
            row = {
                "run": run,
                "scan_window_s": round(scan_cur[0], 2),
                "scan_window_cpu_s": round(scan_cur[1], 2),
                "scan_window_and_reference_s": round(both[0], 2),
                "scan_both_cpu_s": round(both[1], 2),
                "drift_s": round(drift[0], 2),
                "drift_cpu_s": round(drift[1], 2),
                "ratio_wall_vs_window_scan": round(drift[0] / scan_cur[0], 2),
                "ratio_cpu_vs_window_scan": round(drift[1] / scan_cur[1], 2),
                "ratio_wall_vs_both_scans": round(drift[0] / both[0], 2),
                "ratio_cpu_vs_both_scans": round(drift[1] / both[1], 2),
                "unsummarised_drift_s": round(full[0], 2),
                "unsummarised_drift_cpu_s": round(full[1], 2),
                "unsummarised_ratio_wall_vs_both_scans": round(full[0] / both[0], 2),
                "peak_rss_mb_so_far": round(rss.peak / 2**20),
            }
            print(json.dumps(row), flush=True)
    doc = results[-1].to_contract()
    verdicts = [{c: v["drift"] for c, v in r.to_contract()["columns"].items()} for r in results]
    same = all(v == verdicts[0] for v in verdicts)
    print(
        json.dumps(
            {
                "summary": "window",
                "n_reference": doc["n_reference"],
                "n_current": doc["n_current"],
                "drifted": sorted(c for c, v in doc["columns"].items() if v["drift"]),
                "injected": sorted(DRIFTED),
                "same_verdicts_every_run": same,
                "peak_rss_mb": round(max(rss.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20),
            }
        )
    )


def window(rows: int, reference_rows: int, runs: int, keep: Path | None) -> None:
    folder = keep or Path(tempfile.mkdtemp(prefix="bench-drift-window-"))
    path = folder / "db"
    try:
        if not (folder / "generated").exists():
            subprocess.run([PYTHON, __file__, "_generate", str(path), str(rows), str(reference_rows)], check=True)
            (folder / "generated").write_text("ok")
        subprocess.run([PYTHON, __file__, "_measure", str(path), str(runs)], check=True)
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")  # none: both benchmarks with their defaults (make bench)
    p_cli = sub.add_parser("cli")
    p_cli.add_argument("--rows", type=int, default=300_000)
    p_cli.add_argument("--runs", type=int, default=3)
    p_win = sub.add_parser("window")
    p_win.add_argument("--rows", type=int, default=10_000_000)
    p_win.add_argument("--reference-rows", type=int, default=1_000_000)
    p_win.add_argument("--runs", type=int, default=3)
    p_win.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the generated data in")
    p_gen = sub.add_parser("_generate")
    p_gen.add_argument("path", type=Path)
    p_gen.add_argument("rows", type=int)
    p_gen.add_argument("reference_rows", type=int)
    p_meas = sub.add_parser("_measure")
    p_meas.add_argument("path", type=Path)
    p_meas.add_argument("runs", type=int)
    args = parser.parse_args()
    if args.command is None:
        cli(300_000, 3)
        window(10_000_000, 1_000_000, 3, None)
    elif args.command == "cli":
        cli(args.rows, args.runs)
    elif args.command == "window":
        window(args.rows, args.reference_rows, args.runs, args.keep)
    elif args.command == "_generate":
        generate(args.path, args.rows, args.reference_rows)
    else:
        measure(args.path, args.runs)


if __name__ == "__main__":
    main()
