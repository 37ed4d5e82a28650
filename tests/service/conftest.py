"""Fixtures for the API tests: the real app served over HTTP on a free port, over the test's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from api_support import TOKEN, RunningApi, make_settings

from monitor.service.app import create_app
from monitor.service.context import ServiceContext
from monitor.service.server import ApiServer
from monitor.storage import Storage


@pytest.fixture
def serve(storage: Storage) -> Iterator[Callable[..., RunningApi]]:
    """Start the app with the given settings overrides; every server is stopped at teardown."""
    servers: list[tuple[ApiServer, httpx.Client]] = []

    def start(token: str | None = TOKEN, metrics_ttl: float = 0.0, **overrides: Any) -> RunningApi:
        ctx = ServiceContext(settings=make_settings(storage, token, **overrides), storage=storage)
        server = ApiServer(create_app(ctx, metrics_ttl=metrics_ttl), "127.0.0.1", 0)
        server.start()
        url = f"http://127.0.0.1:{server.port}"
        client = httpx.Client(base_url=url, timeout=30)
        servers.append((server, client))
        return RunningApi(url, ctx, client)

    yield start
    for server, client in servers:
        client.close()
        server.stop()
