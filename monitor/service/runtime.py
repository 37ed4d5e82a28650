"""``monitor up``: consumer, scheduler, delivery worker and HTTP API in one process, one storage.

chDB allows one process per database path, so everything that touches ClickHouse lives here and shares
the :class:`~monitor.storage.Storage` opened once. The main thread only supervises: it owns the
signals, watches the components, and on SIGTERM/SIGINT stops them in an order that loses nothing:

1. the dashboard child and the HTTP API (no new writes or "run now" requests; in-flight ones finish);
2. the consumer (flushes its batch, commits the offsets);
3. the scheduler (waits for a running detection job);
4. the delivery worker (finishes in-flight notifications; pending ones stay in the outbox);
5. the storage.

A component that dies on its own makes the process exit with code 3 after the same orderly stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alerts.channels import check_channels
from alerts.channels import secret_variables as channel_secret_variables
from alerts.delivery import DeliveryWorker
from alerts.engine import AlertEngine
from monitor.ingest.worktables import drop_leftovers
from monitor.kafka_security import kafka_client_kwargs
from monitor.logs import get_logger
from monitor.pipeline import WindowPipeline
from monitor.scheduling import DetectionScheduler
from monitor.service.app import create_app
from monitor.service.collector import FamilySource
from monitor.service.components import ConsumerComponent, DashboardComponent
from monitor.service.context import Component, KafkaProbe, ServiceContext
from monitor.service.server import ApiServer, check_listen_host
from monitor.settings import Settings
from monitor.storage import Storage, open_storage

log = get_logger(__name__)

EXIT_OK = 0
EXIT_COMPONENT_FAILED = 3
STOP_TIMEOUT_S = 60.0


@dataclass
class ServiceOptions:
    host: str | None = None
    port: int | None = None
    consumer: bool = True
    scheduler: bool = True
    dashboard: bool = False
    dashboard_port: int | None = None
    dashboard_host: str | None = None
    dashboard_log: Path | None = None
    metrics_ttl: float = 10.0
    # Extra components started after the built-in ones and stopped before them (the demo's traffic).
    extra: list[Component] = field(default_factory=list)


class Service:
    """One running ``monitor up``. ``start()`` then ``wait(stop)``; ``shutdown()`` is idempotent."""

    def __init__(self, settings: Settings, options: ServiceOptions | None = None, storage: Storage | None = None):
        self.settings = settings
        self.options = options or ServiceOptions()
        self._storage = storage
        self._owns_storage = storage is None
        self.ctx: ServiceContext | None = None
        self.api: ApiServer | None = None
        self.dashboard: DashboardComponent | None = None
        self.background: list[Component] = []  # consumer, scheduler, delivery worker: stopped in this order
        self._stopped = False

    @property
    def listen_host(self) -> str:
        """``--host`` or ``api.host``; an IPv6 address may come in brackets, as URLs write it."""
        host = self.options.host or self.settings.api.host
        return host[1:-1] if host.startswith("[") and host.endswith("]") else host

    @property
    def api_url(self) -> str:
        host = self.listen_host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address in a URL
        return f"http://{shown}:{self.api.port if self.api else self.options.port or self.settings.api.port}"

    def start(self) -> None:
        from monitor.service.auth import ensure_safe_bind

        api = self.settings.api
        dashboard_host = (self.options.dashboard_host or api.dashboard_host) if self.options.dashboard else None
        ensure_safe_bind(api, self.listen_host, dashboard_host)
        check_listen_host(self.listen_host, "--host")
        if dashboard_host is not None:
            check_listen_host(dashboard_host, "--dashboard-host")
        storage = self._storage or open_storage(self.settings.clickhouse)
        self._storage = storage
        drop_leftovers(storage)  # before this process's consumer or HTTP ingest makes its own
        self.ctx = ServiceContext(settings=self.settings, storage=storage)
        metric_sources: list[FamilySource] = []
        if self.options.consumer:
            self.ctx.kafka_probe = KafkaProbe(
                self.settings.kafka.bootstrap, client_kwargs=kafka_client_kwargs(self.settings.kafka)
            )
            self.background.append(ConsumerComponent(self.settings, storage))
        if self.options.scheduler:
            worker, scheduler = self._alerting(storage)
            self.ctx.schedule = scheduler
            self.background.extend([worker, scheduler])
        self.ctx.components = [*self.background, *self.options.extra]
        host = self.listen_host
        port = self.options.port if self.options.port is not None else self.settings.api.port
        self.api = ApiServer(
            create_app(self.ctx, metric_sources, self.options.metrics_ttl),
            host,
            port,
            max_header_bytes=self.settings.api.max_header_bytes,
        )
        try:
            # The API first: a port taken by another process stops start-up before anything consumes.
            self.api.start()
            log.info("API listening", url=self.api_url, docs=f"{self.api_url}/docs")
            for component in self.background:
                component.start()
                log.info("started", component=component.name)
            for component in self.options.extra:
                component.start()
            if self.options.dashboard:
                api = self.settings.api
                # The dashboard only reads: it gets the read token, or the write token if that is the only one.
                token = api.read_token or api.token
                self.dashboard = DashboardComponent(
                    self.api_url,
                    self.options.dashboard_host or api.dashboard_host,
                    self.options.dashboard_port or api.dashboard_port,
                    self.options.dashboard_log,
                    token=token.get_secret_value() if token else None,
                    withheld=secret_variables(self.settings),
                )
                self.dashboard.start()
                self.ctx.components.append(self.dashboard)
                log.info("dashboard starting", url=self.dashboard.url)
        except BaseException:
            self.shutdown()
            raise

    def _alerting(self, storage: Storage) -> tuple[DeliveryWorker, DetectionScheduler]:
        """The delivery worker and the scheduler, sharing one pipeline step whose engine wakes the worker."""
        check_channels(self.settings)  # a template that does not parse stops start-up here
        worker = DeliveryWorker(storage, self.settings)
        engine = AlertEngine(storage, self.settings, on_enqueued=worker.wake)
        assert self.ctx is not None
        self.ctx.pipeline = WindowPipeline(storage, self.settings, engine)
        return worker, DetectionScheduler(storage, self.settings, self.ctx.pipeline)

    def failed_component(self) -> str | None:
        for component in [*self.background, *self.options.extra, *([self.dashboard] if self.dashboard else [])]:
            if not component.healthy():
                return component.name
        if self.api is not None and not self.api.healthy():
            return "api"
        return None

    def wait(self, stop: threading.Event, on_tick: Callable[[], None] | None = None, tick: float = 0.5) -> int:
        """Block until ``stop`` is set (signal) or a component dies; then shut down. Returns the exit code."""
        code = EXIT_OK
        while not stop.wait(tick):
            failed = self.failed_component()
            if failed:
                log.error("a component stopped unexpectedly; shutting down", component=failed)
                code = EXIT_COMPONENT_FAILED
                break
            if on_tick is not None:
                on_tick()
        self.shutdown()
        return code

    def shutdown(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        if self.dashboard is not None:
            self.dashboard.stop(10)
        for component in reversed(self.options.extra):
            _stop(component, timeout)
        if self.api is not None:
            self.api.stop()
        # The consumer first (flush + commit), then the rest in reverse start order: the scheduler
        # (waits for a running detection), then the delivery worker (finishes in-flight sends).
        consumers = [c for c in self.background if c.name == "consumer"]
        for component in [*consumers, *reversed([c for c in self.background if c.name != "consumer"])]:
            _stop(component, timeout)
        if self._owns_storage and self._storage is not None:
            self._storage.close()
        log.info("stopped", seconds=round(time.monotonic() - started, 2))


def secret_variables(settings: Settings) -> list[str]:
    """Every environment variable the configuration names as holding a secret (channels and Kafka)."""
    kafka = [settings.kafka.sasl_password_env, settings.kafka.ssl_key_password_env]
    return sorted({*channel_secret_variables(settings), *(name for name in kafka if name)})


def _stop(component: Component, timeout: float) -> None:
    try:
        component.stop(timeout)
        log.info("stopped", component=component.name)
    except Exception as exc:  # keep stopping the others; the failure is logged with its cause
        log.error("stopping failed", component=component.name, error=str(exc))
