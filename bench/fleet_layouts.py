"""Which `events` layout holds a fleet: insert and detection cost at 1, 10, 100 models of 25 features and
one model of 500, for four layouts (issue 10).

    current    one shared `events` table sorted by (model, ts, event_id); every feature in the maps
               fnum / fcat, typed columns n__/c__ computed from them by DEFAULT for the features
               detectors read (the product's layout: monitor/storage/events.py)
    per_model  one table per model, typed columns only, sorted by (ts, event_id)
    maps       one shared table, maps only; detectors read `if(mapContains(fnum, 'f'), fnum['f'], nan)`
    typed      one shared table, typed columns only (the layout before issue 10)

Insert: raw JSON messages (bench/fleet.py's generator) spread over the models, cut into batches as the
consumer cuts them (``kafka.batch_max_messages`` or ``ingest.batch_max_bytes``), each staged as one
Arrow column and surveyed exactly as the consumer's fast path does (:mod:`monitor.ingest.fastpath`),
then written by the layout's statement(s): the fast path's fixed ``INSERT ... SELECT`` into the maps
(current, maps), or the pre-issue-10 statement with one expression per feature (typed), once per model
of the batch (per_model). Tables and columns exist beforehand; duplicate lookup and limits are left out
(the same work whatever the layout; bench/fleet.py measures the whole writer on the current layout).

Detection: every model gets a window of ``--window`` events (generated once by ClickHouse into the
current layout, then copied into the others, so every layout holds the same rows; every table then
``OPTIMIZE ... FINAL``), and the drift engine (:func:`detectors.drift.engine.compare`, the core of the
``feature_drift`` detector: window pinning, the profile scan, categorical counts, per-column histogram
and KS queries) compares each model's window, over every feature, with a reference whose summary is
computed once (the service keeps it stored). Reported: the total over all models and the mean per model.

Usage:

    .venv/bin/python bench/fleet_layouts.py [--models 1,10,100] [--window 100000] [--insert-events 100000]
                                            [--layouts current,per_model,maps,typed] [--no-wide]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet import END, byte_bounded, messages, peak_rss_mb
from detectors.drift.engine import DriftOptions, compare
from detectors.drift.reference_side import ReferenceSide, summarize
from detectors.drift.sample import ColumnSpec, Kind, Sample
from monitor.ingest.fastpath import EVENT_COLUMNS, ONE_THREAD, FastPredictionPath
from monitor.settings import load_settings
from monitor.storage import Storage, open_storage, quote_identifier
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureColumns, feature_column, sql_string

LAYOUTS = ("current", "per_model", "maps", "typed")
BASE_COLUMNS = {k: v for k, v in EVENT_COLUMNS.items() if k not in ("fnum", "fcat")}
STAGED = "model, event_id, ts, top, f_kv, prob_kv, seg_kv, source, partition, offset"


def features_of(numerical: int, categorical: int) -> dict[str, Kind]:
    return {**{f"f{i}": NUMERICAL for i in range(numerical)}, **{f"c{i}": CATEGORICAL for i in range(categorical)}}


def typed_expression(feature: str, kind: Kind) -> str:
    """A feature's value from the staged message, as the pre-issue-10 fast path wrote a typed column."""
    value = f"f[{sql_string(feature)}]"
    if kind == NUMERICAL:
        return (
            f"if({value} NOT IN ('', 'true', 'false', 'null') AND NOT startsWith({value}, '\"'), "
            f"toFloat64({value}), nan)"
        )
    return (
        f"multiIf(startsWith({value}, '\"'), JSONExtractString({value}), {value} IN ('true', 'false'), {value}, NULL)"
    )


def typed_type(kind: Kind) -> str:
    return "Float64 DEFAULT nan" if kind == NUMERICAL else "LowCardinality(Nullable(String))"


def read_expression(layout: str, feature: str, kind: Kind) -> str:
    """What a detector reads for ``feature`` in ``layout``."""
    if layout == "maps":
        source, missing = ("fnum", "nan") if kind == NUMERICAL else ("fcat", "CAST(NULL, 'Nullable(String)')")
        key = sql_string(feature)
        return f"if(mapContains({source}, {key}), {source}[{key}], {missing})"
    return quote_identifier(feature_column(feature, kind))


