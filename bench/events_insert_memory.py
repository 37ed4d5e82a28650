"""What the insert into ``events`` holds in memory, by the table's compression buffers.

Stages ``--events`` benchmark messages (as bench/ingest.py makes them) through the fast path, then
writes them, as the ingest writer does, into copies of the migrated ``events`` table (the maps and
one typed column per feature) that differ only in their MergeTree settings: ClickHouse's default 1 MiB
compression buffers, the 64 KiB ones migration 0003 sets, and Compact parts. For each: the insert's
time (best of 3) and the peak of the engine's tracked memory during it (bench/ingest_writer.py's
probe, sampling every 3 ms from a second connection; background merges stopped meanwhile; the staged
batch is part of it); then, after
doubling and merging each table, its size on disk and the time of a quantiles query over every
numerical column:

    .venv/bin/python bench/events_insert_memory.py [--events 37000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_writer import Probe, messages
from monitor.ingest.fastpath import EVENT_COLUMNS, ONE_THREAD, FastPredictionPath, one_thread
from monitor.settings import ClickHouseSettings
from monitor.storage import open_storage, quote_identifier
from monitor.storage.events import NUMERICAL, FeatureColumns, feature_column

# MergeTree settings of each copy of `events`; the copies start from the migrated table (64 KiB).
VARIANTS = {
    "1 MiB buffers (ClickHouse's default)": "max_compress_block_size = 1048576",
    "64 KiB buffers (migration 0003)": "max_compress_block_size = 65536",
    "Compact parts": "max_compress_block_size = 1048576, min_bytes_for_wide_part = 1000000000",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=37_000)
    args = parser.parse_args()
    raws = messages(args.events, 25)
    with tempfile.TemporaryDirectory() as folder:
        settings = ClickHouseSettings(dsn=f"chdb://{folder}/db", database="bench")
        storage = open_storage(settings)  # the real layout: every migration applied
        fast = FastPredictionPath(storage, 1_000_000)
        fast.stage(raws, [("bench", 0, i) for i in range(len(raws))], storage.insert_arrow)
        features = fast.survey().features
        FeatureColumns(storage).ensure(features)  # the typed columns the writer would add
        numerical = sorted(feature_column(f, k) for _, f, k in features if k == NUMERICAL)
        names = ", ".join(quote_identifier(c) for c in EVENT_COLUMNS)
        select = f"SELECT {', '.join(EVENT_COLUMNS.values())} FROM {fast.table} WHERE valid"
        probe = Probe(storage)  # from here on, every call's time and engine memory peak are recorded
        inserts: dict[str, tuple[float, int]] = {}
        for number, (label, extra) in enumerate(VARIANTS.items()):
            table = storage.table(f"events_{number}")
            storage.command(f"CREATE TABLE {table} AS {storage.table('events')}")
            storage.command(f"ALTER TABLE {table} MODIFY SETTING {extra}")
            # A table made with CREATE ... AS may keep the settings it was created with in effect until
            # it is attached again (measured: the 64 KiB copy then held 1 MiB buffers).
            storage.command(f"DETACH TABLE {table}")
            storage.command(f"ATTACH TABLE {table}")
            storage.command(f"SYSTEM STOP MERGES {table}")  # a background merge would count in the insert's peak
            insert = one_thread(f"INSERT INTO {table} ({names}) {select}", optimize_on_insert=0)
            for _ in range(3):
                storage.release_memory()
                storage.command(insert)
            key = "command: " + " ".join(insert.split())[:60]
            inserts[label] = (probe.seconds[key], probe.engine_mib[key])
        for number, (label, (best, peak)) in enumerate(inserts.items()):
            table = storage.table(f"events_{number}")
            storage.command(f"SYSTEM START MERGES {table}")
            storage.command(f"INSERT INTO {table} SELECT * FROM {table}")
            storage.command(f"OPTIMIZE TABLE {table} FINAL")
            query = "SELECT " + ", ".join(f"quantiles(0.1, 0.5, 0.9)({c})" for c in numerical) + f" FROM {table}"
            read = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                storage.rows(query, settings=ONE_THREAD)
                read = min(read, time.perf_counter() - started)
            size = storage.rows(
                "SELECT sum(data_compressed_bytes) FROM system.parts WHERE database = {db:String} "
                "AND table = {t:String} AND active",
                parameters={"db": storage.database, "t": f"events_{number}"},
            )[0][0]
            print(
                f"{label:38s} insert {best / len(raws) * 1e6:5.2f} µs/event, engine peak {peak:4d} MiB; "
                f"merged {int(size) / 1e6:5.1f} MB, quantiles of {len(numerical)} columns {read * 1000:4.0f} ms",
                flush=True,
            )
        probe.close()
        fast.close()
        storage.close()


if __name__ == "__main__":
    main()
