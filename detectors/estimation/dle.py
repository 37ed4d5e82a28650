"""Direct loss estimation: a regressor's expected error per row, learned on the labelled reference.

A gradient-boosted model (:mod:`detectors.estimation.boosting`, the algorithm of scikit-learn's
``HistGradientBoostingRegressor`` in numpy) learns each row's loss
(absolute error, squared error, absolute percentage error) from the features and the prediction itself;
over a chunk the mean predicted loss estimates MAE, MSE and MAPE (RMSE is the root of the MSE). Where
the reference error depends on the inputs, a shift of the inputs towards harder regions raises the
estimate. One fifth of the reference is held out to measure how far a row's loss strays from its
prediction, relative to that prediction (errors of location-scale noise have a constant coefficient
of variation: a row expected to err twice as much strays twice as far). A chunk's sampling error is
that relative spread times the root of the sum of its rows' squared predicted losses, over its rows.

Categorical features are coded by their reference categories (at most :data:`MAX_CATEGORIES`, the most
frequent; others and unseen ones are missing) and handed to the model as categorical.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.estimation.boosting import Binning, Booster, fit_binning
from detectors.estimation.boosting_fit import fit_boosters
from detectors.estimation.metrics import EPS, FloatArray

MAX_CATEGORIES = 250
HOLDOUT = 0.2
LOSSES = ("mae", "mse", "mape")  # models fitted; rmse is derived from mse


@dataclass(frozen=True)
class Encoding:
    """How raw feature columns become the model's matrix: names in order, and categories of text columns."""

    numerical: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]

    def matrix(self, columns: Mapping[str, NDArray[Any]], prediction: FloatArray) -> FloatArray:
        parts = [np.asarray(columns[name], dtype=np.float64) for name in self.numerical]
        for name, levels in self.categorical:
            lookup = {level: float(i) for i, level in enumerate(levels)}
            present, distinct, inverse = _texts(columns[name])
            codes = np.full(present.size, np.nan)
            codes[present] = np.array([lookup.get(d, np.nan) for d in distinct], dtype=np.float64)[inverse]
            parts.append(codes)
        parts.append(np.asarray(prediction, dtype=np.float64))
        return np.column_stack(parts)

    @property
    def categorical_mask(self) -> list[bool]:
        return [False] * len(self.numerical) + [True] * len(self.categorical) + [False]


def _texts(values: NDArray[Any]) -> tuple[NDArray[np.bool_], list[str], NDArray[np.intp]]:
    """Which values are present (not None), their distinct texts (``str`` of each) and each present
    value's index into them: converted and sorted in C, not per row in Python."""
    array = np.asarray(values, dtype=object)
    present = np.asarray(array != None, dtype=bool)  # noqa: E711 (elementwise)
    distinct, inverse = np.unique(array[present].astype(str), return_inverse=True)
    return present, [str(d) for d in distinct.tolist()], inverse.reshape(-1)


def fit_encoding(columns: Mapping[str, NDArray[Any]]) -> Encoding:
    numerical: list[str] = []
    categorical: list[tuple[str, tuple[str, ...]]] = []
    for name, values in columns.items():
        if np.asarray(values).dtype.kind in "biuf":
            numerical.append(name)
            continue
        _, distinct, inverse = _texts(values)
        levels, counts = np.array(distinct, dtype=str), np.bincount(inverse, minlength=len(distinct))
        keep = levels[np.argsort(-counts, kind="stable")][:MAX_CATEGORIES]
        categorical.append((name, tuple(sorted(map(str, keep)))))
    return Encoding(tuple(numerical), tuple(categorical))


