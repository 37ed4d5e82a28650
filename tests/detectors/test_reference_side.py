"""The speed paths of the engine give the same answers: a stored reference summary, a pinned window, parallel
columns. Each is compared with the plain computation on the same data, and the stored summary is shown to
spare the reference scan (the reference's rows are gone when it is used)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from detectors.drift.engine import DriftOptions, compare
from detectors.drift.pinning import pin
from detectors.drift.reference_side import cached_side, summarize
from detectors.drift.sample import Sample
from monitor.storage import Storage
from tests.detectors.drift_oracle import expected_numeric, parquet_sample
from tests.detectors.test_engine_events import START, insert_events


def assert_same(got: object, want: object, where: str = "") -> None:
    """Equal documents; floats to 1e-12 relative (a sum over bins may add up in another order)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_same(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, float) and isinstance(got, float):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), where
    else:
        assert got == want, where


def mixed_frames(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Large and small numerical columns, few values, missing values, categories with an unseen one."""
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: float, cats: list[str]) -> pd.DataFrame:
        gappy = rng.normal(shift, 1, n)
        gappy[rng.random(n) < 0.1] = np.nan
        return pd.DataFrame(
            {
                "normal": rng.normal(shift, 1, n),
                "lognormal": rng.lognormal(shift, 1, n),
                "counts": rng.poisson(5 + shift, n).astype(float),
                "gappy": gappy,
                "country": rng.choice(cats, n),
            }
        )

    return frame(n_ref, 0.0, ["DE", "FR", "US"]), frame(n_cur, 0.05, ["DE", "FR", "US", "BR"])


def test_a_summary_gives_the_same_comparison_and_spares_the_reference(storage: Storage, tmp_path: Path) -> None:
    ref_frame, cur_frame = mixed_frames(120_000, 130_000, 5)
    reference = parquet_sample(storage, tmp_path, "ref", ref_frame).materialize(storage, "side_ref")
    current = parquet_sample(storage, tmp_path, "cur", cur_frame)
    plain = compare(storage, reference, current).to_contract()
    side = summarize(storage, reference)
    assert side.rows == len(ref_frame) and set(side.levels) == {"normal", "lognormal", "counts", "gappy"}
    storage.command(f"TRUNCATE TABLE {storage.table('side_ref')}")  # from here on the reference has no rows
    assert_same(compare(storage, reference, current, reference_side=side).to_contract(), plain)
    assert plain["columns"]["country"]["new_categories"] == ["BR"]
    want = expected_numeric(ref_frame["gappy"].to_numpy(), cur_frame["gappy"].to_numpy())
    assert plain["columns"]["gappy"]["stats"]["psi"] == pytest.approx(want.psi, rel=1e-6)


def test_a_stored_summary_reads_back_exactly(storage: Storage, tmp_path: Path) -> None:
    ref_frame, cur_frame = mixed_frames(60_000, 160_000, 6)
    storage.command(
        f"CREATE TABLE {storage.table('side_rows')} (load_id String, normal Float64, lognormal Float64, "
        "counts Float64, gappy Float64, country Nullable(String)) ENGINE = MergeTree ORDER BY load_id"
    )
    storage.insert_arrow("side_rows", pa.Table.from_pandas(ref_frame.assign(load_id="L1"), preserve_index=False))
    file_sample = parquet_sample(storage, tmp_path, "r", ref_frame)
    reference = Sample(storage.table("side_rows"), file_sample.columns, "load_id = 'L1'", "rows of L1")
    current = parquet_sample(storage, tmp_path, "c", cur_frame)
    stored = cached_side(storage, "L1", reference)  # computed and stored
    again = cached_side(storage, "L1", reference)  # read back
    assert again.rows == stored.rows and again.stats == stored.stats
    for name, levels in stored.levels.items():
        for a, b in ((levels.binned, again.levels[name].binned), (levels.by_value, again.levels[name].by_value)):
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                for x, y in zip(a, b, strict=True):
                    assert np.array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    want = compare(storage, reference, current).to_contract()
    assert_same(compare(storage, reference, current, reference_side=again).to_contract(), want)
    other = Sample(reference.from_sql, reference.columns, "load_id = 'L1' AND counts > 4", "a segment")
    assert cached_side(storage, "L1", other).rows < stored.rows, "another WHERE is another summary"


def test_a_pinned_window_is_the_same_window(storage: Storage) -> None:
    rng = np.random.default_rng(9)
    frames = [pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)}) for _ in range(3)]
    insert_events(storage, "pinned", frames[0], START, duplicate=200)  # two parts, redeliveries across them
    insert_events(storage, "pinned", frames[1], START + timedelta(hours=1))
    insert_events(storage, "other", frames[2], START)
    window = Sample.for_events(storage, "pinned", START, START + timedelta(minutes=40))
    pinned = pin(storage, window)
    assert pinned.pinned and pinned.parts and "_part_offset" in pinned.sample.from_sql
    count = "SELECT count(), sum(n__x) FROM {} WHERE {}"
    (got,) = storage.rows(count.format(pinned.sample.from_sql, pinned.sample.where_sql))
    (want,) = storage.rows(count.format(window.from_sql, window.where_sql))
    assert got[0] == want[0] == 2400 and got[1] == pytest.approx(want[1], rel=1e-12)
    reference = Sample.for_events(storage, "pinned", START + timedelta(hours=1), START + timedelta(hours=2))
    options = DriftOptions(exact_limit=1000)  # the histogram path, whose queries the pin serves
    assert compare(storage, reference, window, options).to_contract()["columns"]["x"]["n_current"] == 2400
    assert pinned.intact(storage)
    storage.command(f"OPTIMIZE TABLE {storage.table('events')} FINAL")  # a merge replaces the pinned parts
    assert not pinned.intact(storage), "the engine would compare again, unpinned"
    segment = Sample.for_events(storage, "pinned", START, START + timedelta(minutes=40), where_sql="n__x > 0")
    assert not pin(storage, segment).pinned, "rows that are not contiguous stay selected by their predicate"


def test_parallel_columns_change_nothing(storage: Storage, tmp_path: Path) -> None:
    ref_frame, cur_frame = mixed_frames(110_000, 100_000, 7)
    reference = parquet_sample(storage, tmp_path, "ref", ref_frame)
    current = parquet_sample(storage, tmp_path, "cur", cur_frame)
    one = compare(storage, reference, current, DriftOptions(workers=1)).to_contract()
    three = compare(storage, reference, current, DriftOptions(workers=3)).to_contract()
    assert_same(three, one)


def test_stored_calibrations_round_trip_in_one_query_each(storage: Storage, tmp_path: Path) -> None:
    """What a run calibrated is stored in one insert and read back in one query, by exact key: another
    method, window size, expression or reference scope finds nothing."""
    from detectors.drift.calibration import Calibration
    from detectors.drift.reference_side import StoredCalibrations

    reference = parquet_sample(storage, tmp_path, "r", pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}))
    other_scope = Sample(reference.from_sql, reference.columns, "x > 1")
    kept = StoredCalibrations(storage, "load-calibrations", reference)
    x = Calibration("wasserstein_norm", 2, 1024, -3.1, 0.2, 100)
    c = Calibration("jensen_shannon", 2, 1024, -2.5, 0.3, 100)
    kept.put_many([("x", "numerical:x", x), ("c", "categorical:c", c)])
    keys = [
        ("x", "numerical:x", "wasserstein_norm", 1024),
        ("c", "categorical:c", "jensen_shannon", 1024),
        ("x", "numerical:x", "psi", 1024),  # another method
        ("x", "numerical:x", "wasserstein_norm", 2048),  # another window size
        ("x", "numerical:y", "wasserstein_norm", 1024),  # the column now reads another expression
    ]
    assert kept.get_many(keys) == {keys[0]: x, keys[1]: c}
    assert StoredCalibrations(storage, "load-calibrations", other_scope).get_many(keys) == {}
    assert StoredCalibrations(storage, "another-load", reference).get_many(keys) == {}
