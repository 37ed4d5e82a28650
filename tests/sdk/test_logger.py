"""The light SDK's PredictionLogger against the real broker: delivery, batches, frames, failures, fork."""

from __future__ import annotations

import enum
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError

from monitor.kafka_local.broker import BrokerSpec
from monitor.ports import free_port
from monitor_sdk import (
    FlushTimeoutError,
    ForkedLoggerError,
    InvalidMessage,
    LoggerClosedError,
    PredictionLogger,
    QueueFullError,
    Record,
)
from tests.sdk.topics import read_topic, topics

pytestmark = pytest.mark.kafka


class Errors:
    """An on_error callback that remembers what it was given (called from the SDK's threads)."""

    def __init__(self) -> None:
        self.items: list[tuple[BaseException, Record]] = []
        self._lock = threading.Lock()

    def __call__(self, error: BaseException, record: Record) -> None:
        with self._lock:
            self.items.append((error, record))

    @property
    def ids(self) -> list[str]:
        return [record.event_id for _, record in self.items]


def unreachable() -> str:
    return f"127.0.0.1:{free_port()}"


def test_events_batches_and_labels_arrive_keyed_by_model_and_event(kafka_bootstrap: str) -> None:
    predictions, labels = topics(kafka_bootstrap)
    errors = Errors()
    with PredictionLogger(
        "fraud", kafka_bootstrap, "3", predictions, labels, on_error=errors, compression_type="gzip"
    ) as logger:
        with pytest.raises(InvalidMessage, match=r"record 2: field 'features\.v' must be"):
            logger.log_many(
                [{"features": {"v": 1.0}, "prediction": 0.1}] * 2 + [{"features": {"v": [1]}, "prediction": 0}]
            )
        with pytest.raises(InvalidMessage, match=r"record 0: unknown keys \['label'\]"):
            logger.log_many([{"features": {}, "prediction": 1.0, "label": 1}])
        assert logger.pending == 0  # an invalid batch sends nothing at all
        one = logger.log({"amount": np.float64(1.5), "n": np.int64(2), "gap": float("nan")}, prediction=0.5)
        many = logger.log_many(
            {"features": {"amount": float(i)}, "prediction": i / 10, "event_id": f"b{i}", "model_version": "4"}
            for i in range(5)
        )
        logger.log_label(one, label=1)
    assert many == [f"b{i}" for i in range(5)] and errors.items == []

    events = {value["event_id"]: (key, value) for key, value in read_topic(kafka_bootstrap, predictions, 6)}
    assert sorted(events) == sorted([one, *many])  # exactly these six: the invalid batches sent nothing
    key, first = events[one]
    assert key == f"fraud:{one}".encode()
    assert first["features"] == {"amount": 1.5, "n": 2.0, "gap": None}  # NaN is a missing value
    assert first["model_version"] == "3" and first["prediction"] == 0.5 and first["timestamp"].endswith("Z")
    assert events["b3"] == (b"fraud:b3", events["b3"][1]) and events["b3"][1]["model_version"] == "4"
    assert events["b3"][1]["features"] == {"amount": 3.0} and events["b3"][1]["prediction"] == 0.3
    [(label_key, label)] = read_topic(kafka_bootstrap, labels, 1)
    assert label_key == f"fraud:{one}".encode() and label["label"] == 1.0 and label["model"] == "fraud"


class Plan(enum.StrEnum):
    GOLD = "gold"


class Tier(enum.IntEnum):
    TOP = 3


class Channel(str, enum.Enum):  # noqa: UP042 - the older spelling, whose str() is "Channel.WEB"
    WEB = "web"


