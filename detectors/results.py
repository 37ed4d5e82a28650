"""Storing and reading ``detector_results``: idempotent per (model, window).

Why insert-then-delete rather than delete-then-insert or ReplacingMergeTree alone:

- ReplacingMergeTree alone (FINAL on the row key) replaces the rows a rerun writes again, but a row a
  rerun no longer produces (a category that vanished, a segment without traffic, an error that was
  fixed) would linger forever.
- delete-then-insert leaves a gap where a reader (the API, an alert rule) sees no results at all, and
  a crash between the two steps loses the window's results.
- insert-then-delete: the new rows go in first; ``FINAL`` (version ``computed_at``) already shows the
  new value of every key; then the rows of the same (model, window) written by *older* runs
  (``computed_at`` before this run's) are deleted, if there are any. A reader never sees an empty window, a crash
  leaves at worst a few stale keys until the next run, and two overlapping runs of the same window
  end with the later run's rows (each deletes only what is older than itself).

Every reader must use ``FINAL``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from detectors.evidence import strongest_first
from detectors.report import StatResult, WindowReport
from monitor.storage import Storage
from monitor.storage.sqlfmt import datetime_param, sql_datetime, sql_string
from monitor.windows import Window, as_utc

RESULTS_TABLE = "detector_results"
RUNS_TABLE = "detector_runs"

_RESULT_COLUMNS = (
    "model",
    "version",
    "reference_version",
    "window_start",
    "window_end",
    "detector",
    "segment",
    "column",
    "statistic",
    "value",
    "threshold",
    "verdict",
    "status",
    "n_reference",
    "n_current",
    "details",
    "run_id",
    "computed_at",
)
_RUN_COLUMNS = (
    "model",
    "window_start",
    "window_end",
    "run_id",
    "version",
    "reference_version",
    "status",
    "message",
    "n_current",
    "n_reference",
    "n_results",
    "n_errors",
    "duration_seconds",
    "computed_at",
)


def _finite(value: float | None) -> float | None:
    """NULL for missing and non-finite numbers, so the API can serve every row as JSON."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    return str(value)


def encode_details(details: dict[str, Any]) -> str:
    """JSON text of a details dict; NaN and infinities become null (JSON has neither)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(details), default=_json_default, separators=(",", ":"), allow_nan=False)


def _window_filter(model: str, window: Window) -> str:
    return (
        f"model = {sql_string(model)} AND window_start = {sql_datetime(window.start)} "
        f"AND window_end = {sql_datetime(window.end)}"
    )


def store_report(storage: Storage, report: WindowReport, computed_at: datetime, duration_seconds: float) -> None:
    """Write the report's rows and its run record, then drop what older runs of this window wrote."""
    window = Window(report.window_start, report.window_end)
    stamp = as_utc(computed_at)
    rows = [
        (
            report.model,
            report.model_version,
            report.reference_version,
            window.start,
            window.end,
            r.detector,
            r.segment,
            r.column,
            r.statistic,
            _finite(r.value),
            _finite(r.threshold),
            r.drift,
            r.status,
            max(int(r.n_reference), 0),
            max(int(r.n_current), 0),
            encode_details(r.details),
            report.run_id,
            stamp,
        )
        for r in report.results
    ]
    if rows:
        storage.insert_rows(RESULTS_TABLE, rows, _RESULT_COLUMNS)
    errors = sum(1 for r in report.results if r.status == "error")
    storage.insert_rows(
        RUNS_TABLE,
        [
            (
                report.model,
                window.start,
                window.end,
                report.run_id,
                report.model_version,
                report.reference_version,
                report.status,
                report.message,
                report.n_current,
                report.n_reference,
                len(rows),
                errors,
                float(duration_seconds),
                stamp,
            )
        ],
        _RUN_COLUMNS,
    )
    older = f"{_window_filter(report.model, window)} AND computed_at < {sql_datetime(stamp, precision=6)}"
    # A DELETE is a mutation of every part of the table, whatever it matches: its cost grows with the
    # fleet (every run of every model adds a part). The first run of a window, the scheduled case, has
    # nothing to delete; a read by the primary key finds that out for the cost of one granule.
    if storage.rows(f"SELECT 1 FROM {storage.table(RESULTS_TABLE)} WHERE {older} LIMIT 1"):
        storage.command(f"DELETE FROM {storage.table(RESULTS_TABLE)} WHERE {older}")


