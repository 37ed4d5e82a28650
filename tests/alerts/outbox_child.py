"""A separate process for the crash tests: its own embedded ClickHouse path, the real engine and worker.

    python -m tests.alerts.outbox_child fire  DSN DATABASE SETTINGS_JSON   # enqueue a drift alert, deliver forever
    python -m tests.alerts.outbox_child drain DSN DATABASE SETTINGS_JSON   # deliver until none pending, print rows

Progress goes to stdout as one JSON object per line so the parent can act (e.g. SIGKILL) at a known point.
"""

from __future__ import annotations

import json
import sys
import time

from alerts.delivery import DeliveryWorker
from alerts.engine import AlertEngine
from alerts.outbox import Outbox
from monitor.settings import ClickHouseSettings, load_settings
from monitor.storage import open_storage
from tests.alerts.helpers import T0, drift_report


def say(**fields: object) -> None:
    print(json.dumps(fields, default=str), flush=True)


def main(mode: str, dsn: str, database: str, overrides: str) -> None:
    settings = load_settings(overrides=json.loads(overrides))
    storage = open_storage(ClickHouseSettings(dsn=dsn, database=database))
    worker = DeliveryWorker(storage, settings)
    if mode == "fire":
        evaluation = AlertEngine(storage, settings).evaluate(drift_report("fraud", T0, {"amount": 0.9, "age": 0.9}))
        say(enqueued=list(evaluation.delivery_ids))
        worker.start()
        while True:
            time.sleep(0.05)
            say(counts=Outbox(storage).counts())
    worker.start()
    outbox = Outbox(storage)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = outbox.counts()
        if not counts.get("pending") and not counts.get("sending"):
            break
        time.sleep(0.05)
    worker.stop()
    say(rows=[r.as_dict() for r in outbox.recent()])


if __name__ == "__main__":
    main(*sys.argv[1:5])
