"""The writers' working tables: named by host and process, and dropped when their process is gone.

Each writer stages batches in small ``Memory`` tables of its own (``ingest_staging_...``,
``ingest_pending_...`` and their companions), dropped when the writer closes. A process that is
killed (SIGKILL, out of memory, a pod evicted) never closes them: their rows die with the process or
the server, but their definitions stay, one set per unclean exit, for as long as the database lives.
The consumer and the service call :func:`drop_leftovers` when they start. A table is a leftover when
its process, on this host, has ended; on the embedded engine, where only one process can open the
database, also when it names another host. Tables of this process are kept (a test, or the service's
HTTP writer, may already use them), and so are those of other hosts on a server, which may belong to
live consumers.
"""

from __future__ import annotations

import os
import re
import socket
import uuid

from monitor.storage import Storage

PREFIX = "ingest_"
_KINDS = ("staging", "pending")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())


def working_table_name(kind: str) -> str:
    """A new working table's name: ``ingest_<kind>_<host>_<pid>_<6 hex>`` (companions append ``_<role>``)."""
    assert kind in _KINDS
    return f"{PREFIX}{kind}_{_host()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _process_ended(pid: int) -> bool:
    """Whether process ``pid`` of this host has ended (never this process)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


def drop_leftovers(storage: Storage) -> list[str]:
    """Drop the working tables no live writer can own (see the module's docstring); return their names."""
    rows = storage.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, {prefix:String})",
        parameters={"db": storage.database, "prefix": PREFIX},
    )
    kinds = "|".join(_KINDS)
    named = re.compile(rf"^{PREFIX}(?:{kinds})_(.+)_(\d+)_[0-9a-f]{{6}}(?:_[a-z]+)?$")
    dropped = []
    for (name,) in rows:
        match = named.match(str(name))
        if match is None:
            continue
        host, pid = match.group(1), int(match.group(2))
        # One process opens an embedded database: another host's working table there is dead.
        if _process_ended(pid) if host == _host() else storage.embedded:
            storage.command(f"DROP TABLE IF EXISTS {storage.table(str(name))}")
            dropped.append(str(name))
    return dropped