class Fleet:
    """One database holding the same fleet in every layout: `events` (current), `ev_maps`, `ev_typed`
    and `ev_m<i>` per model (per_model)."""

    def __init__(self, root: Path, name: str, models: list[str], features: dict[str, Kind]) -> None:
        folder = root / name
        folder.mkdir()
        config: dict[str, object] = {"clickhouse": {"dsn": f"chdb://{root / 'db'}", "database": name}}
        config["models"] = {m: {"features": features} for m in models}
        (folder / "monitor.yaml").write_text(json.dumps(config))
        self.settings = load_settings(folder / "monitor.yaml")
        self.storage: Storage = open_storage(self.settings.clickhouse)
        self.models = models
        self.features = features
        s = self.storage
        s.command(f"CREATE TABLE {s.table('ev_maps')} AS {s.table('events')}")
        s.command(f"CREATE TABLE {s.table('ev_typed')} AS {s.table('events')}")
        s.command(f"ALTER TABLE {s.table('ev_typed')} DROP COLUMN fnum, DROP COLUMN fcat")
        typed = ", ".join(
            f"ADD COLUMN {quote_identifier(feature_column(f, k))} {typed_type(k)}" for f, k in features.items()
        )
        s.command(f"ALTER TABLE {s.table('ev_typed')} {typed}")
        for i in range(len(models)):
            s.command(f"CREATE TABLE {self.per_model(i)} AS {s.table('ev_typed')}")
        FeatureColumns(s).ensure((m, f, k) for m in models for f, k in features.items())

    def per_model(self, index: int) -> str:
        return self.storage.table(f"ev_m{index}")

    def table(self, layout: str, model: str) -> str:
        if layout == "per_model":
            return self.per_model(self.models.index(model))
        return self.storage.table({"current": "events", "maps": "ev_maps", "typed": "ev_typed"}[layout])

    def drop(self) -> None:
        self.storage.command(f"DROP DATABASE IF EXISTS {quote_identifier(self.storage.database)}")


# ---------------------------------------------------------------------------------------------- insert


def insert_statement(fleet: Fleet, layout: str, staging: str, target: str, model: str | None) -> str:
    if layout in ("current", "maps"):
        columns = EVENT_COLUMNS
        source = f"(SELECT {STAGED} FROM {staging} WHERE valid)"
    else:
        columns = {**BASE_COLUMNS}
        columns.update({feature_column(f, k): typed_expression(f, k) for f, k in fleet.features.items()})
        only = f" AND model = {sql_string(model)}" if model is not None else ""
        source = f"(SELECT {STAGED}, CAST(f_kv, 'Map(String, String)') AS f FROM {staging} WHERE valid{only})"
    names = ", ".join(quote_identifier(c) for c in columns)
    return f"INSERT INTO {target} ({names}) SELECT {', '.join(columns.values())} FROM {source}"


def insert_costs(fleet: Fleet, layouts: list[str], raws: list[bytes]) -> tuple[dict[str, float], int]:
    """Seconds to stage, survey and write ``raws`` in each layout, and the number of batches. The layouts
    take turns batch by batch, so a change of load on the machine falls on all of them alike."""
    s = fleet.storage
    path = FastPredictionPath(s, fleet.settings.kafka.max_message_bytes)
    limits = fleet.settings
    seconds = dict.fromkeys(layouts, 0.0)
    batches = 0
    for chunk in byte_bounded(raws, limits.kafka.batch_max_messages, limits.ingest.batch_max_bytes):
        batches += 1
        sources = [("bench", 0, i) for i in range(len(chunk))]
        for layout in layouts:
            started = time.perf_counter()
            path.stage(chunk, sources, s.insert_arrow)
            outcome = path.survey()
            if layout == "per_model":
                for model in outcome.stored_per_model:
                    sql = insert_statement(fleet, layout, path.table, fleet.table(layout, model), model)
                    s.command(sql, settings=ONE_THREAD)
            else:
                target = fleet.table(layout, fleet.models[0])
                s.command(insert_statement(fleet, layout, path.table, target, None), settings=ONE_THREAD)
            seconds[layout] += time.perf_counter() - started
    path.close()
    return seconds, batches


# ------------------------------------------------------------------------------------------- detection