@dataclass(frozen=True)
class LossModels:
    """Fitted loss models, the encoding of their inputs and the held-out spread of each loss."""

    encoding: Encoding
    binning: Binning  # the model matrix's bins, fitted on the training rows
    models: Mapping[str, Booster]  # loss name -> fitted loss model
    spread: Mapping[str, float]  # loss name -> relative spread of the loss on held-out rows (relative_spread)

    def row_losses(self, columns: Mapping[str, NDArray[Any]], prediction: FloatArray) -> dict[str, FloatArray]:
        codes = self.binning.codes(self.encoding.matrix(columns, prediction))
        return {name: np.maximum(model.predict(codes), 0.0) for name, model in self.models.items()}

    def estimate(
        self, columns: Mapping[str, NDArray[Any]], prediction: FloatArray, names: Sequence[str]
    ) -> dict[str, tuple[float, float]]:
        """``{metric: (estimate, sampling standard deviation)}`` over the rows given."""
        return self.summarise(self.row_losses(columns, prediction), names)

    def summarise(self, per_row: Mapping[str, FloatArray], names: Sequence[str]) -> dict[str, tuple[float, float]]:
        """:meth:`estimate` from row losses already predicted (a slice of :meth:`row_losses`)."""
        rows = max(min(v.size for v in per_row.values()), 1)
        losses = {name: float(np.mean(v)) for name, v in per_row.items()}
        sd = {name: self.spread[name] * math.sqrt(float(np.sum(v * v))) / rows for name, v in per_row.items()}
        out: dict[str, tuple[float, float]] = {}
        for name in names:
            if name == "rmse":
                root = math.sqrt(losses["mse"])
                out[name] = (root, sd["mse"] / (2 * root) if root > 0 else float("nan"))
            else:
                out[name] = (losses[name], sd[name])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "numerical": list(self.encoding.numerical),
            "categorical": [[name, list(levels)] for name, levels in self.encoding.categorical],
            "binning": self.binning.to_dict(),
            "models": {name: model.to_dict() for name, model in self.models.items()},
            "spread": dict(self.spread),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossModels:
        encoding = Encoding(
            tuple(data["numerical"]), tuple((name, tuple(levels)) for name, levels in data["categorical"])
        )
        models = {name: Booster.from_dict(model) for name, model in data["models"].items()}
        spread = {k: float(v) for k, v in data["spread"].items()}
        return cls(encoding, Binning.from_dict(data["binning"]), models, spread)


def row_loss(name: str, truth: FloatArray, prediction: FloatArray) -> FloatArray:
    error = np.abs(truth - prediction)
    if name == "mae":
        return error
    if name == "mse":
        return error * error
    return error / np.maximum(np.abs(truth), EPS)


def fit_loss_models(
    columns: Mapping[str, NDArray[Any]], prediction: FloatArray, truth: FloatArray, names: Sequence[str], seed: int = 0
) -> LossModels:
    """A loss model per loss that ``names`` need, fitted on four fifths of the reference."""
    encoding = fit_encoding(columns)
    matrix = encoding.matrix(columns, prediction)
    order = np.random.default_rng(seed).permutation(prediction.size)
    cut = int(prediction.size * (1 - HOLDOUT))
    train, held = np.sort(order[:cut]), np.sort(order[cut:])  # sorted: rows are read in memory order
    binning = fit_binning(matrix[train], encoding.categorical_mask)
    codes = binning.codes(matrix)
    train_codes, held_codes = codes.take(train, axis=1), codes.take(held, axis=1)
    wanted = sorted({"mse" if n == "rmse" else n for n in names}, key=LOSSES.index)
    targets = [row_loss(name, truth, prediction) for name in wanted]
    fitted = fit_boosters(  # all losses in one pass: faster than one by one, same models
        train_codes,
        [target[train] for target in targets],
        encoding.categorical_mask,
        max_iter=50,  # 50 rounds at rate 0.2: as accurate as 100 at 0.1 on the tests' data, half the time
        learning_rate=0.2,
        max_leaf_nodes=15,
        min_samples_leaf=100,
    )
    models: dict[str, Booster] = {}
    spread: dict[str, float] = {}
    for name, target, model in zip(wanted, targets, fitted, strict=True):
        models[name] = model
        spread[name] = relative_spread(target[held], np.maximum(model.predict(held_codes), 0.0))
    return LossModels(encoding, binning, models, spread)


def relative_spread(actual: FloatArray, expected: FloatArray) -> float:
    """The coefficient of variation of a row's loss around its predicted loss, pooled over rows:
    ``√(Σ (actual − expected)² / Σ expected²)``.

    Under location-scale errors ``actual = expected · (1 + ε)`` with ``sd(ε) = s`` this estimates s, as
    the spread of ``actual / expected − 1`` row by row does; but a row whose loss model predicts about
    zero (a boosted fit of squared errors can dip below 0 where errors are small) would divide by zero
    there and make one row's ratio the whole spread (bands of ±10¹³ around an MSE of 4). Pooled, such a
    row adds only its squared loss.
    """
    if actual.size < 2:
        return 1.0
    scale = float(np.sum(expected * expected))
    if scale <= 0.0:
        return 1.0
    return math.sqrt(float(np.sum((actual - expected) ** 2)) / scale)
