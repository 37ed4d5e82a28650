"""compare() inside real ClickHouse (chDB) against scipy and formulas on the raw data (exact path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from detectors.drift.engine import ColumnOptions, DriftOptions, compare
from detectors.drift.sample import Sample
from detectors.report import DATASET
from monitor.errors import InputError
from monitor.storage import Storage
from tests.detectors.drift_oracle import (
    compare_tables,
    expected_categorical,
    expected_numeric,
    files_storage,
    parquet_sample,
)

__all__ = ["files_storage"]  # the fixture, imported


def check_numeric(column: dict, ref: np.ndarray, cur: np.ndarray) -> None:
    want = expected_numeric(ref, cur)
    stats = column["stats"]
    assert stats["ks"]["statistic"] == pytest.approx(want.ks, abs=1e-9)
    assert stats["ks"]["p_value"] == pytest.approx(want.ks_p, rel=0.01, abs=1e-300)
    assert stats["wasserstein_norm"] == pytest.approx(want.wasserstein_norm, rel=1e-9)
    assert stats["psi"] == pytest.approx(want.psi, rel=1e-6, abs=1e-12)
    assert stats["js"] == pytest.approx(want.js, rel=1e-6, abs=1e-12)
    assert stats["hellinger"] == pytest.approx(want.hellinger, rel=1e-6, abs=1e-12)


def check_categorical(column: dict, ref: list, cur: list) -> None:
    want = expected_categorical(ref, cur)
    stats = column["stats"]
    assert stats["chi2"]["statistic"] == pytest.approx(want["chi2"], rel=1e-6, abs=1e-12)
    assert stats["chi2"]["p_value"] == pytest.approx(want["chi2_p"], rel=1e-6)
    assert np.isfinite(stats["chi2"]["statistic"])
    for key in ("psi", "js", "hellinger"):
        assert stats[key] == pytest.approx(want[key], rel=1e-6, abs=1e-12)


def test_numerical_and_categorical_against_scipy(files_storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    n_ref, n_cur = 900, 700
    ref = pd.DataFrame(
        {
            "normal": rng.normal(size=n_ref),
            "ties": rng.integers(0, 12, n_ref).astype(float),  # heavy ties, more than 5 values
            "skewed": rng.lognormal(size=n_ref),
            "country": rng.choice(["DE", "FR", "IT", "ES"], n_ref, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    cur = pd.DataFrame(
        {
            "normal": rng.normal(0.2, 1.1, n_cur),
            "ties": rng.integers(2, 14, n_cur).astype(float),
            "skewed": rng.lognormal(0.1, 1, n_cur),
            "country": rng.choice(["DE", "FR", "BR", "US"], n_cur, p=[0.3, 0.3, 0.3, 0.1]),  # unseen: BR, US
        }
    )
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "ref", ref),
        parquet_sample(files_storage, tmp_path, "cur", cur),
    ).to_contract()
    for name in ("normal", "ties", "skewed"):
        check_numeric(doc["columns"][name], ref[name].to_numpy(), cur[name].to_numpy())
        assert doc["columns"][name]["type"] == "numerical"
        assert doc["columns"][name]["method"] == "ks"  # reference of at most 1,000 values
    check_categorical(doc["columns"]["country"], list(ref.country), list(cur.country))
    assert doc["columns"]["country"]["new_categories"] == ["BR", "US"]
    assert doc["columns"]["country"]["vanished_categories"] == ["ES", "IT"]
    assert doc["columns"]["country"]["method"] == "chi2"
    assert doc["n_reference"] == n_ref and doc["n_current"] == n_cur


def test_missing_values_nan_null_inf_are_left_out(files_storage: Storage, tmp_path: Path) -> None:
    """NaN and NULL (and ±inf) are missing: excluded from every statistic, reported in missing_share."""
    ref_values = [1.0, 2.0, None, float("nan"), 3.0, 4.0, 5.0, 6.0, 7.0, float("inf")]
    cur_values = [2.5, None, None, 3.5, 4.5, float("nan"), 8.0, 9.0]
    ref_cats = ["a", None, "b", "a", "b", "a", None, "c", "a", "b"]
    cur_cats = ["a", "b", None, "b", "b", "d", "a", None]
    doc = compare_tables(
        files_storage,
        tmp_path,
        pa.table({"x": pa.array(ref_values, pa.float64(), from_pandas=False), "c": ref_cats}),
        pa.table({"x": pa.array(cur_values, pa.float64(), from_pandas=False), "c": cur_cats}),
    )
    x = doc["columns"]["x"]
    assert x["missing_share"] == {"reference": pytest.approx(3 / 10), "current": pytest.approx(3 / 8)}
    assert x["n_reference"] == 7 and x["n_current"] == 5
    check_numeric(x, np.array(ref_values, dtype=float), np.array(cur_values, dtype=float))
    c = doc["columns"]["c"]
    assert c["missing_share"] == {"reference": pytest.approx(0.2), "current": pytest.approx(0.25)}
    check_categorical(c, ref_cats, cur_cats)


def test_csv_empty_fields_and_booleans_match_parquet(files_storage: Storage, tmp_path: Path) -> None:
    """A CSV (pandas writes True/False, empty = missing) compares with a Parquet bool column as categories."""
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"flag": rng.choice([True, False], 400), "v": rng.normal(size=400)})
    cur = pd.DataFrame({"flag": rng.choice([True, False], 300, p=[0.8, 0.2]), "v": rng.normal(size=300)})
    cur.loc[:9, "v"] = np.nan
    ref.to_parquet(tmp_path / "ref.parquet", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    doc = compare(
        files_storage,
        Sample.from_file(files_storage, tmp_path / "ref.parquet"),
        Sample.from_file(files_storage, tmp_path / "cur.csv"),
    ).to_contract()
    flag = doc["columns"]["flag"]
    assert flag["type"] == "categorical"
    assert flag["new_categories"] == [] and flag["vanished_categories"] == []
    check_categorical(flag, [str(v).lower() for v in ref.flag], [str(v).lower() for v in cur.flag])
    assert flag["method"] == "z"  # two values, small reference: Evidently's z-test
    assert doc["columns"]["v"]["missing_share"]["current"] == pytest.approx(10 / 300)
    check_numeric(doc["columns"]["v"], ref.v.to_numpy(), cur.v.to_numpy())


def test_constant_reference_divides_by_1e3(files_storage: Storage, tmp_path: Path) -> None:
    ref = pd.DataFrame({"k": np.full(200, 5.0), "c": ["only"] * 200})
    cur = pd.DataFrame({"k": np.r_[np.full(150, 5.0), np.full(50, 5.002)], "c": ["only"] * 199 + ["other"]})
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", ref),
        parquet_sample(files_storage, tmp_path, "c", cur),
    ).to_contract()
    k = doc["columns"]["k"]
    assert k["stats"]["wasserstein_norm"] == pytest.approx((50 / 200 * 0.002) / 1e-3, rel=1e-6)
    check_numeric(k, ref.k.to_numpy(), cur.k.to_numpy())
    check_categorical(doc["columns"]["c"], list(ref.c), list(cur.c))
    single = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r1", pd.DataFrame({"c": ["x"] * 30})),
        parquet_sample(files_storage, tmp_path, "c1", pd.DataFrame({"c": ["x"] * 20})),
    ).to_contract()["columns"]["c"]
    assert single["stats"]["chi2"] == {"statistic": 0.0, "p_value": 1.0}
    assert single["drift"] is False


def test_all_missing_and_tiny_windows(files_storage: Storage, tmp_path: Path) -> None:
    ref = pd.DataFrame({"gone": [1.0, 2.0, 3.0], "v": [1.0, 2.0, 3.0], "t": ["a", "b", "a"]})
    cur = pd.DataFrame({"gone": [np.nan], "v": [2.5], "t": [None]})
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", ref),
        parquet_sample(files_storage, tmp_path, "c", cur),
    ).to_contract()
    gone = doc["columns"]["gone"]
    assert gone["status"] == "insufficient_data" and gone["drift"] is None
    assert gone["missing_share"] == {"reference": 0.0, "current": 1.0}
    assert doc["columns"]["t"]["status"] == "insufficient_data"
    v = doc["columns"]["v"]
    assert v["status"] == "ok" and v["drift"] is not None
    check_numeric(v, ref.v.to_numpy(), cur.v.to_numpy())
    assert doc["drift_share"] == (1.0 if v["drift"] else 0.0)  # only decided columns count


def test_min_samples_gives_insufficient_data_not_a_verdict(files_storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref = parquet_sample(files_storage, tmp_path, "r", pd.DataFrame({"v": rng.normal(size=100)}))
    cur = parquet_sample(files_storage, tmp_path, "c", pd.DataFrame({"v": rng.normal(5, 1, size=20)}))
    doc = compare(files_storage, ref, cur, DriftOptions(min_samples=50)).to_contract()
    assert doc["columns"]["v"]["status"] == "insufficient_data"
    assert doc["columns"]["v"]["drift"] is None
    assert doc["columns"]["v"]["stats"]["ks"]["statistic"] > 0.9  # statistics still reported
    assert doc["dataset_drift"] is False
    assert compare(files_storage, ref, cur, DriftOptions(min_samples=20)).to_contract()["columns"]["v"]["drift"] is True


def test_overrides_fdr_and_results_rows(files_storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({f"x{i}": rng.normal(size=500) for i in range(4)} | {"c": rng.choice(["a", "b", "c"], 500)})
    cur = pd.DataFrame(
        {f"x{i}": rng.normal(0.15 * i, 1, size=500) for i in range(4)} | {"c": rng.choice(["a", "b", "c"], 500)}
    )
    r, c = parquet_sample(files_storage, tmp_path, "r", ref), parquet_sample(files_storage, tmp_path, "c", cur)
    options = DriftOptions(method="psi", threshold=0.02, columns={"x3": ColumnOptions("ks", 0.001)})
    result = compare(files_storage, r, c, options)
    doc = result.to_contract()
    assert doc["columns"]["x0"]["method"] == "psi" and doc["columns"]["x0"]["threshold"] == 0.02
    assert doc["columns"]["c"]["method"] == "psi"  # psi applies to categorical columns too
    assert doc["columns"]["x3"]["method"] == "ks" and doc["columns"]["x3"]["threshold"] == 0.001
    assert doc["columns"]["x0"]["statistic"] == doc["columns"]["x0"]["stats"]["psi"]
    rows = result.to_results("feature_drift")
    deciding = [row for row in rows if row.column == "x3" and row.drift is not None]
    assert [row.statistic for row in deciding] == ["ks_p_value"]
    assert deciding[0].threshold == 0.001
    dataset = [row for row in rows if row.column == DATASET]
    assert len(dataset) == 1 and dataset[0].statistic == "drift_share" and dataset[0].drift == doc["dataset_drift"]
    assert {row.statistic for row in rows if row.column == "x1"} == {
        "ks",
        "ks_p_value",
        "wasserstein_norm",
        "psi",
        "js",
        "hellinger",
    }
    plain = compare(files_storage, r, c).to_contract()
    fdr = compare(files_storage, r, c, DriftOptions(fdr=True)).to_contract()
    p_values = [plain["columns"][n]["p_value"] for n in ("x0", "x1", "x2", "x3", "c")]
    from detectors.drift.bh import bh_adjust

    for name, adjusted in zip(("x0", "x1", "x2", "x3", "c"), bh_adjust(p_values), strict=True):
        assert fdr["columns"][name]["p_value_adjusted"] == pytest.approx(adjusted)
        assert fdr["columns"][name]["drift"] == (adjusted < 0.05)


def test_bad_inputs(files_storage: Storage, tmp_path: Path) -> None:
    a = parquet_sample(files_storage, tmp_path, "a", pd.DataFrame({"x": [1.0, 2.0], "y": ["u", "v"]}))
    b = parquet_sample(files_storage, tmp_path, "b", pd.DataFrame({"z": [1.0, 2.0]}))
    with pytest.raises(InputError, match="no common columns"):
        compare(files_storage, a, b)
    c = parquet_sample(files_storage, tmp_path, "c", pd.DataFrame({"x": ["1", "2"], "y": [1.0, 2.0]}))
    with pytest.raises(InputError, match="'x' is numeric in the reference and text in the current data"):
        compare(files_storage, a, c)
    with pytest.raises(InputError, match="unknown drift method"):
        compare(files_storage, a, a, DriftOptions(method="nope"))
    # a side without any value there takes the other side's kind: not a conflict
    empty = parquet_sample(files_storage, tmp_path, "e", pd.DataFrame({"x": pd.Series([None, None], dtype=object)}))
    assert compare(files_storage, a, empty).to_contract()["columns"]["x"]["status"] == "insufficient_data"


def test_column_names_that_look_like_generated_aliases(files_storage: Storage, tmp_path: Path) -> None:
    """Columns named like the engine's own aliases (c0, v, s, k, ...) or with odd characters still compare right."""
    rng = np.random.default_rng(6)
    names = ["c1", "c0", "v", "s", "k", "g", "weird `name`", "ünï côdé"]
    ref = pd.DataFrame({n: rng.normal(i, 1 + i, 400) for i, n in enumerate(names)})
    cur = pd.DataFrame({n: rng.normal(i + 0.3, 1 + i, 300) for i, n in enumerate(names)})
    ref["cat c0"] = rng.choice(["x", "y"], 400)
    cur["cat c0"] = rng.choice(["x", "y", "z"], 300)
    doc = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", ref),
        parquet_sample(files_storage, tmp_path, "c", cur),
    ).to_contract()
    for name in names:
        check_numeric(doc["columns"][name], ref[name].to_numpy(), cur[name].to_numpy())
    check_categorical(doc["columns"]["cat c0"], list(ref["cat c0"]), list(cur["cat c0"]))


