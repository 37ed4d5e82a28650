"""Alert latency: from the end of a window with injected drift to the retraining webhook receiving it.

The whole pipeline, as deployed: a local Apache Kafka broker, ``monitor up`` in its own process
(consumer -> ClickHouse -> scheduler -> run_detection -> alert rules -> outbox -> delivery worker) with
a **one-minute schedule** (cron ``* * * * *``, window 1m, the default ``scheduler.delay`` of 5 s), and
in this process a producer sending live traffic plus a signed-webhook receiver.

Traffic runs at ``--rate`` events/s with ``amount ~ N(100, 15)``; in every other minute it is
shifted to ``N(145, 15)``. The rule ``feature_drift`` on ``amount`` (``for: 1``) therefore fires at the
end of each drifted minute and resolves at the end of the next. For every webhook received:

    latency = arrival time at the receiver - window.end in the payload

Usage (about 2 minutes per sample plus ~40 s of start-up):

    .venv/bin/python bench/alert_latency.py [--samples 3] [--rate 40]

Prints one JSON object with every sample and the maximum; BENCHMARKS.md records the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from monitor.kafka_local import broker  # noqa: E402
from monitor.kafka_local.broker import BrokerSpec  # noqa: E402
from monitor.ports import free_port, free_port_pair  # noqa: E402

SECRET = "bench-signing-secret"
MODEL = "latency"


class Receiver:
    """The retraining hook: checks the signature, records arrival time and payload."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Monitor-Signature", "")):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                else:
                    receiver.received.append((arrived, json.loads(body)))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/retrain"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def drifted_minute(moment: float, first_drift_minute: int) -> bool:
    minute = int(moment // 60)
    return minute >= first_drift_minute and (minute - first_drift_minute) % 2 == 0


def produce(bootstrap: str, rate: float, first_drift_minute: int, stop: threading.Event) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    rng = random.Random(7)
    interval = 1.0 / rate
    next_at = time.time()
    while not stop.is_set():
        now = time.time()
        shift = 45.0 if drifted_minute(now, first_drift_minute) else 0.0
        event = {
            "event_id": uuid.uuid4().hex,
            "model": MODEL,
            "model_version": "1",
            "timestamp": int(now * 1000),
            "features": {"amount": rng.gauss(100 + shift, 15), "country": rng.choice(["DE", "FR", "IT"])},
            "prediction": rng.random(),
        }
        producer.send("predictions", json.dumps(event).encode())
        next_at += interval
        time.sleep(max(0.0, next_at - time.time()))
    producer.flush()
    producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--rate", type=float, default=40.0, help="events per second")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="monitor-bench-alerts-"))
    spec = BrokerSpec(home=REPO / ".cache" / "kafka", version="4.1.1", port=free_port_pair(), heap="512m")
    receiver = Receiver()
    reference = work / "reference.parquet"
    rng = np.random.default_rng(1)
    pd.DataFrame(
        {
            "amount": rng.normal(100, 15, 5000),
            "country": rng.choice(["DE", "FR", "IT"], 5000),
            "prediction": rng.random(5000),
        }
    ).to_parquet(reference)
    config = {
        "clickhouse": {"dsn": f"chdb://{work / 'db'}"},
        "kafka": {"bootstrap": spec.bootstrap, "batch_max_seconds": 1.0},
        "api": {"port": free_port()},
        "channels": {"retrain": {"type": "webhook", "url": receiver.url, "secret_env": "BENCH_SECRET"}},
        "models": {
            MODEL: {
                "features": {"amount": "numerical", "country": "categorical"},
                "reference": {"file": str(reference)},
                "schedule": "* * * * *",
                "window": "1m",
                "min_samples": 100,
                "alerts": [{"when": "feature_drift", "features": ["amount"], "notify": ["retrain"]}],
            }
        },
        "log_level": "warning",
    }
    config_path = work / "monitor.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    stop = threading.Event()
    service: subprocess.Popen[bytes] | None = None
    try:
        broker.start(spec, progress=lambda m: print(m, file=sys.stderr))
        env = {**os.environ, "BENCH_SECRET": SECRET}
        service = subprocess.Popen(
            [sys.executable, "-m", "monitor", "up", "--config", str(config_path)],
            cwd=work,
            env=env,
            stderr=open(work / "service.log", "wb"),  # noqa: SIM115
        )
        # Drift from the minute after next, so the service has a full clean minute first.
        first_drift_minute = int(time.time() // 60) + 2
        producer = threading.Thread(
            target=produce, args=(spec.bootstrap, args.rate, first_drift_minute, stop), daemon=True
        )
        producer.start()
        print(
            f"drift in minutes starting {datetime.fromtimestamp(first_drift_minute * 60, UTC):%H:%M} UTC, "
            f"every other minute; waiting for {args.samples} alerts",
            file=sys.stderr,
        )
        deadline = time.time() + 180 + 125 * args.samples
        while len(receiver.received) < args.samples and time.time() < deadline:
            if service.poll() is not None:
                raise SystemExit(f"monitor up exited with {service.returncode}; see {work / 'service.log'}")
            time.sleep(0.5)
    finally:
        stop.set()
        if service is not None and service.poll() is None:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
        broker.stop(spec)
        shutil.rmtree(spec.folder, ignore_errors=True)

    samples = []
    for arrived, body in receiver.received:
        end = datetime.fromisoformat(body["window"]["end"].replace("Z", "+00:00")).timestamp()
        samples.append(
            {
                "window_end": body["window"]["end"],
                "event": body["event"],
                "drifted": [f["name"] for f in body["drifted_features"]],
                "latency_seconds": round(arrived - end, 2),
            }
        )
    result = {
        "schedule": "* * * * *",
        "window": "1m",
        "rate_events_per_second": args.rate,
        "samples": samples,
        "max_latency_seconds": max((s["latency_seconds"] for s in samples), default=None),
        "bad_signatures": receiver.bad_signatures,
    }
    print(json.dumps(result))
    if len(samples) < args.samples:
        print(f"only {len(samples)} of {args.samples} alerts arrived; logs in {work}", file=sys.stderr)
        raise SystemExit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
