"""monitor.sdk.PredictionLogger: validated events through the real broker into ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from monitor.ingest.consumer import IngestConsumer
from monitor.sdk import InvalidMessage, PredictionLogger
from monitor.storage import Storage
from tests.ingest.kafka_helpers import kafka_settings

pytestmark = pytest.mark.kafka


def test_logged_events_and_labels_arrive(kafka_bootstrap: str, storage: Storage) -> None:
    k = kafka_settings(kafka_bootstrap)
    stamp = datetime(2026, 11, 27, 10, 0, 0, 250000, tzinfo=UTC)
    with PredictionLogger(
        model="fraud",
        model_version="3",
        bootstrap=kafka_bootstrap,
        predictions_topic=k.predictions_topic,
        labels_topic=k.labels_topic,
    ) as logger:
        first = logger.log(
            {"amount": np.float64(12.5), "count": np.int64(3), "country": "DE", "new": np.bool_(True)},
            prediction=np.float32(0.75),
            timestamp=stamp,
            segment={"region": "eu"},
        )
        second = logger.log({"amount": 1.0}, prediction="fraud", event_id="given-id")
        logger.log_label(first, label=1)
    assert second == "given-id" and len(first) == 32

    stats = IngestConsumer(k, storage).run(max_messages=3, idle_timeout=30)
    assert (stats.events, stats.labels, stats.dead_letters) == (2, 1, 0)
    row = storage.dicts(
        f"SELECT * FROM {storage.table('events')} FINAL WHERE event_id = {{id:String}}", parameters={"id": first}
    )[0]
    assert row["ts"] == stamp.replace(tzinfo=None)
    assert (row["n__amount"], row["n__count"], row["c__country"], row["c__new"]) == (12.5, 3.0, "DE", "true")
    assert row["prediction_num"] == 0.75 and row["model_version"] == "3" and row["segment"] == {"region": "eu"}
    other = storage.dicts(f"SELECT prediction_cat FROM {storage.table('events')} FINAL WHERE event_id = 'given-id'")
    assert other == [{"prediction_cat": "fraud"}]
    assert storage.rows(f"SELECT event_id, label_num FROM {storage.table('labels')} FINAL") == [(first, 1.0)]


def test_invalid_events_raise_in_the_serving_app(kafka_bootstrap: str) -> None:
    with PredictionLogger(model="fraud", bootstrap=kafka_bootstrap) as logger:
        with pytest.raises(InvalidMessage, match=r"'features\.embedding'"):
            logger.log({"embedding": [0.1, 0.2]}, prediction=0.5)
        with pytest.raises(InvalidMessage, match="'prediction'"):
            logger.log({"a": 1.0}, prediction=None)  # type: ignore[arg-type]
        with pytest.raises(InvalidMessage, match="timezone-aware"):
            logger.log({"a": 1.0}, prediction=1.0, timestamp=datetime(2026, 1, 1))


def test_what_the_sdk_accepts_is_stored_and_what_the_consumer_would_dead_letter_is_refused(
    kafka_bootstrap: str, storage: Storage
) -> None:
    k = kafka_settings(kafka_bootstrap)
    accepted = {
        "numpy": {"a": np.float32(1.5), "b": np.int64(3), "c": np.bool_(True), "d": np.str_("x"), "e": np.nan},
        "pandas": {"a": pd.NA, "b": pd.NaT, "c": float("inf")},
        "unicode": {"café €": 1.0, "名前": "値", "a'b`c\"d": 2.0, "x": "nul\x00 and newline\n in a value"},
        "wide": {f"{i:04d}" + "n" * 252: float(i) for i in range(1000)},
        "large": {"text": "x" * 999_000},
    }
    refused = {
        "newline-name": ({"a\nb": 1.0}, "bad_feature_name"),
        "c1-name": ({"a\x85b": 1.0}, "bad_feature_name"),
        "oversized": ({"text": "x" * 1_000_000}, "oversized"),  # under max_request_size (1 MiB): Kafka takes it
    }
    with PredictionLogger(
        "hostile", bootstrap=kafka_bootstrap, predictions_topic=k.predictions_topic, labels_topic=k.labels_topic
    ) as logger:
        for name, features in accepted.items():
            logger.log(features, prediction=0.5, event_id=name)
        kinds = {}
        for name, (features, _) in refused.items():
            with pytest.raises(InvalidMessage) as info:
                logger.log(features, prediction=0.5, event_id=name)
            kinds[name] = info.value.kind
        with pytest.raises(InvalidMessage, match="max_message_bytes = 1000000"):
            logger.log_label("large", label="x" * 1_000_000)
    assert kinds == {name: kind for name, (_, kind) in refused.items()}

    stats = IngestConsumer(k, storage).run(max_messages=len(accepted), idle_timeout=30)
    assert (stats.events, stats.dead_letters) == (len(accepted), 0)
    stored = storage.rows(f"SELECT event_id FROM {storage.table('events')} FINAL ORDER BY event_id")
    assert [row[0] for row in stored] == sorted(accepted)
