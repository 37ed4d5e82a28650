"""What the delivery worker's once-a-second outbox queries cost as ``alert_outbox`` grows.

Fills a fresh embedded database with ``--deliveries`` finished deliveries (three row versions each:
pending, sending, delivered, as the worker writes them) plus 100 pending ones, then times the
worker's per-loop queries (``due``, ``next_due_at``, ``counts``) and one enqueue. Usage:

    .venv/bin/python bench/outbox_scan.py [--deliveries 100000]

Prints one JSON line; BENCHMARKS.md records it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402

from alerts.outbox import OUTBOX_COLUMNS, Outbox  # noqa: E402
from monitor.settings import ClickHouseSettings  # noqa: E402
from monitor.storage import open_storage  # noqa: E402
from monitor.windows import utc_now  # noqa: E402


def timed(call, repeat: int = 20) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-bench-outbox-"))
    try:
        storage = open_storage(ClickHouseSettings(dsn=f"chdb://{work / 'db'}"))
        now = utc_now()
        n = args.deliveries
        payload = json.dumps({"reason": "x" * 800})  # a typical event payload is ~1-2 KB
        columns: dict[str, list] = {name: [] for name in OUTBOX_COLUMNS}
        for i in range(n + 100):
            versions = [("pending", 0), ("sending", 1), ("delivered", 2)] if i < n else [("pending", 0)]
            for status, version in versions:
                for key, value in (
                    ("delivery_id", f"d{i}"),
                    ("event_id", f"e{i}"),
                    ("model", f"m{i % 20}"),
                    ("rule", "r"),
                    ("kind", "firing"),
                    ("channel", "c"),
                    ("channel_type", "webhook"),
                    ("payload", payload),
                    ("status", status),
                    ("attempts", version),
                    ("next_attempt_at", now - timedelta(seconds=1)),
                    ("owner", ""),
                    ("lease_until", now),
                    ("last_error", ""),
                    ("last_status_code", 0),
                    ("created_at", now),
                    ("updated_at", now),
                    ("delivered_at", now if status == "delivered" else None),
                    ("version", version),
                ):
                    columns[key].append(value)
        started = time.perf_counter()
        table = pa.table(columns)
        storage.insert_arrow("alert_outbox", table)
        fill = time.perf_counter() - started
        outbox = Outbox(storage)
        result = {
            "deliveries": n,
            "rows": table.num_rows,
            "fill_seconds": round(fill, 2),
            "due_ms": timed(lambda: outbox.due(utc_now())),
            "next_due_at_ms": timed(lambda: outbox.next_due_at()),
            "counts_ms": timed(lambda: outbox.counts()),
            "pending_found": len(outbox.due(utc_now(), limit=1000)),
        }
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
