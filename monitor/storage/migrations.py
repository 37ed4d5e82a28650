"""Versioned, idempotent schema migrations.

Each migration is one SQL file in ``monitor/storage/sql/`` named ``NNNN_description.sql``,
applied in order and recorded in ``schema_migrations``. ``{db}`` in a file is the quoted database
name. Statements are separated by lines that end in ``;``. Every statement is written to be safe to
run twice (``IF NOT EXISTS``), so two processes migrating at once against a server do no harm.

Number ranges keep concerns apart: 0001-0099 ingestion, 0100-0199 detectors, 0200-0299 alerting,
0300-0399 the service, 0400- steps that span every table (retention).

With ``clickhouse.cluster`` set, every statement passes through :func:`for_cluster`
(:mod:`monitor.storage.cluster`): the SQL files stay single-node.

A migration that cannot be written in SQL alone (it depends on the columns an existing database
has, or rebuilds a table) adds a Python step in ``_PYTHON_STEPS``, run after the migration's
statements. Migration 0005 rebuilds ``events``: processes that run it together each copy the table
into one of their own, so they repeat the work but do not undo each other's (docs/deployment.md,
"Upgrading").
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from monitor.storage.client import Storage, connect, quote_identifier
from monitor.storage.cluster import for_cluster

if TYPE_CHECKING:  # pydantic-settings is a fifth of a second to import: a file-only command never needs it
    from monitor.settings import ClickHouseSettings
from monitor.storage.events import retarget_typed_columns
from monitor.storage.repartition import repartition_events


def _retarget(storage: Storage, _cluster: str | None) -> None:
    retarget_typed_columns(storage)  # ALTERs replicate by themselves


log = logging.getLogger(__name__)

_PYTHON_STEPS: dict[int, Callable[[Storage, str | None], None]] = {
    2: _retarget,
    4: _retarget,
    5: repartition_events,
}

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str, cluster: str | None = None) -> list[str]:
        text = self.sql.replace("{db}", quote_identifier(database))
        parts = [p.strip() for p in re.split(r";\s*(?:\n|$)", text) if p.strip() and not _only_comments(p)]
        return [for_cluster(p, cluster) for p in parts] if cluster else parts


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def available_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    folder = resources.files("monitor.storage") / "sql"
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    duplicates = {v for v in versions if versions.count(v) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate migration versions: {sorted(duplicates)}")
    return sorted(found, key=lambda m: m.version)


def applied_versions(storage: Storage) -> set[int]:
    rows = storage.rows(f"SELECT version FROM {storage.table('schema_migrations')}")
    return {int(r[0]) for r in rows}


def bootstrap_statements(database: str, cluster: str | None = None) -> list[str]:
    """The database and the table that records applied migrations."""
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}",
        f"""CREATE TABLE IF NOT EXISTS {quote_identifier(database)}.{quote_identifier("schema_migrations")} (
            version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree ORDER BY version""",
    ]
    return [for_cluster(s, cluster) for s in statements] if cluster else statements


def render_all(database: str, cluster: str | None = None) -> list[str]:
    """Every statement a fresh database gets, in order (``monitor`` renders them for review; tests check them)."""
    statements = bootstrap_statements(database, cluster)
    for migration in available_migrations():
        statements += migration.statements(database, cluster)
    return statements


def apply_migrations(storage: Storage, cluster: str | None = None) -> list[Migration]:
    """Apply what is missing; return the migrations applied now."""
    for statement in bootstrap_statements(storage.database, cluster):
        storage.command(statement)
    done = applied_versions(storage)
    applied = []
    for migration in available_migrations():
        if migration.version in done:
            continue
        started = time.monotonic()
        for statement in migration.statements(storage.database, cluster):
            storage.command(statement)
        step = _PYTHON_STEPS.get(migration.version)
        if step is not None:
            step(storage, cluster)
        storage.insert_rows(
            "schema_migrations",
            [(migration.version, migration.name, migration.checksum)],
            ["version", "name", "checksum"],
        )
        applied.append(migration)
        if done:  # an existing database: say what changed (a new one gets every migration in a blink)
            log.info(
                "schema migration %04d %s applied in %.1f s",
                migration.version,
                migration.name,
                time.monotonic() - started,
            )
    return applied


def open_storage(settings: ClickHouseSettings, migrate: bool = True) -> Storage:
    """Connect and (by default) bring the schema up to date. The usual entry point."""
    storage = connect(settings)
    if migrate:
        apply_migrations(storage, settings.cluster)
    return storage
