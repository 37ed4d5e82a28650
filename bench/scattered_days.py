"""What one batch of events scattered over many days costs the writer (time and peak memory).

``events`` is partitioned by day, so one insert writes a part per day it touches, with no limit on how
many (``monitor.ingest.fastpath.EVENTS_INSERT``). Each run is a fresh process with a fresh embedded
database, so its peak RSS is the writer's:

    .venv/bin/python bench/scattered_days.py [--days 1000 3000 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAY_MS = 86_400_000
START_MS = 1_893_456_000_000  # 2030-01-01


def child(days: int) -> dict[str, float]:
    import orjson

    from monitor.ingest.batch import Batch
    from monitor.ingest.writer import BatchWriter
    from monitor.settings import ClickHouseSettings
    from monitor.storage import open_storage

    folder = tempfile.mkdtemp(prefix="monitor-bench-days-")
    storage = open_storage(ClickHouseSettings(dsn=f"chdb://{folder}/db", database="days"))
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
    stored = storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": round(seconds, 1),
        "rss_before_mib": round(before),
        "peak_rss_mib": round(peak),
        "stored": stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[1000, 3000, 10000], help="events per batch, one a day")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.days[0])))
        return
    for days in args.days:
        out = subprocess.run(
            [sys.executable, __file__, "--days", str(days), "--child"],
            capture_output=True,
            text=True,
            check=True,
        )
        print(json.dumps({"days": days, **json.loads(out.stdout.strip().splitlines()[-1])}))


if __name__ == "__main__":
    main()
