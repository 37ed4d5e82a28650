"""run_detection end to end on embedded ClickHouse: drift where injected, skew apart from drift, segments,
idempotent reruns, late labels, insufficient data, error rows, unknown models and missing references."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from detectors.references.store import list_references
from detectors.registration import add_file
from detectors.results import count_rows, read_results, read_runs
from detectors.runner import run_detection
from monitor.errors import UserError
from monitor.storage import Storage
from monitor.windows import Window
from tests.detectors.event_rows import T0, Rows, settings_for, spread, write_events, write_labels

FEATURES = {"amount": "numerical", "country": "categorical", "is_new": "categorical"}
WINDOW = Window(T0 - timedelta(hours=1), T0)


def _reference(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(100 + shift, 15, n),
            "country": rng.choice(["DE", "FR", "IT"], n, p=[0.5, 0.3, 0.2]),
            "is_new": rng.random(n) < 0.3,
            "prediction": rng.random(n),
        }
    )


def _traffic(storage: Storage, n: int, seed: int, shift: float = 0.0, end=T0, **extra) -> list[str]:
    frame = _reference(n, seed, shift)
    rng = np.random.default_rng(seed + 1000)
    return write_events(
        storage,
        Rows(
            "fraud",
            spread(n, end=end),
            {c: frame[c].to_numpy() for c in FEATURES},
            prediction=frame["prediction"].to_numpy(),
            event_ids=[f"{end.isoformat()}-{seed}-{i}" for i in range(n)],
            segment=[{"region": r} for r in rng.choice(["eu", "us"], n)],
            **extra,
        ),
    )


@pytest.fixture
def reference_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.parquet"
    _reference(5000, seed=1).to_parquet(path)
    return path


def _settings(storage: Storage, tmp_path: Path, reference_file: Path, **model):
    config = {"features": FEATURES, "reference": {"file": str(reference_file)}, "min_samples": 200, **model}
    return settings_for(storage, tmp_path, {"fraud": config})


def _deciding(report, detector: str, segment: str = "") -> dict[str, bool | None]:
    return {r.column: r.drift for r in report.select(detector=detector, segment=segment) if r.threshold is not None}


def test_drift_found_only_where_injected(storage: Storage, tmp_path: Path, reference_file: Path) -> None:
    settings = _settings(storage, tmp_path, reference_file)
    _traffic(storage, 3000, seed=7, shift=30.0)  # amount moved by two standard deviations
    _traffic(storage, 3000, seed=8, shift=0.0, end=T0 - timedelta(hours=1))  # the previous window: no shift
    report = run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    assert report.status == "ok" and report.n_current == 3000 and report.n_reference == 5000
    assert _deciding(report, "feature_drift") == {"amount": True, "country": False, "is_new": False, "": False}
    assert report.drifted_columns()[0].column == "amount"
    assert _deciding(report, "window_drift")["amount"] is True  # changed since the previous window
    assert _deciding(report, "skew") == _deciding(report, "feature_drift")  # the training reference is the reference
    (prediction,) = [r for r in report.select(detector="prediction_drift") if r.threshold is not None and r.column]
    assert prediction.column == "__prediction__" and prediction.drift is False
    # Stored: what the report holds is what detector_results holds.
    stored = read_results(storage, "fraud", WINDOW)
    assert len(stored) == len(report.results) == count_rows(storage, "fraud", WINDOW)
    assert {(r.detector, r.segment, r.column, r.statistic) for r in stored} == {
        (r.detector, r.segment, r.column, r.statistic) for r in report.results
    }
    assert read_runs(storage, "fraud")[0]["status"] == "ok"
    assert list_references(storage, "fraud")[0].source == str(reference_file)  # registered from the config


def test_skew_is_reported_apart_from_drift(storage: Storage, tmp_path: Path, reference_file: Path) -> None:
    """Production never matched training (skew) but has not changed against the recent baseline (no drift)."""
    settings = settings_for(storage, tmp_path, {"fraud": {"features": FEATURES, "min_samples": 200}})
    add_file(storage, "fraud", reference_file, kind="training")
    baseline = tmp_path / "baseline.parquet"
    _reference(4000, seed=2, shift=40.0).to_parquet(baseline)
    add_file(storage, "fraud", baseline, kind="baseline")  # newest: the drift reference
    _traffic(storage, 2000, seed=9, shift=40.0)
    report = run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    assert report.reference_version == "2"
    assert _deciding(report, "feature_drift")["amount"] is False
    assert _deciding(report, "skew")["amount"] is True
    assert report.dataset_drift("skew") is False  # one of three columns
    assert report.select(detector="skew", statistic="drift_share")[0].value == pytest.approx(1 / 3)


def test_segments_break_every_detector_down(storage: Storage, tmp_path: Path, reference_file: Path) -> None:
    settings = _settings(storage, tmp_path, reference_file, segments=["region"])
    _traffic(storage, 2000, seed=3)
    frame = _reference(1500, seed=4, shift=40.0)
    write_events(
        storage,
        Rows(
            "fraud",
            spread(1500),
            {c: frame[c].to_numpy() for c in FEATURES},
            prediction=frame["prediction"].to_numpy(),
            segment=[{"region": "apac"}] * 1500,
        ),
    )
    report = run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    assert {r.segment for r in report.results} == {"", "region=apac", "region=eu", "region=us"}
    assert _deciding(report, "feature_drift", "region=apac")["amount"] is True
    assert _deciding(report, "feature_drift", "region=eu")["amount"] is False
    counts = {r.segment: r.value for r in report.select(detector="volume", statistic="count", segment=None)}
    eu = sum(1 for s in np.random.default_rng(1003).choice(["eu", "us"], 2000) if s == "eu")
    assert counts == {"": 3500, "region=apac": 1500, "region=eu": eu, "region=us": 2000 - eu}
    detectors = {r.detector for r in report.select(segment="region=apac")}
    assert detectors >= {"feature_drift", "skew", "window_drift", "data_quality", "volume", "freshness", "performance"}


def test_rerun_replaces_and_picks_up_late_labels(storage: Storage, tmp_path: Path, reference_file: Path) -> None:
    settings = _settings(storage, tmp_path, reference_file, segments=["region"])
    ids = _traffic(storage, 1000, seed=5)
    first = run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    assert first.select(detector="performance", statistic="accuracy")[0].value is None
    n_first = count_rows(storage, "fraud", WINDOW)
    labels = np.random.default_rng(0).integers(0, 2, 1000)
    write_labels(storage, "fraud", ids, labels)  # labels arrive hours later
    second = run_detection(storage, settings, "fraud", window_end=T0, now=T0 + timedelta(hours=5))
    scores = _reference(1000, seed=5)["prediction"].to_numpy()
    expected = accuracy_score(labels, scores >= 0.5)
    assert second.select(detector="performance", statistic="accuracy")[0].value == pytest.approx(expected)
    stored = {(r.detector, r.statistic): r.value for r in read_results(storage, "fraud", WINDOW, segment="")}
    assert stored[("performance", "accuracy")] == pytest.approx(expected)
    assert stored[("performance", "label_coverage")] == 1.0
    assert count_rows(storage, "fraud", WINDOW) == n_first  # replaced, not added
    assert count_rows(storage, "fraud", WINDOW, final=False) == n_first  # older runs' rows are deleted
    # Rows a rerun no longer produces disappear: drop the segment breakdown and run again.
    plain = _settings(storage, tmp_path, reference_file)
    third = run_detection(storage, plain, "fraud", window_end=T0, now=T0)
    assert {r.segment for r in read_results(storage, "fraud", WINDOW)} == {""}
    assert count_rows(storage, "fraud", WINDOW) == len(third.results) < n_first
    assert len(read_runs(storage, "fraud")) == 1  # one run record per window


def test_insufficient_data(storage: Storage, tmp_path: Path, reference_file: Path) -> None:
    settings = _settings(storage, tmp_path, reference_file)
    _traffic(storage, 50, seed=6)
    report = run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    assert report.status == "insufficient_data" and "min_samples" in report.message
    for detector in ("feature_drift", "skew", "prediction_drift"):
        rows = report.select(detector=detector)
        assert rows and all(r.drift is None for r in rows)
        assert all(r.status == "insufficient_data" for r in rows)
    assert report.select(detector="volume", statistic="count")[0].value == 50  # volume still reports


def test_broken_column_gives_error_rows_and_the_rest_runs(
    storage: Storage, tmp_path: Path, reference_file: Path
) -> None:
    settings = _settings(storage, tmp_path, reference_file)
    _traffic(storage, 1000, seed=12, shift=30.0)
    events = storage.table("events")
    storage.command(f"ALTER TABLE {events} DROP COLUMN n__amount")  # a column broken behind our back
    storage.command(f"ALTER TABLE {events} ADD COLUMN n__amount Array(Float64)")
    report = run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    assert report.status == "error" and "feature_drift/amount" in report.message
    errors = {(r.detector, r.column) for r in report.results if r.status == "error"}
    assert {("feature_drift", "amount"), ("skew", "amount"), ("data_quality", "amount")} <= errors
    assert all(column == "amount" for _, column in errors)
    error = next(r for r in report.results if r.status == "error" and r.detector == "feature_drift")
    assert "Array(Float64)" in error.details["error"] and "\n" not in error.details["error"]
    assert _deciding(report, "feature_drift")["country"] is False  # the other columns still decided
    (share,) = report.select(detector="feature_drift", statistic="drift_share")
    assert share.details["decided"] == 2 and share.details["failed"] == ["amount"]
    assert report.select(detector="volume", statistic="count")[0].value == 1000


def test_unknown_model_and_missing_reference(storage: Storage, tmp_path: Path) -> None:
    settings = settings_for(storage, tmp_path, {"fraud": {"features": FEATURES}})
    with pytest.raises(UserError, match="unknown model 'nope'"):
        run_detection(storage, settings, "nope", window_end=T0)
    with pytest.raises(UserError, match="has no reference"):
        run_detection(storage, settings, "fraud", window_end=T0)


def test_reference_from_a_configured_event_range(storage: Storage, tmp_path: Path) -> None:
    """models.M.reference: {start, end} registers last week's traffic once and compares with it."""
    _traffic(storage, 2000, seed=13, end=T0 - timedelta(days=7))
    _traffic(storage, 1000, seed=14, shift=30.0)
    start, end = (T0 - timedelta(days=7, hours=1)).isoformat(), (T0 - timedelta(days=7)).isoformat()
    config = {"features": FEATURES, "min_samples": 100, "reference": {"start": start, "end": end}}
    settings = settings_for(storage, tmp_path, {"fraud": config})
    report = run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    (reference,) = list_references(storage, "fraud")
    assert reference.kind == "window" and reference.rows == 2000 and report.n_reference == 2000
    assert _deciding(report, "feature_drift")["amount"] is True
    assert _deciding(report, "feature_drift")["country"] is False


