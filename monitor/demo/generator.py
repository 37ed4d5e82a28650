"""Honest demo traffic: new patients drawn from a generative model of the breast cancer data.

Replaying the few hundred held-out rows with replacement (what the demo did before) makes a window of
1,500 events hold each row about six times: a two-sample test, which assumes independent draws, then
sees the replay's own quirks as drift, and the heatmap showed red features before any drift started.
Instead both the reference and the traffic are drawn from one fitted distribution: per class (benign,
malignant), a multivariate normal of the measurements on a log scale (they are positive and
right-skewed), with the class shares and the channel shares of the data. Same distribution on both
sides, so before the injected drift every difference is sampling noise, which is what the thresholds
are calibrated for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

OFFSET_SHARE = 0.05  # log(x + 5% of the column's median): measurements of 0 (concavity) stay finite


@dataclass(frozen=True)
class PatientGenerator:
    """Class-conditional log-normal measurements, class and channel shares, fitted on real rows."""

    columns: tuple[str, ...]
    offsets: np.ndarray
    class_shares: np.ndarray  # P(label = 0), P(label = 1)
    means: tuple[np.ndarray, np.ndarray]
    covariances: tuple[np.ndarray, np.ndarray]
    channels: tuple[str, ...]
    channel_shares: np.ndarray

    def sample(self, n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
        """``n`` new patients (measurements and channel) and their true labels."""
        labels = (rng.random(n) < self.class_shares[1]).astype(int)
        logs = np.empty((n, len(self.columns)))
        for label in (0, 1):
            rows = labels == label
            logs[rows] = rng.multivariate_normal(self.means[label], self.covariances[label], int(rows.sum()))
        values = np.clip(np.exp(logs) - self.offsets, 0.0, None)
        frame = pd.DataFrame(values, columns=list(self.columns))
        frame["channel"] = rng.choice(np.asarray(self.channels), n, p=self.channel_shares)
        return frame, labels


def fit(frame: pd.DataFrame, labels: np.ndarray, columns: Sequence[str]) -> PatientGenerator:
    """Fit on real rows: ``columns`` (positive measurements), a ``channel`` column and the labels."""
    values = frame[list(columns)].to_numpy(dtype=float)
    offsets = OFFSET_SHARE * np.median(values, axis=0)
    logs = np.log(values + offsets)
    means, covariances = [], []
    for label in (0, 1):
        part = logs[labels == label]
        means.append(part.mean(axis=0))
        covariances.append(np.cov(part, rowvar=False))
    shares = frame["channel"].value_counts(normalize=True)
    return PatientGenerator(
        columns=tuple(columns),
        offsets=offsets,
        class_shares=np.array([np.mean(labels == 0), np.mean(labels == 1)]),
        means=(means[0], means[1]),
        covariances=(covariances[0], covariances[1]),
        channels=tuple(str(c) for c in shares.index),
        channel_shares=shares.to_numpy(dtype=float),
    )
