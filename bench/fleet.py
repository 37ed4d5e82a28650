"""Fleet benchmark: insert cost per event and scheduled detection cost at 1, 10 and 100 models.

For each fleet size M (models of 25 features: 20 numerical, 5 categorical), in a private chDB path:

1. insert: ``--insert-events`` raw JSON messages spread over the M models go through the
   consumer's writer (:class:`monitor.ingest.writer.BatchWriter`: staging, limits, duplicate
   lookup, maps, typed columns) in batches of 50,000; reports microseconds per event;
2. detection: every model gets a reference (``--reference`` rows) and a window of ``--window``
   events generated inside ClickHouse in the same layout (maps, typed columns derived from them);
   then ``run_detection`` runs once for every model, as the scheduler would in one interval, and the
   total and per-model seconds are reported, with the process's peak RSS.

It ends with one model of 500 features (insert only) and prints how the totals grow from 1 to 10
to 100 models. Usage:

    .venv/bin/python bench/fleet.py [--models 1,10,100] [--window 100000] [--reference 20000]
                                    [--insert-events 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.registration import add_file
from detectors.runner import run_detection
from monitor.ingest.batch import Batch
from monitor.ingest.limits import IngestPolicy
from monitor.ingest.writer import BatchWriter
from monitor.settings import load_settings
from monitor.storage import Storage, open_storage

NUMERICAL = [f"f{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
FEATURES = {**dict.fromkeys(NUMERICAL, "numerical"), **dict.fromkeys(CATEGORICAL, "categorical")}
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BATCH = 50_000


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def messages(models: list[str], total: int, numerical: int, categorical: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    base = int(END.timestamp() * 1000) - 3_600_000
    out = []
    for i in range(total):
        features: dict[str, object] = {f"f{j}": round(rng.gauss(0, 1), 4) for j in range(numerical)}
        features.update({f"c{j}": "abcde"[rng.randrange(5)] for j in range(categorical)})
        doc = {
            "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "model": models[i % len(models)],
            "model_version": "1",
            "timestamp": base + i,
            "features": features,
            "prediction": round(rng.random(), 4),
        }
        out.append(orjson.dumps(doc))
    return out


def insert_cost(storage: Storage, policy: IngestPolicy, raws: list[bytes]) -> float:
    """Seconds to store ``raws`` through the consumer's writer, in consumer-sized batches."""
    writer = BatchWriter(storage, retries=0, policy=policy)
    started = time.perf_counter()
    for at in range(0, len(raws), BATCH):
        chunk = raws[at : at + BATCH]
        writer.write(Batch(raw_predictions=chunk, raw_sources=[("bench", 0, at + i) for i in range(len(chunk))]))
    seconds = time.perf_counter() - started
    writer.close()
    return seconds