def test_segment_compared_with_the_same_segment_of_the_reference(storage: Storage, tmp_path: Path) -> None:
    """A reference column named like a segment key splits the reference: us traffic is compared with us rows."""
    rng = np.random.default_rng(17)
    region = rng.choice(["eu", "us"], 6000)
    amount = np.where(region == "eu", rng.normal(100, 10, 6000), rng.normal(160, 10, 6000))
    path = tmp_path / "ref.parquet"
    pd.DataFrame({"amount": amount, "region": region}).to_parquet(path)
    config = {"features": {"amount": "numerical"}, "reference": {"file": str(path)}, "segments": ["region"]}
    settings = settings_for(storage, tmp_path, {"seg": {**config, "min_samples": 100}})
    n = 2000
    current_region = rng.choice(["eu", "us"], n, p=[0.2, 0.8])  # the mix changed, each segment did not
    current = np.where(current_region == "eu", rng.normal(100, 10, n), rng.normal(160, 10, n))
    segments = [{"region": str(r)} for r in current_region]
    write_events(storage, Rows("seg", spread(n), {"amount": current}, prediction=np.zeros(n), segment=segments))
    report = run_detection(storage, settings, "seg", window_end=T0, now=T0)
    assert _deciding(report, "feature_drift", "region=us")["amount"] is False
    assert _deciding(report, "feature_drift", "region=eu")["amount"] is False
    assert _deciding(report, "feature_drift")["amount"] is True  # the population moved with the mix
    (us,) = [r for r in report.select(detector="feature_drift", segment="region=us") if r.threshold is not None][:1]
    assert us.n_reference == int((region == "us").sum())


