"""The schema for a ClickHouse cluster (``clickhouse.cluster``), rendered and checked.

No ClickHouse server (let alone a cluster with Keeper) can run on these machines, so the cluster DDL is
checked the way it can be here: every statement is rendered, parsed by the real ClickHouse parser
(chDB's ``formatQuery``), and checked for the ``ON CLUSTER`` and replicated forms.
"""

from __future__ import annotations

import re

import pytest

from monitor.settings import ClickHouseSettings
from monitor.storage import Storage
from monitor.storage.cluster import REPLICA_PATH, for_cluster
from monitor.storage.migrations import available_migrations, render_all

CLUSTER = "monitor_cluster"
ENGINE = re.compile(r"ENGINE\s*=\s*(\w+)(\([^)]*\))?")


def parsed(storage: Storage, statement: str) -> str:
    """ClickHouse's own formatting of ``statement``: it raises on anything the parser rejects."""
    return str(storage.rows("SELECT formatQuery({q:String})", parameters={"q": statement})[0][0])


def test_every_statement_parses_and_creates_replicated_tables_on_the_cluster(storage: Storage) -> None:
    statements = render_all("monitor", CLUSTER)
    single = render_all("monitor")
    assert len(statements) == len(single)  # the same steps, only their form changes
    creates = [s for s in statements if re.search(r"^\s*CREATE (TABLE|DATABASE)", s, re.M)]
    tables = [s for s in creates if re.search(r"^\s*CREATE TABLE", s, re.M)]
    assert len(tables) >= 15 and any("CREATE DATABASE" in s for s in creates)
    for statement in statements:
        formatted = parsed(storage, statement)
        if statement in creates:
            assert f"ON CLUSTER {CLUSTER}" in formatted, formatted
    for statement in tables:
        engines = ENGINE.findall(statement)
        assert len(engines) == 1, statement
        name, arguments = engines[0]
        assert name.startswith("Replicated") and name.endswith("MergeTree"), statement
        assert arguments.startswith(f"({REPLICA_PATH}"), statement
    assert not any(re.search(r"ENGINE\s*=\s*(Replacing)?MergeTree", s) for s in statements)


def test_replacing_engines_keep_their_version_column() -> None:
    statement = "CREATE TABLE IF NOT EXISTS db.t (a String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY a"
    assert for_cluster(statement, "c") == (
        f"CREATE TABLE IF NOT EXISTS db.t ON CLUSTER `c` (a String, v UInt64) "
        f"ENGINE = ReplicatedReplacingMergeTree({REPLICA_PATH}, v) ORDER BY a"
    )
    plain = "CREATE TABLE IF NOT EXISTS db.t (a String) ENGINE = MergeTree ORDER BY a"
    assert f"ENGINE = ReplicatedMergeTree({REPLICA_PATH}) ORDER BY a" in for_cluster(plain, "c")


def test_alters_and_inserts_are_left_to_replication() -> None:
    """ALTER and INSERT on a replicated table reach every replica through Keeper: no ON CLUSTER."""
    for migration in available_migrations():
        for statement in migration.statements("monitor", CLUSTER):
            body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
            if body.lstrip().startswith(("ALTER", "INSERT")):
                assert "ON CLUSTER" not in body, body


def test_without_a_cluster_nothing_changes() -> None:
    for migration in available_migrations():
        assert migration.statements("monitor") == migration.statements("monitor", None)
        statements = migration.statements("monitor")
        assert all("ON CLUSTER" not in s and "ENGINE = Replicated" not in s for s in statements)


def test_cluster_name_is_validated() -> None:
    assert ClickHouseSettings(cluster="prod_1").cluster == "prod_1"
    with pytest.raises(ValueError, match="cluster"):
        ClickHouseSettings(cluster="prod; DROP DATABASE x")


def test_the_events_rebuild_exchanges_tables_on_the_cluster(storage: Storage) -> None:
    """Migration 0005 rebuilds `events` from Python (monitor/storage/repartition.py) through the same rewrite."""
    create = for_cluster(
        "CREATE TABLE IF NOT EXISTS `monitor`.`events_by_stored_day` AS `monitor`.`events` "
        "ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(ingested_at) ORDER BY (model, ts, event_id)",
        CLUSTER,
    )
    assert f"ON CLUSTER {CLUSTER}" in parsed(storage, create)
    assert f"ReplicatedReplacingMergeTree({REPLICA_PATH})" in create
    exchange = for_cluster("EXCHANGE TABLES `monitor`.`events` AND `monitor`.`events_by_stored_day`", CLUSTER)
    assert parsed(storage, exchange).endswith(f"ON CLUSTER {CLUSTER}")
    drop = for_cluster("DROP TABLE IF EXISTS `monitor`.`events_by_stored_day` SYNC", CLUSTER)
    assert f"ON CLUSTER {CLUSTER}" in parsed(storage, drop)
