"""compare() on a window of the real ``events`` table (FINAL, typed feature columns) against a reference file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from detectors.drift.engine import compare
from detectors.drift.sample import Sample
from monitor.storage import Storage
from monitor.storage.events import FeatureColumns, feature_column
from tests.detectors.drift_oracle import expected_categorical, expected_numeric

START = datetime(2026, 11, 27, 10, tzinfo=UTC)


def insert_events(storage: Storage, model: str, frame: pd.DataFrame, start: datetime, duplicate: int = 0) -> None:
    """Rows of ``frame`` as events one second apart; the first ``duplicate`` rows delivered twice."""
    kinds = {c: "numerical" if frame[c].dtype.kind in "fi" else "categorical" for c in frame.columns}
    FeatureColumns(storage).ensure([(model, c, k) for c, k in kinds.items()])  # type: ignore[misc]
    n = len(frame)
    data: dict[str, pa.Array] = {
        "model": pa.array([model] * n),
        "event_id": pa.array([f"e{i}" for i in range(n)]),
        "ts": pa.array([start + timedelta(seconds=i) for i in range(n)], pa.timestamp("ms", tz="UTC")),
        "feature_keys": pa.array([list(frame.columns)] * n),
    }
    for column, kind in kinds.items():
        values = frame[column]
        if kind == "numerical":
            # NaN, not NULL: a NULL would be replaced by the column's DEFAULT, which reads the maps.
            data[feature_column(column, "numerical")] = pa.array(values.astype(float).to_numpy(), pa.float64())
        else:
            text = [
                None if v is None else (str(v).lower() if isinstance(v, bool | np.bool_) else str(v)) for v in values
            ]
            data[feature_column(column, "categorical")] = pa.array(text, pa.string())
    table = pa.table(data)
    storage.insert_arrow("events", table)
    if duplicate:
        storage.insert_arrow("events", table.slice(0, duplicate))  # redelivery: same (model, ts, event_id)


def test_window_of_events_against_a_parquet_reference(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    ref = pd.DataFrame(
        {
            "amount": rng.lognormal(2, 1, 800),
            "country": rng.choice(["DE", "FR"], 800),
            "is_new_user": rng.choice([True, False], 800, p=[0.2, 0.8]),
        }
    )
    window = pd.DataFrame(
        {
            "amount": rng.lognormal(2.4, 1, 600),
            "country": rng.choice(["DE", "FR", "BR"], 600),
            "is_new_user": rng.choice([True, False], 600, p=[0.6, 0.4]),
        }
    )
    window.loc[:29, "amount"] = np.nan  # explicit nulls arrive as NaN in events
    before = window.iloc[:100].copy()
    insert_events(storage, "fraud", before, START - timedelta(hours=1))  # outside the window
    insert_events(storage, "fraud", window, START, duplicate=200)
    insert_events(storage, "other", window.iloc[:50], START)  # another model's events in the same range
    ref.to_parquet(tmp_path / "ref.parquet", index=False)
    reference = Sample.from_file(storage, tmp_path / "ref.parquet")
    current = Sample.for_events(storage, "fraud", START, START + timedelta(hours=1))
    assert set(current.columns) == {"amount", "country", "is_new_user"}
    doc = compare(storage, reference, current).to_contract()
    assert doc["n_current"] == 600, "redelivered events count once (FINAL); other models and times excluded"
    amount = doc["columns"]["amount"]
    assert amount["missing_share"]["current"] == pytest.approx(30 / 600)
    want = expected_numeric(ref.amount.to_numpy(), window.amount.to_numpy())
    assert amount["stats"]["ks"]["statistic"] == pytest.approx(want.ks, abs=1e-9)
    assert amount["stats"]["wasserstein_norm"] == pytest.approx(want.wasserstein_norm, rel=1e-9)
    flag = doc["columns"]["is_new_user"]
    assert flag["type"] == "categorical" and flag["new_categories"] == [], "Parquet bool matches events 'true'"
    expected = expected_categorical(
        [str(v).lower() for v in ref.is_new_user], [str(v).lower() for v in window.is_new_user]
    )
    assert flag["stats"]["chi2"]["statistic"] == pytest.approx(expected["chi2"], rel=1e-9)
    assert flag["drift"] is True
    assert doc["columns"]["country"]["new_categories"] == ["BR"]
    rows = compare(storage, reference, current).to_results("feature_drift")
    assert {r.column for r in rows} == {"amount", "country", "is_new_user", ""}


def test_empty_window_is_insufficient_data(storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    insert_events(storage, "m", pd.DataFrame({"x": rng.normal(size=20), "c": rng.choice(["a", "b"], 20)}), START)
    pd.DataFrame({"x": rng.normal(size=50), "c": rng.choice(["a", "b"], 50)}).to_parquet(tmp_path / "r.parquet")
    current = Sample.for_events(storage, "m", START + timedelta(days=1), START + timedelta(days=2))
    doc = compare(storage, Sample.from_file(storage, tmp_path / "r.parquet"), current).to_contract()
    assert doc["n_current"] == 0
    assert {c["status"] for c in doc["columns"].values()} == {"insufficient_data"}
    assert doc["dataset_drift"] is False and doc["drift_share"] == 0.0
    assert {c["missing_share"]["current"] for c in doc["columns"].values()} == {None}
