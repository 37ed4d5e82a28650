"""Steady demo traffic through the SDK: new patients from the fitted generator (the reference's
distribution), then covariate drift on five measurements, a new channel and a data-quality fault (one
feature missing in 40% of events) part-way."""

from __future__ import annotations

import logging
import math
import multiprocessing
import signal
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType

import numpy as np
import pandas as pd

from monitor.demo.model import DRIFTED, FAULTY, MODEL_NAME, MODEL_VERSION, DemoModel
from monitor.logs import get_logger
from monitor.sdk import PredictionLogger

log = get_logger(__name__)

DRIFT_SHIFT_STD = 1.5  # drifted features move by this many (training) standard deviations
MISSING_SHARE = 0.4
LABEL_SHARE = 0.5  # share of events whose ground truth is sent (right away: the demo knows it)
TICK_S = 0.1


@dataclass
class TrafficStats:
    sent: int = 0
    labels: int = 0
    drifting: bool = False
    started_at: float = 0.0


class TrafficGenerator:
    """Sends ``rate`` events per second until stopped; drift and the fault start after ``drift_after`` s.

    The sending runs in a child process, as a model server would: building, validating and producing an
    event is pure Python (~0.4 ms with its label), which in the demo's process would compete for the GIL
    with the consumer, the scheduler and the API it is there to show off. Its counters come back through
    shared memory; an error in the child ends it, and :meth:`healthy` says so.
    """

    name = "traffic"

    def __init__(
        self,
        model: DemoModel,
        bootstrap: str,
        rate: float,
        drift_after: float,
        topics: tuple[str, str],
        seed: int = 1,
        align: float | None = None,
    ) -> None:
        self.rate = rate
        self.drift_after = drift_after
        # Start the drift on a detection window boundary, so the first window after it is wholly drifted
        # and the alert follows one detection period later, whatever the wall clock said at start.
        self.align = align
        context = multiprocessing.get_context("spawn")  # no fork of a process holding chDB and threads
        self._sent = context.Value("q", 0)
        self._labels = context.Value("q", 0)
        self._drift_at = context.Value("d", math.inf)  # wall-clock time the drift starts (set by start())
        self._stop = context.Event()
        self._process: BaseProcess = context.Process(
            target=_send_until_stopped,
            args=(model, bootstrap, rate, topics, seed, self._drift_at, self._stop, self._sent, self._labels),
            name="demo-traffic",
            daemon=True,
        )
        self._started_at = 0.0

    @property
    def stats(self) -> TrafficStats:
        return TrafficStats(
            sent=self._sent.value,
            labels=self._labels.value,
            drifting=time.time() >= self._drift_at.value,
            started_at=self._started_at,
        )

    def start(self) -> None:
        self._started_at = time.monotonic()
        now = time.time()
        if self.align:
            self.drift_after = math.ceil((now + self.drift_after) / self.align) * self.align - now
        self._drift_at.value = now + self.drift_after
        self._process.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)

    def healthy(self) -> bool:
        return self._process.is_alive() or self._stop.is_set()


def _send_until_stopped(
    model: DemoModel,
    bootstrap: str,
    rate: float,
    topics: tuple[str, str],
    seed: int,
    drift_at: Synchronized,
    stop: EventType,
    sent: Synchronized,
    labels_sent: Synchronized,
) -> None:
    """The child's loop: every tick, the events owed by the clock since the start, so the rate holds
    however long sending a batch takes (counting ``rate x tick`` per loop instead lost the sending time:
    ~690 of 1,000 events/s). At most one second is caught up after a stall, never a flood.

    Ctrl-C reaches the whole process group; the child ignores it and stops when the parent says so.
    """
    from monitor.logs import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging("warning")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # reconnect chatter would bury the progress line
    rng = np.random.default_rng(seed)
    logger: PredictionLogger | None = None
    try:
        logger = PredictionLogger(
            MODEL_NAME,
            bootstrap=bootstrap,
            model_version=MODEL_VERSION,
            predictions_topic=topics[0],
            labels_topic=topics[1],
        )
        due_from, done = time.monotonic(), 0  # events owed = rate x (now - due_from) - done
        while not stop.wait(TICK_S):
            drifting = time.time() >= drift_at.value
            owed = rate * (time.monotonic() - due_from) - done
            if owed > rate:  # fell behind by more than a second: skip ahead rather than flood
                due_from, done, owed = time.monotonic() - 1.0, 0, rate
            n = int(owed)
            if n == 0:
                continue
            done += n
            frame, labels = batch(model, rng, n, drifting)
            probabilities = model.predict_proba(frame)
            for record, probability, label in zip(frame.to_dict("records"), probabilities, labels, strict=True):
                features = {str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()}
                event_id = logger.log(
                    features,
                    prediction=float(probability),
                    probabilities={"malignant": float(1 - probability), "benign": float(probability)},
                )
                sent.value += 1
                if rng.random() < LABEL_SHARE:
                    logger.log_label(event_id, int(label))
                    labels_sent.value += 1
    except Exception as exc:  # one line, no traceback dump: the parent sees healthy() turn false and stops
        log.error("traffic generator failed", error=f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None
    finally:
        if logger is not None:
            logger.close(timeout=10)


def batch(model: DemoModel, rng: np.random.Generator, n: int, drifting: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` events: new patients from the generator the reference was drawn from, drifted if asked."""
    frame, labels = model.generator.sample(n, rng)
    if drifting:
        for column in DRIFTED:
            frame[column] = frame[column] + DRIFT_SHIFT_STD * model.stds[column]
        frame["channel"] = rng.choice(["clinic", "hospital", "screening", "mobile-unit"], n)
        missing = rng.random(n) < MISSING_SHARE
        frame[FAULTY] = frame[FAULTY].astype(object)
        frame.loc[missing, FAULTY] = None
    return frame, labels
