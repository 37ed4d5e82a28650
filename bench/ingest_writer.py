"""Where the ingest writer's time and memory go, statement by statement, without Kafka.

Generates ``--events`` messages of ``--features`` features (as bench/ingest.py does), writes them
``--batches`` times (fresh event ids each time) through :class:`monitor.ingest.writer.BatchWriter`
into a fresh embedded database and reports the best time of a whole batch; then as many batches
again under a probe that reports the seconds of each ClickHouse call (best over the batches) and,
sampled from another connection every few milliseconds, the engine's tracked memory during each
call and the process's anonymous RSS above its level between batches. Usage:

    .venv/bin/python bench/ingest_writer.py [--events 17000] [--features 25] [--batches 4]
                                            [--contend none|thread|process]

``--contend`` keeps a pure-Python loop spinning while the timed batches are written: in a thread of
the same process (sharing the GIL, as the consumer's poll thread does) or in another process.

The default batch is about what the consumer's 8 MiB ``ingest.batch_max_bytes`` cuts from these messages.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import event_message
from monitor.ingest.batch import Batch
from monitor.ingest.writer import BatchWriter
from monitor.settings import ClickHouseSettings
from monitor.storage import Storage, open_storage


def messages(events: int, features: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    base_ms = int(time.time() * 1000) - 3_600_000
    return [event_message(rng, i, base_ms, features) for i in range(events)]


def _spin(stop: threading.Event | None = None) -> None:
    count = 0
    while stop is None or not stop.is_set():
        count += 1


def _anon_mib() -> int:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("RssAnon"))
    return int(line.split()[1]) // 1024


class Probe:
    """Wraps a Storage's calls: seconds per statement, peak engine memory and RSS during each."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._other = storage.clone()
        self.seconds: dict[str, float] = {}
        self.engine_mib: dict[str, int] = {}
        self.anon_mib: dict[str, int] = {}
        self._peak = [0, 0]
        self._stop = threading.Event()
        self.base_anon = 0
        threading.Thread(target=self._sample, daemon=True).start()
        for name in ("command", "rows", "insert_arrow"):
            setattr(storage, name, self._wrap(name, getattr(storage, name)))

    def _sample(self) -> None:
        while not self._stop.is_set():
            tracked = self._other.rows("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'")
            self._peak[0] = max(self._peak[0], int(tracked[0][0]) >> 20)
            self._peak[1] = max(self._peak[1], _anon_mib())
            time.sleep(0.003)

    def _wrap(self, kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            label = kind + ": " + " ".join(str(args[0]).split())[:60]
            self._peak[:] = [0, 0]
            started = time.perf_counter()
            result = call(*args, **kwargs)
            elapsed = time.perf_counter() - started
            time.sleep(0.006)  # one more sample after the call
            self.seconds[label] = min(self.seconds.get(label, elapsed), elapsed)
            self.engine_mib[label] = max(self.engine_mib.get(label, 0), self._peak[0])
            self.anon_mib[label] = max(self.anon_mib.get(label, 0), self._peak[1] - self.base_anon)
            return result

        return timed

    def close(self) -> None:
        self._stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=17_000)
    parser.add_argument("--features", type=int, default=25)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--contend", choices=["none", "thread", "process"], default="none")
    args = parser.parse_args()

    raws = messages(args.events, args.features)
    sources = [("bench", 0, i) for i in range(len(raws))]
    storage = open_storage(ClickHouseSettings(dsn=f"chdb://{tempfile.mkdtemp(prefix='monitor-bench-writer-')}/db"))
    writer = BatchWriter(storage)

    def batch(n: int) -> Batch:
        b = Batch()
        b.raw_predictions = [r.replace(b'"event_id":"', b'"event_id":"%d-' % n) for r in raws]
        b.raw_sources = sources
        return b

    writer.write(batch(0))  # typed columns created, caches warm
    stop, rival = threading.Event(), None
    if args.contend == "thread":
        threading.Thread(target=_spin, args=(stop,), daemon=True).start()
    elif args.contend == "process":
        rival = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        rival.start()
    totals = []
    for n in range(1, args.batches + 1):  # timed whole, without the probe
        pending = batch(n)
        started = time.perf_counter()
        writer.write(pending)
        totals.append(time.perf_counter() - started)
    stop.set()
    if rival is not None:
        rival.terminate()
    probe = Probe(storage)
    for n in range(args.batches + 1, 2 * args.batches + 1):
        pending = batch(n)
        probe.base_anon = _anon_mib()
        writer.write(pending)
    probe.close()
    for label, seconds in sorted(probe.seconds.items(), key=lambda item: -item[1]):
        print(
            f"{seconds:7.3f} s  engine {probe.engine_mib[label]:4d} MiB  anon +{probe.anon_mib[label]:4d} MiB  {label}"
        )
    best = min(totals)
    print(
        json.dumps(
            {
                "events_per_batch": args.events,
                "contend": args.contend,
                "features_per_event": args.features,
                "batch_seconds_best": round(best, 3),
                "us_per_event": round(best / args.events * 1e6, 1),
                "engine_peak_mib": max(probe.engine_mib.values()),
                "anon_peak_above_idle_mib": max(probe.anon_mib.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
