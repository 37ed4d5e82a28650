"""Both multivariate methods on awkward inputs (missing values, extreme magnitudes, constant columns, long
category tails, tiny samples). PCA reconstruction is checked against NannyML's published method rebuilt
from scikit-learn (SimpleImputer(mean) -> StandardScaler -> PCA(n_components=0.65) -> mean Euclidean
reconstruction error), the domain classifier against a cross-validated logistic regression."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler

from detectors.drift.multivariate import domain, pca
from detectors.drift.multivariate.compare import MultivariateOptions, compare_rows
from detectors.drift.multivariate.rows import Rows

PCA_ONLY = MultivariateOptions(methods=("pca_reconstruction",))


def numbers(n: int, seed: int, columns: int = 4) -> np.ndarray:
    """Correlated columns (one shared factor), so the 65% rule keeps fewer components than columns."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1)) @ rng.normal(size=(1, columns)) + rng.normal(0, 0.5, (n, columns))


def rows_of(matrix: np.ndarray) -> Rows:
    return Rows({f"f{i}": matrix[:, i].copy() for i in range(matrix.shape[1])}, {}, len(matrix), len(matrix))


def nannyml_value(reference: np.ndarray, current: np.ndarray) -> float:
    imputer = SimpleImputer(strategy="mean").fit(reference)
    scaler = StandardScaler().fit(imputer.transform(reference))
    matrix = scaler.transform(imputer.transform(reference))
    model = PCA(n_components=0.65, svd_solver="full").fit(matrix)
    window = scaler.transform(imputer.transform(current))
    return float(np.linalg.norm(window - model.inverse_transform(model.transform(window)), axis=1).mean())


def test_missing_values_are_imputed_before_the_std_is_taken() -> None:
    """NannyML imputes the mean and then fits its scaler, so the std is the imputed column's (smaller than
    the present values' std when values are missing); it used to be the present values' std (3% off here)."""
    reference, current = numbers(3000, 1), numbers(1000, 2)
    rng = np.random.default_rng(3)
    reference[rng.random(3000) < 0.2, 0] = np.nan
    current[rng.random(1000) < 0.2, 0] = np.nan
    fitted = pca.fit(rows_of(reference))
    assert fitted.value(rows_of(current)) == pytest.approx(nannyml_value(reference, current), rel=1e-9)


@pytest.mark.parametrize("scale", [1e300, 1e-300, 1e-305])
def test_huge_and_tiny_magnitudes_give_the_unscaled_value(scale: float) -> None:
    """Standardising makes the method blind to units: a column in 1e300s or 1e-300s scores as in units.
    Squares of such values overflow (to inf) or underflow (to 0); both used to give value 0 and threshold 0."""
    reference, current = numbers(2000, 4), numbers(1000, 5)
    plain = pca.fit(rows_of(reference))
    scaled = pca.fit(rows_of(reference * scale))
    assert scaled.value(rows_of(current * scale)) == pytest.approx(plain.value(rows_of(current)), rel=1e-9)
    assert scaled.threshold(1000) == pytest.approx(plain.threshold(1000), rel=1e-9)


def test_values_near_the_largest_float_are_scored() -> None:
    """Values up to +-1.8e308: their sum overflows, and so does x - mean for opposite signs; the value is
    still the scale-free one (it used to be NaN, printed as null with "drift": false)."""
    reference, current = numbers(2000, 6), numbers(1000, 7)
    reference[:, 0] /= np.abs(reference[:, 0]).max()  # within +-1, so within +-1.79e308 once scaled
    reference[np.argmax(reference[:, 0]), 0], reference[np.argmin(reference[:, 0]), 0] = 1.0, -1.0
    current[:, 0] = np.clip(current[:, 0], -1.0, 1.0)
    huge_ref, huge_cur = reference.copy(), current.copy()
    huge_ref[:, 0] *= 1.79e308
    huge_cur[:, 0] *= 1.79e308
    assert np.isfinite(huge_ref).all() and np.isfinite(huge_cur).all()
    value = pca.fit(rows_of(huge_ref)).value(rows_of(huge_cur))
    assert np.isfinite(value)
    assert value == pytest.approx(pca.fit(rows_of(reference)).value(rows_of(current)), rel=1e-9)


def test_a_constant_reference_flags_any_other_constant() -> None:
    """Every reference column constant: no variance, so no component; a window at the same constants
    scores 0 (no drift) and one column at another constant scores its standardised distance (1: a
    constant column divides by 1). An arbitrary eigenvector of the zero covariance used to be kept, and
    a change along it was rebuilt perfectly: value 0, threshold 0, no drift."""
    constant = np.column_stack([np.full(200, 1.0), np.full(200, 2.0)])
    fitted = pca.fit(rows_of(constant))
    assert fitted.components.shape == (0, 2)
    (same,) = compare_rows(rows_of(constant), rows_of(constant[:50]), PCA_ONLY)
    assert (same.value, same.threshold, same.drift) == (0.0, 0.0, False)
    for column in (0, 1):
        moved = constant[:50].copy()
        moved[:, column] += 1.0
        (found,) = compare_rows(rows_of(constant), rows_of(moved), PCA_ONLY)
        assert found.value == pytest.approx(1.0) and found.drift is True


