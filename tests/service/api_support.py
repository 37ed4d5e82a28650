"""Helpers for the service tests (importable module; conftest.py holds the fixtures)."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyarrow as pa
from fastapi import FastAPI

from monitor.service.context import ServiceContext
from monitor.settings import Settings, load_settings
from monitor.storage import Storage
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureColumns, feature_column

TOKEN = "test-token-0123456789"  # the write token (api.token)
READ_TOKEN = "test-read-token-9876543210"  # api.read_token


@dataclass
class RunningApi:
    url: str
    ctx: ServiceContext
    client: httpx.Client  # sends the read token unless a request sets its own Authorization (as the dashboard)
    anonymous: httpx.Client  # sends no token
    app: FastAPI | None = None  # the application being served

    def auth(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def make_settings(
    storage: Storage, token: str | None = TOKEN, read_token: str | None = READ_TOKEN, **overrides: Any
) -> Settings:
    api: dict[str, Any] = {"token": token, "read_token": read_token}
    api.update(overrides.pop("api", {}))
    data: dict[str, Any] = {
        "clickhouse": {"dsn": storage.dsn, "database": storage.database},
        "api": {key: value for key, value in api.items() if value is not None},
    }
    data.update(overrides)
    return load_settings(None, overrides=data)


def insert_events(storage: Storage, model: str, rows: list[dict[str, Any]]) -> None:
    """Store events directly (the API tests do not need Kafka for reads): rows carry event_id, ts,
    features {name: number | str | bool | None} and prediction."""
    fc = FeatureColumns(storage)
    kinds: dict[str, str] = {}
    for row in rows:
        for name, value in row["features"].items():
            if value is None:
                continue
            kinds[name] = NUMERICAL if isinstance(value, int | float) and not isinstance(value, bool) else CATEGORICAL
    fc.ensure((model, name, kind) for name, kind in kinds.items())  # type: ignore[misc]
    columns: dict[str, list[Any]] = {
        "model": [model] * len(rows),
        "event_id": [r["event_id"] for r in rows],
        "ts": [r["ts"] for r in rows],
        "model_version": [r.get("model_version", "1") for r in rows],
        "prediction_num": [
            float(r["prediction"]) if not isinstance(r["prediction"], str) else float("nan") for r in rows
        ],
        "prediction_cat": [r["prediction"] if isinstance(r["prediction"], str) else None for r in rows],
        "feature_keys": [list(r["features"]) for r in rows],
    }
    for name, kind in kinds.items():
        col = feature_column(name, kind)  # type: ignore[arg-type]
        if kind == NUMERICAL:
            columns[col] = [float(v) if (v := r["features"].get(name)) is not None else float("nan") for r in rows]
        else:
            columns[col] = [
                (str(v).lower() if isinstance(v, bool) else v) if (v := r["features"].get(name)) is not None else None
                for r in rows
            ]
    schema_fields = []
    for name, values in columns.items():
        if name == "ts":
            schema_fields.append(pa.array(values, pa.timestamp("ms", tz="UTC")))
        elif name == "feature_keys":
            schema_fields.append(pa.array(values, pa.list_(pa.string())))
        elif name == "prediction_num" or name.startswith("n__"):
            schema_fields.append(pa.array(values, pa.float64()))
        else:
            schema_fields.append(pa.array(values, pa.string()))
    storage.insert_arrow("events", pa.Table.from_arrays(schema_fields, names=list(columns)))


def synthetic_rows(n: int, end: datetime | None = None, span: timedelta = timedelta(minutes=30), shift: float = 0.0):
    """n events spread evenly over ``span`` before ``end`` with a numeric, a text and a boolean feature."""
    end = end or datetime.now(UTC)
    rows = []
    for i in range(n):
        rows.append(
            {
                "event_id": f"e{i}",
                "ts": end - span + span * (i / n),
                "features": {
                    "amount": float(i % 100) + shift,
                    "country": ["DE", "FR", "US"][i % 3],
                    "is_new_user": i % 2 == 0,
                    "age": None if i % 10 == 0 else 30 + i % 7,
                },
                "prediction": (i % 10) / 10,
            }
        )
    return rows


def stop_service(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    """SIGTERM a ``monitor up`` child, wait for its orderly stop (kill it past ``timeout``); its stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return err