def read_results(
    storage: Storage,
    model: str,
    window: Window | None = None,
    detector: str | None = None,
    segment: str | None = None,
    limit: int = 100_000,
) -> list[StatResult]:
    """The stored rows of one model (optionally one window, detector, segment), as :class:`StatResult`."""
    rows = query_results(storage, model, window=window, detector=detector, segment=segment, limit=limit)
    return [
        StatResult(
            detector=r["detector"],
            column=r["column"],
            statistic=r["statistic"],
            value=r["value"],
            threshold=r["threshold"],
            drift=r["drift"],
            segment=r["segment"],
            status=r["status"],
            n_reference=int(r["n_reference"]),
            n_current=int(r["n_current"]),
            details=r["details"],
        )
        for r in sorted(rows, key=lambda r: r["window_end"])
    ]


def read_runs(storage: Storage, model: str, limit: int = 100) -> list[dict[str, Any]]:
    """The latest runs of a model, newest window first (one per window: reruns replace)."""
    return storage.dicts(
        f"SELECT * FROM {storage.table(RUNS_TABLE)} FINAL WHERE model = {{model:String}} "
        f"ORDER BY window_end DESC, window_start DESC LIMIT {int(limit)}",
        parameters={"model": model},
    )


def count_rows(storage: Storage, model: str, window: Window, final: bool = True) -> int:
    """How many rows a window has (``final=False``: physically, before ReplacingMergeTree merges)."""
    return int(
        storage.rows(
            f"SELECT count() FROM {storage.table(RESULTS_TABLE)} {'FINAL' if final else ''} "
            f"WHERE {_window_filter(model, window)}"
        )[0][0]
    )


def report_document(report: WindowReport) -> dict[str, Any]:
    """A run's outcome as one plain dict (``monitor detect --format json`` and the API's "detect now")."""
    return {
        "model": report.model,
        "model_version": report.model_version,
        "reference_version": report.reference_version,
        "window_start": report.window_start,
        "window_end": report.window_end,
        "run_id": report.run_id,
        "status": report.status,
        "message": report.message,
        "n_current": report.n_current,
        "n_reference": report.n_reference,
        "dataset_drift": report.dataset_drift(),
        "drifted_features": [r.column for r in strongest_first(report.drifted_columns())],
        "results": rows_sequence(report.results),
    }


def rows_sequence(results: Sequence[StatResult]) -> list[dict[str, Any]]:
    """Plain dicts of results (for JSON output)."""
    return [
        {
            "detector": r.detector,
            "segment": r.segment,
            "column": r.column,
            "statistic": r.statistic,
            "value": _finite(r.value),
            "threshold": _finite(r.threshold),
            "verdict": r.drift,
            "status": r.status,
            "n_reference": r.n_reference,
            "n_current": r.n_current,
            "details": json.loads(encode_details(r.details)),
        }
        for r in results
    ]


# ---------------------------------------------------------------- reads for the API and dashboard

DRIFT_DETECTORS = ("feature_drift", "prediction_drift", "window_drift", "skew")
# Every detector a run stores rows of (the vocabulary of the ``detector`` column).
DETECTORS = (
    *DRIFT_DETECTORS,
    "data_quality",
    "volume",
    "freshness",
    "performance",
    "multivariate_drift",
    "estimated_performance",
)

_RANGE = "window_end > toDateTime64({start:String}, 3, 'UTC') AND window_end <= toDateTime64({end:String}, 3, 'UTC')"


