"""The service's drift detectors, all through the drift engine (:func:`detectors.engine.compare`).

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

from detectors.context import RunContext, Segment, error_result, segment_label
from detectors.profile import Kind
from detectors.references import Reference
from detectors.report import DATASET, PREDICTION_COLUMN, StatResult
from detectors.windows import Window
from monitor.logs import get_logger

log = get_logger(__name__)


def _engine():  # type: ignore[no-untyped-def]
    from detectors import engine, sample

    return engine, sample


def reference_sample(ctx: RunContext, reference: Reference, columns: Mapping[str, Kind], segment: Segment):  # type: ignore[no-untyped-def]
    _, sample = _engine()
    specs = {}
    for name, kind in columns.items():
        if name == PREDICTION_COLUMN:
            expr = reference.prediction_expr()
        elif name in reference.columns and reference.columns[name] == kind:
            expr = reference.column_expr(name)
        else:
            expr = None
        specs[name] = sample.ColumnSpec(expr=expr or _missing(kind), kind=kind)
    return sample.Sample(
        from_sql=reference.from_sql(ctx.storage), where_sql=reference.where_sql(segment), columns=specs
    )


def events_sample(ctx: RunContext, columns: Mapping[str, Kind], segment: Segment, window: Window | None = None):  # type: ignore[no-untyped-def]
    _, sample = _engine()
    specs = {
        name: sample.ColumnSpec(
            expr=ctx.prediction_event_expr if name == PREDICTION_COLUMN else ctx.event_expr(name), kind=kind
        )
        for name, kind in columns.items()
    }
    return sample.Sample(from_sql=ctx.events_from, where_sql=ctx.events_where(window, segment), columns=specs)


def _missing(kind: Kind) -> str:
    return "nan" if kind == "numerical" else "CAST(NULL, 'Nullable(String)')"


def _options(ctx: RunContext):  # type: ignore[no-untyped-def]
    engine, _ = _engine()
    drift = ctx.settings.drift
    return engine.DriftOptions(
        threshold_share=drift.threshold_share,
        fdr=drift.fdr,
        min_samples=ctx.settings.min_samples,
        methods={c: s.method for c, s in drift.columns.items() if s.method},
        thresholds={c: s.threshold for c, s in drift.columns.items() if s.threshold is not None},
    )


def _with_segment(results: list[StatResult], segment: Segment) -> list[StatResult]:
    label = segment_label(segment)
    return [dataclasses.replace(r, segment=label) for r in results]


def renamed(results: list[StatResult], detector: str) -> list[StatResult]:
    """The same rows under another detector name (skew when the training reference is the reference)."""
    return [dataclasses.replace(r, detector=detector) for r in results if r.detector == "feature_drift"]


def _compare(
    ctx: RunContext,
    detector: str,
    reference,
    current,
    segment: Segment,  # type: ignore[no-untyped-def]
) -> list[StatResult]:
    """Compare all columns at once; if that fails, column by column with an error row per failure."""
    engine, sample = _engine()
    options = _options(ctx)
    try:
        return _with_segment(engine.compare(ctx.storage, reference, current, options).to_results(detector), segment)
    except Exception as exc:
        if len(current.columns) <= 1:
            raise
        log.warning("drift comparison failed; retrying column by column", detector=detector, error=str(exc))
    results: list[StatResult] = []
    decided: list[StatResult] = []
    for name in current.columns:
        one_ref = dataclasses.replace(reference, columns={name: reference.columns[name]})
        one_cur = dataclasses.replace(current, columns={name: current.columns[name]})
        try:
            rows = engine.compare(ctx.storage, one_ref, one_cur, options).to_results(detector)
        except Exception as exc:
            log.error("drift failed for a column", detector=detector, column=name, error=str(exc))
            results.append(error_result(detector, name, segment, exc))
            continue
        column_rows = [r for r in rows if r.column != DATASET]
        results += column_rows
        decided += [r for r in column_rows if r.threshold is not None and r.status == "ok"]
    share = ctx.settings.drift.threshold_share
    drifted = sum(1 for r in decided if r.drift)
    results.append(
        StatResult(
            detector,
            DATASET,
            "drift_share",
            drifted / len(decided) if decided else None,
            threshold=share,
            drift=(drifted / len(decided) >= share) if decided else None,
            status="ok" if decided else "insufficient_data",
            details={"drifted_columns": drifted, "columns": len(decided), "partial": True},
        )
    )
    del sample
    return _with_segment(results, segment)


def feature_drift(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    return _compare(
        ctx,
        "feature_drift",
        reference_sample(ctx, ctx.reference, ctx.features, segment),
        events_sample(ctx, ctx.features, segment),
        segment,
    )


def skew(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    return _compare(
        ctx,
        "skew",
        reference_sample(ctx, ctx.training, ctx.features, segment),
        events_sample(ctx, ctx.features, segment),
        segment,
    )


def window_drift(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    previous = ctx.window.previous()
    return _compare(
        ctx,
        "window_drift",
        events_sample(ctx, ctx.features, segment, previous),
        events_sample(ctx, ctx.features, segment),
        segment,
    )


def prediction_drift(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    if ctx.reference.prediction_kind is None:
        return []
    columns: dict[str, Kind] = {PREDICTION_COLUMN: ctx.prediction_kind}
    if ctx.reference.prediction_kind != ctx.prediction_kind:
        return [
            error_result(
                "prediction_drift",
                PREDICTION_COLUMN,
                segment,
                ValueError(
                    f"the reference's predictions are {ctx.reference.prediction_kind} but prediction.type "
                    f"{ctx.prediction.type} makes them {ctx.prediction_kind}"
                ),
            )
        ]
    return _compare(
        ctx,
        "prediction_drift",
        reference_sample(ctx, ctx.reference, columns, segment),
        events_sample(ctx, columns, segment),
        segment,
    )
