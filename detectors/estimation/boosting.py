"""A small histogram gradient-boosted regressor (squared error), in numpy: the loss model of DLE.

Direct loss estimation needs a regressor that learns a row's expected loss from its features. The
algorithm is scikit-learn's ``HistGradientBoostingRegressor`` (and LightGBM's), written here so that a
``monitor estimate`` process does not import scikit-learn and SciPy, whose import costs several times
more than the fit itself:

- each numerical feature is cut into at most :data:`MAX_BINS` bins at its quantiles (midpoints
  between distinct values when there are fewer), a categorical feature's codes are its bins, and a
  missing value has a bin of its own (:data:`MISSING`);
- each round fits a tree to the residuals (:mod:`detectors.estimation.boosting_fit`); the model is the
  target's mean plus the sum of its trees' leaf values.

This module holds the fitted model: the bins, the trees, prediction and serialisation.

Every split is kept as a table over a feature's codes (goes left or not), so prediction is table
look-ups: a tree's internal node ``j`` sets bit ``j`` of a row's key, the key is the OR over features of
a per-feature table, and a table of ``2 ** internal nodes`` entries maps a key to its leaf's value. All
trees are evaluated together, with no Python loop over rows or nodes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Codes = NDArray[np.uint8]  # (features, rows): each feature's bin codes
WIDTH = 256  # codes per feature
MISSING = WIDTH - 1  # the bin of a missing value (and of a category code out of range)
MAX_BINS = WIDTH - 1  # bins of present values: codes 0 .. MAX_BINS - 1
KEY_BITS = 15  # internal nodes a tree may have, so that a key fits in 16 bits
PREDICT_ROWS = 4096  # rows evaluated at once: the (rows, trees) arrays stay in cache


def _encode(array: NDArray[Any], dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _joined(parts: Sequence[NDArray[Any]], empty: tuple[int, ...]) -> NDArray[Any]:
    return np.concatenate(parts) if parts else np.zeros(empty, dtype=bool)


def _decode(text: str, dtype: str) -> NDArray[Any]:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


@dataclass(frozen=True)
class Binning:
    """Per feature, the upper edges of its bins (numerical) or ``None`` (a categorical code is its bin)."""

    edges: tuple[FloatArray | None, ...]

    def codes(self, matrix: FloatArray) -> Codes:
        """Bin codes of ``matrix`` (rows, features), as a (features, rows) array."""
        out = np.empty((len(self.edges), matrix.shape[0]), dtype=np.uint8)
        for f, edges in enumerate(self.edges):
            column = matrix[:, f]
            missing = np.isnan(column)
            if edges is None:
                valid = ~missing & (column >= 0) & (column < MISSING)
                out[f] = np.where(valid, np.nan_to_num(column), MISSING)
            else:
                binned = np.searchsorted(edges, column, side="left")  # bin i holds (edge i-1, edge i]
                out[f] = np.where(missing, MISSING, binned)
        return out

    def to_dict(self) -> list[str | None]:
        return [None if e is None else _encode(e, "<f8") for e in self.edges]

    @classmethod
    def from_dict(cls, data: Sequence[str | None]) -> Binning:
        return cls(tuple(None if e is None else _decode(e, "<f8") for e in data))


def fit_binning(matrix: FloatArray, categorical: Sequence[bool]) -> Binning:
    """Quantile edges of each numerical column (at most :data:`MAX_BINS` bins; missing values aside)."""
    edges: list[FloatArray | None] = []
    for f, is_categorical in enumerate(categorical):
        if is_categorical:
            edges.append(None)
            continue
        column = matrix[:, f]
        present = column[~np.isnan(column)]
        distinct = np.unique(present)
        if distinct.size <= MAX_BINS:
            edges.append((distinct[:-1] + distinct[1:]) / 2.0)
        else:
            edges.append(np.unique(np.percentile(present, np.linspace(0, 100, MAX_BINS + 1)[1:-1])))
    return Binning(tuple(edges))


@dataclass(frozen=True)
class Tree:
    """Internal nodes ``0..k-1`` (node 0 the root) and ``k + 1`` leaves.

    A child reference ``c >= 0`` is internal node ``c``, ``c < 0`` is leaf ``-1 - c``.
    """

    feature: NDArray[np.int16]  # (k,)
    goes_left: NDArray[np.bool_]  # (k, WIDTH): does a code go to the left child
    left: NDArray[np.int16]  # (k,)
    right: NDArray[np.int16]  # (k,)
    value: FloatArray  # (k + 1,)

    def paths(self) -> Iterator[tuple[int, list[tuple[int, bool]]]]:
        """Each leaf with the (internal node, went left) steps that lead to it."""
        if self.feature.size == 0:
            yield 0, []
            return
        stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
        while stack:
            node, path = stack.pop()
            for child, went_left in ((int(self.left[node]), True), (int(self.right[node]), False)):
                steps = [*path, (node, went_left)]
                if child >= 0:
                    stack.append((child, steps))
                else:
                    yield -1 - child, steps


@dataclass(frozen=True)
class Booster:
    """A fitted model: the baseline (the target's mean) plus the sum of its trees' leaf values."""

    baseline: float
    features: int
    trees: tuple[Tree, ...]

    @cached_property
    def _tables(self) -> tuple[NDArray[np.uint16], FloatArray]:
        """Per feature, code and tree the key bits it sets; per tree and key, the leaf value (flat)."""
        bits = max((t.feature.size for t in self.trees), default=0)
        keys = np.zeros((self.features, WIDTH, len(self.trees)), dtype=np.uint16)
        values = np.zeros((len(self.trees), 1 << bits), dtype=np.float64)
        for t, tree in enumerate(self.trees):
            k = tree.feature.size
            for j in range(k):
                keys[tree.feature[j], :, t] |= tree.goes_left[j].astype(np.uint16) << np.uint16(j)
            view = values[t, : 1 << k].reshape((2,) * k)  # axis a is key bit k - 1 - a
            for leaf, path in tree.paths():
                index: list[int | slice] = [slice(None)] * k
                for node, went_left in path:
                    index[k - 1 - node] = int(went_left)
                view[tuple(index)] = tree.value[leaf]
        return keys, values.ravel()

    def predict(self, codes: Codes) -> FloatArray:
        """The prediction for each row of ``codes`` (features, rows)."""
        codes = np.ascontiguousarray(codes)
        rows = codes.shape[1]
        out = np.full(rows, self.baseline)
        if not self.trees:
            return out
        keys, values = self._tables
        offsets = np.arange(len(self.trees)) * (values.size // len(self.trees))
        for start in range(0, rows, PREDICT_ROWS):
            part = codes[:, start : start + PREDICT_ROWS]
            key = keys[0].take(part[0], axis=0)  # (rows, trees); take is much faster than fancy indexing
            for f in range(1, self.features):
                key |= keys[f].take(part[f], axis=0)
            out[start : start + part.shape[1]] += values.take(key + offsets).sum(axis=1)
        return out

    def to_dict(self) -> dict[str, Any]:
        trees = self.trees
        return {
            "baseline": self.baseline,
            "features": self.features,
            "internal": [int(t.feature.size) for t in trees],
            "feature": _encode(_joined([t.feature for t in trees], (0,)), "<i2"),
            "left": _encode(_joined([t.left for t in trees], (0,)), "<i2"),
            "right": _encode(_joined([t.right for t in trees], (0,)), "<i2"),
            "goes_left": _encode(np.packbits(_joined([t.goes_left for t in trees], (0, WIDTH)), axis=-1), "u1"),
            "value": _encode(_joined([t.value for t in trees], (0,)), "<f8"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Booster:
        internal = [int(k) for k in data["internal"]]
        feature, left, right = (_decode(data[n], "<i2") for n in ("feature", "left", "right"))
        goes_left = np.unpackbits(_decode(data["goes_left"], "u1").reshape(-1, WIDTH // 8), axis=1).astype(bool)
        value = _decode(data["value"], "<f8")
        trees: list[Tree] = []
        node = leaf = 0
        for k in internal:
            cut = slice(node, node + k)
            trees.append(Tree(feature[cut], goes_left[cut], left[cut], right[cut], value[leaf : leaf + k + 1]))
            node, leaf = node + k, leaf + k + 1
        return cls(float(data["baseline"]), int(data["features"]), tuple(trees))
