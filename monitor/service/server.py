"""uvicorn in a background thread, so the main thread keeps the signals and the shutdown order.

The HTTP/1.1 parser is h11 with a bound on the request line plus headers (``api.max_header_bytes``):
uvicorn's default parser (httptools) accepts a header of any size and joins its pieces as they arrive,
so one anonymous connection streaming a few hundred megabytes of header kept the event loop busy for
minutes (every request, ``/healthz`` included, timed out). A head still incomplete past the bound is
answered 400 and the connection closed (h11 checks between reads: at most the bound plus one read).
"""

from __future__ import annotations

import os
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from monitor.errors import InputError, MonitorError

DEFAULT_MAX_HEADER_BYTES = 64 * 1024  # api.max_header_bytes' default


def check_listen_host(host: str, option: str) -> None:
    """Refuse, before anything starts, a host that names no address of any kind (exit 2, not 3).

    A typo such as ``"127.0.0.1 "`` otherwise surfaced only once the server thread failed to bind, after
    the consumer and the scheduler had started, as an infrastructure failure.
    """
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise InputError(f"{option} {host!r}: not an address to listen on ({reason})") from exc


def _bind_problem(config: uvicorn.Config) -> str:
    """Why the server thread could not bind (it only logged it): bind the same address once to see."""
    try:
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        with socket.create_server((config.host, config.port), family=family):
            return ""
    except OSError as exc:
        return f": {os.strerror(exc.errno) if exc.errno else exc}"


class ApiServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; ``stop()`` finishes in-flight requests."""

    name = "api"

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        log_level: str = "warning",
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> None:
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http="h11",
            h11_max_incomplete_event_size=max_header_bytes,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
        )
        self.server = uvicorn.Server(self.config)
        self._thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        servers = getattr(self.server, "servers", None) or []
        for srv in servers:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return self.config.port

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                where = f"{self.config.host}:{self.config.port}"
                raise MonitorError(f"the HTTP API could not listen on {where}{_bind_problem(self.config)}")
            if time.monotonic() > deadline:
                raise MonitorError(f"the HTTP API did not start within {timeout:.0f} s")
            time.sleep(0.02)

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def healthy(self) -> bool:
        return self._thread.is_alive() and bool(self.server.started)
