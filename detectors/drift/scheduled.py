"""The service's drift detectors, all through the drift engine (:func:`detectors.drift.engine.compare`).

- ``feature_drift``: the window's features against the reference;
- ``prediction_drift``: the prediction (column ``__prediction__``) against the reference's own
  predictions, when the reference has them;
- ``window_drift``: the window against the previous window of the same length (changed recently?);
- ``skew``: the window against the training reference (never matched training?).

Samples are built here from the registry and the run context: the reference's rows live in
``reference_rows`` under their load id, the window in ``events FINAL``; both use the same typed column
names, so a feature's expression is the same on both sides. A failing comparison is retried column by
column so one broken column becomes one error row and the dataset verdict is computed from the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from detectors.context import RunContext, error_result, short_reason
from detectors.drift.engine import ColumnOptions, DriftOptions, compare
from detectors.drift.reference_side import ReferenceSide, StoredCalibrations, cached_side, registered_sample
from detectors.drift.sample import ColumnSpec, Sample
from detectors.references.profile import Kind
from detectors.references.store import Reference
from detectors.report import DATASET, PREDICTION_COLUMN, StatResult
from detectors.segments import Segment, segment_label
from monitor.logs import get_logger
from monitor.windows import Window

log = get_logger(__name__)
MISSING = {"numerical": "nan", "categorical": "CAST(NULL, 'Nullable(String)')"}


def reference_sample(ctx: RunContext, reference: Reference, columns: Mapping[str, Kind], segment: Segment) -> Sample:
    """The reference's rows (of one segment where it carries the key); a column it lacks is all-missing."""
    return registered_sample(ctx.storage, reference, columns, segment)


def reference_side(ctx: RunContext, reference: Reference, sample: Sample) -> ReferenceSide | None:
    """The stored summary of a registered reference's sample (computed and stored on first use), so the
    engine reads only the window; None if that fails (the engine then scans the reference itself)."""
    try:
        return cached_side(ctx.storage, reference.load_id, sample)
    except Exception as exc:
        log.warning("reference summary unavailable; scanning the reference", error=short_reason(exc))
        return None


def events_sample(
    ctx: RunContext, columns: Mapping[str, Kind], segment: Segment, window: Window | None = None
) -> Sample:
    """The model's events in the window (default: the run's), read with FINAL."""
    specs = {
        name: ColumnSpec(
            expr=ctx.prediction_event_expr if name == PREDICTION_COLUMN else ctx.event_expr(name), kind=kind
        )
        for name, kind in columns.items()
    }
    return Sample(
        from_sql=ctx.events_from,
        columns=specs,
        where_sql=ctx.events_where(window, segment),
        description=f"{ctx.model} events {window or ctx.window}",
    )


def drift_options(ctx: RunContext, columns: Mapping[str, Kind], calibrate: bool = True) -> DriftOptions:
    """The model's drift settings for these columns (per-column overrides of other columns left out).

    ``calibrate``: False where the reference is not a registered one (window over window), whose
    calibrations could not be kept: fixed thresholds there, except per-column ``calibrated``."""
    drift = ctx.settings.drift
    return DriftOptions(
        threshold_share=drift.threshold_share,
        fdr=drift.fdr,
        min_samples=ctx.settings.min_samples,
        columns={
            name: ColumnOptions(
                method=override.method,
                threshold=override.threshold if isinstance(override.threshold, float | int) else None,
                calibrated=override.threshold == "calibrated",
            )
            for name, override in drift.columns.items()
            if name in columns
        },
        calibrate=drift.threshold if calibrate else "fixed",
    )


def renamed(results: list[StatResult], detector: str) -> list[StatResult]:
    """The feature-drift rows under another name (skew, when the training reference is the reference)."""
    return [dataclasses.replace(r, detector=detector) for r in results if r.detector == "feature_drift"]


