"""Ingesting messages that arrive outside Kafka (the HTTP API): same validation, same dead letters.

Each payload is one JSON message, exactly as it would be on the topic. Rejected payloads are kept in
``dead_letters`` with topic ``http:predictions`` / ``http:labels``, partition -1 and a unique
sequence number as offset, so nothing sent over HTTP is dropped silently either.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from monitor.ingest.batch import Batch, DeadLetter
from monitor.ingest.limits import check_event
from monitor.ingest.validation import InvalidMessage, parse_label, parse_prediction
from monitor.ingest.writer import BatchWriter

MessageKind = Literal["prediction", "label"]

# Unique within a process and increasing across restarts: nanoseconds at start plus a counter.
_sequence = itertools.count(time.time_ns())


@dataclass
class Rejection:
    index: int
    kind: str
    reason: str


@dataclass
class HttpIngestResult:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def ingest_messages(
    writer: BatchWriter,
    payloads: Iterable[bytes],
    kind: MessageKind = "prediction",
    max_bytes: int = 1_000_000,
) -> HttpIngestResult:
    """Validate and store every payload; return how many were accepted and why the others were not."""
    batch = Batch()
    result = HttpIngestResult()
    topic = f"http:{'predictions' if kind == 'prediction' else 'labels'}"
    now_ms = int(time.time() * 1000)
    for index, raw in enumerate(payloads):
        offset = next(_sequence)
        try:
            if kind == "prediction":
                event = parse_prediction(raw, max_bytes)
                check_event(event, writer.policy.limits)
                batch.events.append(event)
                batch.event_sources.append((topic, -1, offset))
            else:
                batch.labels.append(parse_label(raw, max_bytes, received_ms=now_ms))
                batch.label_sources.append((topic, -1, offset))
            result.accepted += 1
        except InvalidMessage as exc:
            batch.dead_letters.append(DeadLetter(topic, -1, offset, raw, exc.reason, exc.kind, now_ms))
            result.rejected.append(Rejection(index, exc.kind, exc.reason))
        batch.messages += 1
    writer.write(batch)
    return result
