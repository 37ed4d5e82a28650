"""What one batch of events scattered over many days costs the writer (time and peak memory).

Producers choose an event's timestamp. ``events`` was partitioned by the event's day, so such a batch
wrote a part per day; since migration 0005 it is partitioned by the day rows are stored. Each run is a
fresh process with a fresh embedded database, so its peak RSS is the writer's; it also reports the
parts the batch left and what a fresh process then needs to count the events:

    .venv/bin/python bench/scattered_days.py [--days 1000 3000 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAY_MS = 86_400_000
START_MS = 1_893_456_000_000  # 2030-01-01


def write(folder: str, days: int) -> dict[str, float]:
    """One batch of ``days`` events, each on another day, through the consumer's writer."""
    import orjson

    from monitor.ingest.batch import Batch
    from monitor.ingest.writer import BatchWriter

    storage = _open(folder)
    raws = [
        orjson.dumps(
            {
                "event_id": f"e{i}",
                "model": "m",
                "timestamp": START_MS + i * DAY_MS,
                "features": {"a": 1.0, "b": "x"},
                "prediction": 0.5,
            }
        )
        for i in range(days)
    ]
    batch = Batch(raw_predictions=raws, raw_sources=[("t", 0, i) for i in range(days)], messages=days)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    BatchWriter(storage).write(batch)
    seconds = time.perf_counter() - started
    parts = storage.rows("SELECT count() FROM system.parts WHERE active AND database = 'days' AND table = 'events'")[0][
        0
    ]
    return {
        "seconds": round(seconds, 1),
        "rss_before_mib": round(before),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "parts": parts,
    }


def count(folder: str) -> dict[str, float]:
    """What a later process (a restart) needs to open the database and count the events."""
    started = time.perf_counter()
    storage = _open(folder)
    opened = time.perf_counter() - started
    stored = storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0]
    return {
        "reopen_seconds": round(opened, 1),
        "count_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "stored": stored,
    }


def _open(folder: str):  # type: ignore[no-untyped-def]
    from monitor.settings import ClickHouseSettings
    from monitor.storage import open_storage

    return open_storage(ClickHouseSettings(dsn=f"chdb://{folder}/db", database="days"))


def _child(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[1000, 3000, 10000], help="events per batch, one a day")
    parser.add_argument("--child", choices=["write", "count"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "write":
        print(json.dumps(write(args.folder, args.days[0])))
        return
    if args.child == "count":
        print(json.dumps(count(args.folder)))
        return
    for days in args.days:
        with tempfile.TemporaryDirectory(prefix="monitor-bench-days-") as folder:
            written = _child("--child", "write", "--folder", folder, "--days", str(days))
            files = sum(len(names) for _, _, names in os.walk(folder))
            counted = _child("--child", "count", "--folder", folder)
            print(json.dumps({"days": days, **written, "files": files, **counted}))


if __name__ == "__main__":
    main()
