"""The service's ``multivariate_drift`` detector: the window's features, all together, against the reference.

Runs on the whole population (not per segment: the PCA is fitted on the whole reference). The PCA is
fitted once per registered reference and kept (:mod:`detectors.multivariate.store`); the domain
classifier, when configured, is fitted per window by nature. At most ``drift.multivariate_rows`` rows
are drawn per side. One ``detector_results`` row per method (column ``""``, statistic = the method).
"""

from __future__ import annotations

from detectors import drift_detectors
from detectors.context import RunContext, short_reason
from detectors.multivariate import pca, store
from detectors.multivariate.compare import MultivariateOptions, compare_rows
from detectors.multivariate.result import MultivariateDrift
from detectors.multivariate.rows import Rows, draw
from detectors.report import StatResult
from detectors.sample import Sample
from detectors.segments import Segment, segment_label
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
    names = list(kinds)
    ref_rows = draw(ctx.storage, reference, names, kinds, options.limit)
    fitted: pca.PcaFit | None = None
    if "pca_reconstruction" in methods:
        fitted = _stored_fit(ctx, reference) or _fit_and_store(ctx, reference, ref_rows)
    cur_rows = draw(ctx.storage, current, names, kinds, options.limit)
    return [m.to_result(DETECTOR, label) for m in compare_rows(ref_rows, cur_rows, options, fitted)]


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
