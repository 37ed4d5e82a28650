"""Test data for the detector tests: events and labels written through the ingestion writer (no Kafka)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor.ingest.batch import Batch
from monitor.ingest.validation import LabelEvent, PredictionEvent
from monitor.ingest.writer import BatchWriter
from monitor.settings import Settings, load_settings
from monitor.storage import Storage

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
"""A fixed window end for the tests: windows are [T0 - 1h, T0)."""


@dataclass
class Rows:
    """Columnar description of events to write: features as columns, one value per event."""

    model: str
    ts: Sequence[datetime]
    features: dict[str, Sequence[Any]]
    prediction: Sequence[float | str]
    event_ids: Sequence[str] | None = None
    segment: Sequence[dict[str, str] | None] | None = None
    probabilities: Sequence[dict[str, float] | None] | None = None
    model_version: str = "1"
    absent: dict[str, Sequence[bool]] = field(default_factory=dict)  # feature -> key absent in that event


def _value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return None if np.isnan(number) else number
    return str(value)


def write_events(storage: Storage, rows: Rows) -> list[str]:
    """Write the events through :class:`BatchWriter` (the consumer's own path); returns their ids."""
    n = len(rows.ts)
    ids = list(rows.event_ids) if rows.event_ids is not None else [f"{rows.model}-{i}-{id(rows)}" for i in range(n)]
    events = []
    for i in range(n):
        features = {}
        for name, values in rows.features.items():
            if rows.absent.get(name) is not None and rows.absent[name][i]:
                continue
            features[name] = _value(values[i])
        prediction = rows.prediction[i]
        events.append(
            PredictionEvent(
                event_id=ids[i],
                model=rows.model,
                ts_ms=int(rows.ts[i].timestamp() * 1000),
                features=features,
                prediction=float(prediction) if not isinstance(prediction, str) else prediction,
                model_version=rows.model_version,
                probabilities=rows.probabilities[i] if rows.probabilities is not None else None,
                segment=rows.segment[i] if rows.segment is not None else None,
            )
        )
    batch = Batch(events=events, event_sources=[("test", 0, i) for i in range(n)])
    BatchWriter(storage, retries=0).write(batch)
    return ids


def write_labels(storage: Storage, model: str, ids: Iterable[str], labels: Iterable[Any], ts: datetime = T0) -> None:
    items = [
        LabelEvent(
            event_id=i, model=model, label=_value(y) if not isinstance(y, str) else y, ts_ms=int(ts.timestamp() * 1000)
        )
        for i, y in zip(ids, labels, strict=True)
    ]
    BatchWriter(storage, retries=0).write(
        Batch(labels=items, label_sources=[("test", 1, i) for i in range(len(items))])
    )


def spread(n: int, end: datetime = T0, span: timedelta = timedelta(hours=1)) -> list[datetime]:
    """``n`` timestamps spread evenly inside ``[end - span, end)``."""
    step = span / n
    return [end - span + step * i for i in range(n)]


def settings_for(storage: Storage, tmp_path: Path, models: dict[str, Any], **extra: Any) -> Settings:
    """Settings pointing at the test's database, with the given ``models`` section."""
    config = tmp_path / "monitor.yaml"
    import yaml

    doc = {
        "clickhouse": {"dsn": storage.dsn, "database": storage.database},
        "models": models,
        **extra,
    }
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return load_settings(config)


def reference_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A reference with a numerical, a categorical and a boolean feature, predictions and labels."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100, 15, n),
            "country": rng.choice(["DE", "FR", "IT"], n, p=[0.5, 0.3, 0.2]),
            "is_new": rng.random(n) < 0.3,
        }
    )
    score = 1 / (1 + np.exp(-(frame["amount"] - 100) / 15))
    frame["prediction"] = score
    frame["label"] = (rng.random(n) < score).astype(int)
    return frame
