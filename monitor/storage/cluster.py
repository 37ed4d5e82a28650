"""The one place that knows about ClickHouse clusters (docs/deployment.md, "ClickHouse beyond one node").

With ``clickhouse.cluster`` set, every ``CREATE``, ``DROP`` and ``EXCHANGE`` runs ``ON CLUSTER`` and
every MergeTree-family engine becomes its replicated form, with the replica path built from the
server's ``{shard}`` and ``{replica}`` macros; ``ALTER`` and ``INSERT`` statements then replicate by
themselves through ClickHouse Keeper. Migrations are written single-node and pass through
:func:`for_cluster`.
"""

from __future__ import annotations

import re

from monitor.storage.client import quote_identifier

_CLUSTER_DDL = re.compile(
    r"^\s*((?:CREATE\s+(?:TABLE|DATABASE|VIEW|MATERIALIZED\s+VIEW)\s+IF\s+NOT\s+EXISTS"
    r"|DROP\s+(?:TABLE|VIEW|DATABASE)\s+IF\s+EXISTS"
    r"|EXCHANGE\s+TABLES\s+\S+\s+AND)\s+[^\s(]+)",
    re.IGNORECASE | re.MULTILINE,
)
_ENGINE = re.compile(
    r"ENGINE\s*=\s*(Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing)?MergeTree\b(?:\(([^()]*)\))?"
)
# Where a replicated table keeps its metadata in Keeper: one path per shard and table, one replica
# name per server (both from the server's <macros>); {database} and {table} ClickHouse fills itself.
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


def for_cluster(statement: str, cluster: str) -> str:
    """``statement`` as a cluster runs it: ``CREATE``, ``DROP``, ``EXCHANGE`` ``ON CLUSTER``; replicated engines."""
    text = _CLUSTER_DDL.sub(lambda m: f"{m.group(1)} ON CLUSTER {quote_identifier(cluster)}", statement, count=1)

    def replicated(match: re.Match[str]) -> str:
        family, arguments = match.group(1) or "", (match.group(2) or "").strip()
        return f"ENGINE = Replicated{family}MergeTree({REPLICA_PATH}{', ' + arguments if arguments else ''})"

    return _ENGINE.sub(replicated, text)
