"""Working tables a killed writer left behind are dropped at start-up; live writers' tables are not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from monitor.ingest.batch import Batch
from monitor.ingest.worktables import drop_leftovers
from monitor.ingest.writer import BatchWriter
from monitor.storage import Storage
from monitor.storage.client import Storage as StorageClass
from tests.ingest.kafka_helpers import event


def working_tables(storage: Storage) -> set[str]:
    rows = storage.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, 'ingest_')",
        parameters={"db": storage.database},
    )
    return {str(r[0]) for r in rows}


def ended_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(child.stdout)


def leave(storage: Storage, name: str) -> str:
    storage.command(f"CREATE TABLE {storage.table(name)} (idx UInt32) ENGINE = Memory")
    return name


def write_one(writer: BatchWriter, i: int) -> None:
    import orjson

    writer.write(Batch(raw_predictions=[orjson.dumps(event(i))], raw_sources=[("t", 0, i)], messages=1))


def test_leftovers_of_ended_processes_are_dropped_and_live_ones_kept(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = "".join(c if c.isalnum() or c == "_" else "_" for c in socket.gethostname())
    writer = BatchWriter(storage, retries=0)
    write_one(writer, 1)  # this process's own working tables exist now
    ours = working_tables(storage)
    assert ours and all(f"_{os.getpid()}_" in name for name in ours)
    dead = ended_pid()
    killed = {
        leave(storage, f"ingest_staging_{host}_{dead}_a1b2c3"),
        leave(storage, f"ingest_staging_{host}_{dead}_a1b2c3_marks"),
    }
    elsewhere = leave(storage, "ingest_pending_other_host_7_d4e5f6")
    unrelated = leave(storage, "ingest_notes")

    monkeypatch.setattr(StorageClass, "embedded", property(lambda self: False))  # as on a server
    assert set(drop_leftovers(storage)) == killed  # another host's writer may be alive
    monkeypatch.undo()
    assert drop_leftovers(storage) == [elsewhere]  # embedded: no other process can hold the database
    assert working_tables(storage) == ours | {unrelated}
    write_one(writer, 2)  # the live writer still writes
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0] == 2
    writer.close()
