"""Stores a :class:`~monitor.ingest.batch.Batch` in ClickHouse: columnar, idempotent, retried.

Every table written here is a ReplacingMergeTree keyed so that writing the same message twice
collapses to one row (``events``: model, ts, event_id; ``labels``: model, event_id;
``dead_letters``: topic, partition, offset), and every query reads with ``FINAL``. That is what makes
a retry after a half-finished insert, or a redelivery after a crash between insert and commit,
harmless.

Rows are shipped as one Arrow table per ClickHouse table (measured: ~3x faster than row inserts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pyarrow as pa
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from monitor import metrics
from monitor.errors import StorageError
from monitor.ingest.batch import Batch, DeadLetter
from monitor.ingest.fastpath import ONE_THREAD, FastPredictionPath
from monitor.ingest.validation import InvalidMessage, LabelEvent, PredictionEvent, model_hint, parse_prediction
from monitor.logs import get_logger
from monitor.storage import Storage
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureColumns, feature_column

log = get_logger(__name__)

_TS = pa.timestamp("ms", tz="UTC")
_MAP_FLOAT = pa.map_(pa.string(), pa.float64())
_MAP_TEXT = pa.map_(pa.string(), pa.string())
_KEYS = pa.list_(pa.string())
NAN = math.nan


def events_table(events: list[PredictionEvent], sources: list[tuple[str, int, int]]) -> tuple[pa.Table, set]:
    """Arrow columns for ``events`` and the (model, feature, kind) triples they use.

    One pass over the events: each feature value lands in its typed column at the event's row,
    columns are created on first sight and pre-filled with the missing value.
    """
    n = len(events)
    numeric: dict[str, list] = {}
    text: dict[str, list] = {}
    used: set[tuple[str, str, str]] = set()
    column_of: dict[tuple[str, bool], str] = {}
    prediction_num = [NAN] * n
    prediction_cat: list[str | None] = [None] * n
    probabilities: list = [None] * n
    segments: list = [None] * n
    any_probabilities = any_segments = False
    for i, event in enumerate(events):
        model = event.model
        for key, value in event.features.items():
            if value is None:
                continue
            is_text = type(value) is not float
            col = column_of.get((key, is_text))
            if col is None:
                col = column_of[(key, is_text)] = feature_column(key, CATEGORICAL if is_text else NUMERICAL)
            if is_text:
                used.add((model, key, CATEGORICAL))
                target = text.get(col)
                if target is None:
                    target = text[col] = [None] * n
                target[i] = value if type(value) is str else ("true" if value else "false")
            else:
                used.add((model, key, NUMERICAL))
                target = numeric.get(col)
                if target is None:
                    target = numeric[col] = [NAN] * n
                target[i] = value
        prediction = event.prediction
        if type(prediction) is float:
            prediction_num[i] = prediction
        else:
            prediction_cat[i] = prediction
        if event.probabilities:
            probabilities[i] = list(event.probabilities.items())
            any_probabilities = True
        if event.segment:
            segments[i] = list(event.segment.items())
            any_segments = True
    columns: dict[str, pa.Array] = {
        "model": pa.array([e.model for e in events], pa.string()),
        "event_id": pa.array([e.event_id for e in events], pa.string()),
        "ts": pa.array([e.ts_ms for e in events], pa.int64()).cast(_TS),
        "model_version": pa.array([e.model_version for e in events], pa.string()),
        "prediction_num": pa.array(prediction_num, pa.float64()),
        "prediction_cat": pa.array(prediction_cat, pa.string()),
        "feature_keys": pa.array([list(e.features) for e in events], _KEYS),
        "source": pa.array([s[0] for s in sources], pa.string()),
        "source_partition": pa.array([s[1] for s in sources], pa.int32()),
        "source_offset": pa.array([s[2] for s in sources], pa.int64()),
    }
    if any_probabilities:
        columns["probabilities"] = pa.array(probabilities, _MAP_FLOAT)
    if any_segments:
        columns["segment"] = pa.array(segments, _MAP_TEXT)
    for name, values in numeric.items():
        columns[name] = pa.array(values, pa.float64())
    for name, values in text.items():
        columns[name] = pa.array(values, pa.string())
    return pa.table(columns), used


def labels_table(labels: list[LabelEvent], sources: list[tuple[str, int, int]]) -> pa.Table:
    label_num = [NAN] * len(labels)
    label_cat: list[str | None] = [None] * len(labels)
    for i, label in enumerate(labels):
        value = label.label
        if type(value) is float:
            label_num[i] = value
        elif type(value) is bool:
            label_num[i] = 1.0 if value else 0.0
            label_cat[i] = "true" if value else "false"
        else:
            label_cat[i] = value
    return pa.table(
        {
            "model": pa.array([x.model for x in labels], pa.string()),
            "event_id": pa.array([x.event_id for x in labels], pa.string()),
            "label_num": pa.array(label_num, pa.float64()),
            "label_cat": pa.array(label_cat, pa.string()),
            "ts": pa.array([x.ts_ms for x in labels], pa.int64()).cast(_TS),
            "source": pa.array([s[0] for s in sources], pa.string()),
            "source_partition": pa.array([s[1] for s in sources], pa.int32()),
            "source_offset": pa.array([s[2] for s in sources], pa.int64()),
        }
    )


def dead_letters_table(letters: list[DeadLetter]) -> pa.Table:
    return pa.table(
        {
            "received_at": pa.array([d.received_ms for d in letters], pa.int64()).cast(_TS),
            "topic": pa.array([d.topic for d in letters], pa.string()),
            "partition": pa.array([d.partition for d in letters], pa.int32()),
            "offset": pa.array([d.offset for d in letters], pa.int64()),
            "raw": pa.array([d.raw for d in letters], pa.binary()),
            "reason": pa.array([d.reason for d in letters], pa.string()),
            "error_kind": pa.array([d.kind for d in letters], pa.string()),
            "model": pa.array([d.model for d in letters], pa.string()),
        }
    )


class BatchWriter:
    """Writes batches; retries a failed write with exponential backoff and jitter, then gives up loudly.

    Raw prediction messages (``batch.raw_predictions``, from Kafka) take the ClickHouse fast path of
    :mod:`monitor.ingest.fastpath`; what it does not vouch for is validated here in Python, like the
    already-decoded events, labels and dead letters of the batch.

    ``insert`` is the storage boundary (``Storage.insert_arrow`` by default); tests replace it with a
    wrapper that fails for a while to prove nothing is committed early and nothing is lost.
    """

    def __init__(
        self,
        storage: Storage,
        retries: int = 8,
        max_backoff_s: float = 30.0,
        insert: Callable[[str, pa.Table], None] | None = None,
        max_message_bytes: int = 1_000_000,
    ) -> None:
        self._storage = storage
        self._features = FeatureColumns(storage)
        self._retries = retries
        self._max_backoff_s = max_backoff_s
        self._insert = insert or self._insert_one_thread
        self._max_bytes = max_message_bytes
        self._fast: FastPredictionPath | None = None

    def _insert_one_thread(self, table: str, data: pa.Table) -> None:
        # Measured: one thread is ~1.5x faster for consumer-sized batches and leaves the other core
        # to the poll loop.
        self._storage.insert_arrow(table, data, settings=ONE_THREAD)

    def write(self, batch: Batch) -> None:
        """Store everything in ``batch`` or raise :class:`StorageError` after the last retry."""
        if not (batch.raw_predictions or batch.events or batch.labels or batch.dead_letters):
            return
        started = time.monotonic()
        retrying = Retrying(
            retry=retry_if_exception_type(StorageError),
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential_jitter(multiplier=0.2, max=self._max_backoff_s, jitter=min(1.0, self._max_backoff_s)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                stored, letters = self._write_once(batch)
        metrics.INSERT_BATCH_SECONDS.observe(time.monotonic() - started)
        batch.stored_per_model = stored
        batch.dead_letter_count = len(letters)
        for model, count in stored.items():
            metrics.EVENTS_INGESTED.labels(model=model).inc(count)
        for label in batch.labels:
            metrics.LABELS_INGESTED.labels(model=label.model).inc()
        for letter in letters:
            metrics.DEAD_LETTERS.labels(topic=letter.topic, kind=letter.kind).inc()

    def close(self) -> None:
        """Drop the fast path's staging table (it holds nothing between batches)."""
        if self._fast is not None:
            self._fast.close()
            self._fast = None

    def _write_once(self, batch: Batch) -> tuple[dict[str, int], list[DeadLetter]]:
        events, sources, letters = batch.events, batch.event_sources, batch.dead_letters
        stored: dict[str, int] = {}
        if batch.raw_predictions:
            stored, deferred = self._fast_path(batch)
            more_events, more_sources, more_letters = self._validate_deferred(batch, deferred)
            events, sources, letters = events + more_events, sources + more_sources, letters + more_letters
        if letters:
            self._insert("dead_letters", dead_letters_table(letters))
        if events:
            table, used = events_table(events, sources)
            self._features.ensure(used)
            self._insert("events", table)
            for event in events:
                stored[event.model] = stored.get(event.model, 0) + 1
        if batch.labels:
            self._insert("labels", labels_table(batch.labels, batch.label_sources))
        return stored, letters

    def _fast_path(self, batch: Batch) -> tuple[dict[str, int], list[int]]:
        if self._fast is None:
            self._fast = FastPredictionPath(self._storage, self._max_bytes)
        fast = self._fast
        fast.stage(batch.raw_predictions, batch.raw_sources, self._insert)
        outcome = fast.survey()
        if outcome.stored_per_model:
            self._features.ensure(outcome.features)
            fast.insert_events(outcome.features)
        return dict(outcome.stored_per_model), outcome.deferred

    def _validate_deferred(
        self, batch: Batch, deferred: list[int]
    ) -> tuple[list[PredictionEvent], list[tuple[str, int, int]], list[DeadLetter]]:
        """The authoritative Python validator for what ClickHouse did not vouch for."""
        events: list[PredictionEvent] = []
        sources: list[tuple[str, int, int]] = []
        letters: list[DeadLetter] = []
        now_ms = int(time.time() * 1000)
        for idx in deferred:
            raw, source = batch.raw_predictions[idx], batch.raw_sources[idx]
            try:
                events.append(parse_prediction(raw, self._max_bytes))
                sources.append(source)
            except InvalidMessage as exc:
                letters.append(DeadLetter(*source, raw, exc.reason, exc.kind, now_ms, model_hint(raw, self._max_bytes)))
        return events, sources, letters

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        metrics.INSERT_RETRIES.inc()
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("insert failed, retrying", attempt=state.attempt_number, retry_in_s=round(wait, 2), error=str(exc))
