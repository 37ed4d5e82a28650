"""The long-running parts of ``monitor up`` as :class:`~monitor.service.context.Component` objects.

Each owns one thread (or child process) and knows how to stop it cleanly: the consumer flushes and
commits, the dashboard is terminated. If a thread dies on its own (ClickHouse down past the retries,
Kafka gone), ``healthy()`` turns false, ``/readyz`` says so and the supervisor stops the process
with a non-zero exit so an orchestrator restarts it instead of it limping on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from monitor.logs import get_logger
from monitor.settings import Settings
from monitor.storage import Storage

log = get_logger(__name__)


class ConsumerComponent:
    """The Kafka consumer (``monitor ingest``'s loop) in a thread sharing the process's storage."""

    name = "consumer"

    def __init__(self, settings: Settings, storage: Storage) -> None:
        from monitor.ingest.consumer import IngestConsumer
        from monitor.ingest.limits import IngestPolicy
        from monitor.storage.retention import apply_retention

        apply_retention(storage, settings.retention)
        self._consumer = IngestConsumer(
            settings.kafka,
            storage,
            retries=settings.clickhouse.insert_retries,
            policy=IngestPolicy.from_settings(settings),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)
        self.error: BaseException | None = None
        self.finished = False

    @property
    def stats(self):
        return self._consumer.stats

    def _run(self) -> None:
        try:
            self._consumer.run(stop=self._stop)
        except BaseException as exc:  # recorded and reported by the supervisor; never silently lost
            self.error = exc
            log.error("consumer stopped with an error", error=str(exc), error_type=type(exc).__name__)
        finally:
            self.finished = True

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Ask the loop to stop; it flushes the current batch and commits before returning."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("consumer did not stop in time", timeout_s=timeout)

    def healthy(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def failed(self) -> bool:
        return self.finished and not self._stop.is_set()


class DashboardComponent:
    """Streamlit (``dashboards/app.py``) as a child process that reads this service's API.

    It has no access control of its own: it binds to loopback unless told otherwise, and is meant to be
    published only behind an authenticating proxy (docs/security.md). ``token`` (the read token) reaches
    the child through its environment only, never its command line, which any local user can list;
    the service's own ``MONITOR_*`` variables (the write token, the DSN's password) do not, nor do the
    variables named in ``withheld`` (where the configuration reads the channels' and Kafka's secrets).
    """

    name = "dashboard"

    def __init__(
        self,
        api_url: str,
        host: str,
        port: int,
        log_file: Path | None = None,
        token: str | None = None,
        withheld: Iterable[str] = (),
    ) -> None:
        self.api_url = api_url
        self.withheld = frozenset(withheld)
        self.host = host
        self.port = port
        self.log_file = log_file
        self.token = token
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address in a URL
        return f"http://{shown}:{self.port}"

    def command(self) -> list[str]:
        app = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
        return [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app),
            "--server.headless=true",
            f"--server.address={self.host}",
            f"--server.port={self.port}",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
            "--client.toolbarMode=minimal",
        ]

    def start(self) -> None:
        # The child needs the API's address and the read token, nothing of the service's own
        # configuration: MONITOR_* (DSN with its password, the write token, ...) is not passed on, nor
        # are the variables the configuration reads secrets from (routing keys, signing secrets, ...).
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MONITOR_") and k not in self.withheld}
        env["MONITOR_API_URL"] = self.api_url
        if self.token is not None:
            env["MONITOR_API_READ_TOKEN"] = self.token
        out = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                self.command(),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if self.log_file:
                out.close()  # type: ignore[union-attr]

    def stop(self, timeout: float) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def healthy(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def failed(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None
