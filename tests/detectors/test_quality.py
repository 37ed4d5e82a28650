"""Data quality, volume and freshness against shares and counts computed independently on the same data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.checks import quality, volume
from detectors.registration import add_file
from detectors.runner import build_context
from monitor.storage import Storage
from tests.detectors.event_rows import T0, Rows, settings_for, spread, write_events

FEATURES = {"amount": "numerical", "country": "categorical", "is_new": "categorical", "age": "numerical"}


def _by_key(results) -> dict[tuple[str, str], object]:
    return {(r.column, r.statistic): r for r in results}


@pytest.fixture
def scenario(storage: Storage, tmp_path: Path):
    rng = np.random.default_rng(11)
    reference = pd.DataFrame(
        {
            "amount": rng.uniform(10, 50, 2000),
            "country": rng.choice(["DE", "FR", "IT"], 2000),
            "is_new": rng.random(2000) < 0.5,
            "age": rng.normal(40, 5, 2000),
        }
    )
    reference.loc[:99, "age"] = np.nan  # 5% missing in the reference
    path = tmp_path / "ref.parquet"
    reference.to_parquet(path)
    add_file(storage, "m", path)
    n = 1000
    amount = rng.uniform(0, 60, n)  # some below 10, some above 50
    amount[rng.random(n) < 0.1] = np.nan  # explicit nulls
    country = rng.choice(["DE", "FR", "BR", "US", "IT"], n, p=[0.4, 0.3, 0.1, 0.05, 0.15]).astype(object)
    country[rng.random(n) < 0.05] = None
    absent_amount = rng.random(n) < 0.07  # the key is not sent at all
    write_events(
        storage,
        Rows(
            "m",
            spread(n),
            {"amount": amount, "country": country, "is_new": rng.random(n) < 0.5, "extra": np.ones(n)},
            prediction=rng.random(n),
            absent={"amount": absent_amount, "extra": rng.random(n) < 0.5},
        ),
    )
    settings = settings_for(storage, tmp_path, {"m": {"features": FEATURES, "min_samples": 100}})
    return settings, reference, amount, country, absent_amount


def test_shares_against_the_reference(storage: Storage, scenario) -> None:
    settings, reference, amount, country, absent_amount = scenario
    ctx = build_context(storage, settings, "m", window_end=T0, now=T0)
    rows = _by_key(quality.data_quality(ctx))
    n = len(amount)
    missing = np.isnan(amount) | absent_amount  # an absent key is missing too
    assert rows[("amount", "missing_share")].value == pytest.approx(missing.mean())
    assert rows[("amount", "absent_key_share")].value == pytest.approx(absent_amount.mean())
    present = amount[~missing]
    lo, hi = reference["amount"].min(), reference["amount"].max()
    assert rows[("amount", "out_of_range_share")].value == pytest.approx(((present < lo) | (present > hi)).mean())
    assert rows[("amount", "out_of_range_share")].details["min"] == lo
    assert rows[("age", "missing_share")].value == 1.0  # configured, never sent
    assert rows[("age", "missing_share")].details["reference"] == pytest.approx(0.05)
    assert rows[("age", "absent_key_share")].value == 1.0
    new = rows[("country", "new_categories")]
    assert new.value == 2 and new.details["categories"] == ["BR", "US"]
    known = pd.Series(country).dropna()
    assert new.details["share"] == pytest.approx(known.isin(["BR", "US"]).mean())
    assert rows[("country", "missing_share")].value == pytest.approx(pd.isna(country).mean())
    assert rows[("is_new", "new_categories")].value == 0
    unexpected = rows[("", "unexpected_features")]
    assert unexpected.value == 1 and unexpected.details["features"] == ["extra"]
    assert rows[("", "absent_features")].value == 1 and rows[("", "absent_features")].details["features"] == ["age"]
    assert all(r.status == "ok" and r.n_current == n for r in rows.values())


def test_volume_and_freshness(storage: Storage, tmp_path: Path) -> None:
    data = pd.DataFrame({"x": np.arange(50.0)})
    data.to_parquet(tmp_path / "ref.parquet")
    add_file(storage, "v", tmp_path / "ref.parquet")

    def events(n: int, end, span: timedelta = timedelta(hours=1)) -> list[str]:
        ids = [f"v-{end.isoformat()}-{i}" for i in range(n)]
        ts = spread(n, end=end, span=span)
        return write_events(storage, Rows("v", ts, {"x": np.ones(n)}, np.ones(n), event_ids=ids))

    recent = (T0 - timedelta(seconds=90), timedelta(minutes=50))
    events(600, *recent)  # the window; the last event a little over 90 s before T0
    events(600, *recent)  # redelivered: the same ids count once
    events(400, T0 - timedelta(days=1))
    events(1000, T0 - timedelta(days=7))
    events(5, T0 + timedelta(minutes=30), timedelta(minutes=10))  # after the window: neither counted nor "fresh"
    settings = settings_for(storage, tmp_path, {"v": {"min_samples": 10}})
    ctx = build_context(storage, settings, "v", window_end=T0, now=T0 + timedelta(hours=2))
    rows = _by_key(volume.volume(ctx))
    assert rows[("", "count")].value == 600
    assert rows[("", "change_vs_day")].value == pytest.approx(600 / 400 - 1)
    assert rows[("", "change_vs_week")].value == pytest.approx(600 / 1000 - 1)
    assert rows[("", "change_vs_week")].details["earlier_count"] == 1000
    last = spread(600, *recent)[-1]
    (fresh,) = volume.freshness(ctx)
    assert fresh.value == pytest.approx((T0 - last).total_seconds(), abs=1e-3)
    early = build_context(storage, settings, "v", window_end=T0 - timedelta(days=3), window=timedelta(hours=1))
    assert _by_key(volume.volume(early))[("", "change_vs_day")].value is None  # nothing a day earlier
    (stale,) = volume.freshness(early)  # a late run answers as of its window's end
    last_before = spread(1000, end=T0 - timedelta(days=7))[-1]
    assert stale.value == pytest.approx((T0 - timedelta(days=3) - last_before).total_seconds(), abs=1e-3)


@pytest.mark.parametrize("limit", [None, 1_000])
def test_new_categories_against_a_reference_with_many_long_categories(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int | None
) -> None:
    """3,000 categories of 120 characters: their list (370 kB) cannot be written into the statement
    (ClickHouse's max_query_size is 262,144 bytes), so they are looked up in the reference rows, also
    where the profile keeps only the most frequent ``limit`` of them (``truncated``)."""
    from detectors.references import profile

    if limit is not None:
        monkeypatch.setattr(profile, "MAX_CATEGORIES", limit)
    codes = [f"{i:04d}" + "x" * 116 for i in range(3_000)]
    pd.DataFrame({"code": codes + codes[:500]}).to_parquet(tmp_path / "ref.parquet")
    add_file(storage, "long", tmp_path / "ref.parquet")
    window = np.array(codes[:200] + [f"new{i}" for i in range(30)] * 2 + [None] * 5, dtype=object)
    write_events(storage, Rows("long", spread(len(window)), {"code": window}, prediction=np.ones(len(window))))
    settings = settings_for(storage, tmp_path, {"long": {"features": {"code": "categorical"}, "min_samples": 10}})
    ctx = build_context(storage, settings, "long", window_end=T0, now=T0)
    assert ctx.reference_profile("code").truncated is (limit is not None)
    new = _by_key(quality.data_quality(ctx))[("code", "new_categories")]
    assert new.status == "ok" and new.value == 30
    listed = new.details["categories"]
    assert len(listed) == quality.MAX_LISTED and listed == sorted(listed)
    assert set(listed) <= {f"new{i}" for i in range(30)}
    assert new.details["rows"] == 60 and new.details["share"] == pytest.approx(60 / 260)
