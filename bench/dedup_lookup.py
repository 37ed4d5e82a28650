"""What the duplicate rule costs per batch as ``event_keys`` grows (docs/ingestion.md, "Duplicates").

Fills ``event_keys`` of one model with N random keys, then stores batches of 50,000 new events of
that model through :class:`monitor.ingest.pending.PendingEvents` and times the lookup query alone
and the whole store. Usage:

    .venv/bin/python bench/dedup_lookup.py [--keys 0,1000000,10000000] [--batch 50000]

Prints one JSON line per size; BENCHMARKS.md records them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.ingest.pending import PendingEvents  # noqa: E402
from monitor.ingest.validation import PredictionEvent  # noqa: E402
from monitor.settings import ClickHouseSettings  # noqa: E402
from monitor.storage import open_storage  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", default="0,1000000,10000000")
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args()
    storage = open_storage(ClickHouseSettings(dsn=f"chdb://{tempfile.mkdtemp()}/db"))
    pending = PendingEvents(storage, storage.insert_arrow)
    keys = storage.table("event_keys")
    filled = 0
    for target in (int(k) for k in args.keys.split(",")):
        if target > filled:
            storage.command(
                f"INSERT INTO {keys} (model, event_id, ts) SELECT 'bench', toString(generateUUIDv4()), "
                f"now64(3) FROM numbers({target - filled})"
            )
            filled = target
            storage.command(f"OPTIMIZE TABLE {keys} FINAL")
        timings = []
        for _ in range(3):
            events = [
                PredictionEvent(uuid.uuid4().hex, "bench", 1795773600000 + i, {"x": 1.0}, 0.5)
                for i in range(args.batch)
            ]
            pending.clear()
            pending.add(events, [("bench", 0, i) for i in range(len(events))], 0)
            started = time.perf_counter()
            pending.store_pending()
            timings.append(time.perf_counter() - started)
            filled += args.batch
        print(json.dumps({"keys": target, "batch": args.batch, "store_s": round(min(timings), 3)}), flush=True)
    pending.close()


if __name__ == "__main__":
    main()
