"""PCA reconstruction drift side by side with NannyML 0.13.1 (BENCHMARKS.md, "Multivariate drift").

The same Parquet files and the same chunks go through two whole processes, alternating:

- ours: ``detectors.drift.multivariate`` on embedded ClickHouse as the service runs it: the reference's rows
  drawn from the file (at most 50,000), the PCA fitted once, then each chunk (a WHERE on the row
  number, as a window is a WHERE on time) drawn and scored against its threshold;
- NannyML: ``DataReconstructionDriftCalculator(chunk_size=...)`` fit on the reference and calculated on
  the analysis data, in its own virtual environment (``bench/nannyml_venv.py``, created if missing).

Data: 20 numerical features driven by 4 latent factors plus noise, and 2 categorical ones; 50,000
reference rows, 100,000 analysis rows in chunks of 5,000; from chunk 10 on, the loadings of one factor
flip sign on half of its features: every marginal stays the same, the correlations change. Each
process prints JSON (per chunk: value, upper threshold, alert); the bench reports wall and CPU seconds
per process and whether the per-chunk verdicts agree.

    .venv/bin/python bench/multivariate.py [--runs 3] [--rows 100000] [--chunk-size 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_NUM, N_CAT, FACTORS = 20, 2, 4


def make_data(folder: Path, reference_rows: int, analysis_rows: int, chunk_size: int) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(13)
    loadings = rng.normal(0, 1, (FACTORS, N_NUM))

    def rows(n: int, flipped: np.ndarray) -> pd.DataFrame:
        factors = rng.normal(0, 1, (n, FACTORS))
        load = np.repeat(loadings[None], n, axis=0)
        load[flipped, 0, ::2] *= -1  # factor 0 flips on every other feature: same marginals, new correlations
        values = np.einsum("nf,nfc->nc", factors, load) + rng.normal(0, 0.5, (n, N_NUM))
        frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(N_NUM)])
        for j in range(N_CAT):
            frame[f"c{j}"] = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
        return frame

    reference = rows(reference_rows, np.zeros(reference_rows, dtype=bool))
    position = np.arange(analysis_rows)
    analysis = rows(analysis_rows, position >= analysis_rows // 2 // chunk_size * chunk_size)
    analysis.insert(0, "row", position)
    paths = folder / "reference.parquet", folder / "analysis.parquet"
    reference.to_parquet(paths[0], index=False)
    analysis.to_parquet(paths[1], index=False)
    return paths


def columns() -> tuple[list[str], list[str]]:
    return [f"f{i}" for i in range(N_NUM)], [f"c{j}" for j in range(N_CAT)]


def run_ours(reference: Path, analysis: Path, chunk_size: int, per_chunk: bool = False) -> dict:
    sys.path.insert(0, str(REPO))
    from detectors.drift.multivariate import pca
    from detectors.drift.multivariate.rows import draw, draw_groups
    from detectors.drift.sample import Sample
    from monitor.storage import connect_dsn

    numerical, categorical = columns()
    kinds = {**dict.fromkeys(numerical, "numerical"), **dict.fromkeys(categorical, "categorical")}
    names = list(kinds)
    with tempfile.TemporaryDirectory() as workdir:
        storage = connect_dsn(f"chdb://{workdir}/db", "bench")
        chunks = []
        if per_chunk:  # as the service scores a window: the file read once into memory, a query per chunk
            ref = Sample.from_file(storage, reference, names).materialize(storage, "reference")
            cur = Sample.from_file(storage, analysis).materialize(storage, "analysis")
            (total,) = storage.rows(f"SELECT count() FROM {cur.from_sql}")[0]
            fitted = pca.fit(draw(storage, ref, names, kinds, 50_000))  # type: ignore[arg-type]
            for index in range(int(total) // chunk_size):
                where = f"intDiv(row, {chunk_size}) = {index}"
                window = Sample(cur.from_sql, {n: cur.columns[n] for n in names}, where)
                rows = draw(storage, window, names, kinds, 50_000)  # type: ignore[arg-type]
                value, threshold = fitted.value(rows), fitted.threshold(rows.count)
                chunks.append({"value": value, "upper": threshold, "alert": bool(value > threshold)})
        else:  # every chunk's rows in one query over the file, split and scored together
            ref = Sample.from_file(storage, reference, names)
            cur = Sample.from_file(storage, analysis, ["row", *names])
            fitted = pca.fit(draw(storage, ref, names, kinds, 50_000))  # type: ignore[arg-type]
            groups = draw_groups(storage, cur, names, kinds, f"intDiv(row, {chunk_size})", 50_000)  # type: ignore[arg-type]
            for (start, end), value in zip(groups.bounds, fitted.group_values(groups), strict=True):
                threshold = fitted.threshold(end - start)
                chunks.append({"value": value, "upper": threshold, "alert": bool(value > threshold)})
        storage.close()
    return {"chunks": chunks}


def run_nannyml(reference: Path, analysis: Path, chunk_size: int) -> dict:
    import nannyml as nml
    import pandas as pd

    numerical, categorical = columns()
    ref = pd.read_parquet(reference)
    ana = pd.read_parquet(analysis)
    calculator = nml.DataReconstructionDriftCalculator(column_names=numerical + categorical, chunk_size=chunk_size)
    calculator.fit(ref)
    frame = calculator.calculate(ana).filter(period="analysis").to_df()
    key = "reconstruction_error"
    return {
        "chunks": [
            {"value": float(v), "upper": float(u), "alert": bool(a)}
            for v, u, a in zip(
                frame[(key, "value")], frame[(key, "upper_threshold")], frame[(key, "alert")], strict=True
            )
        ]
    }


def timed(command: list[str]) -> tuple[dict, float, float]:
    import resource  # here, not at the top: the measured children need neither
    import subprocess
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("side", nargs="?", choices=["ours", "nannyml"])
    parser.add_argument("--reference")
    parser.add_argument("--analysis")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reference-rows", type=int, default=50_000)
    parser.add_argument("--chunk-size", type=int, default=5_000)
    parser.add_argument("--per-chunk", action="store_true", help="ours: one query per chunk, as a scheduled window")
    args = parser.parse_args()
    if args.side == "ours":  # a measured child process
        print(json.dumps(run_ours(Path(args.reference), Path(args.analysis), args.chunk_size, args.per_chunk)))
        return
    if args.side == "nannyml":
        print(json.dumps(run_nannyml(Path(args.reference), Path(args.analysis), args.chunk_size)))
        return
    sys.path.insert(0, str(REPO))
    from bench.nannyml_venv import ensure

    nannyml_python = ensure()
    with tempfile.TemporaryDirectory() as folder:
        ref, ana = make_data(Path(folder), args.reference_rows, args.rows, args.chunk_size)
        tail = ["--reference", str(ref), "--analysis", str(ana), "--chunk-size", str(args.chunk_size)]
        ours_cmd = [sys.executable, __file__, "ours", *tail, *(["--per-chunk"] if args.per_chunk else [])]
        theirs_cmd = [str(nannyml_python), __file__, "nannyml", *tail]
        results: dict[str, list[tuple[float, float]]] = {"ours": [], "nannyml": []}
        verdicts: dict[str, list[bool]] = {}
        for run in range(args.runs):
            for side, command in (("ours", ours_cmd), ("nannyml", theirs_cmd)):
                doc, wall, cpu = timed(command)
                results[side].append((wall, cpu))
                verdicts[side] = [c["alert"] for c in doc["chunks"]]
                print(json.dumps({"run": run, "side": side, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                  "alerts": "".join("X" if a else "." for a in verdicts[side]),
                                  "first_values": [round(c["value"], 3) for c in doc["chunks"][:2]],
                                  "first_upper": [round(c["upper"], 3) for c in doc["chunks"][:2]]}))  # fmt: skip
    best = {side: min(r[0] for r in runs) for side, runs in results.items()}
    cpu = {side: min(r[1] for r in runs) for side, runs in results.items()}
    print(
        json.dumps(
            {
                "summary": True,
                "rows": args.rows,
                "reference_rows": args.reference_rows,
                "chunk_size": args.chunk_size,
                "ours_wall_s": round(best["ours"], 2),
                "nannyml_wall_s": round(best["nannyml"], 2),
                "ours_cpu_s": round(cpu["ours"], 2),
                "nannyml_cpu_s": round(cpu["nannyml"], 2),
                "speedup_wall": round(best["nannyml"] / best["ours"], 1),
                "same_verdicts": verdicts["ours"] == verdicts["nannyml"],
            }
        )
    )


if __name__ == "__main__":
    main()