def test_results_rows_for_columns_without_a_verdict(files_storage: Storage, tmp_path: Path) -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "gone": [1.0, 2.0, 3.0]})
    cur = pd.DataFrame({"x": [np.nan, np.nan], "gone": [np.nan, np.nan]})
    result = compare(
        files_storage,
        parquet_sample(files_storage, tmp_path, "r", ref),
        parquet_sample(files_storage, tmp_path, "c", cur),
    )
    rows = result.to_results("feature_drift", segment="country=DE")
    per_column = [r for r in rows if r.column == "x"]
    assert [(r.statistic, r.status, r.value, r.drift) for r in per_column] == [
        ("insufficient_data", "insufficient_data", None, None)
    ]
    dataset = next(r for r in rows if r.column == DATASET)
    assert dataset.drift is None and dataset.status == "insufficient_data" and dataset.segment == "country=DE"


def id_like(rng: np.random.Generator, n_ref: int, n_cur: int) -> tuple[list, list]:
    """An ID-like column: 50,000 distinct categories in all, most seen once, some often, some missing;
    categories only in the reference, only in the window, and on both sides."""
    ref = [f"id{i:06d}" for i in range(40_000)] + [f"hot{i}" for i in rng.integers(0, 40, n_ref - 40_000)]
    cur = [f"id{i:06d}" for i in range(30_000, 40_000)] + [f"new{i:05d}" for i in range(10_000)]
    cur += [f"hot{i}" for i in rng.integers(20, 60, n_cur - len(cur))]
    ref[::997] = [None] * len(ref[::997])
    cur[::499] = [None] * len(cur[::499])
    return ref, cur