@pytest.mark.parametrize("kinds", [60, 10])
def test_unseen_categories_read_as_the_tail_bucket_or_as_zero_without_one(kinds: int) -> None:
    """docs/drift.md: the 50 most frequent categories are their share, every other value (seen in the
    reference or not) the share of the rest, which is 0 when the reference has no more than 50
    categories. Checked against scikit-learn on that encoding, and through the stored fit."""
    rng = np.random.default_rng(11)
    names = [f"k{i:02d}" for i in range(kinds)]
    tiers = np.repeat(np.array(names, dtype=object), [100 - i for i in range(kinds)])  # no tie at the 50th
    tiers = tiers[rng.permutation(len(tiers))]
    n = len(tiers)
    reference_numbers = numbers(n, 12, columns=3)
    unseen = np.array([f"new{i}" for i in range(300)], dtype=object)
    current_tiers = np.concatenate([rng.choice(names, 600).astype(object), unseen])
    current_numbers = numbers(len(current_tiers), 13, columns=3)

    def rows(matrix: np.ndarray, tier: np.ndarray) -> Rows:
        return Rows({f"f{i}": matrix[:, i].copy() for i in range(3)}, {"tier": tier}, len(tier), len(tier))

    shares = {c: (100 - i) / n for i, c in enumerate(names[:50])}
    other = sum(100 - i for i in range(50, kinds)) / n

    def encoded(matrix: np.ndarray, tier: np.ndarray) -> np.ndarray:
        return np.column_stack([matrix, [shares.get(c, other) for c in tier]])

    scaler = StandardScaler().fit(encoded(reference_numbers, tiers))
    model = PCA(n_components=0.65, svd_solver="full").fit(scaler.transform(encoded(reference_numbers, tiers)))
    window = scaler.transform(encoded(current_numbers, current_tiers))
    expected = np.linalg.norm(window - model.inverse_transform(model.transform(window)), axis=1).mean()

    fitted = pca.fit(rows(reference_numbers, tiers))
    assert fitted.value(rows(current_numbers, current_tiers)) == pytest.approx(expected, rel=1e-9)
    stored = pca.PcaFit.from_json(json.loads(json.dumps(fitted.to_json())))
    assert stored.value(rows(current_numbers, current_tiers)) == pytest.approx(expected, rel=1e-9)


def test_the_domain_classifier_tells_ten_rows_a_side_apart() -> None:
    """10 rows a side, 10 standard deviations apart: any classifier separates them (a cross-validated
    logistic regression scores AUC 1). With scikit-learn's default leaves of 20 rows no tree could split
    the 16 training rows of a fold, and the AUC was exactly 0.5 (no drift)."""
    rng = np.random.default_rng(21)
    near, far = rng.normal(0, 1, (10, 2)), rng.normal(10, 1, (10, 2))
    features, labels = np.vstack([near, far]), np.repeat([0, 1], 10)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_predict(LogisticRegression(), features, labels, cv=folds, method="predict_proba")[:, 1]
    assert roc_auc_score(labels, scores) == 1.0
    found = domain.classify(rows_of(near), rows_of(far))
    assert found.auc > 0.95 and found.auc >= found.threshold


def test_the_domain_classifier_on_ten_rows_a_side_of_one_distribution() -> None:
    """The smaller leaves do not make small same-distribution samples alarm: at most 1 in 100 seeds."""
    alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        found = domain.classify(rows_of(rng.normal(size=(10, 3))), rows_of(rng.normal(size=(10, 3))), seed=seed)
        alarms += found.auc >= found.threshold
    assert alarms <= 1


def test_a_row_far_off_the_reference_has_a_finite_error() -> None:
    """One window value of 1e290 against a reference of unit std: its squared distance overflows, and the
    value used to be inf (null in the JSON). Its error is what a value of 1e90 gives, times 1e200 (the
    other coordinates are negligible at either size)."""
    reference, current = numbers(1000, 31, columns=3), numbers(200, 32, columns=3)
    fitted = pca.fit(rows_of(reference))
    far, farther = current.copy(), current.copy()
    far[0, 0], farther[0, 0] = 1e90, 1e290
    errors = fitted.errors(rows_of(farther))
    assert np.isfinite(errors).all()
    assert errors[0] == pytest.approx(fitted.errors(rows_of(far))[0] * 1e200, rel=1e-9)
    assert errors[1:] == pytest.approx(fitted.errors(rows_of(current))[1:], rel=1e-12)
    (found,) = compare_rows(rows_of(reference), rows_of(farther), PCA_ONLY)
    assert found.value is not None and np.isfinite(found.value) and found.drift is True


def test_a_value_beyond_float_range_in_standard_deviations_drifts() -> None:
    """1e10 where the reference's values are of order 1e-300 is 1e310 standard deviations away, more than
    a float holds: it used to become inf, NaN in the projection, and a NaN value read as no drift."""
    reference = numbers(500, 33, columns=3) * 1e-300
    current = reference[:200].copy()
    current[0, 0] = 1e10
    (found,) = compare_rows(rows_of(reference), rows_of(current), PCA_ONLY)
    assert found.value is not None and np.isfinite(found.value) and found.drift is True