def test_subclasses_of_str_int_and_float_are_logged_as_their_plain_values(kafka_bootstrap: str) -> None:
    predictions, labels = topics(kafka_bootstrap)
    countries = np.array(["DE", "FR"])
    with PredictionLogger("subclass", kafka_bootstrap, predictions_topic=predictions, labels_topic=labels) as logger:
        logger.log(
            {"country": countries[0], "plan": Plan.GOLD, "tier": Tier.TOP, "channel": Channel.WEB},
            prediction=Plan.GOLD,
            segment={"region": np.str_("eu"), "plan": Plan.GOLD, "channel": Channel.WEB},
            probabilities={"gold": np.float64(0.25), "top": Tier.TOP},
            event_id="sub-1",
        )
        logger.log_label("sub-1", label=Tier.TOP)
    [(_, event)] = read_topic(kafka_bootstrap, predictions, 1)
    assert event["features"] == {"country": "DE", "plan": "gold", "tier": 3.0, "channel": "web"}
    assert event["segment"] == {"region": "eu", "plan": "gold", "channel": "web"} and event["prediction"] == "gold"
    assert event["probabilities"] == {"gold": 0.25, "top": 3.0}
    assert [label["label"] for _, label in read_topic(kafka_bootstrap, labels, 1)] == [3.0]


def test_pandas_missing_values_are_null_and_a_series_row_is_a_mapping(kafka_bootstrap: str) -> None:
    predictions, labels = topics(kafka_bootstrap)
    frame = pd.DataFrame({"amount": [1.5, np.nan], "country": ["DE", None], "n": pd.array([2, None], dtype="Int64")})
    with PredictionLogger("pdna", kafka_bootstrap, predictions_topic=predictions, labels_topic=labels) as logger:
        logger.log({"na": pd.NA, "nat": pd.NaT, "nan": np.nan}, prediction=0.1, event_id="na", timestamp=pd.NaT)
        logger.log(frame.iloc[0], 0.2, event_id="row-0")
        logger.log_many([{"features": frame.iloc[1], "prediction": 0.3, "event_id": "row-1"}])
        with pytest.raises(InvalidMessage, match=r"got DataFrame: log a DataFrame with log_dataframe\(\)"):
            logger.log(frame, 0.4)
        with pytest.raises(InvalidMessage, match=r"'features' must be a mapping or a pandas Series, got list"):
            logger.log([1.0, 2.0], 0.4)  # type: ignore[arg-type]
        with pytest.raises(InvalidMessage, match=r"field 'prediction' must be a number or string, got null"):
            logger.log({"a": 1.0}, prediction=pd.NA)  # type: ignore[arg-type]
    events = {value["event_id"]: value for _, value in read_topic(kafka_bootstrap, predictions, 3)}
    assert sorted(events) == ["na", "row-0", "row-1"]
    assert events["na"]["features"] == {"na": None, "nat": None, "nan": None}  # as in log_dataframe
    assert events["row-0"]["features"] == {"amount": 1.5, "country": "DE", "n": 2.0}
    assert events["row-1"]["features"] == {"amount": None, "country": None, "n": None}
    stamp = datetime.fromisoformat(events["na"]["timestamp"])  # NaT: now, as a missing timestamp is
    assert abs((datetime.now(tz=UTC) - stamp).total_seconds()) < 60