def test_many_categories_are_compared_inside_clickhouse_as_scipy(files_storage: Storage, tmp_path: Path) -> None:
    """A column with more categories than a side brings to Python (an ID): chi2 with 50,000 degrees of
    freedom, PSI, JS and Hellinger as scipy and the formulas on every category; the listed new and
    vanished categories the first ones in sorted order, as on a small column."""
    from detectors.drift import collect
    from detectors.drift.reference_side import summarize

    ref, cur = id_like(np.random.default_rng(5), 60_000, 30_000)
    reference = parquet_sample(files_storage, tmp_path, "ref", pd.DataFrame({"id": ref}))
    current = parquet_sample(files_storage, tmp_path, "cur", pd.DataFrame({"id": cur}))
    side = summarize(files_storage, reference).stats["id"]
    assert side.truncated and side.frequencies == {}  # nothing per category kept or stored
    assert (side.count, side.missing) == (sum(v is not None for v in ref), sum(v is None for v in ref))
    assert len(set(ref) | set(cur)) - 1 > 2 * collect.MAX_COUNTED_CATEGORIES
    column = compare(files_storage, reference, current, DriftOptions(max_listed_categories=50)).to_contract()
    doc = column["columns"]["id"]
    check_categorical(doc, ref, cur)
    assert doc["stats"]["chi2"]["p_value"] > 0  # 59,999 degrees of freedom: not the 1-row table's p = 1
    present_ref, present_cur = {v for v in ref if v is not None}, {v for v in cur if v is not None}
    assert doc["new_categories"] == sorted(present_cur - present_ref)[:50]
    assert doc["vanished_categories"] == sorted(present_ref - present_cur)[:50]
    assert doc["missing_share"] == {"reference": ref.count(None) / len(ref), "current": cur.count(None) / len(cur)}


