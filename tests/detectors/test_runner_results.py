"""detector_results storage: a rerun of a window replaces its rows (vanished keys included), other windows stay."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

from detectors.report import StatResult, WindowReport
from detectors.results import count_rows, read_results, read_runs, store_report
from monitor.storage import Storage
from monitor.windows import Window

START = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(hours=1))


def _report(results: list[StatResult], window: Window = WINDOW, run_id: str = "r") -> WindowReport:
    return WindowReport(
        model="m",
        model_version="3",
        window_start=window.start,
        window_end=window.end,
        status="ok",
        n_current=10,
        n_reference=20,
        results=tuple(results),
        run_id=run_id,
        reference_version="1",
    )


def test_rerun_replaces_and_vanished_rows_go(storage: Storage) -> None:
    first = [
        StatResult("feature_drift", "a", "psi", 0.5, threshold=0.1, drift=True, details={"x": math.nan}),
        StatResult("data_quality", "b", "new_categories", 2.0, details={"categories": ["x", "y"]}),
        StatResult("volume", "", "count", 10.0, segment="region=eu"),
    ]
    store_report(storage, _report(first, run_id="one"), datetime.now(UTC), 0.1)
    other = Window(WINDOW.end, WINDOW.end + timedelta(hours=1))
    store_report(storage, _report(first[:1], window=other, run_id="other"), datetime.now(UTC), 0.1)
    assert count_rows(storage, "m", WINDOW) == 3
    stored = read_results(storage, "m", WINDOW, detector="feature_drift")[0]
    assert stored.drift is True and stored.threshold == 0.1 and stored.details == {"x": None}  # NaN -> null

    second = [StatResult("feature_drift", "a", "psi", math.inf, threshold=0.1, drift=False)]
    store_report(storage, _report(second, run_id="two"), datetime.now(UTC), 0.2)
    rows = read_results(storage, "m", WINDOW)
    assert [(r.detector, r.column, r.value, r.drift) for r in rows] == [("feature_drift", "a", None, False)]
    assert count_rows(storage, "m", WINDOW, final=False) == 1  # physically gone, not just hidden
    assert count_rows(storage, "m", other) == 1  # another window is untouched
    runs = read_runs(storage, "m")
    assert [(r["run_id"], r["n_results"]) for r in runs] == [("other", 1), ("two", 1)]
    assert runs[1]["reference_version"] == "1" and runs[1]["version"] == "3"


def _mutations(storage: Storage) -> int:
    """Mutations ever started on ``detector_results`` (done or not)."""
    return int(
        storage.rows(
            "SELECT count() FROM system.mutations WHERE database = {db:String} AND table = 'detector_results'",
            parameters={"db": storage.database},
        )[0][0]
    )


def test_first_run_of_a_window_mutates_nothing(storage: Storage) -> None:
    """A DELETE rewrites every part of the table, so its cost grows with the whole fleet's results: the
    scheduled case (each window stored once, for many models) must not issue one; a rerun still does."""
    row = [StatResult("feature_drift", "a", "psi", 0.5, threshold=0.1, drift=True)]
    before = _mutations(storage)  # the migrations' own (MATERIALIZE TTL)
    for hour in range(3):
        window = Window(START + timedelta(hours=hour), START + timedelta(hours=hour + 1))
        for model in ("m", "other"):
            report = _report(row, window=window, run_id=f"{model}{hour}")
            store_report(storage, dataclasses.replace(report, model=model), datetime.now(UTC), 0.1)
    assert _mutations(storage) == before
    assert count_rows(storage, "m", WINDOW, final=False) == 1

    store_report(storage, _report(row, run_id="again"), datetime.now(UTC), 0.1)
    assert _mutations(storage) == before + 1
    assert count_rows(storage, "m", WINDOW, final=False) == 1  # the older run's row is gone
    assert count_rows(storage, "other", WINDOW, final=False) == 1
