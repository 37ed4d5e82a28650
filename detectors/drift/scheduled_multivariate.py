"""The service's ``multivariate_drift`` detector: the window's features, all together, against the reference.

Runs on the whole population (not per segment: the PCA is fitted on the whole reference). The PCA is
fitted once per registered reference and kept (:mod:`detectors.drift.multivariate.store`); the domain
classifier, when configured, is fitted per window by nature. At most ``drift.multivariate_rows`` rows
are drawn per side. One ``detector_results`` row per method (column ``""``, statistic = the method).
"""

from __future__ import annotations

from detectors.context import RunContext, error_result, short_reason
from detectors.drift import scheduled as drift_detectors
from detectors.drift.multivariate import pca, store
from detectors.drift.multivariate.compare import MultivariateOptions, compare_rows
from detectors.drift.multivariate.result import MultivariateDrift
from detectors.drift.multivariate.rows import Rows, draw
from detectors.drift.sample import Kind, Sample
from detectors.report import StatResult
from detectors.segments import Segment, segment_label
from monitor.errors import StorageError
from monitor.logs import get_logger

log = get_logger(__name__)
DETECTOR = "multivariate_drift"


def multivariate_drift(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    methods = tuple(ctx.settings.drift.multivariate)
    if not methods or segment is not None or not ctx.features:
        return []
    label = segment_label(segment)
    n_window = ctx.count(segment)
    if n_window < ctx.settings.min_samples:
        message = f"{n_window} events in the window, below min_samples {ctx.settings.min_samples}"
        return [
            MultivariateDrift(m, None, None, None, n_current=n_window, status="insufficient_data",
                              details={"message": message}).to_result(DETECTOR, label)
            for m in methods
        ]  # fmt: skip
    options = MultivariateOptions(methods=methods, limit=ctx.settings.drift.multivariate_rows)
    reference = drift_detectors.reference_sample(ctx, ctx.reference, ctx.features, segment)
    current = drift_detectors.events_sample(ctx, ctx.features, segment)
    kinds = dict(ctx.features)
    failed: list[StatResult] = []
    try:
        cur_rows = draw(ctx.storage, current, list(kinds), kinds, options.limit)
    except StorageError:  # one broken column must not take the others down: leave it out, say so
        failed = [_probe(ctx, current, name, kinds, segment) for name in kinds]
        broken = {r.column for r in failed if r.status == "error"}
        failed = [r for r in failed if r.status == "error"]
        kinds = {n: k for n, k in kinds.items() if n not in broken}
        if not kinds:
            return failed
        cur_rows = draw(ctx.storage, current, list(kinds), kinds, options.limit)
    reference, current = reference.select(list(kinds)), current.select(list(kinds))
    ref_rows = draw(ctx.storage, reference, list(kinds), kinds, options.limit)
    fitted: pca.PcaFit | None = None
    if "pca_reconstruction" in methods:
        fitted = _stored_fit(ctx, reference) or _fit_and_store(ctx, reference, ref_rows)
    return failed + [m.to_result(DETECTOR, label) for m in compare_rows(ref_rows, cur_rows, options, fitted)]


def _probe(ctx: RunContext, current: Sample, name: str, kinds: dict[str, Kind], segment: Segment) -> StatResult:
    """Whether one column of the window can be read: an ok placeholder, or its error row."""
    try:
        draw(ctx.storage, current.select([name]), [name], kinds, 1)
    except StorageError as exc:
        log.error("multivariate drift leaves out an unreadable column", column=name, error=short_reason(exc))
        return error_result(DETECTOR, name, segment, exc)
    return StatResult(DETECTOR, name, "probe", None)


def _stored_fit(ctx: RunContext, reference: Sample) -> pca.PcaFit | None:
    try:
        return store.load(ctx.storage, ctx.reference.load_id, reference)
    except Exception as exc:
        log.warning("stored PCA fit unreadable; fitting again", error=short_reason(exc))
        return None


def _fit_and_store(ctx: RunContext, reference: Sample, rows: Rows) -> pca.PcaFit | None:
    if rows.count < 2:
        return None
    fitted = pca.fit(rows)
    try:
        store.store(ctx.storage, ctx.reference.load_id, reference, fitted)
    except Exception as exc:  # the run does not depend on it; the next one fits again
        log.warning("could not store the PCA fit", error=short_reason(exc))
    return fitted
