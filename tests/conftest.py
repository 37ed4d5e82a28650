"""Shared fixtures: a real Kafka broker and real embedded ClickHouse, no mocks of either.

chDB hosts one database path per process, so every in-process test shares the session's path and is
isolated by its own ClickHouse *database*. Tests that need another process (the consumer killed with
SIGKILL, the service) give that process its own path and read results back through a subprocess
(:func:`query_in_subprocess`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.kafka_local import broker
from monitor.kafka_local.broker import BrokerSpec
from monitor.ports import free_port, free_port_pair
from monitor.settings import ClickHouseSettings
from monitor.storage import Storage, open_storage

REPO = Path(__file__).resolve().parents[1]
BROKER_HOME = REPO / ".cache" / "kafka"
KAFKA_VERSION = os.environ.get("MONITOR_TEST_KAFKA_VERSION", "4.1.1")
__all__ = ["free_port", "free_port_pair", "query_in_subprocess", "unique_name"]


@pytest.fixture(scope="session")
def kafka_spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSpec]:
    """A real Apache Kafka broker on a free port for the whole session, started by the project's own code."""
    spec = BrokerSpec(home=BROKER_HOME, version=KAFKA_VERSION, port=free_port_pair(), heap="512m")
    broker.start(spec, progress=lambda msg: print(msg, file=sys.stderr))
    yield spec
    broker.stop(spec)
    import shutil

    shutil.rmtree(spec.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_spec: BrokerSpec) -> str:
    return kafka_spec.bootstrap


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded ClickHouse path this test process opens."""
    return tmp_path_factory.mktemp("chdb") / "db"


@pytest.fixture
def clickhouse_settings(chdb_path: Path) -> ClickHouseSettings:
    """Settings for a fresh, uniquely named database inside the session's embedded ClickHouse."""
    return ClickHouseSettings(dsn=f"chdb://{chdb_path}", database=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def storage(clickhouse_settings: ClickHouseSettings) -> Iterator[Storage]:
    """A migrated, empty database; dropped afterwards."""
    store = open_storage(clickhouse_settings)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {clickhouse_settings.database}")


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def query_in_subprocess(dsn: str, database: str, sql: str, timeout: float = 120) -> list[list]:
    """Run one query against another process's embedded ClickHouse path (this process holds its own).

    The child opens the path read-write only after the owner has exited, as chDB requires.
    """
    code = (
        "import json, sys\n"
        "from monitor.settings import ClickHouseSettings\n"
        "from monitor.storage import open_storage\n"
        "s = open_storage(ClickHouseSettings(dsn=sys.argv[1], database=sys.argv[2]))\n"
        "print(json.dumps([list(r) for r in s.rows(sys.argv[3])], default=str))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, dsn, database, sql], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"query subprocess failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