def test_a_dataframe_is_logged_row_by_row(kafka_bootstrap: str) -> None:
    predictions, labels = topics(kafka_bootstrap)
    frame = pd.DataFrame(
        {
            "amount": [1.0, np.nan, 3.0],
            "count": np.array([1, 2, 3], dtype="int64"),
            "country": ["DE", None, "FR"],
            "new_user": [True, False, True],
            "score": [0.1, 0.2, 0.3],
            "id": ["d0", "d1", "d2"],
            "ts": pd.to_datetime(["2026-11-27T10:00:00.250Z", "2026-11-27T10:00:01.000Z", "2026-11-27T10:00:02.000Z"]),
            "p_yes": [0.1, 0.2, 0.3],
            "region": ["eu", "us", None],
        }
    )
    with PredictionLogger("frames", kafka_bootstrap, predictions_topic=predictions, labels_topic=labels) as logger:
        ids = logger.log_dataframe(
            frame,
            prediction_column="score",
            event_id_column="id",
            timestamp_column="ts",
            probability_columns={"yes": "p_yes"},
            segment_columns=["region"],
        )
        subset = logger.log_dataframe(frame.assign(id=["s0", "s1", "s2"]), ["amount"], "score", event_id_column="id")
        with pytest.raises(KeyError, match="nope"):
            logger.log_dataframe(frame, ["nope"], "score")
        with pytest.raises(InvalidMessage, match=r"record 1: field 'prediction'"):
            logger.log_dataframe(frame.assign(score=[0.1, None, 0.3]), ["amount"], "score")
        with pytest.raises(InvalidMessage, match="timezone-aware"):
            logger.log_dataframe(
                frame.assign(ts=pd.to_datetime(["2026-11-27"] * 3)), ["amount"], "score", timestamp_column="ts"
            )
    assert ids == ["d0", "d1", "d2"] and subset == ["s0", "s1", "s2"]

    events = {value["event_id"]: value for _, value in read_topic(kafka_bootstrap, predictions, 6)}
    assert sorted(events) == ["d0", "d1", "d2", "s0", "s1", "s2"]
    assert events["d0"]["features"] == {"amount": 1.0, "count": 1.0, "country": "DE", "new_user": True}
    assert events["d1"]["features"] == {"amount": None, "count": 2.0, "country": None, "new_user": False}
    assert events["d0"]["timestamp"] == "2026-11-27T10:00:00.250Z" and events["d0"]["prediction"] == 0.1
    assert events["d1"]["probabilities"] == {"yes": 0.2} and events["d1"]["segment"] == {"region": "us"}
    assert events["d2"]["segment"] == {}  # a missing segment value is left out
    assert events["s1"]["features"] == {"amount": None} and "probabilities" not in events["s1"]


def test_a_failed_send_goes_to_on_error_and_the_rest_arrive(kafka_bootstrap: str) -> None:
    predictions, labels = topics(kafka_bootstrap)
    errors = Errors()
    with PredictionLogger(
        "big",
        kafka_bootstrap,
        predictions_topic=predictions,
        labels_topic=labels,
        on_error=errors,
        max_request_size=2000,
    ) as logger:
        logger.log({"a": 1.0}, prediction=0.1, event_id="small-1")
        logger.log({"text": "x" * 5000}, prediction=0.1, event_id="too-large")
        logger.log({"a": 2.0}, prediction=0.2, event_id="small-2")
        logger.flush(timeout=30)
        assert logger.pending == 0 and logger.failed == 1
    [(error, record)] = errors.items
    assert isinstance(error, MessageSizeTooLargeError)
    assert record.event_id == "too-large" and record.topic == predictions and record.key == b"big:too-large"
    assert b'"text":"xxx' in record.value  # the application gets the bytes back, to keep or resend
    received = sorted(value["event_id"] for _, value in read_topic(kafka_bootstrap, predictions, 2))
    assert received == ["small-1", "small-2"]


def test_without_a_callback_a_failed_send_is_logged(kafka_bootstrap: str, caplog: pytest.LogCaptureFixture) -> None:
    predictions, _ = topics(kafka_bootstrap)
    with (
        caplog.at_level(logging.ERROR, logger="monitor_sdk"),
        PredictionLogger("big", kafka_bootstrap, predictions_topic=predictions, max_request_size=2000) as logger,
    ):
        logger.log({"text": "x" * 5000}, prediction=0.1, event_id="too-large")
        logger.flush(timeout=30)
    [entry] = [r for r in caplog.records if r.name == "monitor_sdk"]
    assert "big:too-large" in entry.getMessage() and "MessageSizeTooLargeError" in entry.getMessage()
    assert "xxxx" not in entry.getMessage()  # the event's content is not written to the log


