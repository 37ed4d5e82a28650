"""Domain classifier: can a model tell the window's rows from the reference's?

Rows of both sides are labelled (reference 0, current 1) and a histogram gradient boosting classifier
(scikit-learn) is cross-validated over :data:`FOLDS` stratified folds; the value is the ROC AUC of the
pooled out-of-fold scores. 0.5 means the sides are indistinguishable; 1.0 that every row gives its side
away. Unlike PCA reconstruction it sees non-linear relations and categories natively, at the price of a
fit per window.

Threshold: under no drift the pooled out-of-fold AUC behaves like a Mann-Whitney AUC of two independent
groups, centred on 0.5 with std sqrt((n1 + n2 + 1) / (12 n1 n2)); the threshold is the larger of 0.5 +
3 such stds and :data:`MIN_THRESHOLD` (0.55), so that on large windows a difference too small to matter
does not alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.drift.multivariate.encoding import category_codes, fit_encoder
from detectors.drift.multivariate.rows import Rows

FOLDS = 5
MIN_THRESHOLD = 0.55
SIGMAS = 3.0
MAX_ITER = 50
MIN_LEAF = 20  # scikit-learn's default min_samples_leaf, kept where the training rows allow it


def min_leaf(train_rows: int) -> int:
    """The fewest rows a leaf may hold: scikit-learn's 20, but at most a tenth of the training rows (and at
    least 2). With 20 a tree cannot split fewer than 40 rows, so below 25 rows a side every score was the
    same and the AUC exactly 0.5 however far apart the sides were."""
    return max(2, min(MIN_LEAF, train_rows // 10))


@dataclass(frozen=True)
class DomainResult:
    auc: float
    threshold: float
    n_reference: int
    n_current: int


def null_threshold(n_reference: int, n_current: int) -> float:
    """0.5 + 3 stds of the AUC of indistinguishable sides of these sizes, at least 0.55."""
    std = np.sqrt((n_reference + n_current + 1) / (12.0 * n_reference * n_current))
    return float(max(MIN_THRESHOLD, 0.5 + SIGMAS * std))


def classify(reference: Rows, current: Rows, folds: int = FOLDS, seed: int = 0) -> DomainResult:
    """The cross-validated AUC of telling ``current`` from ``reference`` (at least ``folds`` rows each)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    if min(reference.count, current.count) < folds:
        raise ValueError(f"the domain classifier needs at least {folds} rows on each side")
    shares = fit_encoder(reference).categorical
    columns: list[np.ndarray] = []
    for name in reference.numerical:
        columns.append(np.concatenate([reference.numerical[name], current.numerical[name]]))
    for name in reference.categorical:
        codes = shares[name][0]
        columns.append(
            np.concatenate(
                [category_codes(reference.categorical[name], codes), category_codes(current.categorical[name], codes)]
            )
        )
    features = np.column_stack(columns)
    labels = np.concatenate([np.zeros(reference.count, dtype=np.int8), np.ones(current.count, dtype=np.int8)])
    mask = np.array([False] * len(reference.numerical) + [True] * len(reference.categorical))
    scores = np.empty(len(labels))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # One OpenMP thread: the fits are small, and on a busy machine (or beside ClickHouse's own threads)
    # scikit-learn's default of one thread per core made a 7,000-row fit 100x slower.
    with threadpool_limits(1, user_api="openmp"):
        for train, test in splitter.split(features, labels):
            scores[test] = _fit_score(features, labels, train, test, mask, seed)
    auc = float(roc_auc_score(labels, scores))
    return DomainResult(auc, null_threshold(reference.count, current.count), reference.count, current.count)


def _fit_score(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, mask: np.ndarray, seed: int
) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=MAX_ITER,
        min_samples_leaf=min_leaf(len(train)),
        categorical_features=mask if mask.any() else None,
        random_state=seed,
    )
    model.fit(features[train], labels[train])
    result: np.ndarray = model.predict_proba(features[test])[:, 1]
    return result
