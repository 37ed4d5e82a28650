"""Benchmark: one full detection run (every detector) over a large window in embedded ClickHouse.

Builds, in a private chDB path: a reference of R rows (20 numerical + 5 categorical features,
prediction and label) written to Parquet and registered with ``monitor reference add``'s code path,
and 2 x N events (the window and the previous window, for window-over-window drift) generated inside
ClickHouse with ``INSERT ... SELECT FROM numbers()`` in the real ``events`` layout, half of them
labelled. Then times ``run_detection`` end to end and each detector alone, and reports peak RSS.

    .venv/bin/python bench/detect.py [--events 1000000] [--reference 1000000] [--segments 0]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.checks import performance, quality, volume
from detectors.drift import scheduled as drift_detectors
from detectors.registration import add_file
from detectors.runner import build_context, run_detection
from monitor.settings import load_settings
from monitor.storage import open_storage
from monitor.storage.events import FeatureColumns

NUMERICAL = [f"f{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def write_reference(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    columns: dict[str, pa.Array] = {f: pa.array(rng.normal(0, 1, rows)) for f in NUMERICAL}
    for c in CATEGORICAL:
        columns[c] = pa.array(rng.choice(["a", "b", "c", "d", "e"], rows))
    score = rng.random(rows)
    columns["prediction"] = pa.array(score)
    columns["label"] = pa.array((rng.random(rows) < score).astype(np.int64))
    pq.write_table(pa.table(columns), path)


def insert_events(storage, rows: int, end: datetime, shift: float, offset: int) -> None:  # type: ignore[no-untyped-def]
    step_ms = max(int(3_600_000 / rows), 1)
    start = (end - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    keys = "[" + ", ".join(f"'{k}'" for k in NUMERICAL + CATEGORICAL) + "]"
    numbers = ", ".join(f"randNormal({shift if i < 3 else 0.0}, 1)" for i, _ in enumerate(NUMERICAL))
    cats = ", ".join("['a', 'b', 'c', 'd', 'e'][rand() % 5 + 1]" for _ in CATEGORICAL)
    targets = ", ".join([*(f"n__{f}" for f in NUMERICAL), *(f"c__{c}" for c in CATEGORICAL)])
    storage.command(
        f"INSERT INTO {storage.table('events')} (model, event_id, ts, model_version, prediction_num, feature_keys, "
        f"{targets}) SELECT 'bench', toString(number + {offset}), "
        f"toDateTime64('{start}', 3, 'UTC') + toIntervalMillisecond(number * {step_ms}), '1', rand() / 4294967295.0, "
        f"{keys}, {numbers}, {cats} FROM numbers({rows})",
        settings={"max_insert_threads": 2},
    )
    storage.command(
        f"INSERT INTO {storage.table('labels')} (model, event_id, label_num, ts) SELECT 'bench', "
        f"toString(number + {offset}), toFloat64(rand() % 2), now64(3) FROM numbers({rows}) WHERE number % 2 = 0"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the window (and again before it)")
    parser.add_argument("--reference", type=int, default=1_000_000, help="reference rows")
    parser.add_argument("--segments", type=int, default=0, help="segment values (0: no segment breakdown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as folder:
        root = Path(folder)
        features = {**dict.fromkeys(NUMERICAL, "numerical"), **dict.fromkeys(CATEGORICAL, "categorical")}
        model = {"features": features, "min_samples": 100, "window": "1h"}
        if args.segments:
            model["segments"] = ["part"]
        (root / "monitor.yaml").write_text(
            f"clickhouse: {{dsn: 'chdb://{root / 'db'}'}}\nmodels: {{bench: {model!r}}}\n".replace("'", '"')
        )
        settings = load_settings(root / "monitor.yaml")
        storage = open_storage(settings.clickhouse)
        FeatureColumns(storage).ensure([("bench", f, k) for f, k in features.items()])  # type: ignore[misc]

        t = time.perf_counter()
        write_reference(root / "ref.parquet", args.reference)
        print(f"wrote reference Parquet ({args.reference:,} rows) in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        add_file(storage, "bench", root / "ref.parquet", features=features)  # type: ignore[arg-type]
        print(f"reference add (load + profile): {time.perf_counter() - t:.2f}s")

        t = time.perf_counter()
        insert_events(storage, args.events, END - timedelta(hours=1), 0.0, 0)
        insert_events(storage, args.events, END, 0.5, args.events)
        if args.segments:
            storage.command(
                f"ALTER TABLE {storage.table('events')} UPDATE segment = map('part', toString(cityHash64(event_id) "
                f"% {args.segments})) WHERE 1 SETTINGS mutations_sync = 2"
            )
        storage.command(f"OPTIMIZE TABLE {storage.table('events')} FINAL")
        print(f"generated 2 x {args.events:,} events in {time.perf_counter() - t:.1f}s")

        runs = []
        for _ in range(3):
            t = time.perf_counter()
            report = run_detection(storage, settings, "bench", window_end=END, now=END)
            runs.append(time.perf_counter() - t)
        print(
            f"run_detection: {min(runs):.2f}s best of 3 (runs {', '.join(f'{r:.2f}' for r in runs)}), "
            f"{len(report.results)} rows, status {report.status}, dataset drift {report.dataset_drift()}, "
            f"drifted {[r.column for r in report.drifted_columns()]}"
        )
        ctx = build_context(storage, settings, "bench", window_end=END, now=END)
        parts = {
            "feature_drift (skew reuses it)": lambda: drift_detectors.feature_drift(ctx),
            "prediction_drift": lambda: drift_detectors.prediction_drift(ctx),
            "window_drift": lambda: drift_detectors.window_drift(ctx),
            "data_quality": lambda: quality.data_quality(ctx),
            "volume + freshness": lambda: volume.volume(ctx) + volume.freshness(ctx),
            "performance": lambda: performance.performance(ctx),
        }
        for name, part in parts.items():
            t = time.perf_counter()
            part()
            print(f"  {name:<32} {time.perf_counter() - t:6.2f}s")
        t = time.perf_counter()
        storage.rows(
            f"SELECT {', '.join(f'sum(n__{f})' for f in NUMERICAL)}, "
            f"{', '.join(f'uniqExact(c__{c})' for c in CATEGORICAL)} FROM {storage.table('events')} FINAL "
            f"WHERE model = 'bench' AND ts >= toDateTime64('{(END - timedelta(hours=1)):%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
        )
        print(f"  plain scan of the window's feature columns (FINAL): {time.perf_counter() - t:.2f}s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:.0f} MiB")
        storage.close()


if __name__ == "__main__":
    main()