def test_without_a_callback_a_full_queue_is_logged_once_per_interval_not_per_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused record is reported inside log(), on the serving thread: a line per record meant a
    broker outage wrote one ERROR line per request, through whatever I/O the app's handlers do."""
    with caplog.at_level(logging.ERROR, logger="monitor_sdk"):
        logger = PredictionLogger("flood", unreachable(), max_queue=1, bootstrap_timeout_ms=5000)
        for i in range(500):
            logger.log({"a": float(i)}, prediction=0.5, event_id=f"flood-{i}")
        during = [r.getMessage() for r in caplog.records if r.name == "monitor_sdk"]
        logger.close(timeout=0.5)
    lines = [r.getMessage() for r in caplog.records if r.name == "monitor_sdk" and "QueueFullError" in r.getMessage()]
    assert len(during) == 1 and "flood:flood-" in during[0]  # the first refusal, at once, with its key
    refused = sum(int(line.split(" records refused")[0].rsplit(" ", 1)[1]) for line in lines)
    assert len(lines) == 2 and refused == logger.failed - 1  # the rest summed up at close; one was queued


def test_an_unreachable_broker_never_blocks_the_caller_and_every_record_is_reported() -> None:
    errors = Errors()
    logger = PredictionLogger("down", unreachable(), on_error=errors, bootstrap_timeout_ms=1000)
    started = time.monotonic()
    ids = [logger.log({"a": float(i)}, prediction=0.5) for i in range(20)]
    logger.log_label(ids[0], label=0)
    assert time.monotonic() - started < 0.5  # kafka-python alone would block ~1 s in its constructor
    logger.flush(timeout=30)
    assert sorted(errors.ids) == sorted([*ids, ids[0]]) and logger.failed == 21
    assert all(isinstance(error, KafkaError) for error, _ in errors.items)
    logger.close(timeout=5)
    with pytest.raises(LoggerClosedError):
        logger.log({"a": 1.0}, prediction=0.5)


def test_a_full_queue_reports_instead_of_growing() -> None:
    errors = Errors()
    logger = PredictionLogger("down", unreachable(), on_error=errors, max_queue=2, bootstrap_timeout_ms=1000)
    ids = [logger.log({"a": float(i)}, prediction=0.5) for i in range(10)]
    full = [record.event_id for error, record in errors.items if isinstance(error, QueueFullError)]
    assert len(full) >= 6  # at most 2 queued plus the batch the thread holds
    logger.flush(timeout=30)
    assert sorted(errors.ids) == sorted(ids)  # each record reported exactly once
    logger.close(timeout=5)


def test_flush_waits_for_what_was_logged_before_it_while_another_thread_keeps_logging(kafka_bootstrap: str) -> None:
    """A server that keeps logging never empties the queue: flush() waits for the records before the call."""
    predictions, labels = topics(kafka_bootstrap)
    errors = Errors()
    stop = threading.Event()
    logged = [0]  # by the other thread, so far
    settled: list[tuple[str, BaseException | None]] = []

    def keep_logging(logger: PredictionLogger) -> None:
        while not stop.is_set():
            logger.log({"a": 1.0}, prediction=0.5, event_id=f"during-{logged[0]}")
            logged[0] += 1
            time.sleep(0.0005)

    # A second's linger and batches that never fill: the producer always holds some of the other thread's records.
    with PredictionLogger(
        "busy",
        kafka_bootstrap,
        predictions_topic=predictions,
        labels_topic=labels,
        on_error=errors,
        linger_ms=1000,
        batch_size=1_000_000,
    ) as logger:
        thread = threading.Thread(target=keep_logging, args=(logger,))
        thread.start()
        try:
            time.sleep(0.2)
            for i in range(50):  # with notify, as the asyncio form: told when each record settles
                record = logger.prediction_record({"a": 2.0}, prediction=0.1, event_id=f"before-{i}")
                logger.submit((replace(record, notify=lambda error, i=i: settled.append((f"before-{i}", error))),))
            logged_at_flush = logged[0]
            logger.flush(timeout=20)
            settled_at_return, logged_at_return = sorted(settled), logged[0]
            assert thread.is_alive()
        finally:
            stop.set()
            thread.join()
    assert settled_at_return == sorted((f"before-{i}", None) for i in range(50))  # every one delivered
    assert logged_at_return > logged_at_flush  # the other thread kept logging while flush() waited
    assert errors.items == []
    received = {value["event_id"] for _, value in read_topic(kafka_bootstrap, predictions, 50 + logged[0])}
    assert len(received) == 50 + logged[0]


