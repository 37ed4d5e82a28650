"""Orchestrates ``monitor demo``: broker, model, reference, service, traffic, receiver, progress line.

Everything runs in this process except the broker (a JVM), the dashboard (Streamlit) and the traffic
generator (a child process, like a model server would be): one embedded ClickHouse, shared by the
consumer, the scheduler and the API, as in ``monitor up``. The demo keeps
its data in its own database (``demo``), recreated on every start, so each run tells the same story.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from monitor.demo import model as demo_model
from monitor.demo.receiver import Receiver, summary
from monitor.demo.traffic import TrafficGenerator
from monitor.logs import get_logger
from monitor.settings import Settings, load_settings

log = get_logger(__name__)

DEMO_DATABASE = "demo"
DETECTION_PERIOD_S = 30
WEBHOOK_SECRET = "demo-retrain-secret"
PD_KEY = "demo-routing-key-000000000000000"


@dataclass
class DemoOptions:
    duration: float | None = None
    dashboard: bool = True
    rate: float = 50.0
    drift_after: float = 20.0  # at least this long, then the next 30 s window boundary
    api_port: int = 8000
    dashboard_port: int = 8501
    workdir: Path = Path(".monitor/demo")


def demo_settings(base: Settings, receiver_url: str, reference: Path, options: DemoOptions) -> Settings:
    """The demo's configuration: the user's connection settings plus the demo model, rules and channels."""
    os.environ.setdefault("DEMO_PD_ROUTING_KEY", PD_KEY)
    os.environ.setdefault("DEMO_RETRAIN_SECRET", WEBHOOK_SECRET)
    features: dict[str, str] = {name: "numerical" for name in demo_model.FEATURES.values()}
    features["channel"] = "categorical"
    overrides: dict[str, Any] = {
        "clickhouse": {"dsn": base.clickhouse.dsn.get_secret_value(), "database": DEMO_DATABASE},
        "kafka": {
            "bootstrap": base.kafka.bootstrap,
            "predictions_topic": "demo-predictions",
            "labels_topic": "demo-labels",
            "group_id": "monitor-demo",
            "batch_max_seconds": 0.5,
        },
        "api": {
            "port": options.api_port,
            "dashboard_port": options.dashboard_port,
            "public_url": f"http://127.0.0.1:{options.dashboard_port}",
        },
        "scheduler": {"delay": "2s", "catch_up": False},
        "alerting": {"default_cooldown": "10m", "backoff_initial": "1s", "poll_interval": "1s"},
        "channels": {
            "team-slack": {"type": "slack", "url": f"{receiver_url}/slack"},
            "oncall": {
                "type": "pagerduty",
                "routing_key_env": "DEMO_PD_ROUTING_KEY",
                "url": f"{receiver_url}/pagerduty",
            },
            "retrain": {"type": "webhook", "url": f"{receiver_url}/webhook", "secret_env": "DEMO_RETRAIN_SECRET"},
        },
        "models": {
            demo_model.MODEL_NAME: {
                "features": features,
                "prediction": {"type": "probability", "threshold": 0.5, "positive_label": 1},
                "reference": {"file": str(reference)},
                "schedule": {"every": "30s"},
                "window": "30s",
                "min_samples": 200,
                # The pager watches mean_radius by distance (in standard deviations) with a margin: a false
                # page before the drift would tell the wrong story. The other thresholds are the service's
                # default (auto: calibrated to the window's size, never below the fixed default).
                "drift": {"columns": {"mean_radius": {"method": "wasserstein_norm", "threshold": 0.3}}},
                "alerts": [
                    {"when": "dataset_drift", "notify": ["team-slack", "retrain"], "severity": "warning"},
                    {
                        "when": "feature_drift",
                        "features": ["mean_radius"],
                        "notify": ["oncall"],
                        "severity": "critical",
                    },
                    {"when": "missing_share", "above": 0.1, "notify": ["team-slack"], "severity": "warning"},
                ],
            }
        },
    }
    data = base.model_dump(mode="python", exclude={"models", "channels"})
    for key in ("token", "read_token"):
        secret = getattr(base.api, key)
        data["api"][key] = secret.get_secret_value() if secret else None
    from monitor.settings import _deep_merge

    return load_settings(None, overrides=_deep_merge(data, overrides))


class Progress:
    """The live line: elapsed time, events sent, drift on/off, runs, notifications per channel."""

    def __init__(self, out: TextIO, traffic: TrafficGenerator, receiver: Receiver, service: Any) -> None:
        self.out = out
        self.traffic = traffic
        self.receiver = receiver
        self.service = service
        self.tty = out.isatty()
        self.started = time.monotonic()
        self._last_plain = 0.0

    def line(self) -> str:
        stats = self.traffic.stats
        elapsed = time.monotonic() - self.started
        counts = self.receiver.inbox.counts()
        scheduler = self.service.ctx.schedule if self.service.ctx else None
        last = scheduler.last_record(demo_model.MODEL_NAME) if scheduler else None
        drift = (
            "ON"
            if stats.drifting
            else f"in {max(0, self.traffic.drift_after - (time.monotonic() - stats.started_at)):.0f}s"
        )
        run = f"last run {last.status} @ {last.window_end:%H:%M:%S}" if last and last.finished_at else "no run yet"
        streaming = time.monotonic() - stats.started_at if stats.started_at else 0.0
        rate = f" ({stats.sent / streaming:,.0f}/s)" if streaming >= 1 else ""
        return (
            f"[{elapsed:5.0f}s] events {stats.sent:,}{rate} · drift {drift} · {run} · "
            f"received: slack {counts['slack']}, pagerduty {counts['pagerduty']}, webhook {counts['webhook']}"
        )

    def tick(self) -> None:
        if self.tty:
            self.out.write("\r" + self.line().ljust(120))
            self.out.flush()
        elif time.monotonic() - self._last_plain >= 10:
            self._last_plain = time.monotonic()
            print(self.line(), file=self.out, flush=True)

    def notify(self, item: Any) -> None:
        prefix = "\r" + " " * 120 + "\r" if self.tty else ""
        print(f"{prefix}>>> {summary(item)}", file=self.out, flush=True)


def run_demo(base: Settings, options: DemoOptions, stop: threading.Event, out: TextIO = sys.stderr) -> int:
    from detectors.registration import add_file
    from monitor.kafka_local import broker
    from monitor.kafka_local.broker import broker_spec
    from monitor.service.runtime import Service, ServiceOptions
    from monitor.storage import open_storage

    started = time.monotonic()
    spec = broker_spec(base)
    was_running = broker.status(spec).answering
    print(
        f"Kafka: {'using the broker already running' if was_running else 'starting a local broker'} on "
        f"{spec.bootstrap}",
        file=out,
        flush=True,
    )
    broker.start(spec, progress=lambda m: print(m, file=out, flush=True))
    holder: dict[str, Any] = {}
    receiver = Receiver(
        WEBHOOK_SECRET, on_receive=lambda item: holder["progress"].notify(item) if "progress" in holder else None
    )
    receiver.start()
    service = None
    try:
        print("Training a logistic regression on scikit-learn's breast cancer data…", file=out, flush=True)
        trained = demo_model.train()
        reference = demo_model.write_reference(trained, options.workdir.resolve() / "reference.parquet")
        settings = demo_settings(base, receiver.url, reference, options)
        storage = open_storage(settings.clickhouse, migrate=False)
        storage.command(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}")
        from monitor.storage.migrations import apply_migrations

        apply_migrations(storage)
        add_file(
            storage,
            demo_model.MODEL_NAME,
            reference,
            version="training-1",
            kind="training",
            features=dict(settings.models[demo_model.MODEL_NAME].features),
        )
        print(
            f"Reference registered: {demo_model.REFERENCE_ROWS:,} patients drawn from a model of the data, as the "
            f"traffic is ({reference})",
            file=out,
            flush=True,
        )
        traffic = TrafficGenerator(
            trained,
            settings.kafka.bootstrap,
            options.rate,
            options.drift_after,
            (settings.kafka.predictions_topic, settings.kafka.labels_topic),
            align=DETECTION_PERIOD_S,
        )
        service = Service(
            settings,
            ServiceOptions(
                dashboard=options.dashboard,
                extra=[traffic],
                metrics_ttl=2.0,
                dashboard_log=options.workdir.resolve() / "dashboard.log",
            ),
            storage=storage,
        )
        service.start()
        progress = Progress(out, traffic, receiver, service)
        holder["progress"] = progress
        print(
            f"\nReady in {time.monotonic() - started:.0f} s. Streaming {options.rate:.0f} events/s; "
            f"covariate drift and a data-quality fault start in {traffic.drift_after:.0f} s (at a window boundary);"
            " detectors run every 30 s.\n"
            f"  API        {service.api_url}/docs   (metrics {service.api_url}/metrics)\n"
            + (f"  Dashboard  {service.dashboard.url}\n" if service.dashboard else "")
            + f"  Receiver   {receiver.url}   (what Slack, PagerDuty and the webhook would receive)\n"
            "Ctrl-C stops everything.\n",
            file=out,
            flush=True,
        )
        deadline = time.monotonic() + options.duration if options.duration else None

        def tick() -> None:
            progress.tick()
            if deadline is not None and time.monotonic() >= deadline:
                stop.set()

        code = service.wait(stop, on_tick=tick, tick=1.0)
        if progress.tty:
            out.write("\n")
        counts = receiver.inbox.counts()
        print(
            f"Demo stopped after {time.monotonic() - started:.0f} s: {traffic.stats.sent:,} events sent; "
            f"notifications received: {counts}",
            file=out,
            flush=True,
        )
        return code
    finally:
        if service is not None:
            service.shutdown()
        receiver.stop()
        if not was_running:
            broker.stop(spec)
