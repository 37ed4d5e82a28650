"""One detection run: every configured detector for one model and one window, stored and returned.

This is the single entry point the scheduler and ``monitor detect`` call. It knows nothing about
scheduling: the caller says which window (its end and length) and the function evaluates exactly that
window, so a late or repeated run of the same window gives the same rows (stored idempotently, see
:mod:`detectors.results`).

Per run: resolve the model's settings, reference (registering the configured one on first use) and
training reference; count the window's events per segment; then for the whole population and each
configured segment value run feature drift, prediction drift, window-over-window drift, skew, data
quality, volume, freshness and performance. A detector that fails records an error row (and a log
line) and the others still run.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.checks import estimated_performance, performance, quality, volume
from detectors.context import RunContext, error_result
from detectors.drift import scheduled as drift_detectors
from detectors.drift.scheduled_multivariate import multivariate_drift
from detectors.references.store import Reference, get_reference, training_reference
from detectors.registration import add_events, add_file
from detectors.report import DATASET, StatResult, Status, WindowReport, sample_status
from detectors.results import store_report
from detectors.segments import Census, Segment, census, segment_label
from monitor.errors import UserError
from monitor.logs import get_logger
from monitor.settings import IngestSettings, ModelSettings, PredictionSettings, Settings
from monitor.storage import Storage
from monitor.storage.events import events_columns
from monitor.storage.sqlfmt import sql_string, window_condition
from monitor.windows import resolve_window, to_utc, utc_now
from monitor_sdk.validation import model_name_problem

log = get_logger(__name__)
Progress = Callable[[str], None]
_REGISTERING = threading.Lock()


def _quiet(_: str) -> None:
    return None


def model_settings(storage: Storage, settings: Settings, model: str) -> tuple[ModelSettings, bool]:
    """The model's configuration, or defaults for a model that is not configured but has data.

    A model nobody configured, registered a reference for, or logged an event of is unknown, and so is
    a name events cannot carry (blank, with '/', too long).
    """
    problem = model_name_problem(model)
    if problem is not None:
        raise UserError(f"unknown model {model[:40]!r}: a model name {problem}")
    if model in settings.models:
        return settings.models[model], True
    if get_reference(storage, model) is not None:
        return ModelSettings(), False
    logged = storage.rows(
        f"SELECT count() FROM {storage.table('events')} WHERE model = {{model:String}}", parameters={"model": model}
    )[0][0]
    if int(logged) > 0:
        return ModelSettings(), False
    known = ", ".join(sorted(settings.models)) or "none configured"
    raise UserError(f"unknown model {model!r} (configured models: {known}; no reference or events either)")


def resolve_reference(
    storage: Storage,
    model: str,
    config: ModelSettings,
    progress: Progress = _quiet,
    limits: IngestSettings | None = None,
) -> Reference:
    """The reference a run compares with.

    ``models.M.reference.version`` pins a version; otherwise the newest registered reference wins. If
    the wanted reference is not registered yet and the configuration names a file or a time range,
    it is registered now (once; later runs find it), held to ingestion's ``limits`` as
    ``monitor reference add`` is.
    """
    wanted = config.reference
    version = wanted.version if wanted is not None else None
    found = get_reference(storage, model, version)
    if found is not None:
        return found
    if wanted is None:
        raise UserError(
            f"model {model!r} has no reference: run `monitor reference add --model {model} --file PATH` "
            f"or set models.{model}.reference in the configuration"
        )
    with _REGISTERING:  # the scheduler and the API may both get here first; register once
        found = get_reference(storage, model, version)
        return found if found is not None else _register_configured(storage, model, config, progress, limits)


def _register_configured(
    storage: Storage, model: str, config: ModelSettings, progress: Progress, limits: IngestSettings | None
) -> Reference:
    wanted = config.reference
    assert wanted is not None
    version = wanted.version
    features = dict(config.features) or None
    prediction = config.prediction if "prediction" in config.model_fields_set else None
    if wanted.file is not None:
        progress(f"registering the configured reference {wanted.file} for {model}")
        return add_file(
            storage,
            model,
            wanted.file,
            version=version,
            features=features,
            segment_keys=tuple(config.segments),
            prediction=prediction,
            progress=progress,
            limits=limits,
        )
    assert wanted.start is not None and wanted.end is not None
    progress(f"registering logged events {wanted.start} .. {wanted.end} as the reference of {model}")
    return add_events(
        storage,
        model,
        wanted.start,
        wanted.end,
        version=version,
        features=features,
        prediction=prediction,
        progress=progress,
    )


def effective_prediction(config: ModelSettings, reference: Reference, window: Census) -> PredictionSettings:
    """The configured prediction settings or, when ``prediction`` is not configured, what the predictions
    look like: text means classes, numbers within [0, 1] probabilities, other numbers a regression.
    The reference's predictions decide; without them, the window's."""
    if "prediction" in config.model_fields_set:
        return config.prediction
    profile = reference.profile.prediction
    if profile is not None:
        return performance.infer_prediction(profile.kind == "categorical", profile.min, profile.max)
    if window.total:
        text = window.text_predictions * 2 > window.total
        return performance.infer_prediction(text, window.prediction_min, window.prediction_max)
    return config.prediction


def _guarded(detector: str, segment: Segment, run: Callable[[], list[StatResult]]) -> list[StatResult]:
    """Run one detector; an exception becomes an error row (and a log line), never a failed run."""
    try:
        return run()
    except Exception as exc:
        log.error("detector failed", detector=detector, segment=segment_label(segment), error=str(exc))
        return [error_result(detector, DATASET, segment, exc)]


def _segment_results(ctx: RunContext, segment: Segment, ref_perf: dict[str, Any]) -> list[StatResult]:
    results: list[StatResult] = []
    drift = _guarded("feature_drift", segment, lambda: drift_detectors.feature_drift(ctx, segment))
    results += drift
    results += _guarded("prediction_drift", segment, lambda: drift_detectors.prediction_drift(ctx, segment))
    results += _guarded("window_drift", segment, lambda: drift_detectors.window_drift(ctx, segment))
    if ctx.training.load_id == ctx.reference.load_id:  # the same comparison: do not compute it twice
        results += drift_detectors.renamed(drift, "skew")
    else:
        results += _guarded("skew", segment, lambda: drift_detectors.skew(ctx, segment))
    results += _guarded("data_quality", segment, lambda: quality.data_quality(ctx, segment))
    results += _guarded("volume", segment, lambda: volume.volume(ctx, segment))
    results += _guarded("freshness", segment, lambda: volume.freshness(ctx, segment))
    results += _guarded("performance", segment, lambda: performance.performance(ctx, segment, ref_perf))
    results += _guarded("multivariate_drift", segment, lambda: multivariate_drift(ctx, segment))
    if segment is None:
        estimate = estimated_performance.estimated_performance
        results += _guarded(estimated_performance.DETECTOR, segment, lambda: estimate(ctx, segment))
    return results


def build_context(
    storage: Storage,
    settings: Settings,
    model: str,
    window_end: datetime | None = None,
    window: timedelta | None = None,
    now: datetime | None = None,
    progress: Progress = _quiet,
) -> RunContext:
    """Everything a run needs, resolved once: settings, window, references, features, counts."""
    now_utc = to_utc(now) if now is not None else utc_now()
    config, _ = model_settings(storage, settings, model)
    span = resolve_window(window_end, window, config.window, now_utc)
    reference = resolve_reference(storage, model, config, progress, settings.ingest)
    training = training_reference(storage, model) or reference
    typed = events_columns(storage)
    where = f"model = {sql_string(model)} AND {window_condition(span)}"
    found = census(storage, f"{storage.table('events')} FINAL", where, list(config.segments))
    return RunContext(
        storage=storage,
        model=model,
        settings=config,
        prediction=effective_prediction(config, reference, found),
        window=span,
        reference=reference,
        training=training,
        features=dict(config.features) or dict(reference.columns),
        events_columns=typed,
        now=now_utc,
        census=found,
    )


def run_detection(
    storage: Storage,
    settings: Settings,
    model: str,
    window_end: datetime | None = None,
    window: timedelta | None = None,
    now: datetime | None = None,
    progress: Progress = _quiet,
) -> WindowReport:
    """Run every detector for ``model`` over ``[window_end - window, window_end)``, store and return the rows.

    ``window_end`` defaults to ``now`` (which defaults to the current UTC time); ``window`` defaults to
    the model's configured ``window``. Raises :class:`monitor.errors.UserError` for an unknown model or
    a model without a reference; a failing detector never raises (it records an error row).
    """
    started = time.monotonic()
    ctx = build_context(storage, settings, model, window_end, window, now, progress)
    ref_perf = performance.reference_metrics(storage, ctx.reference, ctx.prediction)
    results: list[StatResult] = []
    for segment in ctx.segments:
        progress(f"detectors for {model} {segment_label(segment) or 'all events'} ({ctx.count(segment):,} events)")
        results += _segment_results(ctx, segment, ref_perf)
    n_current = ctx.count()
    min_samples = ctx.settings.min_samples
    errors = [r for r in results if r.status == "error"]
    status: Status = "error" if errors else sample_status(n_current, min_samples)
    if errors:
        message = f"{len(errors)} detector error(s): " + "; ".join(
            f"{r.detector}/{r.column or '*'}{'@' + r.segment if r.segment else ''}" for r in errors[:5]
        )
    elif status == "insufficient_data":
        message = f"{n_current} events in the window, below min_samples {min_samples}"
    else:
        message = ""
    report = WindowReport(
        model=model,
        model_version=ctx.model_version,
        window_start=ctx.window.start,
        window_end=ctx.window.end,
        status=status,
        n_current=n_current,
        n_reference=ctx.reference.rows,
        results=tuple(results),
        run_id=uuid.uuid4().hex,
        message=message,
        reference_version=ctx.reference.version,
    )
    store_report(storage, report, computed_at=datetime.now(UTC), duration_seconds=time.monotonic() - started)
    log.info(
        "detection run stored",
        model=model,
        window=str(ctx.window),
        status=status,
        rows=len(results),
        seconds=round(time.monotonic() - started, 3),
    )
    return report