def generate_window(storage: Storage, model: str, rows: int, offset: int) -> None:
    """``rows`` events of ``model`` in the hour before END, in the maps layout, made by ClickHouse."""
    step_ms = max(int(3_600_000 / rows), 1)
    start = (END - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    keys = "[" + ", ".join(f"'{k}'" for k in NUMERICAL) + "]"
    ckeys = "[" + ", ".join(f"'{k}'" for k in CATEGORICAL) + "]"
    numbers = ", ".join(f"randNormal({0.5 if i < 3 else 0.0}, 1)" for i, _ in enumerate(NUMERICAL))
    cats = ", ".join("['a', 'b', 'c', 'd', 'e'][rand() % 5 + 1]" for _ in CATEGORICAL)
    storage.command(
        f"INSERT INTO {storage.table('events')} (model, event_id, ts, model_version, prediction_num, feature_keys, "
        f"fnum, fcat) SELECT '{model}', toString(number + {offset}), "
        f"toDateTime64('{start}', 3, 'UTC') + toIntervalMillisecond(number * {step_ms}), '1', "
        f"rand() / 4294967295.0, arrayConcat({keys}, {ckeys}), mapFromArrays({keys}, [{numbers}]), "
        f"mapFromArrays({ckeys}, [{cats}]) FROM numbers({rows})",
        settings={"max_insert_threads": 2},
    )


def write_reference(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    columns: dict[str, pa.Array] = {f: pa.array(rng.normal(0, 1, rows)) for f in NUMERICAL}
    for c in CATEGORICAL:
        columns[c] = pa.array(rng.choice(["a", "b", "c", "d", "e"], rows))
    columns["prediction"] = pa.array(rng.random(rows))
    pq.write_table(pa.table(columns), path)


def fleet(root: Path, count: int, args: argparse.Namespace) -> dict[str, object]:
    folder = root / f"m{count}"
    folder.mkdir()
    names = [f"model{i:03d}" for i in range(count)]
    model = {"features": FEATURES, "min_samples": 100, "window": "1h"}
    config = {"clickhouse": {"dsn": f"chdb://{root / 'db'}", "database": f"fleet{count}"}}
    config["models"] = dict.fromkeys(names, model)  # type: ignore[assignment]
    (folder / "monitor.yaml").write_text(json.dumps(config))
    settings = load_settings(folder / "monitor.yaml")
    storage = open_storage(settings.clickhouse)
    policy = IngestPolicy.from_settings(settings)

    raws = messages(names, args.insert_events, 20, 5, seed=count)
    insert_s = insert_cost(storage, policy, raws)

    write_reference(folder / "ref.parquet", args.reference)
    t = time.perf_counter()
    for name in names:
        add_file(storage, name, folder / "ref.parquet", features=FEATURES)  # type: ignore[arg-type]
        generate_window(storage, name, args.window, 10_000_000)
    setup_s = time.perf_counter() - t
    storage.command(f"OPTIMIZE TABLE {storage.table('events')} FINAL")
    runs = []
    t = time.perf_counter()
    for name in names:
        started = time.perf_counter()
        run_detection(storage, settings, name, window_end=END, now=END)
        runs.append(time.perf_counter() - started)
    detect_s = time.perf_counter() - t
    return {
        "models": count,
        "features": 25,
        "insert_events": len(raws),
        "insert_us_per_event": round(insert_s / len(raws) * 1e6, 1),
        "window_events_per_model": args.window,
        "reference_rows": args.reference,
        "setup_s": round(setup_s, 1),
        "detection_total_s": round(detect_s, 1),
        "detection_max_model_s": round(max(runs), 2),
        "detection_mean_model_s": round(sum(runs) / len(runs), 2),
        "peak_rss_mb": peak_rss_mb(),
    }


def wide(root: Path, args: argparse.Namespace) -> dict[str, object]:
    folder = root / "wide"
    folder.mkdir()
    (folder / "monitor.yaml").write_text(
        json.dumps({"clickhouse": {"dsn": f"chdb://{root / 'db'}", "database": "wide"}})
    )
    settings = load_settings(folder / "monitor.yaml")
    storage = open_storage(settings.clickhouse)
    raws = messages(["wide"], args.insert_events, 450, 50, seed=500)
    seconds = insert_cost(storage, IngestPolicy.from_settings(settings), raws)
    return {
        "models": 1,
        "features": 500,
        "insert_events": len(raws),
        "insert_us_per_event": round(seconds / len(raws) * 1e6, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="1,10,100")
    parser.add_argument("--window", type=int, default=100_000, help="events per model window")
    parser.add_argument("--reference", type=int, default=20_000, help="reference rows per model")
    parser.add_argument("--insert-events", type=int, default=100_000, help="events through the writer per size")
    parser.add_argument("--no-wide", action="store_true", help="skip the 500-feature model")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
        root = Path(folder)
        for count in (int(c) for c in args.models.split(",")):
            result = fleet(root, count, args)
            results.append(result)
            print(json.dumps(result), flush=True)
        if not args.no_wide:
            print(json.dumps(wide(root, args)), flush=True)
    base = results[0]
    for result in results[1:]:
        growth = {
            "insert_per_event": round(result["insert_us_per_event"] / base["insert_us_per_event"], 2),  # type: ignore[operator]
            "detection_total": round(result["detection_total_s"] / max(base["detection_total_s"], 0.01), 1),  # type: ignore[operator]
            "detection_per_model": round(
                result["detection_mean_model_s"] / max(base["detection_mean_model_s"], 0.01),  # type: ignore[operator]
                2,
            ),
        }
        print(f"growth {base['models']} -> {result['models']} models: {json.dumps(growth)}", flush=True)
    target = next((r for r in results if r["models"] == 100), None)
    if target is not None:
        ok = target["detection_total_s"] <= 300 and target["peak_rss_mb"] < 1024  # type: ignore[operator]
        print(
            f"capacity target (100 models x 25 features x {args.window:,} events, all runs within 300 s, "
            f"RSS < 1 GiB): {'met' if ok else 'NOT met'} ({target['detection_total_s']} s, {target['peak_rss_mb']} MiB)"
        )


if __name__ == "__main__":
    main()
