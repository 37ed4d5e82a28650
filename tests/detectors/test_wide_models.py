"""Wide models: many features, long names, and features that have no typed column (yet).

Events keep every feature in the maps; a typed column is added later, within limits, and may never
come. Detection must read a feature without one from the maps instead of calling it missing, and no
statement on the reference or detection path may outgrow ClickHouse's ``max_query_size`` (262,144
bytes) when a model has hundreds of features with long names.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from detectors.checks.estimated_performance import _reference_data, _window_data
from detectors.estimation.estimator import RegressorInputs
from detectors.registration import add_events, add_file
from detectors.runner import build_context, run_detection
from monitor.ingest.batch import Batch
from monitor.ingest.limits import IngestPolicy
from monitor.ingest.validation import PredictionEvent
from monitor.ingest.writer import BatchWriter
from monitor.settings import IngestSettings
from monitor.storage import Storage
from monitor.storage.events import events_columns, feature_column
from monitor.storage.statements import MAX_QUERY_SIZE
from tests.detectors.event_rows import T0, settings_for, spread
from tests.detectors.statement_sizes import statements

__all__ = ["statements"]  # the fixture, imported

MAPS_ONLY = IngestPolicy(IngestSettings(typed_columns_per_model=0))


def _write_maps_only(storage: Storage, model: str, frame: pd.DataFrame, end=T0) -> None:
    """Store events as ingestion does, but give none of their features a typed column."""
    stamps = spread(len(frame), end)
    events = [
        PredictionEvent(
            event_id=f"{model}-{end.isoformat()}-{i}",
            model=model,
            ts_ms=int(stamps[i].timestamp() * 1000),
            features={k: (float(v) if isinstance(v, float) else str(v)) for k, v in row.items() if k != "prediction"},
            prediction=float(row["prediction"]),
            model_version="1",
        )
        for i, row in enumerate(frame.to_dict("records"))
    ]
    batch = Batch(events=events, event_sources=[("test", 0, i) for i in range(len(events))])
    BatchWriter(storage, retries=0, policy=MAPS_ONLY).write(batch)


def _frame(names: list[str], n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(shift, 1, n) for name in names[:-1]})
    frame[names[-1]] = rng.choice(["a", "b", "c"], n)
    frame["prediction"] = rng.random(n)
    return frame


def _by_statistic(report, detector: str, statistic: str) -> dict[str, float | None]:
    return {r.column: r.value for r in report.results if r.detector == detector and r.statistic == statistic}


def test_features_without_typed_columns_are_read_from_the_maps(storage: Storage, tmp_path: Path) -> None:
    names = ["amount", "score", "a name with spaces and 'quotes'", "country"]
    _frame(names, 400, seed=1).to_parquet(tmp_path / "ref.parquet")
    _write_maps_only(storage, "m", _frame(names, 300, seed=2, shift=3.0))
    assert not any(feature_column(n, "numerical") in events_columns(storage) for n in names)
    settings = settings_for(storage, tmp_path, {"m": {"min_samples": 50}})
    add_file(storage, "m", tmp_path / "ref.parquet")

    report = run_detection(storage, settings, "m", window_end=T0, now=T0)

    assert _by_statistic(report, "data_quality", "missing_share") == dict.fromkeys(names, 0.0)
    rows = [r for r in report.results if r.detector == "feature_drift" and r.column in names]
    assert {r.column: r.status for r in rows} == dict.fromkeys(names, "ok")
    drift = {r.column: r for r in rows if r.drift is not None}  # each column's deciding statistic
    assert {n: drift[n].drift for n in names[:-1]} == dict.fromkeys(names[:-1], True), drift  # shifted by 3 std
    assert drift["country"].drift is False

    # A reference copied from logged events reads the maps too.
    window = add_events(storage, "m", T0 - timedelta(hours=1), T0, version="window")
    assert {n: window.profile.columns[n].missing for n in names} == dict.fromkeys(names, 0)
    assert window.profile.columns["amount"].mean is not None and window.profile.columns["amount"].mean > 2


def test_wide_model_with_long_names_registers_and_is_compared(
    storage: Storage, tmp_path: Path, statements: list[int]
) -> None:
    # 240 features of 256 characters, three bytes each in UTF-8: every statement that named all of them
    # (the file's insert, the profile, the window's scans through the maps, the multivariate samples and
    # the regression estimator's inputs, fetched as Arrow) would pass max_query_size.
    names = [f"{i:03d}" + "名" * 253 for i in range(240)]
    reference = _frame(names, 60, seed=3)
    reference["label"] = reference["prediction"] + np.arange(60)  # which row a label came from
    reference.to_csv(tmp_path / "ref.csv", index=False)
    window = _frame(names, 60, seed=4)
    _write_maps_only(storage, "wide", window)
    model = {
        "min_samples": 20,
        "prediction": {"type": "regression"},
        "drift": {"multivariate": ["pca_reconstruction"], "multivariate_rows": 40},  # the reference: a draw
    }
    settings = settings_for(storage, tmp_path, {"wide": model})
    said: list[str] = []
    registered = add_file(storage, "wide", tmp_path / "ref.csv", progress=said.append)
    report = run_detection(storage, settings, "wide", window_end=T0, now=T0)
    ctx = build_context(storage, settings, "wide", window_end=T0, now=T0)
    ref_inputs, labels = _reference_data(ctx, "regression")
    window_inputs = _window_data(ctx, "regression")

    assert registered.rows == 60 and len(registered.columns) == 240
    assert any("streaming it" in line for line in said)
    assert registered.profile.columns[names[0]].count == 60
    assert max(statements) < MAX_QUERY_SIZE // 2
    errors = [r for r in report.results if r.status == "error"]
    assert not errors, errors[:3]
    assert _by_statistic(report, "data_quality", "missing_share") == dict.fromkeys(names, 0.0)
    drift = [r for r in report.results if r.detector == "feature_drift" and r.column in set(names)]
    assert {r.column for r in drift if r.status == "ok" and r.drift is not None} == set(names)
    (multivariate,) = [r for r in report.results if r.detector == "multivariate_drift"]
    assert multivariate.status == "ok" and multivariate.value is not None
    assert {r.statistic for r in report.results if r.detector == "estimated_performance"} >= {"mae", "rmse"}

    # The estimator's inputs, read in batches of columns, are whole rows: the reference's in file order
    # (by row_id), the window's in time order.
    assert isinstance(ref_inputs, RegressorInputs) and isinstance(window_inputs, RegressorInputs)
    np.testing.assert_allclose(labels, reference["label"])
    for inputs, frame in ((ref_inputs, reference), (window_inputs, window)):
        np.testing.assert_allclose(inputs.prediction, frame["prediction"])
        for name in names[:-1]:
            np.testing.assert_allclose(inputs.columns[name], frame[name], err_msg=name)
        assert list(inputs.columns[names[-1]]) == list(frame[names[-1]])
