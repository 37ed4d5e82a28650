"""What the typed columns' DEFAULT costs the insert into ``events``, by how it looks up the map.

Stages ``--events`` benchmark messages of ``--features`` features (as bench/ingest.py makes them) through
the fast path, then writes them into the migrated ``events`` table with the writer's statement, best
of 3 (background merges stopped): first with no typed column, then with one typed column per feature
whose DEFAULT finds the value in the map in one scan of its keys (``arrayElementOrNull``,
:func:`monitor.storage.events.column_definition`), then in two (``mapContains`` and ``[]``, as before
migration 0004). Every typed column looks up its own key in every event, so the lookups grow with
typed columns x features per event:

    .venv/bin/python bench/typed_lookup.py [--features 500] [--events 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_writer import messages
from monitor.ingest.fastpath import EVENT_COLUMNS, FastPredictionPath, one_thread
from monitor.settings import ClickHouseSettings
from monitor.storage import Storage, open_storage, quote_identifier
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureColumns, feature_column, sql_string

TWO_SCANS = {
    NUMERICAL: "Float64 DEFAULT if(mapContains(fnum, {key}), fnum[{key}], nan)",
    CATEGORICAL: "LowCardinality(Nullable(String)) DEFAULT if(mapContains(fcat, {key}), fcat[{key}], NULL)",
}


def insert_us(storage: Storage, source: str, events: int) -> float:
    """Microseconds an event of the writer's INSERT ... SELECT into ``events`` (best of 3)."""
    names = ", ".join(quote_identifier(c) for c in EVENT_COLUMNS)
    statement = one_thread(
        f"INSERT INTO {storage.table('events')} ({names}) SELECT {', '.join(EVENT_COLUMNS.values())} "
        f"FROM {source} WHERE valid",
        optimize_on_insert=0,
    )
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        storage.command(statement)
        best = min(best, time.perf_counter() - started)
    return round(best / events * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=500)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()

    storage = open_storage(ClickHouseSettings(dsn=f"chdb://{tempfile.mkdtemp(prefix='monitor-bench-lookup-')}/db"))
    storage.command(f"SYSTEM STOP MERGES {storage.table('events')}")
    raws = messages(args.events, args.features)
    fast = FastPredictionPath(storage, 100_000_000)
    fast.stage(raws, [("bench", 0, i) for i in range(len(raws))], storage.insert_arrow)

    figures = {
        "features": args.features,
        "events": args.events,
        "no typed column": insert_us(storage, fast.table, args.events),
    }
    entries = fast.survey().features  # one typed column per feature, as the writer would add them
    FeatureColumns(storage).ensure(entries)
    figures["one scan (arrayElementOrNull)"] = insert_us(storage, fast.table, args.events)
    for _, feature, kind in entries:  # the DEFAULT before migration 0004 (a change of metadata only)
        column = quote_identifier(feature_column(feature, kind))
        definition = TWO_SCANS[kind].format(key=sql_string(feature))
        storage.command(f"ALTER TABLE {storage.table('events')} MODIFY COLUMN {column} {definition}")
    figures["two scans (mapContains, [])"] = insert_us(storage, fast.table, args.events)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