def query_results(
    storage: Storage,
    model: str,
    start: datetime | None = None,
    end: datetime | None = None,
    window: Window | None = None,
    detector: str | None = None,
    column: str | None = None,
    statistic: str | None = None,
    segment: str | None = "",
    limit: int = 5000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The one reader of stored rows: one model's rows of windows ending in ``(start, end]`` (or of
    exactly ``window``), newest window first, filtered by what is given (``segment=None``: every
    segment; ``""``: the whole population); ``offset`` rows of that order skipped, then ``limit``."""
    conditions = ["model = {model:String}"]
    params: dict[str, Any] = {"model": model}
    if start is not None:
        conditions.append("window_end > toDateTime64({start:String}, 3, 'UTC')")
        params["start"] = datetime_param(start)
    if end is not None:
        conditions.append("window_end <= toDateTime64({end:String}, 3, 'UTC')")
        params["end"] = datetime_param(end)
    if window is not None:
        conditions.append(_window_filter(model, window))
    for name, value in (("detector", detector), ("column", column), ("statistic", statistic), ("segment", segment)):
        if value is not None:
            conditions.append(f"{name} = {{{name}:String}}")
            params[name] = value
    rows = storage.dicts(
        "SELECT window_start, window_end, version, reference_version, detector, segment, column, statistic, value, "
        "threshold, verdict AS drift, status, n_reference, n_current, details, run_id, computed_at "
        f"FROM {storage.table(RESULTS_TABLE)} FINAL WHERE {' AND '.join(conditions)} "
        f"ORDER BY window_end DESC, detector, segment, column, statistic LIMIT {int(limit)} OFFSET {int(offset)}",
        parameters=params,
    )
    for row in rows:
        row["drift"] = None if row["drift"] is None else bool(row["drift"])
        row["details"] = json.loads(row["details"]) if row["details"] else {}
    return rows


def deciding_rows(
    storage: Storage, model: str, start: datetime, end: datetime, detector: str, column: str | None = None
) -> list[dict[str, Any]]:
    """Per window and column, the row that decided the verdict (it carries a threshold), oldest first.

    This is the drift timeline of one feature (``column`` given) or the feature x window heatmap.
    """
    conditions = [
        "model = {model:String}",
        _RANGE,
        "detector = {detector:String}",
        "segment = ''",
        "(threshold IS NOT NULL OR status != 'ok')",
    ]
    params: dict[str, Any] = {
        "model": model,
        "detector": detector,
        "start": datetime_param(start),
        "end": datetime_param(end),
    }
    if column is not None:
        conditions.append("column = {column:String}")
        params["column"] = column
    return storage.dicts(
        "SELECT window_start, window_end, column, statistic, value, threshold, verdict AS drift, status, "
        f"n_reference, n_current FROM {storage.table(RESULTS_TABLE)} FINAL WHERE {' AND '.join(conditions)} "
        "ORDER BY window_end, column LIMIT 100000",
        parameters=params,
    )


def latest_run(storage: Storage, model: str) -> dict[str, Any] | None:
    rows = storage.dicts(
        f"SELECT * FROM {storage.table(RUNS_TABLE)} FINAL WHERE model = {{model:String}} "
        "ORDER BY window_end DESC, computed_at DESC LIMIT 1",
        parameters={"model": model},
    )
    return rows[0] if rows else None


def last_run_started(storage: Storage, model: str) -> datetime | None:
    """When the stored run of ``model``'s newest window (scheduled or ``monitor detect``) started: its
    store time less its duration. The scheduler knows its own runs only while its process lives."""
    run = latest_run(storage, model)
    return None if run is None else run["computed_at"] - timedelta(seconds=float(run["duration_seconds"]))


def latest_drift(storage: Storage, model: str) -> dict[str, Any] | None:
    """The newest window's dataset-level feature drift verdict and its drifted columns."""
    run = latest_run(storage, model)
    if run is None:
        return None
    rows = storage.dicts(
        f"SELECT column, statistic, value, threshold, verdict, status FROM {storage.table(RESULTS_TABLE)} FINAL "
        "WHERE model = {model:String} AND window_end = toDateTime64({end:String}, 3, 'UTC') "
        "AND window_start = toDateTime64({start:String}, 3, 'UTC') AND detector = 'feature_drift' AND segment = '' "
        "AND (threshold IS NOT NULL OR column = '')",
        parameters={
            "model": model,
            "start": datetime_param(run["window_start"]),
            "end": datetime_param(run["window_end"]),
        },
    )
    dataset = next((r for r in rows if r["column"] == "" and r["statistic"] == "drift_share"), None)
    return {
        "window_start": run["window_start"],
        "window_end": run["window_end"],
        "status": run["status"],
        "n_current": int(run["n_current"]),
        "dataset_drift": None if dataset is None or dataset["verdict"] is None else bool(dataset["verdict"]),
        "drift_share": dataset["value"] if dataset else None,
        "drifted_features": sorted(r["column"] for r in rows if r["column"] and r["verdict"]),
    }


def latest_statistics(storage: Storage) -> list[dict[str, Any]]:
    """The newest window's drift rows of each model (for Prometheus gauges; bounded by the vocabulary)."""
    return storage.dicts(
        f"SELECT r.model AS model, r.detector AS detector, r.column AS column, r.statistic AS statistic, "
        f"r.value AS value, r.verdict AS drift FROM {storage.table(RESULTS_TABLE)} AS r FINAL "
        f"INNER JOIN (SELECT model, max(window_end) AS last FROM {storage.table(RUNS_TABLE)} FINAL "
        "GROUP BY model) AS l ON r.model = l.model AND r.window_end = l.last "
        "WHERE r.segment = '' AND r.detector IN {detectors:Array(String)} AND r.value IS NOT NULL",
        parameters={"detectors": list(DRIFT_DETECTORS)},
    )