def _compare(
    ctx: RunContext,
    detector: str,
    reference: Sample,
    current: Sample,
    segment: Segment,
    side: ReferenceSide | None = None,
    load_id: str | None = None,
) -> list[StatResult]:
    """Compare all columns at once; if that fails, column by column with an error row per failure.

    The engine already isolates a failing statistic; the retry covers what it shares across columns
    (one profiling scan per side), so one broken column cannot take the others down. ``side``: the
    reference's stored summary (registered references), so the reference is not scanned; ``load_id``:
    the registered reference's load, whose calibrated thresholds are kept beside that summary.
    """
    label = segment_label(segment)
    kinds = {name: spec.kind for name, spec in current.columns.items()}
    options = drift_options(ctx, kinds, calibrate=load_id is not None)
    cache = StoredCalibrations(ctx.storage, load_id, reference) if load_id is not None else None
    try:
        drift = compare(ctx.storage, reference, current, options, reference_side=side, calibrations=cache)
        return _undecided(drift.to_results(detector, segment=label))
    except Exception as exc:
        if len(current.columns) <= 1:
            raise
        log.warning("drift comparison failed; retrying column by column", detector=detector, error=str(exc))
    results: list[StatResult] = []
    decided: list[StatResult] = []
    for name in current.columns:
        try:
            drift = compare(
                ctx.storage,
                reference.select([name]),
                current.select([name]),
                options,
                reference_side=side,
                calibrations=cache,
            )
        except Exception as exc:
            log.error("drift failed for a column", detector=detector, column=name, error=str(exc))
            results.append(error_result(detector, name, segment, exc))
            continue
        rows = [r for r in drift.to_results(detector, segment=label) if r.column != DATASET]
        results += rows
        decided += [r for r in rows if r.drift is not None]
    share = options.threshold_share
    drifted = [r.column for r in decided if r.drift]
    results.append(
        StatResult(
            detector,
            DATASET,
            "drift_share",
            len(drifted) / len(decided) if decided else 0.0,
            threshold=share,
            drift=len(drifted) / len(decided) >= share if decided else None,
            segment=label,
            status="ok" if decided else "insufficient_data",
            n_current=ctx.count(segment),
            details={
                "drifted": drifted,
                "decided": len(decided),
                "failed": [r.column for r in results if r.statistic == "error"],
            },
        )
    )
    return results


def _undecided(results: list[StatResult]) -> list[StatResult]:
    """No verdict where nothing was decided: a dataset row over insufficient data says neither yes nor no."""
    return [
        dataclasses.replace(r, drift=None) if r.status == "insufficient_data" and r.drift is not None else r
        for r in results
    ]


def feature_drift(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    sample = reference_sample(ctx, ctx.reference, ctx.features, segment)
    side = reference_side(ctx, ctx.reference, sample)
    features = events_sample(ctx, ctx.features, segment)
    return _compare(ctx, "feature_drift", sample, features, segment, side, ctx.reference.load_id)


def skew(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    sample = reference_sample(ctx, ctx.training, ctx.features, segment)
    side = reference_side(ctx, ctx.training, sample)
    features = events_sample(ctx, ctx.features, segment)
    return _compare(ctx, "skew", sample, features, segment, side, ctx.training.load_id)


def window_drift(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    """The window against the previous one; here "the reference" of the engine's messages is that window."""
    rows = _compare(
        ctx,
        "window_drift",
        events_sample(ctx, ctx.features, segment, ctx.window.previous()),
        events_sample(ctx, ctx.features, segment),
        segment,
    )
    return [
        dataclasses.replace(
            r, details={**r.details, "message": r.details["message"].replace("reference", "previous window")}
        )
        if "message" in r.details
        else r
        for r in rows
    ]


def prediction_drift(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    """The prediction against the reference's own predictions (nothing when the reference has none)."""
    if ctx.reference.prediction_kind is None:
        return []
    if ctx.reference.prediction_kind != ctx.prediction_kind:
        problem = ValueError(
            f"the reference's predictions are {ctx.reference.prediction_kind} but prediction.type "
            f"{ctx.prediction.type} makes them {ctx.prediction_kind}"
        )
        return [error_result("prediction_drift", PREDICTION_COLUMN, segment, problem)]
    columns: dict[str, Kind] = {PREDICTION_COLUMN: ctx.prediction_kind}
    sample = reference_sample(ctx, ctx.reference, columns, segment)
    side = reference_side(ctx, ctx.reference, sample)
    current = events_sample(ctx, columns, segment)
    return _compare(ctx, "prediction_drift", sample, current, segment, side, ctx.reference.load_id)
