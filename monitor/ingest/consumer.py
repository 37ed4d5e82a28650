"""The Kafka consumer: decode → batch (size or time) → store → commit, at least once, nothing lost.

Shape borrowed from Sentry's arroyo: offsets travel with the data and the commit is the last step,
issued only after :class:`~monitor.ingest.writer.BatchWriter` returned. A crash anywhere before the
commit means Kafka redelivers; the tables' replacing keys make the second copy collapse, so the
effect is exactly once. Work in flight is bounded by one batch: the loop does not poll while a batch
is being written. A rebalance commits what was stored before giving partitions up; SIGTERM (the
caller sets ``stop``) stores what the consumer holds and commits it before exiting. When ClickHouse stays down past the
writer's retries the consumer stops loudly without committing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition

from monitor import metrics
from monitor.errors import BrokerError
from monitor.ingest.batch import Batch, DeadLetter
from monitor.ingest.limits import IngestPolicy
from monitor.ingest.validation import InvalidMessage, decode_json_object, model_hint, validate_label
from monitor.ingest.writer import BatchWriter
from monitor.kafka_security import bootstrap_failures, failure_reason, kafka_client_kwargs
from monitor.logs import get_logger
from monitor.settings import KafkaSettings
from monitor.storage import Storage

log = get_logger(__name__)

PROGRESS_EVERY_S = 10.0
# What one fetch may bring: a full batch takes a few round trips, and kafka-python's buffers (a
# fetch in hand and the next one prefetched) stay a small part of the consumer's memory; larger
# fetches were no faster end to end (BENCHMARKS.md). A record larger than these still arrives.
FETCH_MAX_BYTES = 4 * 1024 * 1024
MAX_PARTITION_FETCH_BYTES = 1024 * 1024


@dataclass
class IngestStats:
    """Counters of one consumer run."""

    messages: int = 0
    events: int = 0
    labels: int = 0
    dead_letters: int = 0
    batches: int = 0
    seconds: float = 0.0
    # From the first message received to the end (excludes joining the group): the rate to compare
    # with a bare consumer's.
    active_seconds: float = 0.0

    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def ensure_topics(settings: KafkaSettings) -> None:
    """Create the predictions and labels topics if they do not exist (idempotent)."""
    try:
        with bootstrap_failures() as failures:
            admin = KafkaAdminClient(**kafka_client_kwargs(settings), client_id="monitor-admin")
    except (KafkaError, OSError) as exc:
        known = failure_reason(settings, failures)
        reason = f"{known} (then gave up: {exc})" if known else str(exc)
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap}: {reason}") from exc
    try:
        existing = set(admin.list_topics())
        wanted = [settings.predictions_topic, settings.labels_topic]
        new = [NewTopic(t, settings.partitions, 1) for t in wanted if t not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently by another replica
                admin.create_topics(new)
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {settings.bootstrap}: {exc}") from exc
    finally:
        admin.close()


def _wait_for_metadata(consumer: KafkaConsumer, topics: list[str], timeout_s: float = 30.0) -> None:
    """Wait until the broker's metadata lists the topics' partitions.

    A topic created a moment ago may be missing from the first metadata response; a group joined then
    is assigned no partitions until the next metadata refresh, so the consumer would idle for minutes.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(consumer.partitions_for_topic(topic) for topic in topics):
            return
        time.sleep(0.2)
    raise BrokerError(f"topics {', '.join(topics)} did not appear in the broker's metadata within {timeout_s:.0f} s")


def _recover_lost_assignment(consumer: KafkaConsumer) -> None:
    """Work around a kafka-python 3.0 race that can leave a consumer with no partitions for good.

    When ``poll()`` times out while a group join it started is still in flight, and that join was
    triggered by a metadata change, the finished join can satisfy ``need_rejoin()`` before its result
    is applied: the member stays in the group, owns its partitions on the broker, and fetches nothing.
    A finished join task that was never consumed is the sign; asking to rejoin applies a fresh one.
    (Private attributes, read defensively: on another client version this is a no-op.)
    """
    if consumer.assignment():
        return
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    if coordinator is None or task is None or not getattr(task, "is_done", False):
        return
    if not coordinator.need_rejoin():
        log.warning("group join finished outside poll() and was never applied; rejoining")
        coordinator.request_rejoin()


