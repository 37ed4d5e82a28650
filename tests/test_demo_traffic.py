"""The demo tells the truth before the drift: its traffic generator, called directly for several pre-drift
windows and seeds, goes through the real drift engine (embedded ClickHouse, the service's default
thresholds) against the demo's reference, and no feature is flagged beyond the nominal rate; after the
drift starts, the drifted features are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.drift.calibration import Calibration
from detectors.drift.engine import DriftOptions, compare
from detectors.drift.sample import Sample
from monitor.demo import model as demo_model
from monitor.demo.traffic import batch
from monitor.storage import Storage

WINDOW_EVENTS = 1500  # the demo's 50 events/s over its 30 s windows
SEEDS = 4
WINDOWS = 3
NOMINAL = 0.01  # per feature and window; the thresholds aim far below it (mean + 3 std of the noise)


class MemoryCalibrations:
    """The service keeps calibrations beside the reference summary; here, in a dict."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str, str, int], Calibration] = {}

    def get_many(self, keys: list[tuple[str, str, str, int]]) -> dict[tuple[str, str, str, int], Calibration]:
        return {key: self.kept[key] for key in keys if key in self.kept}

    def put_many(self, found: list[tuple[str, str, Calibration]]) -> None:
        for column, expr, calibration in found:
            self.kept[(column, expr, calibration.method, calibration.n_current)] = calibration


@pytest.fixture(scope="module")
def trained() -> demo_model.DemoModel:
    return demo_model.train()


def test_no_feature_flagged_before_the_drift_and_drift_flagged_after(
    storage: Storage, tmp_path: Path, trained: demo_model.DemoModel
) -> None:
    reference_path = demo_model.write_reference(trained, tmp_path / "reference.parquet")
    reference = Sample.from_file(storage, reference_path, [*trained.feature_names])
    cache = MemoryCalibrations()
    options = DriftOptions(calibrate="auto")  # the service's default
    flagged: list[str] = []
    verdicts = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(100 + seed)
        for window in range(WINDOWS):
            frame, _ = batch(trained, rng, WINDOW_EVENTS, drifting=False)
            path = tmp_path / f"window-{seed}-{window}.parquet"
            frame.to_parquet(path)
            result = compare(storage, reference, Sample.from_file(storage, path), options, calibrations=cache)
            verdicts += len(result.decided)
            flagged += [f"{c.column}@{seed}/{window}" for c in result.drifted]
    assert verdicts == SEEDS * WINDOWS * len(trained.feature_names)
    assert len(flagged) <= NOMINAL * verdicts, flagged

    frame, _ = batch(trained, np.random.default_rng(999), WINDOW_EVENTS, drifting=True)
    frame.to_parquet(tmp_path / "drifted.parquet")
    after = compare(storage, reference, Sample.from_file(storage, tmp_path / "drifted.parquet"), options)
    assert set(demo_model.DRIFTED) | {"channel"} <= {c.column for c in after.drifted}
    assert after.dataset_drift