def test_the_first_flush_does_not_wait_for_linger_ms(kafka_bootstrap: str) -> None:
    """The producer is created on the SDK's thread when the first record arrives: a flush() that began
    meanwhile flushed no producer, and the record waited out linger_ms."""
    predictions, _ = topics(kafka_bootstrap)
    with PredictionLogger("linger", kafka_bootstrap, predictions_topic=predictions, linger_ms=5_000) as logger:
        for round_ in range(2):  # the first record creates the producer; the second finds it
            logger.log({"a": 1.0}, prediction=0.5, event_id=f"linger-{round_}")
            started = time.monotonic()
            logger.flush(timeout=30)
            assert time.monotonic() - started < 2.5, round_
        assert logger.failed == 0


def test_pending_never_exceeds_max_queue_while_the_broker_is_down() -> None:
    errors = Errors()
    logger = PredictionLogger("down", unreachable(), on_error=errors, max_queue=1000, bootstrap_timeout_ms=3000)
    most = 0
    for i in range(1500):
        logger.log({"a": float(i)}, prediction=0.5)
        most = max(most, logger.pending)
    full = [error for error, _ in errors.items if isinstance(error, QueueFullError)]
    assert most == 1000 and len(full) >= 500  # the batch the thread holds counts too
    logger.close(timeout=0.5)
    assert len(errors.items) == 1500  # every record reported once: 500 full, the rest failed or closed


def test_pending_records_hold_at_most_max_queue_bytes_by_default_while_the_broker_is_down() -> None:
    """100,000 records of up to a megabyte each would be 100 GB: the queue is bounded by bytes too (64 MiB)."""
    errors = Errors()
    logger = PredictionLogger("down", unreachable(), on_error=errors, bootstrap_timeout_ms=5000)
    most = 0
    for i in range(100):
        logger.log({"text": "x" * 900_000}, prediction=0.5, event_id=f"big-{i}")
        most = max(most, logger.pending)
    full = [record.event_id for error, record in errors.items if isinstance(error, QueueFullError)]
    fit = 64 * 1024 * 1024 // 900_200  # an event of this size is a little over 900,000 bytes with its key
    assert most == fit and full == [f"big-{i}" for i in range(fit, 100)]
    logger.close(timeout=0.5)
    assert len(errors.items) == 100  # every record reported once


def test_feature_names_that_spell_the_same_text_are_refused_and_ids_are_plain_values() -> None:
    """Non-string keys are spelled with str(); two that spell one name would silently lose a value."""
    logger = PredictionLogger("keys", unreachable())
    try:
        with pytest.raises(InvalidMessage, match="field 'features' has two keys named '1'"):
            logger.prediction_record({1: 0.5, "1": 0.7}, prediction=0.5)
        with pytest.raises(InvalidMessage, match="field 'features' has two keys named 'a'"):
            logger.prediction_record(pd.Series([1.0, 2.0], index=["a", "a"]), prediction=0.5)  # a repeated label
        with pytest.raises(InvalidMessage, match="field 'probabilities' has two keys named '0'"):
            logger.prediction_record({"a": 1.0}, prediction=0.5, probabilities={0: 0.2, "0": 0.8})
        record = logger.prediction_record(
            {Channel.WEB: 1.0, np.str_("country"): "DE", 7: 2.0}, prediction=0.5, event_id=np.str_("id-1")
        )
        assert record.event_id == "id-1" and record.key == b"keys:id-1"
        assert json.loads(record.value)["features"] == {Channel.WEB.value: 1.0, "country": "DE", "7": 2.0}
        assert json.loads(logger.label_record(np.str_("id-1"), 1).value)["event_id"] == "id-1"
    finally:
        logger.close(timeout=0.5)