class _CommitOnRevoke(AsyncConsumerRebalanceListener):
    """Commits what is already stored before partitions move to another consumer.

    Batches still being written are not waited for: their messages are redelivered to the next owner
    and collapse with the stored copy (every table is keyed for that). Keeping the callback short
    matters: kafka-python 3 runs it on its network thread inside ``poll()``, and a callback that
    outlives the poll's timeout can lose the next assignment.
    """

    def __init__(self, owner: IngestConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        owner = self._owner
        owner.in_group = False  # a rebalance has begun: the idle clock waits for its assignment
        if not revoked or owner.failed or owner.consumer is None:
            return
        owner.collect_finished()
        offsets = owner.take_pending_commit()
        log.info("partitions revoked", partitions=len(revoked), committing=len(offsets))
        if offsets:
            try:
                await owner.consumer.commit_async(offsets)
            except KafkaError as exc:  # stored anyway: the next owner re-reads, FINAL collapses duplicates
                log.warning("offset commit on rebalance failed; the batch is stored", error=str(exc))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owner.in_group = True
        log.info("partitions assigned", partitions=sorted(f"{tp.topic}-{tp.partition}" for tp in assigned))


class IngestConsumer:
    """Consumes predictions and labels into ClickHouse. One instance per thread; not reentrant."""

    def __init__(
        self,
        kafka: KafkaSettings,
        storage: Storage,
        writer: BatchWriter | None = None,
        retries: int = 8,
        progress: Callable[[IngestStats], None] | None = None,
        policy: IngestPolicy | None = None,
    ) -> None:
        self._kafka = kafka
        self._policy = policy or IngestPolicy(max_message_bytes=kafka.max_message_bytes)
        self._writer = writer or BatchWriter(storage, retries=retries, policy=self._policy)
        self._batch = Batch()
        # One batch is written in a background thread (ClickHouse works outside the GIL) while the
        # next one is polled; never more, so memory stays bounded when ClickHouse is slow.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._inflight: tuple[Batch, Future[None], float] | None = None
        self._schema: Future[int] | None = None  # typed columns being added while idle
        self._taken = 0
        self.consumer: KafkaConsumer | None = None
        self._pending_commit: dict[TopicPartition, OffsetAndMetadata] = {}
        self._progress = progress
        self.stats = IngestStats()
        self.failed = False  # set when storing failed for good: nothing more is flushed or committed
        # True once the group has given this consumer its partitions (possibly none), False again while a
        # rebalance is under way: the idle timeout counts only time spent in the group.
        self.in_group = False

    # ------------------------------------------------------------------ lifecycle

    def _connect(self) -> KafkaConsumer:
        ensure_topics(self._kafka)
        k = self._kafka
        try:
            consumer = KafkaConsumer(
                **kafka_client_kwargs(k),
                group_id=k.group_id,
                client_id=f"monitor-ingest-{k.group_id}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a new group starts from the beginning: nothing skipped
                max_poll_records=k.max_poll_records,
                fetch_max_bytes=FETCH_MAX_BYTES,
                max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
                session_timeout_ms=k.session_timeout_ms,
                heartbeat_interval_ms=max(1000, k.session_timeout_ms // 3),
                metadata_max_age_ms=30_000,  # notice new partitions within half a minute
                reconnect_backoff_max_ms=5_000,  # resume within seconds of a broker restart
            )
        except (KafkaError, OSError) as exc:
            raise BrokerError(f"cannot reach Kafka at {k.bootstrap}: {exc}") from exc
        topics = [k.predictions_topic, k.labels_topic]
        consumer.subscribe(topics, listener=_CommitOnRevoke(self))
        # The first join must see the topics' partitions, or it is followed at once by a rebalance.
        _wait_for_metadata(consumer, topics)
        return consumer

    def run(
        self,
        stop: threading.Event | None = None,
        max_messages: int | None = None,
        idle_timeout: float | None = None,
    ) -> IngestStats:
        """Consume until ``stop`` is set, ``max_messages`` were handled, or ``idle_timeout`` seconds pass
        without a message once the group has assigned this consumer its partitions (time spent joining
        or rebalancing does not count). Always flushes and commits what it holds before returning."""
        stop = stop or threading.Event()
        self.consumer = self._connect()
        started = last_message = last_progress = time.monotonic()
        first_message: float | None = None
        k = self._kafka
        try:
            while not stop.is_set():
                room = None if max_messages is None else max_messages - self._taken
                if room is not None and room <= 0:
                    break
                # Never a very short poll: a rebalance completes inside poll() and needs the time.
                wait_ms = max(100, int((k.batch_max_seconds - self._batch.age()) * 1000)) if self._batch else 500
                records = self.consumer.poll(
                    timeout_ms=min(wait_ms, 500), max_records=min(room or k.max_poll_records, k.max_poll_records)
                )
                now = time.monotonic()
                if records:
                    last_message = now
                    first_message = first_message or now
                    self._take(records)
                else:
                    _recover_lost_assignment(self.consumer)
                self._collect(block=False)
                if (
                    len(self._batch) >= k.batch_max_messages
                    or self._batch.bytes >= self._policy.limits.batch_max_bytes
                    or (self._batch and self._batch.age() >= k.batch_max_seconds)
                ):
                    self._submit()
                self._commit()
                if not records and not self._batch and self._inflight is None:
                    self._add_typed_columns_while_idle()
                if not self.in_group:
                    # Joining can take up to the session timeout (a crashed consumer's membership
                    # lapses only then), and until then no message can arrive: not idleness.
                    last_message = now
                if idle_timeout is not None and now - last_message >= idle_timeout:
                    log.info("idle timeout reached", idle_s=idle_timeout)
                    break
                if now - last_progress >= PROGRESS_EVERY_S:
                    self.stats.seconds = now - started
                    self._report_progress()
                    last_progress = now
            self.flush()
        finally:
            ended = time.monotonic()
            self.stats.seconds = ended - started
            self.stats.active_seconds = ended - first_message if first_message else 0.0
            self._close()
        return self.stats

    def _add_typed_columns_while_idle(self) -> None:
        """With nothing to store, let the writer thread add typed columns still queued, one time budget
        at a time (each batch spends only one budget on them, so a burst of new features leaves some).

        Off the insert path as after a batch: a batch arriving meanwhile waits at most one budget
        (``ingest.schema_seconds_per_batch``). Readers do not depend on it: a feature without a typed
        column is read from the maps.
        """
        if self._schema is not None and not self._schema.done():
            return
        self._schema = None
        if self._writer.typed_columns_waiting:
            self._schema = self._executor.submit(self._writer.add_typed_columns)

    def _close(self) -> None:
        self._executor.shutdown(wait=True)
        self._writer.close()
        if self.consumer is not None:
            try:
                self.consumer.close(autocommit=False)
            except KafkaError as exc:  # closing must not hide the real outcome
                log.warning("closing the Kafka consumer failed", error=str(exc))
            self.consumer = None

    # ------------------------------------------------------------------ decoding

    def _take(self, records: dict[TopicPartition, list]) -> None:
        """Collect a poll's messages: predictions stay raw bytes for ClickHouse; labels are decoded here."""
        k = self._kafka
        batch = self._batch
        raws, raw_sources = batch.raw_predictions, batch.raw_sources
        for tp, messages in records.items():
            topic, partition = tp.topic, tp.partition
            if topic == k.labels_topic:
                self._take_labels(topic, partition, messages)
            else:
                for message in messages:
                    value = message.value if message.value is not None else b""
                    raws.append(value)
                    raw_sources.append((topic, partition, message.offset))
                    batch.bytes += len(value)
            batch.messages += len(messages)
            self._taken += len(messages)
            if messages:
                batch.next_offsets[(topic, partition)] = messages[-1].offset + 1

    def _take_labels(self, topic: str, partition: int, messages: list) -> None:
        batch = self._batch
        max_bytes = self._kafka.max_message_bytes
        for message in messages:
            raw = message.value if message.value is not None else b""
            batch.bytes += len(raw)
            try:
                label = validate_label(decode_json_object(raw, max_bytes), message.timestamp)
                refused = self._policy.unconfigured(label.model)
                if refused is not None:
                    raise refused
                batch.labels.append(label)
                batch.label_sources.append((topic, partition, message.offset))
            except InvalidMessage as exc:
                batch.dead_letters.append(
                    DeadLetter(
                        topic,
                        partition,
                        message.offset,
                        raw,
                        exc.reason,
                        exc.kind,
                        int(time.time() * 1000),
                        model_hint(raw, max_bytes),
                    )
                )

    # ------------------------------------------------------------------ store + commit

    def flush(self) -> None:
        """Store everything held (in flight and current), then commit. For shutdown."""
        self.store_all()
        self._commit()

    def store_all(self) -> None:
        """Wait for the batch in flight and store the current one; their offsets await a commit."""
        self._collect(block=True)
        self._submit()
        self._collect(block=True)

    def collect_finished(self) -> None:
        """Account for the batch in flight if it is already stored (never waits)."""
        self._collect(block=False)

    def take_pending_commit(self) -> dict[TopicPartition, OffsetAndMetadata]:
        offsets, self._pending_commit = self._pending_commit, {}
        return offsets

    def _submit(self) -> None:
        """Hand the current batch to the writer thread, first waiting for the one before it."""
        if not self._batch.messages:
            return
        self._collect(block=True)
        batch, self._batch = self._batch, Batch()
        self._inflight = (batch, self._executor.submit(self._writer.write, batch), time.monotonic())

    def _collect(self, block: bool) -> None:
        """If the batch in flight is stored, count it and queue its offsets for commit.

        Raises (and marks the consumer failed) if storing failed after the writer's retries.
        """
        if self._inflight is None:
            return
        batch, future, started = self._inflight
        if not block and not future.done():
            return
        try:
            future.result()
        except BaseException:
            self.failed = True
            self._inflight = None
            raise
        self._inflight = None
        stored = sum(batch.stored_per_model.values())
        self.stats.messages += batch.messages
        self.stats.events += stored
        self.stats.labels += len(batch.labels)
        self.stats.dead_letters += batch.dead_letter_count
        self.stats.batches += 1
        for (topic, partition), offset in batch.next_offsets.items():
            self._pending_commit[TopicPartition(topic, partition)] = OffsetAndMetadata(offset, "", -1)
        log.debug(
            "batch stored",
            messages=batch.messages,
            events=stored,
            labels=len(batch.labels),
            dead_letters=batch.dead_letter_count,
            seconds=round(time.monotonic() - started, 3),
        )

    def _commit(self) -> None:
        """Commit stored offsets; on failure keep them for the next flush (the data is already stored)."""
        if not self._pending_commit or self.consumer is None:
            return
        # Partitions handed to another consumer meanwhile are theirs to commit; ours were stored, so
        # at worst they are read twice and collapse.
        assigned = self.consumer.assignment()
        offsets = {tp: meta for tp, meta in self._pending_commit.items() if tp in assigned}
        self._pending_commit = dict(offsets)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group moved on (rebalance): the new owner re-reads from the last commit; the stored
            # rows collapse with the redelivered ones. Nothing to retry.
            log.warning("offset commit rejected after a rebalance; the batch is stored", error=str(exc))
            self._pending_commit.clear()
            return
        except KafkaError as exc:
            log.warning("offset commit failed; will retry with the next batch", error=str(exc))
            return
        for tp in offsets:
            if self._pending_commit.get(tp) == offsets[tp]:
                del self._pending_commit[tp]
        self._update_lag(offsets)

    def _update_lag(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if self.consumer is None:
            return
        for tp, committed in offsets.items():
            high = self.consumer.highwater(tp)
            if high is not None:
                metrics.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, high - committed.offset)
                )

    def _report_progress(self) -> None:
        s = self.stats
        log.info(
            "ingest progress",
            messages=s.messages,
            events=s.events,
            labels=s.labels,
            dead_letters=s.dead_letters,
            rate_per_s=round(s.rate()),
        )
        if self._progress:
            self._progress(s)
