"""Both multivariate methods for one reference and one current sample (``monitor drift --multivariate``
and the service's ``multivariate_drift`` detector).

At most ``limit`` rows per side are drawn (:mod:`detectors.drift.multivariate.rows`). A fitted PCA passed in
(the service keeps one per reference) is used as is; otherwise it is fitted on the drawn reference rows.
A method that cannot run (too few rows, no column) gives an ``insufficient_data`` entry saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detectors.drift.multivariate import domain, pca
from detectors.drift.multivariate.result import METHODS, MultivariateDrift, MultivariateMethod
from detectors.drift.multivariate.rows import DEFAULT_ROWS, Rows, draw
from detectors.drift.sample import Kind, Sample
from monitor.errors import InputError
from monitor.storage import Storage

MIN_ROWS = 10  # per side, below which neither method says anything


@dataclass(frozen=True)
class MultivariateOptions:
    methods: tuple[MultivariateMethod, ...] = METHODS
    limit: int = DEFAULT_ROWS  # rows drawn per side
    classifier_limit: int = 10_000  # rows per side the domain classifier trains on (a fit per fold)
    seed: int = 0

    def validate(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise InputError(f"unknown multivariate method {unknown[0]!r}; expected one of {', '.join(METHODS)}")
        if self.limit < MIN_ROWS or self.classifier_limit < MIN_ROWS:
            raise InputError(f"multivariate row limits must be at least {MIN_ROWS}")


def compare_rows(
    reference: Rows, current: Rows, options: MultivariateOptions, fitted: pca.PcaFit | None = None
) -> list[MultivariateDrift]:
    """Both methods on rows already drawn (every column of ``reference`` must be in ``current``)."""
    results: list[MultivariateDrift] = []
    n_ref, n_cur = reference.count, current.count

    def undecided(method: MultivariateMethod, message: str) -> MultivariateDrift:
        return MultivariateDrift(
            method, None, None, None, n_ref, n_cur, status="insufficient_data", details={"message": message}
        )

    too_few = min(reference.count, current.count) < MIN_ROWS
    for method in options.methods:
        if too_few:
            results.append(undecided(method, f"fewer than {MIN_ROWS} rows on a side"))
        elif method == "pca_reconstruction":
            model = fitted or pca.fit(reference, seed=options.seed)
            if model.components.shape[0] >= model.components.shape[1]:
                results.append(undecided(method, "the kept components span every column: nothing to reconstruct"))
                continue
            value = model.value(current)
            threshold = model.threshold(current.count)
            details = {"components": int(model.components.shape[0]), "columns": len(model.encoder.names)}
            results.append(
                MultivariateDrift(method, value, threshold, bool(value > threshold), n_ref, n_cur, details=details)
            )
        else:
            ref, cur = (
                _subsample(reference, options.classifier_limit, options.seed),
                _subsample(current, options.classifier_limit, options.seed + 1),
            )
            found = domain.classify(ref, cur, seed=options.seed)
            results.append(
                MultivariateDrift(
                    method,
                    found.auc,
                    found.threshold,
                    bool(found.auc >= found.threshold),
                    n_reference=found.n_reference,
                    n_current=found.n_current,
                )
            )
    return results


def compare(
    storage: Storage,
    reference: Sample,
    current: Sample,
    names: Sequence[str],
    kinds: dict[str, Kind],
    options: MultivariateOptions,
    fitted: pca.PcaFit | None = None,
) -> list[MultivariateDrift]:
    """Draw the rows of ``names`` on both sides and run :func:`compare_rows`."""
    options.validate()
    if not names:
        raise InputError("multivariate drift needs at least one common column")
    ref = draw(storage, reference, names, kinds, options.limit)
    cur = draw(storage, current, names, kinds, options.limit)
    return compare_rows(ref, cur, options, fitted)


def _subsample(rows: Rows, limit: int, seed: int) -> Rows:
    if rows.count <= limit:
        return rows
    import numpy as np

    return rows.take(np.sort(np.random.default_rng(seed).choice(rows.count, limit, replace=False)))