def test_flush_times_out_and_close_reports_what_is_left_exactly_once() -> None:
    errors = Errors()
    logger = PredictionLogger("down", unreachable(), on_error=errors, bootstrap_timeout_ms=2000)
    ids = [logger.log({"a": float(i)}, prediction=0.5) for i in range(3)]
    with pytest.raises(FlushTimeoutError, match="3 records still pending") as info:
        logger.flush(timeout=0.3)
    assert info.value.pending == 3 and errors.items == []
    logger.close(timeout=0.2)
    assert sorted(errors.ids) == sorted(ids)
    assert all(isinstance(error, LoggerClosedError) for error, _ in errors.items)
    time.sleep(2.5)  # the producer's creation fails later in the thread: not reported a second time
    assert len(errors.items) == 3


def test_close_stops_the_producer_when_the_broker_stops_answering(kafka_spec: BrokerSpec) -> None:
    """kafka-python's close() flushes first and, when that times out, raises before it stops its I/O
    thread: the thread lived on, with its sockets and buffer, retrying a broker that was gone."""
    predictions, _ = topics(kafka_spec.bootstrap)
    errors = Errors()
    before = set(threading.enumerate())
    logger = PredictionLogger("frozen", kafka_spec.bootstrap, predictions_topic=predictions, on_error=errors)
    logger.log({"a": 1.0}, prediction=0.5, event_id="delivered")
    logger.flush(timeout=30)  # connected, the topic's metadata known
    [network] = [t for t in set(threading.enumerate()) - before if t.name.endswith("-network-thread")]
    pid = int(kafka_spec.pid_file.read_text().strip())
    os.kill(pid, signal.SIGSTOP)  # the broker stops answering, its sockets stay open
    try:
        logger.log({"a": 1.0}, prediction=0.5, event_id="unanswered")
        time.sleep(0.5)  # with the producer, its request unanswered
        started = time.monotonic()
        logger.close(timeout=1)
        assert time.monotonic() - started < 3
        network.join(timeout=5)
        assert not network.is_alive()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert errors.ids == ["unanswered"]


def test_the_asyncio_form_awaits_delivery_without_blocking_the_loop(kafka_bootstrap: str) -> None:
    import asyncio

    from monitor_sdk import AsyncPredictionLogger

    predictions, labels = topics(kafka_bootstrap)

    async def main() -> tuple[str, list[str], int, BaseException]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        async with AsyncPredictionLogger(
            "aio", kafka_bootstrap, predictions_topic=predictions, labels_topic=labels
        ) as alog:
            first = await alog.log({"a": 1.0}, prediction=0.25, wait=True)
            batch = await alog.log_many([{"features": {"a": 2.0}, "prediction": 0.5, "event_id": "aio-2"}])
            frame = pd.DataFrame({"a": [3.0], "prediction": [0.75], "id": ["aio-3"]})
            batch += await alog.log_dataframe(frame, ["a"], event_id_column="id")
            await alog.log_label(first, 1, wait=True)
            await alog.flush(10)
        down = AsyncPredictionLogger("aio", unreachable(), on_error=Errors(), bootstrap_timeout_ms=1000)
        ticks_before = ticks
        with pytest.raises(KafkaError) as info:
            await down.log({"a": 1.0}, prediction=0.5, wait=True)  # ~1 s until the producer gives up
        ticked = ticks - ticks_before
        await down.close(5)
        task.cancel()
        return first, batch, ticked, info.value

    first, batch, ticked, _error = asyncio.run(main())
    assert batch == ["aio-2", "aio-3"]
    assert ticked >= 10  # the loop kept running (a blocked loop would not tick at all)
    events = sorted(value["event_id"] for _, value in read_topic(kafka_bootstrap, predictions, 3))
    assert events == sorted([first, "aio-2", "aio-3"])
    assert [value["event_id"] for _, value in read_topic(kafka_bootstrap, labels, 1)] == [first]


