"""Benchmark: one ID-like categorical feature (every value distinct) through both drift paths.

Data: a reference of R rows whose feature ``id`` holds R distinct values (``r0``, ``r1``, ...), a
numerical feature ``x`` and a 5-category feature ``c``; a window of W rows whose ``id`` holds W
distinct values, half of them taken from the reference and half never seen there.

``detect``: in a private chDB path, the reference is registered with ``monitor reference add`` and
the window (plus the window before it, for window-over-window drift) is inserted into ``events``;
then ``monitor detect`` runs in a process of its own (twice: the first run also summarises the
reference and stores that summary, the second reads it back, as every later scheduled run does).
``drift``: the same data as two Parquet files through ``monitor drift --format json``.

Each measured command is its own process: wall seconds, CPU seconds and its peak RSS (``wait4``).

    .venv/bin/python bench/high_cardinality.py [--reference 1000000] [--window 200000] [--paths detect,drift]
    .venv/bin/python bench/high_cardinality.py --id-values 5    # baseline: the same rows, id with 5 values
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEATURES = {"id": "categorical", "x": "numerical", "c": "categorical"}


def write_files(root: Path, reference: int, window: int, values: int = 0) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    half = window // 2
    ref = pa.table(
        {
            "id": pa.array([f"r{i % values if values else i}" for i in range(reference)]),
            "x": pa.array(rng.normal(0, 1, reference)),
            "c": pa.array(rng.choice(["a", "b", "c", "d", "e"], reference)),
        }
    )
    ids = [f"r{i}" for i in range(half)] + [f"w{i}" for i in range(window - half)]
    if values:  # the baseline: the same rows with an ordinary categorical feature
        ids = [f"r{i % values}" if i < half else f"w{i % values}" for i in range(window)]
    cur = pa.table(
        {
            "id": pa.array(ids),
            "x": pa.array(rng.normal(0.1, 1, window)),
            "c": pa.array(rng.choice(["a", "b", "c", "d", "e"], window)),
        }
    )
    pq.write_table(ref, root / "ref.parquet")
    pq.write_table(cur, root / "cur.parquet")
    return root / "ref.parquet", root / "cur.parquet"


def setup_events(config: Path, window: int, values: int = 0) -> None:
    """Runs in a process of its own (one chDB path per process): the events of two windows."""
    sys.path.insert(0, str(REPO))
    from monitor.settings import load_settings
    from monitor.storage import open_storage
    from monitor.storage.events import FeatureColumns

    settings = load_settings(config)
    storage = open_storage(settings.clickhouse)
    FeatureColumns(storage).ensure([("hc", f, k) for f, k in FEATURES.items()])  # type: ignore[misc]
    half = window // 2
    for end, offset in ((END - timedelta(hours=1), 0), (END, window)):
        start = (end - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        step_ms = max(3_600_000 // window, 1)
        number = f"number % {values}" if values else "number"
        ident = f"if(number < {half}, concat('r', toString({number})), concat('w', toString({number} + {offset})))"
        storage.command(
            f"INSERT INTO {storage.table('events')} (model, event_id, ts, model_version, prediction_num, "
            f"feature_keys, c__id, n__x, c__c) SELECT 'hc', toString(number + {offset}), "
            f"toDateTime64('{start}', 3, 'UTC') + toIntervalMillisecond(number * {step_ms}), '1', "
            f"rand() / 4294967295.0, ['id', 'x', 'c'], {ident}, randNormal(0.1, 1), "
            f"['a', 'b', 'c', 'd', 'e'][rand() % 5 + 1] FROM numbers({window})"
        )
    storage.command(f"OPTIMIZE TABLE {storage.table('events')} FINAL")
    storage.close()


def measure(label: str, argv: list[str], env: dict[str, str], keep: bool = False) -> dict[str, object]:
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = process.stdout.read() if process.stdout else b""  # type: ignore[union-attr]
    err = process.stderr.read() if process.stderr else b""  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    row: dict[str, object] = {
        "step": label,
        "exit": process.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
    }
    if process.returncode not in (0, 1):
        row["stderr"] = err.decode(errors="replace")[-2000:]
    if keep:
        row["stdout"] = out.decode(errors="replace")
    print(json.dumps({k: v for k, v in row.items() if k != "stdout"}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=int, default=1_000_000, help="reference rows (all distinct ids)")
    parser.add_argument("--window", type=int, default=200_000, help="window rows (all distinct ids)")
    parser.add_argument("--paths", default="detect,drift", help="which paths to measure: detect, drift or both")
    parser.add_argument(
        "--id-values", type=int, default=0, help="baseline: draw id from this many values (0: every value distinct)"
    )
    parser.add_argument("--setup-events", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_events:
        setup_events(args.setup_events, args.window, args.id_values)
        return
    paths = set(args.paths.split(","))
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-highcard-") as folder:
        root = Path(folder)
        ref, cur = write_files(root, args.reference, args.window, args.id_values)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "sdk" / "src"), env.get("PYTHONPATH", "")])
        if "drift" in paths:
            row = measure(
                "monitor drift",
                [python, "-m", "monitor", "drift", "--reference", str(ref), "--current", str(cur), "--format", "json"],
                env,
                keep=True,
            )
            document = json.loads(str(row["stdout"]))
            column = document["columns"]["id"]
            print(
                json.dumps(
                    {
                        "id": {k: column[k] for k in ("method", "statistic", "drift")},
                        "stats": column["stats"],
                        "new_categories_listed": len(column.get("new_categories", [])),
                        "output_bytes": len(str(row["stdout"])),
                    }
                )
            )
        if "detect" in paths:
            model = {"features": FEATURES, "min_samples": 100, "window": "1h"}
            config = root / "monitor.yaml"
            config.write_text(json.dumps({"clickhouse": {"dsn": f"chdb://{root / 'db'}"}, "models": {"hc": model}}))
            measure(
                "monitor reference add",
                [
                    python,
                    "-m",
                    "monitor",
                    "reference",
                    "add",
                    "--config",
                    str(config),
                    "--model",
                    "hc",
                    "--file",
                    str(ref),
                ],
                env,
            )
            measure(
                "insert events",
                [
                    python,
                    __file__,
                    "--window",
                    str(args.window),
                    "--id-values",
                    str(args.id_values),
                    "--setup-events",
                    str(config),
                ],
                env,
            )
            detect = [
                python,
                "-m",
                "monitor",
                "detect",
                "--config",
                str(config),
                "--model",
                "hc",
                "--end",
                END.isoformat(),
            ]
            measure("monitor detect (first run)", detect, env)
            measure("monitor detect (summary stored)", detect, env)


if __name__ == "__main__":
    main()
