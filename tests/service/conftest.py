"""Fixtures for the API tests: the real app served over HTTP on a free port, over the test's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import READ_TOKEN, TOKEN, RunningApi, make_settings

from monitor.service.app import create_app
from monitor.service.context import ServiceContext
from monitor.service.server import ApiServer
from monitor.storage import Storage


@pytest.fixture
def serve(storage: Storage, tmp_path: Path) -> Iterator[Callable[..., RunningApi]]:
    """Start the app with the given settings overrides; every server is stopped at teardown.

    Both tokens are configured unless given as None; the test's tmp_path is the reference directory
    unless ``api={"reference_dir": ...}`` says otherwise.
    """
    servers: list[tuple[ApiServer, list[httpx.Client]]] = []

    def start(
        token: str | None = TOKEN, read_token: str | None = READ_TOKEN, metrics_ttl: float = 0.0, **overrides: Any
    ) -> RunningApi:
        overrides["api"] = {"reference_dir": str(tmp_path), **overrides.get("api", {})}
        ctx = ServiceContext(settings=make_settings(storage, token, read_token, **overrides), storage=storage)
        app = create_app(ctx, metrics_ttl=metrics_ttl)
        server = ApiServer(app, "127.0.0.1", 0)
        server.start()
        url = f"http://127.0.0.1:{server.port}"
        reader = read_token or token
        headers = {"Authorization": f"Bearer {reader}"} if reader else {}
        client = httpx.Client(base_url=url, timeout=30, headers=headers)
        anonymous = httpx.Client(base_url=url, timeout=30)
        servers.append((server, [client, anonymous]))
        return RunningApi(url, ctx, client, anonymous, app)

    yield start
    for server, clients in servers:
        for client in clients:
            client.close()
        server.stop()