def _in_child(action: object) -> int:
    """Run ``action()`` in a forked child; its exit status (0 = returned, 1 = raised, 2 = wrong error)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = action()  # type: ignore[operator]
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_after_fork_the_child_gets_its_own_producer(kafka_bootstrap: str) -> None:
    predictions, labels = topics(kafka_bootstrap)
    logger = PredictionLogger("forked", kafka_bootstrap, predictions_topic=predictions, labels_topic=labels)
    logger.log({"a": 1.0}, prediction=0.1, event_id="parent-before")
    logger.flush(timeout=30)

    def child() -> int:
        logger.log({"a": 2.0}, prediction=0.2, event_id="child")
        logger.close(timeout=30)
        return 0

    assert _in_child(child) == 0
    logger.log({"a": 3.0}, prediction=0.3, event_id="parent-after")  # the parent's producer still works
    logger.close(timeout=30)
    events = sorted(value["event_id"] for _, value in read_topic(kafka_bootstrap, predictions, 3))
    assert events == ["child", "parent-after", "parent-before"]


def test_a_forked_child_exits_without_touching_the_parents_producer(kafka_bootstrap: str) -> None:
    """kafka-python registers an atexit hook (and a __del__) per producer that closes it; in a forked
    child it tried to close the parent's producer, waiting a second for records only the parent can
    send and printing a traceback, in every child that exits normally (a gunicorn worker)."""
    predictions, _ = topics(kafka_bootstrap)
    script = (
        "import os, sys, time\n"
        "from monitor_sdk import PredictionLogger\n"
        "logger = PredictionLogger('fork', sys.argv[1], predictions_topic=sys.argv[2], linger_ms=10_000)\n"
        "logger.log({'a': 1.0}, prediction=0.5)\n"
        "time.sleep(0.5)  # with the producer, lingering, when the process forks\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    if sys.argv[3] == 'log':\n"
        "        logger.log({'a': 2.0}, prediction=0.5)\n"
        "        logger.flush(30)\n"
        "    sys.exit(0)  # atexit hooks run in the child\n"
        "started = time.monotonic()\n"
        "os.waitpid(pid, 0)\n"
        "print(f'child exit {time.monotonic() - started:.2f}', flush=True)\n"
        "logger.close(timeout=30)\n"
    )
    for child_logs in ("log", "idle"):
        done = subprocess.run(
            [sys.executable, "-c", script, kafka_bootstrap, predictions, child_logs],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        seconds = float(done.stdout.split("child exit ")[1].split()[0])
        assert seconds < 0.9, (child_logs, seconds)  # kafka-python's close waited 1 s for the parent's records


def test_a_borrowed_producer_used_after_fork_raises(kafka_bootstrap: str) -> None:
    predictions, _ = topics(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    logger = PredictionLogger("forked", producer=producer, predictions_topic=predictions)
    logger.log({"a": 1.0}, prediction=0.1, event_id="parent")
    logger.flush(timeout=30)

    def child() -> int:
        try:
            logger.log({"a": 2.0}, prediction=0.2, event_id="child")
        except ForkedLoggerError as exc:
            return 0 if "after fork()" in str(exc) else 2
        return 1

    assert _in_child(child) == 0
    logger.close(timeout=10)
    assert not producer._closed  # a borrowed producer is flushed, never closed, by the logger
    producer.close()
    assert [value["event_id"] for _, value in read_topic(kafka_bootstrap, predictions, 1)] == ["parent"]


def test_timestamps_are_validated_before_anything_is_queued(kafka_bootstrap: str) -> None:
    with PredictionLogger("ts", kafka_bootstrap) as logger:
        with pytest.raises(InvalidMessage, match="timezone-aware"):
            logger.log({"a": 1.0}, prediction=1.0, timestamp=datetime(2026, 1, 1))
        with pytest.raises(InvalidMessage, match="epoch seconds"):
            logger.log({"a": 1.0}, prediction=1.0, timestamp=1_795_773_600)
        with pytest.raises(InvalidMessage, match="finite number"):
            logger.log({"a": 1.0}, prediction=float("inf"))
        with pytest.raises(InvalidMessage, match=r"'probabilities\.yes' must be a finite"):
            logger.log({"a": 1.0}, prediction=1.0, probabilities={"yes": float("nan")})
        assert logger.pending == 0
        with pytest.raises(InvalidMessage, match="negative epoch"):
            logger.log({"a": 1.0}, prediction=1.0, timestamp=-5)
        with PredictionLogger("a/b", kafka_bootstrap) as bad, pytest.raises(InvalidMessage, match="contain '/'"):
            bad.log({"a": 1.0}, prediction=1.0)
        assert logger.pending == 0
        stamp = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
        assert logger.log({"a": 1.0}, prediction=1.0, timestamp=stamp, event_id="ok") == "ok"
        # An instant before 1973 (epoch milliseconds below 10^11, refused as probable seconds) goes as text.
        early = datetime(1969, 7, 20, 20, 17, tzinfo=UTC)
        assert logger.log({"a": 1.0}, prediction=1.0, timestamp=early, event_id="early") == "early"


def test_a_process_that_exits_without_close_still_delivers_or_reports(kafka_bootstrap: str) -> None:
    predictions, _ = topics(kafka_bootstrap)
    script = (
        "import sys\n"
        "from monitor_sdk import PredictionLogger\n"
        "logger = PredictionLogger('exit', sys.argv[1], predictions_topic=sys.argv[2], bootstrap_timeout_ms=1000)\n"
        "for i in range(3):\n"
        "    logger.log({'a': float(i)}, prediction=0.5, event_id=f'left-{i}')\n"
    )
    delivered = subprocess.run(
        [sys.executable, "-c", script, kafka_bootstrap, predictions], capture_output=True, text=True, timeout=120
    )
    assert delivered.returncode == 0, delivered.stderr
    events = sorted(value["event_id"] for _, value in read_topic(kafka_bootstrap, predictions, 3))
    assert events == ["left-0", "left-1", "left-2"]  # flushed by the atexit hook

    reported = subprocess.run(
        [sys.executable, "-c", script, unreachable(), predictions], capture_output=True, text=True, timeout=120
    )
    assert reported.returncode == 0, reported.stderr
    lines = [line for line in reported.stderr.splitlines() if "not delivered" in line]
    assert sorted(line.split("key ")[1].split(",")[0] for line in lines) == [f"exit:left-{i}" for i in range(3)]


@pytest.mark.parametrize(
    "security",
    [
        {"security_protocol": "SSL", "ssl_cafile": None},
        {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "u"},
    ],
)
def test_security_options_reach_the_producer(kafka_bootstrap: str, security: dict[str, str | None]) -> None:
    """The session's broker speaks plaintext only: with TLS or SASL asked for, the same send fails."""
    predictions, _ = topics(kafka_bootstrap)
    errors = Errors()
    with PredictionLogger(
        "secure",
        kafka_bootstrap,
        predictions_topic=predictions,
        on_error=errors,
        bootstrap_timeout_ms=1500,
        sasl_plain_password="not-logged",
        ssl_password="key-not-logged",
        **security,  # type: ignore[arg-type]
    ) as logger:
        logger.log({"a": 1.0}, prediction=0.5, event_id="secure-1")
        logger.flush(timeout=60)
    [(error, record)] = errors.items
    assert isinstance(error, KafkaError) and record.event_id == "secure-1"
    # Nor in the traceback rendered with every frame's locals, as Sentry and Rich's show_locals do.
    rendered = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    assert "kafka_transport.py" in rendered  # the frames that created the producer, with their locals
    assert "not-logged" not in rendered and "not-logged" not in repr(logger.__dict__)