def test_many_categories_give_the_small_paths_numbers(
    files_storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grouped comparison and the per-category one agree on the same data (the limit lowered so that
    columns of a few dozen categories take the grouped path). A side whose values are all spellings of
    true/false (CSV) reads them as 'true'/'false' on both paths, also when only the other side is many."""
    from detectors.drift import collect

    rng = np.random.default_rng(8)
    ref, cur = id_like(rng, 45_000, 25_000)
    others = [f"v{i}" for i in range(20)]
    tables = {
        "ref": pd.DataFrame({"id": ref[:3_000], "flag": rng.choice(["True", "False", "TRUE"], 3_000)}),
        "cur": pd.DataFrame({"id": cur[-2_000:], "flag": rng.choice(["true", "false", *others], 2_000)}),
    }
    samples = [parquet_sample(files_storage, tmp_path, name, frame) for name, frame in tables.items()]
    options = DriftOptions(max_listed_categories=7)
    small = compare(files_storage, *samples, options).to_contract()["columns"]
    monkeypatch.setattr(collect, "MAX_COUNTED_CATEGORIES", 10)  # the window's flag and both ids are "many"
    grouped = compare(files_storage, *samples, options).to_contract()["columns"]
    for name in ("id", "flag"):
        assert grouped[name]["new_categories"] == small[name]["new_categories"]
        assert grouped[name]["vanished_categories"] == small[name]["vanished_categories"]
        assert grouped[name]["method"] == small[name]["method"]
        assert grouped[name]["stats"]["chi2"]["p_value"] == pytest.approx(
            small[name]["stats"]["chi2"]["p_value"], rel=1e-9
        )
        for key in ("psi", "js", "hellinger"):
            assert grouped[name]["stats"][key] == pytest.approx(small[name]["stats"][key], rel=1e-9, abs=1e-15)
    assert small["flag"]["new_categories"] == sorted(others)[:7]  # True/False read as true/false on both paths
