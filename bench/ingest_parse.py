"""What each step of the fast path's JSON parse costs in ClickHouse, per message, one thread.

The staging insert of :mod:`monitor.ingest.fastpath` is most of the ingest writer's time
(BENCHMARKS.md, "End to end, 25 features"). This puts ``--events`` benchmark messages (as
bench/ingest.py makes them) in a Memory table and times one ``SELECT`` per step over them, each the
best of ``--runs``, in microseconds per message; then the staging itself as the writer does it
(:meth:`FastPredictionPath.stage`: the Arrow column of messages, emptying the table, the insert on one
thread), with the validity test and with it replaced by a constant, best of ``4 x --runs``:

    .venv/bin/python bench/ingest_parse.py [--events 37000] [--features 25] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_writer import messages
from monitor.ingest.fastpath import FAST_VALID, ONE_THREAD, FastPredictionPath
from monitor.storage import connect_dsn

TOP = "JSONExtractKeysAndValuesRaw(raw)"
STEPS = {
    "read the column (count)": "SELECT count() FROM staged",
    "isValidUTF8": "SELECT sum(isValidUTF8(raw)) FROM staged",
    "isValidJSON": "SELECT sum(isValidJSON(raw)) FROM staged",
    "top level (JSONExtractKeysAndValuesRaw)": f"SELECT sum(length({TOP})) FROM staged",
    "top level, then the features object parsed again": f"SELECT sum(length(JSONExtractKeysAndValuesRaw("
    f"CAST({TOP}, 'Map(String, String)')['features']))) FROM staged",
    "features object straight from the message": "SELECT sum(length(JSONExtractKeysAndValuesRaw(raw, 'features'))) "
    "FROM staged",
    "surrogate-escape regular expression": r"SELECT sum(match(raw, '\\\\u[dD][89a-fA-F]')) FROM staged",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=37_000)
    parser.add_argument("--features", type=int, default=25)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    raws = messages(args.events, args.features)
    with tempfile.TemporaryDirectory() as folder:
        storage = connect_dsn(f"chdb://{folder}/db", "default")
        storage.command("CREATE TABLE staged (raw String) ENGINE = Memory")
        storage.insert_arrow("staged", pa.table({"raw": pa.array(raws, pa.binary())}))
        figures: dict[str, float] = {}
        for label, sql in STEPS.items():
            best = float("inf")
            for _ in range(args.runs):
                started = time.perf_counter()
                storage.rows(sql, settings={"max_threads": 1})
                best = min(best, time.perf_counter() - started)
            figures[label] = round(best / args.events * 1e6, 2)
            print(f"{figures[label]:7.2f} µs/message  {label}", flush=True)
        sources = [("bench", 0, i) for i in range(len(raws))]

        def insert(table: str, data: pa.Table) -> None:  # as the writer inserts: one thread
            storage.insert_arrow(table, data, settings=ONE_THREAD)

        for label, valid in (("staging insert", FAST_VALID), ("staging insert, validity test replaced by 1", "1")):
            fast = FastPredictionPath(storage, 1_000_000, valid)
            best = float("inf")
            for _ in range(4 * args.runs):
                started = time.perf_counter()
                fast.stage(raws, sources, insert)
                best = min(best, time.perf_counter() - started)
            fast.close()
            figures[label] = round(best / args.events * 1e6, 2)
            print(f"{figures[label]:7.2f} µs/message  {label}", flush=True)
        storage.close()
    print(json.dumps({"events": args.events, "bytes_per_message": sum(map(len, raws)) // len(raws), **figures}))


if __name__ == "__main__":
    main()
