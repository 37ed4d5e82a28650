"""Which `events` layout lets a detector read one feature of one model without reading them all?

Writes the same synthetic events (20 numerical + 5 categorical features) into four layouts in
embedded ClickHouse and times, for each: the insert (Arrow, as the consumer sends it), a scan of ONE
feature (`sum` over the window), a scan of all 20 numerical features, and the bytes on disk.

    typed   one column per feature (the layout we use: n__<name> Float64, c__<name> LowCardinality)
    map     Map(LowCardinality(String), Float64) + Map(LowCardinality(String), String)
    json    the JSON type (each path becomes a dynamic subcolumn)
    long    one row per (event, feature), sorted by (model, feature, ts)

Usage: .venv/bin/python bench/storage_layout.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.settings import ClickHouseSettings
from monitor.storage import Storage, open_storage

NUM, CAT = 20, 5
ORDER = "ENGINE = ReplacingMergeTree ORDER BY (model, ts, event_id)"
Layout = tuple[str, pa.Table, str | None, list[str] | None]  # table, data, one-feature expr, all-numerical exprs


def synthetic(rows: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {
        "event_id": np.char.mod("%016x", rng.integers(0, 2**62, rows)),
        "ts": np.datetime64("2026-11-20T00:00:00", "ms") + np.arange(rows) * np.timedelta64(20, "ms"),
    }
    for j in range(NUM):
        data[f"f{j}"] = rng.normal(j, 1 + j / 10, rows)
    for j in range(CAT):
        data[f"c{j}"] = rng.choice(np.array(["a", "b", "c", "d", "e", "f"]), rows)
    return data


def base(data: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    rows = len(data["ts"])
    return {"model": pa.array(["m"] * rows), "event_id": pa.array(data["event_id"]), "ts": pa.array(data["ts"])}


def typed(store: Storage, data: dict[str, np.ndarray]) -> Layout:
    cols = ", ".join(
        [f"n__f{j} Float64" for j in range(NUM)] + [f"c__c{j} LowCardinality(Nullable(String))" for j in range(CAT)]
    )
    store.command(
        f"CREATE TABLE {store.table('typed')} (model LowCardinality(String), event_id String, "
        f"ts DateTime64(3, 'UTC'), {cols}) {ORDER}"
    )
    arrays = base(data) | {f"n__f{j}": pa.array(data[f"f{j}"]) for j in range(NUM)}
    arrays |= {f"c__c{j}": pa.array(data[f"c{j}"]) for j in range(CAT)}
    return "typed", pa.table(arrays), "n__f3", [f"n__f{j}" for j in range(NUM)]


def map_layout(store: Storage, data: dict[str, np.ndarray]) -> Layout:
    store.command(
        f"CREATE TABLE {store.table('maps')} (model LowCardinality(String), event_id String, "
        "ts DateTime64(3, 'UTC'), num Map(LowCardinality(String), Float64), "
        f"cat Map(LowCardinality(String), String)) {ORDER}"
    )
    rows = len(data["ts"])
    num_keys = pa.array([f"f{j}" for j in range(NUM)] * rows)
    num_vals = pa.array(np.column_stack([data[f"f{j}"] for j in range(NUM)]).ravel())
    cat_keys = pa.array([f"c{j}" for j in range(CAT)] * rows)
    cat_vals = pa.array(np.column_stack([data[f"c{j}"] for j in range(CAT)]).ravel())
    arrays = base(data) | {
        "num": pa.MapArray.from_arrays(pa.array(np.arange(rows + 1) * NUM, pa.int32()), num_keys, num_vals),
        "cat": pa.MapArray.from_arrays(pa.array(np.arange(rows + 1) * CAT, pa.int32()), cat_keys, cat_vals),
    }
    return "maps", pa.table(arrays), "num['f3']", [f"num['f{j}']" for j in range(NUM)]


def json_layout(store: Storage, data: dict[str, np.ndarray]) -> Layout:
    store.command(
        f"CREATE TABLE {store.table('js')} (model LowCardinality(String), event_id String, "
        f"ts DateTime64(3, 'UTC'), features JSON) {ORDER}"
    )
    rows = len(data["ts"])
    docs = [
        json.dumps(
            {
                **{f"f{j}": float(data[f"f{j}"][i]) for j in range(NUM)},
                **{f"c{j}": str(data[f"c{j}"][i]) for j in range(CAT)},
            }
        )
        for i in range(rows)
    ]
    return (
        "js",
        pa.table(base(data) | {"features": pa.array(docs)}),
        "features.f3::Float64",
        [f"features.f{j}::Float64" for j in range(NUM)],
    )


def long_layout(store: Storage, data: dict[str, np.ndarray]) -> Layout:
    store.command(
        f"CREATE TABLE {store.table('long')} (model LowCardinality(String), feature LowCardinality(String), "
        "ts DateTime64(3, 'UTC'), event_id String, num Float64, cat Nullable(String)) "
        "ENGINE = ReplacingMergeTree ORDER BY (model, feature, ts, event_id)"
    )
    rows = len(data["ts"])
    feature = np.repeat(np.array([f"f{j}" for j in range(NUM)]), rows)
    arrays = {
        "model": pa.array(["m"] * (rows * NUM)),
        "feature": pa.array(feature),
        "ts": pa.array(np.tile(data["ts"], NUM)),
        "event_id": pa.array(np.tile(data["event_id"], NUM)),
        "num": pa.array(np.concatenate([data[f"f{j}"] for j in range(NUM)])),
        "cat": pa.nulls(rows * NUM, pa.string()),
    }
    return "long", pa.table(arrays), None, None


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--layouts", default="typed,map,json,long", help="comma-separated subset to measure")
    args = parser.parse_args()
    chosen = set(args.layouts.split(","))
    work = Path(tempfile.mkdtemp(prefix="monitor-bench-layout-"))
    store = open_storage(ClickHouseSettings(dsn=f"chdb://{work / 'db'}", database="layout"), migrate=False)
    store.command("CREATE DATABASE IF NOT EXISTS layout")
    data = synthetic(args.rows)
    results = []
    try:
        for build in (typed, map_layout, json_layout, long_layout):
            if build.__name__.removesuffix("_layout") not in chosen:
                continue
            name, table, one, all_num = build(store, data)
            started = time.perf_counter()
            for offset in range(0, table.num_rows, 100_000 if name != "long" else 2_000_000):
                store.insert_arrow(name, table.slice(offset, 100_000 if name != "long" else 2_000_000))
            insert_s = time.perf_counter() - started
            t = store.table(name)
            final_cost = {}
            if name == "typed":  # what FINAL costs before the parts are merged (one part per insert)
                sums = ", ".join(f"sum({c})" for c in all_num)
                for label, final in (("unmerged_no_final_s", ""), ("unmerged_final_s", "FINAL")):
                    sql = f"SELECT {sums} FROM {t} {final} WHERE model = 'm'"
                    final_cost[f"scan_20_numerical_{label}"] = round(timed(lambda sql=sql: store.rows(sql)), 3)
            store.command(f"OPTIMIZE TABLE {t} FINAL")
            if name == "long":
                one_s = timed(
                    lambda t=t: store.rows(f"SELECT sum(num) FROM {t} FINAL WHERE model = 'm' AND feature = 'f3'")
                )
                all_s = timed(
                    lambda t=t: store.rows(
                        f"SELECT feature, sum(num) FROM {t} FINAL WHERE model = 'm' GROUP BY feature"
                    )
                )
            else:
                one_s = timed(lambda t=t, one=one: store.rows(f"SELECT sum({one}) FROM {t} FINAL WHERE model = 'm'"))
                sums = ", ".join(f"sum({c})" for c in all_num)
                all_s = timed(lambda t=t, sums=sums: store.rows(f"SELECT {sums} FROM {t} FINAL WHERE model = 'm'"))
            on_disk = store.rows(
                "SELECT sum(bytes_on_disk) FROM system.parts "
                "WHERE database = 'layout' AND table = {t:String} AND active",
                parameters={"t": name},
            )[0][0]
            results.append(
                {
                    "layout": name,
                    "rows": args.rows,
                    "insert_s": round(insert_s, 2),
                    "scan_one_feature_s": round(one_s, 4),
                    "scan_20_numerical_s": round(all_s, 3),
                    "mib_on_disk": round(on_disk / 2**20, 1),
                    **final_cost,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
