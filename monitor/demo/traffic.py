"""Steady demo traffic through the SDK: held-out rows replayed with noise, then covariate drift on
five measurements and a data-quality fault (one feature missing in 40% of events) part-way."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.demo.model import DRIFTED, FAULTY, MODEL_NAME, MODEL_VERSION, DemoModel
from monitor.logs import get_logger

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
    """Sends ``rate`` events per second until stopped; drift and the fault start after ``drift_after`` s."""

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
        from monitor.sdk import PredictionLogger

        self.model = model
        self.rate = rate
        self.drift_after = drift_after
        # Start the drift on a detection window boundary, so the first window after it is wholly drifted
        # and the alert follows one detection period later, whatever the wall clock said at start.
        self.align = align
        self.stats = TrafficStats()
        self._rng = np.random.default_rng(seed)
        self._logger = PredictionLogger(
            MODEL_NAME,
            bootstrap=bootstrap,
            model_version=MODEL_VERSION,
            predictions_topic=topics[0],
            labels_topic=topics[1],
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self.error: BaseException | None = None

    def batch(self, n: int, drifting: bool) -> tuple[pd.DataFrame, np.ndarray]:
        """``n`` events: rows drawn from the held-out data with 5% noise, drifted if asked."""
        index = self._rng.integers(0, len(self.model.serve), n)
        frame = self.model.serve.iloc[index].reset_index(drop=True)
        labels = self.model.serve_labels[index]
        numeric = [c for c in frame.columns if c != "channel"]
        noise = self._rng.normal(0, 0.05, (n, len(numeric))) * self.model.stds[numeric].to_numpy()
        frame[numeric] = frame[numeric].to_numpy() + noise
        if drifting:
            for column in DRIFTED:
                frame[column] = frame[column] + DRIFT_SHIFT_STD * self.model.stds[column]
            frame["channel"] = self._rng.choice(["clinic", "hospital", "screening", "mobile-unit"], n)
            missing = self._rng.random(n) < MISSING_SHARE
            frame[FAULTY] = frame[FAULTY].astype(object).where(~missing, None)
        return frame, labels

    def _run(self) -> None:
        owed = 0.0
        try:
            while not self._stop.wait(TICK_S):
                elapsed = time.monotonic() - self.stats.started_at
                drifting = elapsed >= self.drift_after
                if drifting and not self.stats.drifting:
                    log.info("injecting covariate drift and a data-quality fault", after_s=round(elapsed, 1))
                self.stats.drifting = drifting
                owed += self.rate * TICK_S
                n = int(owed)
                if n == 0:
                    continue
                owed -= n
                frame, labels = self.batch(n, drifting)
                probabilities = self.model.predict_proba(frame)
                records = frame.to_dict("records")
                for record, probability, label in zip(records, probabilities, labels, strict=True):
                    features = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()}
                    event_id = self._logger.log(
                        features,
                        prediction=float(probability),
                        probabilities={"malignant": float(1 - probability), "benign": float(probability)},
                    )
                    self.stats.sent += 1
                    if self._rng.random() < LABEL_SHARE:
                        self._logger.log_label(event_id, int(label))
                        self.stats.labels += 1
        except BaseException as exc:  # the supervisor sees healthy() turn false and stops the demo
            self.error = exc
            log.error("traffic generator failed", error=str(exc))

    def start(self) -> None:
        self.stats.started_at = time.monotonic()
        if self.align:
            now = time.time()
            self.drift_after = math.ceil((now + self.drift_after) / self.align) * self.align - now
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._logger.close(timeout=timeout)

    def healthy(self) -> bool:
        return self._thread.is_alive() or self._stop.is_set()
