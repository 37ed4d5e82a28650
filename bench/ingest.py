"""Ingestion benchmark: one million events through the local Kafka broker into embedded ClickHouse.

In the same run it measures the raw kafka-python consume rate of the same topic (a fresh consumer
group, no decoding, no insert, fetching 16 MiB at a time, which it reads fastest with), so the
end-to-end figure has a ceiling to be compared with. Usage:

    .venv/bin/python bench/ingest.py [--events 1000000] [--features 25] [--no-store] [--keep]

It starts its own broker on a free port (data in a temporary folder) and prints one JSON line with
the figures; BENCHMARKS.md records them. The ingest consumer runs in a process of its own, so the
peak RSS reported for it is the consumer's, as ``monitor ingest`` would have it. ``--no-store``
replaces its writer by a no-op: what is left is the consumer's own share (polling, batching,
committing, the embedded engine open but idle), the ceiling of the end-to-end figure.

It also accounts for the CPU, per event, in the same run: the bare consumer's, the broker's while
the ingest consumer reads, and the ingest consumer's split by thread (its poll loop, its writer
thread, the engine's query threads and its background merges). ``cpu_budget_us_per_event`` is what
two figures allow on this machine: all cores busy at 0.6 of the bare consumer's rate, minus the
broker's share. A consumer that spends more CPU than that per event cannot reach the ratio here,
whatever its threads overlap.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from monitor.ingest.batch import Batch  # noqa: E402
from monitor.ingest.consumer import IngestConsumer, ensure_topics  # noqa: E402
from monitor.ingest.limits import IngestPolicy  # noqa: E402
from monitor.kafka_local import broker  # noqa: E402
from monitor.kafka_local.broker import BrokerSpec  # noqa: E402
from monitor.ports import free_port_pair  # noqa: E402
from monitor.settings import ClickHouseSettings, IngestSettings, KafkaSettings  # noqa: E402
from monitor.storage import open_storage  # noqa: E402

COUNTRIES = ["DE", "FR", "US", "BR", "IN", "JP", "GB", "ES"]


def event_message(rng: random.Random, i: int, base_ms: int, features: int) -> bytes:
    """The i-th benchmark event: ``features`` features (two of them categorical), compact JSON."""
    feats: dict[str, object] = {f"x{j}": round(rng.gauss(0, 1), 4) for j in range(max(1, features - 2))}
    feats["country"] = COUNTRIES[i % len(COUNTRIES)]
    feats["is_new_user"] = i % 3 == 0
    doc = {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "model": "bench",
        "model_version": "1",
        "timestamp": base_ms + i // 300,
        "features": feats,
        "prediction": round(rng.random(), 4),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _produce_slice(bootstrap: str, topic: str, start: int, stop: int, features: int) -> None:
    rng = random.Random(start)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, batch_size=512 * 1024, acks=1, enable_idempotence=False
    )
    base_ms = int(time.time() * 1000) - 3_600_000
    for i in range(start, stop):
        producer.send(topic, event_message(rng, i, base_ms, features))
    producer.flush()
    producer.close()


def produce(bootstrap: str, topic: str, events: int, features: int, workers: int = 2) -> float:
    started = time.monotonic()
    step = events // workers
    procs = [
        multiprocessing.Process(
            target=_produce_slice,
            args=(bootstrap, topic, w * step, events if w == workers - 1 else (w + 1) * step, features),
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.monotonic() - started


# The bare consumer's fetches. Larger than the ingest consumer's (FETCH_MAX_BYTES, which saves it
# memory at no cost end to end): the bare consumer reads faster with these, so the ratio is taken
# against its faster configuration, never a slowed one (BENCHMARKS.md).
RAW_FETCH_MAX_BYTES = 16 * 1024 * 1024
RAW_MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024


def raw_consume(settings: KafkaSettings, events: int) -> float:
    """Messages per second of a bare kafka-python consumer (no decoding, no insert)."""
    consumer = KafkaConsumer(
        settings.predictions_topic,
        bootstrap_servers=settings.bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.max_poll_records,
        fetch_max_bytes=RAW_FETCH_MAX_BYTES,
        max_partition_fetch_bytes=RAW_MAX_PARTITION_FETCH_BYTES,
    )
    count = 0
    started = None
    while count < events:
        records = consumer.poll(timeout_ms=1000)
        if records and started is None:
            started = time.monotonic()
        for messages in records.values():
            count += len(messages)
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.close(autocommit=False)
    return count / elapsed


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of another process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ThreadCpu:
    """Samples the CPU time of every thread of this process, so threads that end early still count.

    Engine threads are told apart by the names ClickHouse gives them (``MergeMutate`` for background
    merges); Python threads by their ``threading`` names.
    """

    def __init__(self, period_s: float = 0.5) -> None:
        self._period_s = period_s
        self._seen: dict[int, tuple[str, int]] = {}  # tid -> (category, clock ticks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-cpu-sampler", daemon=True)

    def _category(self, tid: int, names: dict[int, str]) -> str:
        if tid == os.getpid():
            return "poll"
        name = names.get(tid)
        if name is not None:
            return "writer" if name.startswith("ingest-writer") else "python_other"  # kafka-python's, this one
        try:
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            return "engine_other"
        return "engine_merges" if comm.startswith("MergeMutate") else "engine_queries"

    def sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        for task in Path("/proc/self/task").iterdir():
            tid = int(task.name)
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # categorised at every sample: a Python thread can be seen before threading lists it
            self._seen[tid] = (self._category(tid, names), int(fields[11]) + int(fields[12]))

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self.sample()

    def __enter__(self) -> ThreadCpu:
        self.sample()
        self._start = dict(self._seen)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def seconds(self) -> dict[str, float]:
        """CPU seconds per category spent inside the ``with`` block."""
        totals: dict[str, float] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for tid, (category, ticks) in self._seen.items():
            before = self._start.get(tid, (category, 0))[1]
            totals[category] = totals.get(category, 0.0) + (ticks - before) / tick
        return totals


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class NoStore:
    """Stands in for the BatchWriter with ``--no-store``: every batch counts as stored, nothing is written.

    What is left is the consumer's own share (polling, batching, committing, the engine opened but
    idle): the ceiling the end-to-end figure could reach with a free writer."""

    def write(self, batch: Batch) -> None:
        batch.stored_per_model = {"bench": len(batch.raw_predictions)}

    def close(self) -> None:
        pass


def _end_to_end_child(
    settings: KafkaSettings,
    clickhouse: ClickHouseSettings,
    ingest: IngestSettings,
    events: int,
    results: multiprocessing.SimpleQueue,
    store: bool = True,
) -> None:
    storage = open_storage(clickhouse)
    cpu_before = _cpu_s()
    policy = IngestPolicy(ingest, settings.max_message_bytes)
    writer = None if store else NoStore()
    consumer = IngestConsumer(settings, storage, policy=policy, writer=writer)  # type: ignore[arg-type]
    with ThreadCpu() as threads:
        stats = consumer.run(max_messages=events, idle_timeout=30)
    cpu_s = _cpu_s() - cpu_before
    split = {name: round(seconds / stats.messages * 1e6, 1) for name, seconds in sorted(threads.seconds().items())}
    stored = storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0]
    results.put((stats.messages / stats.active_seconds, stored, _peak_rss_mb(), cpu_s / stats.messages * 1e6, split))


def end_to_end(
    settings: KafkaSettings, clickhouse: ClickHouseSettings, ingest: IngestSettings, events: int, store: bool = True
) -> tuple[float, int, float, float, dict[str, float]]:
    """Events per second from the first message received to the last batch stored and committed,
    events stored, the consumer process's peak RSS in MiB, its CPU microseconds per event (both
    cores together, group join and idle wait included) and the same split by thread (see ThreadCpu).

    The consumer runs in a process of its own (started fresh, like ``monitor ingest``), so its
    peak RSS is its own, not this script's."""
    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    child = context.Process(target=_end_to_end_child, args=(settings, clickhouse, ingest, events, results, store))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the ingest consumer process failed (exit {child.exitcode})")
    rate, stored, peak, cpu_us, split = results.get()
    return rate, stored, peak, cpu_us, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=25, help="features per event (2 categorical)")
    parser.add_argument(
        "--batch-messages", type=int, default=KafkaSettings().batch_max_messages, help="kafka.batch_max_messages"
    )
    parser.add_argument(
        "--batch-bytes", type=int, default=IngestSettings().batch_max_bytes, help="ingest.batch_max_bytes"
    )
    parser.add_argument(
        "--no-store", action="store_true", help="the ingest consumer with its writer replaced by a no-op (its ceiling)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary broker and database")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="monitor-bench-ingest-"))
    port = free_port_pair()
    spec = BrokerSpec(home=REPO / ".cache" / "kafka", version="4.1.1", port=port, heap="1g")
    broker_pid = broker.start(spec, progress=lambda m: print(m, file=sys.stderr)).pid or 0
    try:
        tag = uuid.uuid4().hex[:6]
        kafka = KafkaSettings(
            bootstrap=spec.bootstrap,
            predictions_topic=f"bench-{tag}",
            labels_topic=f"bench-l-{tag}",
            group_id=f"bench-{tag}",
            partitions=3,
            batch_max_messages=args.batch_messages,
        )
        ensure_topics(kafka)
        produce_s = produce(spec.bootstrap, kafka.predictions_topic, args.events, args.features)
        print(f"produced {args.events} events in {produce_s:.1f} s", file=sys.stderr)
        raw_cpu_s = _cpu_s()
        raw_rate = raw_consume(kafka, args.events)
        raw_cpu_us = (_cpu_s() - raw_cpu_s) / args.events * 1e6
        print(f"raw consume: {raw_rate:,.0f} msg/s", file=sys.stderr)
        broker_cpu_s = _process_cpu_s(broker_pid)
        e2e_rate, stored, consumer_peak_mb, consumer_cpu_us, split = end_to_end(
            kafka,
            ClickHouseSettings(dsn=f"chdb://{work / 'db'}", database="bench"),
            IngestSettings(batch_max_bytes=args.batch_bytes),
            args.events,
            store=not args.no_store,
        )
        broker_cpu_us = (_process_cpu_s(broker_pid) - broker_cpu_s) / args.events * 1e6
        cpus = os.cpu_count() or 1
        print(f"end to end: {e2e_rate:,.0f} events/s, {stored} stored", file=sys.stderr)
        print(
            json.dumps(
                {
                    "events": args.events,
                    "features_per_event": args.features,
                    "stored": stored,
                    "writer": "none" if args.no_store else "BatchWriter",
                    "raw_consume_per_s": round(raw_rate),
                    "end_to_end_per_s": round(e2e_rate),
                    "ratio": round(e2e_rate / raw_rate, 3),
                    "consumer_peak_rss_mib": round(consumer_peak_mb),
                    "consumer_cpu_us_per_event": round(consumer_cpu_us, 1),
                    "consumer_cpu_us_per_event_by_thread": split,
                    "raw_consumer_cpu_us_per_event": round(raw_cpu_us, 1),
                    "broker_cpu_us_per_event": round(broker_cpu_us, 1),
                    "cpu_budget_us_per_event": round(cpus * 1e6 / (0.6 * raw_rate) - broker_cpu_us, 1),
                    "raw_consumer_peak_rss_mib": round(_peak_rss_mb()),
                    "cpus": cpus,
                }
            )
        )
    finally:
        broker.stop(spec)
        if not args.keep:
            shutil.rmtree(spec.folder, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
