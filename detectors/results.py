"""Storing and reading ``detector_results``: idempotent per (model, window).

Why insert-then-delete rather than delete-then-insert or ReplacingMergeTree alone:

- ReplacingMergeTree alone (FINAL on the row key) replaces the rows a rerun writes again, but a row a
  rerun no longer produces (a category that vanished, a segment without traffic, an error that was
  fixed) would linger forever.
- delete-then-insert leaves a gap where a reader (the API, an alert rule) sees no results at all, and
  a crash between the two steps loses the window's results.
- insert-then-delete: the new rows go in first; ``FINAL`` (version ``computed_at``) already shows the
  new value of every key; then the rows of the same (model, window) written by *older* runs
  (``computed_at`` before this run's) are deleted. A reader never sees an empty window, a crash
  leaves at worst a few stale keys until the next run, and two overlapping runs of the same window
  end with the later run's rows (each deletes only what is older than itself).

Every reader must use ``FINAL``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from detectors.report import StatResult, WindowReport
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_datetime, sql_string
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
    stamp_sql = sql_datetime(stamp, precision=6)
    storage.command(
        f"DELETE FROM {storage.table(RESULTS_TABLE)} WHERE {_window_filter(report.model, window)} "
        f"AND computed_at < {stamp_sql}"
    )


def read_results(
    storage: Storage,
    model: str,
    window: Window | None = None,
    detector: str | None = None,
    segment: str | None = None,
    limit: int = 100_000,
) -> list[StatResult]:
    """The stored rows of one model (optionally one window, detector, segment), as :class:`StatResult`."""
    conditions = ["model = {model:String}"]
    parameters: dict[str, Any] = {"model": model}
    if window is not None:
        conditions.append(_window_filter(model, window))
    if detector is not None:
        conditions.append("detector = {detector:String}")
        parameters["detector"] = detector
    if segment is not None:
        conditions.append("segment = {segment:String}")
        parameters["segment"] = segment
    rows = storage.rows(
        f"SELECT detector, column, statistic, value, threshold, verdict, segment, status, n_reference, "
        f"n_current, details FROM {storage.table(RESULTS_TABLE)} FINAL WHERE {' AND '.join(conditions)} "
        f"ORDER BY window_end, detector, segment, column, statistic LIMIT {int(limit)}",
        parameters=parameters,
    )
    return [
        StatResult(
            detector=d,
            column=c,
            statistic=s,
            value=v,
            threshold=t,
            drift=None if verdict is None else bool(verdict),
            segment=seg,
            status=status,
            n_reference=int(nr),
            n_current=int(nc),
            details=json.loads(details) if details else {},
        )
        for d, c, s, v, t, verdict, seg, status, nr, nc, details in rows
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
        "drifted_features": [r.column for r in report.drifted_columns()],
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
