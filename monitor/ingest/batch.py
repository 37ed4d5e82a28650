"""A consumer batch: validated events, labels and dead letters, plus the offsets they came from.

Offsets travel with the data: the consumer commits ``next_offsets`` only after
:class:`~monitor.ingest.writer.BatchWriter` has stored everything in the batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from monitor.ingest.validation import LabelEvent, PredictionEvent


@dataclass(slots=True)
class DeadLetter:
    """A message that could not be stored as an event or label, kept with its exact bytes."""

    topic: str
    partition: int
    offset: int
    raw: bytes
    reason: str
    kind: str
    received_ms: int
    model: str = ""


@dataclass
class Batch:
    """What one flush stores. ``*_sources`` parallel their lists with (topic, partition, offset).

    ``raw_predictions`` are undecoded Kafka messages for the ClickHouse fast path; ``events`` are
    already validated (HTTP ingest, or messages the fast path handed back).
    """

    raw_predictions: list[bytes] = field(default_factory=list)
    raw_sources: list[tuple[str, int, int]] = field(default_factory=list)
    events: list[PredictionEvent] = field(default_factory=list)
    event_sources: list[tuple[str, int, int]] = field(default_factory=list)
    labels: list[LabelEvent] = field(default_factory=list)
    label_sources: list[tuple[str, int, int]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    messages: int = 0
    bytes: int = 0  # message bytes held (the consumer flushes at ingest.batch_max_bytes)
    started: float = field(default_factory=time.monotonic)
    # Filled in by the writer once stored (raw predictions are only counted after ClickHouse parsed them).
    stored_per_model: dict[str, int] = field(default_factory=dict)
    dead_letter_count: int = 0

    def __len__(self) -> int:
        return self.messages

    def age(self) -> float:
        return time.monotonic() - self.started