def generate_windows(fleet: Fleet, rows: int) -> None:
    """``rows`` events per model in the hour before END, into `events`, then copied into every layout."""
    s = fleet.storage
    step_ms = max(int(3_600_000 / rows), 1)
    start = (END - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    numerical = [f for f, k in fleet.features.items() if k == NUMERICAL]
    categorical = [f for f, k in fleet.features.items() if k == CATEGORICAL]
    keys = "[" + ", ".join(sql_string(k) for k in numerical) + "]"
    ckeys = "[" + ", ".join(sql_string(k) for k in categorical) + "]"
    numbers = ", ".join(f"randNormal({0.5 if i < 3 else 0.0}, 1)" for i in range(len(numerical)))
    cats = ", ".join("['a', 'b', 'c', 'd', 'e'][rand() % 5 + 1]" for _ in categorical)
    for model in fleet.models:
        s.command(
            f"INSERT INTO {s.table('events')} (model, event_id, ts, model_version, prediction_num, feature_keys, "
            f"fnum, fcat) SELECT {sql_string(model)}, toString(number + 10000000), "
            f"toDateTime64('{start}', 3, 'UTC') + toIntervalMillisecond(number * {step_ms}), '1', "
            f"rand() / 4294967295.0, arrayConcat({keys}, {ckeys}), mapFromArrays({keys}, [{numbers}]), "
            f"mapFromArrays({ckeys}, [{cats}]) FROM numbers({rows})",
            settings={"max_insert_threads": 2},
        )
    base = "model, event_id, ts, model_version, prediction_num, feature_keys"
    typed = ", ".join(quote_identifier(feature_column(f, k)) for f, k in fleet.features.items())
    window = f"ts >= toDateTime64('{start}', 3, 'UTC')"
    s.command(
        f"INSERT INTO {s.table('ev_maps')} ({base}, fnum, fcat) SELECT {base}, fnum, fcat FROM "
        f"{s.table('events')} WHERE {window}"
    )
    s.command(
        f"INSERT INTO {s.table('ev_typed')} ({base}, {typed}) SELECT {base}, {typed} FROM "
        f"{s.table('events')} WHERE {window}"
    )
    for i, model in enumerate(fleet.models):
        s.command(
            f"INSERT INTO {fleet.per_model(i)} ({base}, {typed}) SELECT {base}, {typed} FROM {s.table('events')} "
            f"WHERE model = {sql_string(model)} AND {window}"
        )
    tables = [s.table(t) for t in ("events", "ev_maps", "ev_typed")] + [
        fleet.per_model(i) for i in range(len(fleet.models))
    ]
    for table in tables:
        s.command(f"OPTIMIZE TABLE {table} FINAL")


def reference(fleet: Fleet, rows: int) -> tuple[Sample, ReferenceSide]:
    """A reference table of ``rows`` rows with one column per feature, and its summary (computed once)."""
    s = fleet.storage
    rng = np.random.default_rng(0)
    data = {
        f: pa.array(rng.normal(0, 1, rows)) if k == NUMERICAL else pa.array(rng.choice(list("abcde"), rows))
        for f, k in fleet.features.items()
    }
    columns = ", ".join(
        f"{quote_identifier(f)} {'Float64' if k == NUMERICAL else 'String'}" for f, k in fleet.features.items()
    )
    s.command(f"CREATE TABLE {s.table('ref')} ({columns}) ENGINE = MergeTree ORDER BY tuple()")
    s.insert_arrow("ref", pa.table(data))
    sample = Sample(s.table("ref"), {f: ColumnSpec(quote_identifier(f), k) for f, k in fleet.features.items()})
    return sample, summarize(s, sample)


def window_sample(fleet: Fleet, layout: str, model: str, minutes: int = 60) -> Sample:
    """The model's events in the last ``minutes`` before END, every feature, as the layout reads them."""
    start = (END - timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")
    end = END.strftime("%Y-%m-%d %H:%M:%S")
    where = f"ts >= toDateTime64('{start}', 3, 'UTC') AND ts < toDateTime64('{end}', 3, 'UTC')"
    if layout != "per_model":
        where = f"model = {sql_string(model)} AND {where}"
    columns = {f: ColumnSpec(read_expression(layout, f, k), k) for f, k in fleet.features.items()}
    return Sample(f"{fleet.table(layout, model)} FINAL", columns, where, f"{model} events ({layout})")


def detection_costs(fleet: Fleet, layouts: list[str], ref: Sample, side: ReferenceSide) -> dict[str, list[float]]:
    """Seconds of one comparison per model (every feature) in each layout. One untimed comparison of a
    one-minute window per layout first (imports, first use of each table); then model by model, the
    layouts take turns."""
    options = DriftOptions(min_samples=10)
    for layout in layouts:
        compare(
            fleet.storage, ref, window_sample(fleet, layout, fleet.models[0], minutes=1), options, reference_side=side
        )
    runs: dict[str, list[float]] = {layout: [] for layout in layouts}
    for model in fleet.models:
        for layout in layouts:
            started = time.perf_counter()
            result = compare(fleet.storage, ref, window_sample(fleet, layout, model), options, reference_side=side)
            runs[layout].append(time.perf_counter() - started)
            assert all(c.status == "ok" for c in result.columns.values()), f"{layout} {model}: a column not compared"
    return runs


# ------------------------------------------------------------------------------------------------ main


def measure(
    root: Path, name: str, models: list[str], features: dict[str, Kind], args: argparse.Namespace, seed: int
) -> Iterator[dict[str, object]]:
    fleet = Fleet(root, name, models, features)
    numerical = sum(1 for k in features.values() if k == NUMERICAL)
    raws = messages(models, args.insert_events, numerical, len(features) - numerical, seed=seed)
    layouts = args.layouts.split(",")
    inserted, batches = insert_costs(fleet, layouts, raws)
    del raws
    detected: dict[str, list[float]] = {}
    if args.window:
        for table in ("events", "ev_maps", "ev_typed"):
            fleet.storage.command(f"TRUNCATE TABLE {fleet.storage.table(table)}")
        for i in range(len(models)):
            fleet.storage.command(f"TRUNCATE TABLE {fleet.per_model(i)}")
        generate_windows(fleet, args.window)
        ref, side = reference(fleet, args.reference)
        detected = detection_costs(fleet, layouts, ref, side)
    for layout in layouts:
        seconds = inserted[layout]
        row: dict[str, object] = {
            "layout": layout,
            "models": len(models),
            "features": len(features),
            "insert_events": args.insert_events,
            "insert_batches": batches,
            "insert_us_per_event": round(seconds / args.insert_events * 1e6, 1),
        }
        if layout in detected:
            runs = detected[layout]
            row |= {
                "window_events_per_model": args.window,
                "detection_total_s": round(sum(runs), 2),
                "detection_mean_model_s": round(sum(runs) / len(runs), 3),
                "detection_max_model_s": round(max(runs), 3),
            }
        row["peak_rss_mb"] = peak_rss_mb()
        yield row
    fleet.drop()


def ratio(row: dict[str, object], base: dict[str, object], key: str) -> float:
    return round(float(row[key]) / max(float(base[key]), 1e-6), 2)  # type: ignore[arg-type]


def growth(results: list[dict[str, object]]) -> Iterator[str]:
    """How each layout's costs grow from the smallest fleet to each larger one."""
    for layout in dict.fromkeys(str(r["layout"]) for r in results):
        rows = [r for r in results if r["layout"] == layout and r["features"] == 25]
        for row in rows[1:]:
            figures = {"insert_per_event": ratio(row, rows[0], "insert_us_per_event")}
            if "detection_total_s" in row:
                figures["detection_per_model"] = ratio(row, rows[0], "detection_mean_model_s")
                figures["detection_total"] = ratio(row, rows[0], "detection_total_s")
            yield f"growth {layout} {rows[0]['models']} -> {row['models']} models: {json.dumps(figures)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="1,10,100", help="fleet sizes ('' for the wide model only)")
    parser.add_argument("--window", type=int, default=100_000, help="events per model window (0: no detection)")
    parser.add_argument("--reference", type=int, default=20_000, help="reference rows")
    parser.add_argument("--insert-events", type=int, default=100_000, help="events inserted per fleet and layout")
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--no-wide", action="store_true", help="skip the model of 500 features")
    args = parser.parse_args()
    unknown = set(args.layouts.split(",")) - set(LAYOUTS)
    if unknown:
        parser.error(f"unknown layout(s) {', '.join(sorted(unknown))}; choose from {', '.join(LAYOUTS)}")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-layouts-") as folder:
        root = Path(folder)
        for count in (int(c) for c in args.models.split(",") if c):
            names = [f"model{i:03d}" for i in range(count)]
            for row in measure(root, f"fleet{count}", names, features_of(20, 5), args, seed=count):
                results.append(row)
                print(json.dumps(row), flush=True)
        if not args.no_wide:
            for row in measure(root, "wide", ["wide"], features_of(450, 50), args, seed=500):
                results.append(row)
                print(json.dumps(row), flush=True)
    for line in growth(results):
        print(line, flush=True)


if __name__ == "__main__":
    main()
