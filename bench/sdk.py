"""SDK benchmark: what ``PredictionLogger.log`` costs the caller, and how fast events reach the broker.

Three runs over the same events (5 features, like bench/ingest.py) against a local broker the script
starts on a free port:

- ``sdk``: ``PredictionLogger.log`` per event (validation, serialisation, queue), then ``flush()``;
- ``sdk_many``: ``log_many`` in chunks of 1,000;
- ``raw``: kafka-python's ``producer.send(orjson.dumps(doc))`` per event, no validation, then ``flush()``;
- ``validate_only_us``: ``prediction_record`` alone (validation and serialisation, nothing queued).

For each: the caller's time per call (mean and p99, so what a request handler pays) and the
delivered rate (first call to the end of ``flush``). Usage:

    .venv/bin/python bench/sdk.py [--events 200000]

Prints one JSON line; BENCHMARKS.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "sdk" / "src")]

import orjson  # noqa: E402
from kafka import KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from monitor.kafka_local import broker  # noqa: E402
from monitor.kafka_local.broker import BrokerSpec  # noqa: E402
from monitor.ports import free_port_pair  # noqa: E402
from monitor_sdk import PredictionLogger  # noqa: E402

COUNTRIES = ["DE", "FR", "US", "BR", "IN", "JP", "GB", "ES"]


def features(rng: random.Random) -> dict[str, object]:
    return {
        "amount": rng.lognormvariate(3, 1),
        "age": float(rng.randint(18, 90)),
        "score": rng.random(),
        "country": rng.choice(COUNTRIES),
        "is_new_user": rng.random() < 0.2,
    }


def p99(samples: list[int]) -> float:
    return sorted(samples)[int(len(samples) * 0.99)] / 1000  # microseconds


def run_sdk(bootstrap: str, topic: str, rows: list[dict[str, object]]) -> dict[str, float]:
    logger = PredictionLogger("bench", bootstrap, predictions_topic=topic)
    logger.log(rows[0], prediction=0.5)  # producer created and topic metadata fetched before timing
    logger.flush(60)
    samples = []
    started = time.perf_counter()
    for row in rows:
        t = time.perf_counter_ns()
        logger.log(row, prediction=0.5)
        samples.append(time.perf_counter_ns() - t)
    called = time.perf_counter() - started
    logger.flush(600)
    total = time.perf_counter() - started
    failed = logger.failed
    logger.close()
    return _figures(len(rows), called, total, samples, failed)


def run_sdk_many(bootstrap: str, topic: str, rows: list[dict[str, object]]) -> dict[str, float]:
    logger = PredictionLogger("bench", bootstrap, predictions_topic=topic)
    logger.log(rows[0], prediction=0.5)
    logger.flush(60)
    samples = []
    started = time.perf_counter()
    for i in range(0, len(rows), 1000):
        t = time.perf_counter_ns()
        logger.log_many({"features": row, "prediction": 0.5} for row in rows[i : i + 1000])
        samples.append((time.perf_counter_ns() - t) // 1000)  # per event
    called = time.perf_counter() - started
    logger.flush(600)
    total = time.perf_counter() - started
    failed = logger.failed
    logger.close()
    return _figures(len(rows), called, total, samples, failed)


def run_validate_only(rows: list[dict[str, object]]) -> float:
    logger = PredictionLogger("bench", "127.0.0.1:1")  # never used to send: no producer is created
    started = time.perf_counter()
    for row in rows:
        logger.prediction_record(row, prediction=0.5)
    return round((time.perf_counter() - started) / len(rows) * 1e6, 1)


def run_raw(bootstrap: str, topic: str, rows: list[dict[str, object]]) -> dict[str, float]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    producer.send(topic, b"{}").get(60)
    samples = []
    started = time.perf_counter()
    for row in rows:
        t = time.perf_counter_ns()
        event_id = uuid.uuid4().hex
        doc = {"event_id": event_id, "model": "bench", "timestamp": int(time.time() * 1000), "features": row}
        doc["prediction"] = 0.5
        producer.send(topic, key=f"bench:{event_id}".encode(), value=orjson.dumps(doc))
        samples.append(time.perf_counter_ns() - t)
    called = time.perf_counter() - started
    producer.flush(600)
    total = time.perf_counter() - started
    producer.close()
    return _figures(len(rows), called, total, samples, 0)


def _figures(n: int, called: float, total: float, samples: list[int], failed: int) -> dict[str, float]:
    return {
        "call_mean_us": round(called / n * 1e6, 1),
        "call_p99_us": round(p99(samples), 1),
        "delivered_per_s": round(n / total),
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(7)
    rows = [features(rng) for _ in range(args.events)]
    spec = BrokerSpec(home=REPO / ".cache" / "kafka", version="4.1.1", port=free_port_pair(), heap="1g")
    broker.start(spec, progress=lambda m: print(m, file=sys.stderr))
    try:
        admin = KafkaAdminClient(bootstrap_servers=spec.bootstrap)
        names = {name: f"bench-sdk-{name}-{uuid.uuid4().hex[:6]}" for name in ("raw", "sdk", "sdk_many")}
        admin.create_topics([NewTopic(t, 3, 1) for t in names.values()])
        admin.close()
        result: dict[str, object] = {"events": args.events, "validate_only_us": run_validate_only(rows)}
        result["raw"] = run_raw(spec.bootstrap, names["raw"], rows)
        result["sdk"] = run_sdk(spec.bootstrap, names["sdk"], rows)
        result["sdk_many"] = run_sdk_many(spec.bootstrap, names["sdk_many"], rows)
        print(json.dumps(result))
    finally:
        broker.stop(spec)
        shutil.rmtree(spec.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
