"""What each step of the fast path's JSON parse costs in ClickHouse, per message, one thread.

The staging insert of :mod:`monitor.ingest.fastpath` is most of the ingest writer's time
(BENCHMARKS.md, "End to end, 25 features"). This puts ``--events`` benchmark messages (as
bench/ingest.py makes them) in a Memory table and times one ``SELECT`` per step over them, each the
best of ``--runs``, in microseconds per message; then the staging insert itself (the writer's first
statement, one thread), with the validity test and with it replaced by a constant, best of
``4 x --runs`` inserts:

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
from monitor.ingest.fastpath import FAST_VALID, ONE_THREAD, staging_ddl
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
        messages_table = pa.table(
            {
                "idx": pa.array(range(len(raws)), pa.uint32()),
                "raw": pa.array(raws, pa.binary()),
                "source": pa.array(["bench"] * len(raws)),
                "partition": pa.array([0] * len(raws), pa.int32()),
                "offset": pa.array(range(len(raws)), pa.int64()),
            }
        )
        for label, valid in (("staging insert", FAST_VALID), ("staging insert, validity test replaced by 1", "1")):
            storage.command("DROP TABLE IF EXISTS staging")
            storage.command(staging_ddl("staging", 1_000_000, valid))
            best = float("inf")
            for _ in range(4 * args.runs):
                storage.command("TRUNCATE TABLE staging")
                started = time.perf_counter()
                storage.insert_arrow("staging", messages_table, settings=ONE_THREAD)
                best = min(best, time.perf_counter() - started)
            figures[label] = round(best / args.events * 1e6, 2)
            print(f"{figures[label]:7.2f} µs/message  {label}", flush=True)
        storage.close()
    print(json.dumps({"events": args.events, "bytes_per_message": sum(map(len, raws)) // len(raws), **figures}))


if __name__ == "__main__":
    main()
