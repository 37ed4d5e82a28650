"""Turning mixed rows into one standardised numeric matrix, with statistics of the reference only.

- numerical columns: missing values imputed with the reference mean, then standardised with that mean
  and the population std of the imputed column (as NannyML's scaler sees it; a constant column divides
  by 1);
- categorical columns: frequency-encoded (a category becomes its share in the reference; missing is a
  category of its own; categories beyond the :data:`TOP_CATEGORIES` most frequent, ties by value,
  share one "other" bucket), then standardised like a number. A category outside the top ones reads as
  "other" whether the reference had it or not (0 when the reference had no other category): a column
  with a long tail (postcodes, IDs) keeps showing values the reference sample never held, and telling
  them from the tail would need every category of the reference kept in the fit.

Frequency encoding keeps one dimension per categorical column (NannyML's choice too), so a column with
thousands of categories does not swamp the PCA with one-hot dimensions. Everything fitted is plain
numbers and strings, so it stores as JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from detectors.drift.multivariate.rows import MISSING, Rows, distinct_values

TOP_CATEGORIES = 50
FARTHEST = 1e300  # standard deviations from the reference mean: a standardised value is clipped to this
OTHER = "\x00other"


class Categories(NamedTuple):
    """One categorical column of the reference: the top categories' shares (and :data:`OTHER`'s, the
    share of the rest), and the mean and std of the encoded column."""

    shares: dict[str, float]
    mean: float
    std: float


@dataclass(frozen=True)
class Encoder:
    """Reference statistics per column: ``numerical`` name -> (mean, std); ``categorical`` name ->
    :class:`Categories`."""

    numerical: dict[str, tuple[float, float]]
    categorical: dict[str, Categories]

    @property
    def names(self) -> list[str]:
        return [*self.numerical, *self.categorical]

    def transform(self, rows: Rows) -> np.ndarray:
        """The standardised matrix (rows x columns, in :attr:`names` order) of ``rows``.

        Built column by column in a (columns, rows) array, each column contiguous, and returned as its
        transpose (a view): every operation below runs over contiguous memory.
        """
        columns = np.empty((len(self.numerical) + len(self.categorical), rows.count), dtype=np.float64)
        for index, (name, (mean, std)) in enumerate(self.numerical.items()):
            column = columns[index]
            column[:] = rows.numerical[name]
            column[np.isnan(column)] = mean
            # halved first (exact in binary floating point): x - mean would overflow for values near
            # +-1.8e308 of opposite signs, x / std - mean / std would lose digits when mean >> std
            column *= 0.5
            column -= 0.5 * mean
            # more standard deviations than a float holds (1e10 where the reference's std is 1e-300) would
            # be inf, and inf - inf in the projection NaN: an error of NaN read as "no drift"
            with np.errstate(over="ignore"):
                column /= 0.5 * std
            np.clip(column, -FARTHEST, FARTHEST, out=column)
        offset = len(self.numerical)
        for index, (name, (shares, mean, std)) in enumerate(self.categorical.items()):
            column = columns[offset + index]
            column[:] = _frequencies(rows.distinct(name), shares)
            column -= mean
            column /= std
        return columns.T

    def to_json(self) -> dict[str, Any]:
        return {
            "numerical": {n: list(v) for n, v in self.numerical.items()},
            "categorical": {n: list(v) for n, v in self.categorical.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Encoder:
        return cls(
            {n: (float(v[0]), float(v[1])) for n, v in data["numerical"].items()},
            {n: Categories(dict(v[0]), float(v[1]), float(v[2])) for n, v in data["categorical"].items()},
        )


def fit_encoder(reference: Rows) -> Encoder:
    numerical = {name: _mean_std(values) for name, values in reference.numerical.items()}
    categorical: dict[str, Categories] = {}
    for name in reference.categorical:
        distinct, inverse = reference.distinct(name)
        counts = Counter(dict(zip(distinct, np.bincount(inverse, minlength=len(distinct)).tolist(), strict=True)))
        total = max(sum(counts.values()), 1)
        top = dict(counts.most_common(TOP_CATEGORIES))
        shares = {c: n / total for c, n in top.items()}
        rest = total - sum(top.values())
        if rest:
            shares[OTHER] = rest / total
        encoded = _frequencies((distinct, inverse), shares)
        std = float(encoded.std())
        categorical[name] = Categories(shares, float(encoded.mean()), std if std > 0 else 1.0)
    return Encoder(numerical, categorical)


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """The mean of the present values and the population std of the column *after* imputing that mean
    (NannyML imputes, then fits its scaler), so each missing value counts as a zero deviation.

    Worked out on the values divided by their largest magnitude: squares of 1e300 overflow and squares
    of 1e-300 underflow, and either would turn a varying column into a constant one (std 0 or inf).
    """
    present = values[~np.isnan(values)]
    scale = float(np.abs(present).max()) if present.size else 0.0
    if scale == 0.0:  # no value, or only zeros
        return 0.0, 1.0
    scaled = present / scale
    mean = float(scaled.mean())
    spread = float(np.sqrt(((scaled - mean) ** 2).sum() / values.size)) * scale
    return mean * scale, spread if spread > 0 else 1.0


def _frequencies(codes: tuple[list[str], np.ndarray], shares: dict[str, float]) -> np.ndarray:
    """Each value's reference share: top categories their own, every other value the "other" share (0 if
    the reference had nothing beyond its top categories, so that a new value in a short list stands out)."""
    other = shares.get(OTHER, 0.0)
    distinct, inverse = codes
    table = np.array([shares.get(c, other) for c in distinct], np.float64)
    result: np.ndarray = table[inverse] if len(inverse) else np.zeros(0)
    return result


def category_codes(values: np.ndarray, shares: dict[str, float]) -> np.ndarray:
    """Integer codes for a classifier: one per top reference category (in share order), one for anything
    else; missing is NaN (histogram gradient boosting treats it natively)."""
    order = {c: i for i, c in enumerate(c for c in shares if c not in (OTHER, MISSING))}
    rest = float(len(order))
    distinct, inverse = distinct_values(values)
    table = np.array([np.nan if c == MISSING else order.get(c, rest) for c in distinct], dtype=np.float64)
    result: np.ndarray = table[inverse] if len(values) else np.zeros(0)
    return result
