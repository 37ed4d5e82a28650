"""Fleet benchmark: insert cost per event and scheduled detection cost at 1, 10 and 100 models.

For each fleet size M (models of 25 features: 20 numerical, 5 categorical), in a private chDB path,
each phase in its own process (only one process at a time opens the database, as in the service):

1. insert: ``--insert-events`` raw JSON messages spread over the M models, made one at a time, go
   through the consumer's writer (:class:`monitor.ingest.writer.BatchWriter`: staging, limits,
   duplicate lookup, maps, typed columns) in batches cut as the consumer cuts them
   (``kafka.batch_max_messages`` or ``ingest.batch_max_bytes``); reports microseconds per event and
   the process's peak RSS (the consumer's work, holding one batch at a time as the consumer does);
2. setup: every model gets a reference (``--reference`` rows) and two consecutive hourly windows of
   ``--window`` events generated inside ClickHouse in the same layout (maps, typed columns derived
   from them);
3. detection: a process that only opens the database runs ``run_detection`` for every model, as the
   scheduler would in one interval, twice: the first interval after the references were registered
   (``detection_first_*``: each reference's thresholds are calibrated for the window size then, and
   stored), and the next one (``detection_*``, the steady state); reports the total and per-model
   seconds and that process's peak RSS (the service's during detection).

It ends with one model of 500 features (insert only) and prints how the totals grow from 1 to 10
to 100 models (steady intervals). bench/fleet_layouts.py compares these costs across storage layouts. Usage:

    .venv/bin/python bench/fleet.py [--models 1,10,100] [--window 100000] [--reference 20000]
                                    [--insert-events 100000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
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
from monitor.settings import Settings, load_settings
from monitor.storage import Storage, open_storage

NUMERICAL = [f"f{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
FEATURES = {**dict.fromkeys(NUMERICAL, "numerical"), **dict.fromkeys(CATEGORICAL, "categorical")}
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def messages(models: list[str], total: int, numerical: int, categorical: int, seed: int) -> list[bytes]:
    return list(iter_messages(models, total, numerical, categorical, seed))


def iter_messages(models: list[str], total: int, numerical: int, categorical: int, seed: int) -> Iterator[bytes]:
    """Raw prediction messages spread over ``models`` in turn, made one at a time (as a topic yields them),
    one millisecond apart from END - 3h: before the windows the detection runs read."""
    rng = random.Random(seed)
    base = int(END.timestamp() * 1000) - 3 * 3_600_000
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
        yield orjson.dumps(doc)


def byte_bounded(raws: Iterable[bytes], max_messages: int, max_bytes: int) -> Iterator[list[bytes]]:
    """``raws`` cut as the consumer cuts its batches: at ``kafka.batch_max_messages`` messages or
    ``ingest.batch_max_bytes`` message bytes, whichever comes first."""
    chunk: list[bytes] = []
    held = 0
    for raw in raws:
        chunk.append(raw)
        held += len(raw)
        if len(chunk) >= max_messages or held >= max_bytes:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def insert_cost(storage: Storage, settings: Settings, raws: Iterable[bytes]) -> tuple[float, int, int]:
    """Seconds to store ``raws`` through the consumer's writer in consumer-sized batches (the writes only,
    not making the messages), the batches and the events."""
    writer = BatchWriter(storage, retries=0, policy=IngestPolicy.from_settings(settings))
    seconds = 0.0
    at = batches = 0
    for chunk in byte_bounded(raws, settings.kafka.batch_max_messages, settings.ingest.batch_max_bytes):
        batch = Batch(raw_predictions=chunk, raw_sources=[("bench", 0, at + i) for i in range(len(chunk))])
        started = time.perf_counter()
        writer.write(batch)
        seconds += time.perf_counter() - started
        at += len(chunk)
        batches += 1
    writer.close()
    return seconds, batches, at


def generate_window(storage: Storage, model: str, rows: int, offset: int, end: datetime = END) -> None:
    """``rows`` events of ``model`` in the hour before ``end``, in the maps layout, made by ClickHouse."""
    step_ms = max(int(3_600_000 / rows), 1)
    start = (end - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
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


def in_child(work: Callable[..., dict[str, object]], *args: object) -> dict[str, object]:
    """``work(*args)`` in a fresh process (which opens the database itself, as a service process would),
    with that process's peak RSS added; one process at a time holds the embedded database."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measured, work, *args).result()


def _measured(work: Callable[..., dict[str, object]], *args: object) -> dict[str, object]:
    return {**work(*args), "peak_rss_mb": peak_rss_mb()}


def fleet_settings(root: Path, database: str, names: list[str], features: dict[str, str]) -> Settings:
    folder = root / database
    folder.mkdir(exist_ok=True)
    model = {"features": features, "min_samples": 100, "window": "1h"}
    config = {"clickhouse": {"dsn": f"chdb://{root / 'db'}", "database": database}}
    config["models"] = dict.fromkeys(names, model)  # type: ignore[assignment]
    (folder / "monitor.yaml").write_text(json.dumps(config))
    return load_settings(folder / "monitor.yaml")


