"""Read queries over ``detector_results`` and ``detector_runs`` that the API and dashboard need beyond
``detectors.results`` (time ranges, column filters, the latest verdicts, the heatmap matrix).

The tables belong to the detectors package (migration 0100); these are reads only, always ``FINAL``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from monitor.service.queries import _window_params
from monitor.storage import Storage

RESULTS = "detector_results"
RUNS = "detector_runs"
DRIFT_DETECTORS = ("feature_drift", "prediction_drift", "window_drift", "skew")

_RANGE = "window_end > toDateTime64({start:String}, 3, 'UTC') AND window_end <= toDateTime64({end:String}, 3, 'UTC')"


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    details = row.get("details")
    if isinstance(details, str):
        row["details"] = json.loads(details) if details else {}
    return row


def results(
    storage: Storage,
    model: str,
    start: datetime,
    end: datetime,
    detector: str | None = None,
    column: str | None = None,
    statistic: str | None = None,
    segment: str | None = "",
    limit: int = 5000,
) -> list[dict[str, Any]]:
    """Rows of windows ending in ``(start, end]``, newest window first, filtered by what is given."""
    conditions = ["model = {model:String}", _RANGE]
    params: dict[str, Any] = {"model": model, **_window_params(start, end)}
    for name, value in (("detector", detector), ("column", column), ("statistic", statistic), ("segment", segment)):
        if value is not None:
            conditions.append(f"{name} = {{{name}:String}}")
            params[name] = value
    rows = storage.dicts(
        "SELECT window_start, window_end, version, reference_version, detector, segment, column, statistic, value, "
        "threshold, verdict AS drift, status, n_reference, n_current, details, run_id, computed_at "
        f"FROM {storage.table(RESULTS)} FINAL WHERE {' AND '.join(conditions)} "
        f"ORDER BY window_end DESC, detector, segment, column, statistic LIMIT {int(limit)}",
        parameters=params,
    )
    return [_decode(r) for r in rows]


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
    params: dict[str, Any] = {"model": model, "detector": detector, **_window_params(start, end)}
    if column is not None:
        conditions.append("column = {column:String}")
        params["column"] = column
    return storage.dicts(
        "SELECT window_start, window_end, column, statistic, value, threshold, verdict AS drift, status, "
        f"n_reference, n_current FROM {storage.table(RESULTS)} FINAL WHERE {' AND '.join(conditions)} "
        "ORDER BY window_end, column LIMIT 100000",
        parameters=params,
    )


def latest_run(storage: Storage, model: str) -> dict[str, Any] | None:
    rows = storage.dicts(
        f"SELECT * FROM {storage.table(RUNS)} FINAL WHERE model = {{model:String}} "
        "ORDER BY window_end DESC, computed_at DESC LIMIT 1",
        parameters={"model": model},
    )
    return rows[0] if rows else None


def latest_drift(storage: Storage, model: str) -> dict[str, Any] | None:
    """The newest window's dataset-level feature drift verdict and its drifted columns."""
    run = latest_run(storage, model)
    if run is None:
        return None
    rows = storage.dicts(
        f"SELECT column, statistic, value, threshold, verdict, status FROM {storage.table(RESULTS)} FINAL "
        "WHERE model = {model:String} AND window_end = toDateTime64({end:String}, 3, 'UTC') "
        "AND window_start = toDateTime64({start:String}, 3, 'UTC') AND detector = 'feature_drift' AND segment = '' "
        "AND (threshold IS NOT NULL OR column = '')",
        parameters={"model": model, **_window_params(run["window_start"], run["window_end"])},
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
        f"r.value AS value, r.verdict AS drift FROM {storage.table(RESULTS)} AS r FINAL "
        f"INNER JOIN (SELECT model, max(window_end) AS last FROM {storage.table(RUNS)} FINAL "
        "GROUP BY model) AS l ON r.model = l.model AND r.window_end = l.last "
        "WHERE r.segment = '' AND r.detector IN {detectors:Array(String)} AND r.value IS NOT NULL",
        parameters={"detectors": list(DRIFT_DETECTORS)},
    )