def test_model_without_configuration(storage: Storage, tmp_path: Path) -> None:
    """A model that is only registered (no models section) runs with defaults; the prediction type is inferred."""
    rng = np.random.default_rng(23)
    path = tmp_path / "ref.csv"
    pd.DataFrame({"x": rng.normal(0, 1, 800), "prediction": rng.normal(50, 5, 800)}).to_csv(path, index=False)
    add_file(storage, "loose", path)
    y = rng.normal(50, 5, 600)
    ids = write_events(storage, Rows("loose", spread(600), {"x": rng.normal(0, 1, 600)}, prediction=y + 1.0))
    write_labels(storage, "loose", ids, y)
    settings = settings_for(storage, tmp_path, {})
    report = run_detection(storage, settings, "loose", window_end=T0, now=T0)
    assert report.status == "ok"  # 600 events, default min_samples 500
    assert report.select(detector="performance", statistic="mae")[0].value == pytest.approx(1.0)
    assert _deciding(report, "feature_drift")["x"] is False


def test_a_configured_reference_is_held_to_the_configured_ingestion_limits(storage: Storage, tmp_path: Path) -> None:
    """Registered on first use, as `monitor reference add` registers it: with `ingest.*` as configured."""
    path = tmp_path / "ref.csv"
    frame = _reference(800, seed=31)
    frame["a_column_name_of_28_letters_"] = 1.0
    frame.to_csv(path, index=False)
    models = {"fraud": {"reference": {"file": str(path)}, "min_samples": 100}}
    settings = settings_for(storage, tmp_path, models, ingest={"max_feature_name_length": 20})
    _traffic(storage, 300, seed=32)
    run_detection(storage, settings, "fraud", window_end=T0, now=T0)
    (reference,) = list_references(storage, "fraud")
    assert set(reference.columns) == set(FEATURES)  # the 28-letter name events could not carry is skipped
