"""What the API needs from the running process, passed to the app once at start.

``monitor up`` fills every slot; tests build a context with only what they exercise. Optional parts
(scheduler, consumer, delivery worker) are typed as small Protocols so the API depends on behaviour,
not on the modules that implement it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from monitor.pipeline import WindowPipeline
from monitor.settings import Settings
from monitor.storage import Storage


class Component(Protocol):
    """A long-running part of ``monitor up`` (consumer, scheduler, delivery worker)."""

    name: str

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...

    def healthy(self) -> bool: ...


class ScheduleView(Protocol):
    """Last and next detection run of a model, as the scheduler knows them."""

    def last_run(self, model: str) -> datetime | None: ...

    def next_run(self, model: str) -> datetime | None: ...


@dataclass
class ServiceContext:
    """Shared state of one service process; the app reads it from ``app.state.ctx``."""

    settings: Settings
    storage: Storage
    components: list[Component] = field(default_factory=list)
    schedule: ScheduleView | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    kafka_probe: KafkaProbe | None = None
    # The process's pipeline step when it runs the scheduler and delivery worker (its engine wakes the worker).
    pipeline: WindowPipeline | None = None

    def window_pipeline(self) -> WindowPipeline:
        """This process's pipeline step, or one that queues notifications for whichever worker runs."""
        if self.pipeline is not None:
            return self.pipeline
        from alerts.engine import AlertEngine

        return WindowPipeline(self.storage, self.settings, AlertEngine(self.storage, self.settings))

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)


class KafkaProbe:
    """Whether the Kafka bootstrap servers answer a metadata request; cached briefly.

    ``/readyz`` may be polled every second by an orchestrator: the cache keeps that from opening a
    Kafka connection per poll.
    """

    def __init__(
        self,
        bootstrap: str,
        ttl_seconds: float = 5.0,
        timeout_seconds: float = 3.0,
        client_kwargs: dict[str, object] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        # Security arguments (monitor.kafka_security.kafka_client_kwargs) for brokers that need TLS or SASL.
        self.client_kwargs = dict(client_kwargs or {}, bootstrap_servers=bootstrap)
        self.ttl = ttl_seconds
        self.timeout = timeout_seconds
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._result: tuple[bool, str] = (False, "not checked yet")

    def check(self) -> tuple[bool, str]:
        with self._lock:
            if time.monotonic() - self._checked_at < self.ttl:
                return self._result
            self._result = self._probe()
            self._checked_at = time.monotonic()
            return self._result

    def _probe(self) -> tuple[bool, str]:
        hosts = [h.strip() for h in self.bootstrap.split(",") if h.strip()]
        for entry in hosts:
            host, _, port = entry.rpartition(":")
            try:
                with socket.create_connection((host or "127.0.0.1", int(port)), timeout=self.timeout):
                    pass
            except (OSError, ValueError):
                continue
            from kafka import KafkaAdminClient
            from kafka.errors import KafkaError

            try:
                deadline_ms = int(self.timeout * 1000) + 2000  # a probe answers quickly, whatever the settings say
                admin = KafkaAdminClient(
                    **{
                        **self.client_kwargs,
                        "request_timeout_ms": deadline_ms,
                        "bootstrap_timeout_ms": deadline_ms,
                        "client_id": "monitor-readyz",
                    }
                )
            except (KafkaError, OSError, ValueError) as exc:
                return False, f"Kafka at {self.bootstrap} refused a client: {exc}"
            try:
                admin.list_topics()
                return True, "ok"
            except (KafkaError, OSError) as exc:
                return False, f"Kafka at {self.bootstrap} did not answer a metadata request: {exc}"
            finally:
                admin.close()
        return False, f"no Kafka bootstrap server reachable at {self.bootstrap}"