def insert_phase(
    settings: Settings, names: list[str], total: int, numerical: int, categorical: int
) -> dict[str, object]:
    """The consumer's work: messages (made one at a time, never all held) through the writer."""
    storage = open_storage(settings.clickhouse)
    seconds, batches, events = insert_cost(
        storage, settings, iter_messages(names, total, numerical, categorical, seed=len(names) + numerical)
    )
    return {"insert_us_per_event": round(seconds / events * 1e6, 1), "insert_batches": batches}


def setup_phase(settings: Settings, root: Path, names: list[str], window: int, reference: int) -> dict[str, object]:
    """A reference per model and, per model, two consecutive hourly windows of ``window`` events each
    (ending at END - 1h and at END), generated by ClickHouse."""
    storage = open_storage(settings.clickhouse)
    write_reference(root / "ref.parquet", reference)
    t = time.perf_counter()
    for name in names:
        add_file(storage, name, root / "ref.parquet", features=FEATURES)  # type: ignore[arg-type]
        generate_window(storage, name, window, 10_000_000, END - timedelta(hours=1))
        generate_window(storage, name, window, 20_000_000)
    storage.command(f"OPTIMIZE TABLE {storage.table('events')} FINAL")
    return {"setup_s": round(time.perf_counter() - t, 1)}


def detection_phase(settings: Settings, names: list[str]) -> dict[str, object]:
    """Two scheduler intervals in a process that only opens the database (its peak RSS is the service's
    during detection): ``run_detection`` for every model in turn over the window ending at END - 1h (the
    first run after registration: it also calibrates each reference's thresholds for this window size
    and stores them), then over the window ending at END (a steady interval)."""
    storage = open_storage(settings.clickhouse)
    figures: dict[str, object] = {}
    for prefix, end in (("first_", END - timedelta(hours=1)), ("", END)):
        runs = []
        t = time.perf_counter()
        for name in names:
            started = time.perf_counter()
            run_detection(storage, settings, name, window_end=end, now=end)
            runs.append(time.perf_counter() - started)
        figures |= {
            f"detection_{prefix}total_s": round(time.perf_counter() - t, 1),
            f"detection_{prefix}max_model_s": round(max(runs), 2),
            f"detection_{prefix}mean_model_s": round(sum(runs) / len(runs), 2),
        }
    return figures


def fleet(root: Path, count: int, args: argparse.Namespace) -> dict[str, object]:
    names = [f"model{i:03d}" for i in range(count)]
    settings = fleet_settings(root, f"fleet{count}", names, FEATURES)
    inserted = in_child(insert_phase, settings, names, args.insert_events, 20, 5)
    setup = in_child(setup_phase, settings, root / f"fleet{count}", names, args.window, args.reference)
    detected = in_child(detection_phase, settings, names)
    return {
        "models": count,
        "features": 25,
        "insert_events": args.insert_events,
        "insert_us_per_event": inserted["insert_us_per_event"],
        "insert_batches": inserted["insert_batches"],
        "insert_peak_rss_mb": inserted["peak_rss_mb"],
        "window_events_per_model": args.window,
        "reference_rows": args.reference,
        "setup_s": setup["setup_s"],
        **{k: v for k, v in detected.items() if k != "peak_rss_mb"},
        "detection_peak_rss_mb": detected["peak_rss_mb"],
    }


def wide(root: Path, args: argparse.Namespace) -> dict[str, object]:
    """One model of 500 features, not configured (the writer gives 200 of them typed columns)."""
    settings = fleet_settings(root, "wide", [], {})
    inserted = in_child(insert_phase, settings, ["wide"], args.insert_events, 450, 50)
    return {
        "models": 1,
        "features": 500,
        "insert_events": args.insert_events,
        "insert_us_per_event": inserted["insert_us_per_event"],
        "insert_batches": inserted["insert_batches"],
        "insert_peak_rss_mb": inserted["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="1,10,100", help="fleet sizes ('' for the wide model only)")
    parser.add_argument("--window", type=int, default=100_000, help="events per model window")
    parser.add_argument("--reference", type=int, default=20_000, help="reference rows per model")
    parser.add_argument("--insert-events", type=int, default=100_000, help="events through the writer per size")
    parser.add_argument("--no-wide", action="store_true", help="skip the 500-feature model")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
        root = Path(folder)
        for count in (int(c) for c in args.models.split(",") if c):
            result = fleet(root, count, args)
            results.append(result)
            print(json.dumps(result), flush=True)
        if not args.no_wide:
            print(json.dumps(wide(root, args)), flush=True)
    for result in results[1:]:
        base = results[0]
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
        ok = target["detection_total_s"] <= 300 and target["detection_peak_rss_mb"] < 1024  # type: ignore[operator]
        print(
            f"capacity target (100 models x 25 features x {args.window:,} events, "
            "a steady interval's runs within 300 s, "
            f"RSS < 1 GiB): {'met' if ok else 'NOT met'} ({target['detection_total_s']} s, "
            f"detection process {target['detection_peak_rss_mb']} MiB)"
        )


if __name__ == "__main__":
    main()
