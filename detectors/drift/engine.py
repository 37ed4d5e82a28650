"""The drift engine: compare a current sample with a reference, column by column, inside ClickHouse.

``compare(storage, reference, current, options)`` is the one entry point, shared by ``monitor drift``
(two files through embedded chDB) and the service's detectors (a window of ``events`` against a stored
reference). It summarises the reference (:mod:`detectors.drift.reference_side`: profile and first histogram
levels; a caller that keeps the summary of a registered reference passes it in and the reference is not
rescanned), scans the current side once for its profile (numerical columns that take the large path are
profiled by their histogram query instead), then reads each numerical column for the KS statistic, the
Wasserstein distance and the decile-bin counts. A window of ``events`` is selected once, by row
positions (:mod:`detectors.drift.pinning`). Only small summaries reach Python, where the registered methods
(:mod:`detectors.drift.stats`) turn them into statistics, and :mod:`detectors.drift.methods` picks the deciding one
and its threshold.

The result, :class:`DatasetDrift`, renders the contract's JSON document and the ``detector_results``
rows.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from detectors.drift import calibration as calib
from detectors.drift.bh import bh_adjust
from detectors.drift.categories import compare_categories
from detectors.drift.collect import (
    NumericComparison,
    compare_numeric_exact,
    count_below_edges,
    count_rows,
)
from detectors.drift.large import ReferenceLevels, compare_numeric_large
from detectors.drift.methods import choose
from detectors.drift.multivariate.result import METHODS as MULTIVARIATE_METHODS
from detectors.drift.multivariate.result import MultivariateDrift
from detectors.drift.parallel import in_parallel, profile_in_parallel, single_threaded
from detectors.drift.pinning import pin
from detectors.drift.reference_side import ReferenceSide
from detectors.drift.sample import CATEGORICAL, NUMERICAL, Kind, Sample
from detectors.drift.stats import REGISTRY, Distribution, Method, Summary, Value, reported
from detectors.drift.verdict import (
    ColumnDrift,
    ColumnOptions,
    DatasetDrift,
    DriftOptions,
)
from detectors.references.profile import ColumnSummary
from detectors.report import sample_status
from monitor.errors import InputError, StorageError
from monitor.logs import get_logger
from monitor.storage import Storage
from monitor.storage.statements import batches, sql_bytes

__all__ = ["ColumnDrift", "ColumnOptions", "DatasetDrift", "DriftOptions", "ReferenceSide", "compare"]

log = get_logger(__name__)
EXACT_BATCH = 64  # columns per exact KS/Wasserstein query


def compare(
    storage: Storage,
    reference: Sample,
    current: Sample,
    options: DriftOptions | None = None,
    progress: Callable[[str], None] | None = None,
    reference_side: ReferenceSide | None = None,
    calibrations: calib.CalibrationCache | None = None,
) -> DatasetDrift:
    """Compare ``current`` with ``reference`` on their common columns (in the reference's order).

    ``reference_side``: the reference's summary computed earlier (:func:`detectors.drift.reference_side.summarize`
    or ``cached_side``) for these same rows; used for the columns it covers, so the reference is not
    scanned again. Raises :class:`InputError` when there is no common column, or when a column holds
    numbers on one side and text on the other (unless one side has no value at all there). A failure
    computing one column is logged and recorded as that column's ``error`` status; the others still get
    verdicts. ``calibrations``: where calibrated thresholds of this reference are kept (computed here
    when absent). With ``options.multivariate``, the multivariate methods run too, on bounded row samples.
    """
    options = options or DriftOptions()
    options.validate()
    say = progress or (lambda _message: None)
    pins = [pin(storage, current)]
    if reference_side is None:
        pins.append(pin(storage, reference))
    pinned_current = pins[0].sample
    pinned_reference = pins[1].sample if len(pins) > 1 else reference
    result = _compare(storage, pinned_reference, pinned_current, options, say, reference_side)
    if not all(p.intact(storage) for p in pins):
        log.warning("a window's parts were merged during the comparison; comparing again unpinned")
        pinned_reference, pinned_current = reference, current
        result = _compare(storage, reference, current, options, say, reference_side)
    result = _calibrate(storage, pinned_reference, result, options, calibrations, say)
    if options.multivariate:
        result = replace(
            result, multivariate=tuple(_multivariate(storage, pinned_reference, pinned_current, result, options, say))
        )
    return result


def _calibrate(
    storage: Storage,
    reference: Sample,
    result: DatasetDrift,
    options: DriftOptions,
    cache: calib.CalibrationCache | None,
    say: Callable[[str], None],
) -> DatasetDrift:
    """Replace the thresholds of the distance-decided columns asked to be calibrated (see
    :mod:`detectors.drift.calibration`); ``auto`` keeps the default where the calibrated one is lower."""
    columns = dict(result.columns)
    wanted: list[tuple[str, ColumnDrift, str, calib.CalibrationKey]] = []
    for name, col in result.columns.items():
        mode = options.calibrated(name)
        if mode == "fixed" or col.drift is None or col.method not in calib.CALIBRATED_METHODS:
            continue
        override = options.columns.get(name)
        if col.threshold_source == "configured" and not (override is not None and override.calibrated):
            continue  # a configured number wins over a global mode; only the column itself can override it
        n_current = calib.window_bucket(col.n_current) if cache is not None else col.n_current
        wanted.append((name, col, mode, (name, f"{col.kind}:{reference.columns[name].expr}", col.method, n_current)))
    kept = cache.get_many([key for *_, key in wanted]) if cache is not None and wanted else {}
    fresh: list[tuple[str, str, calib.Calibration]] = []
    for name, col, how, key in wanted:
        say(f"calibrating the threshold of {name} for {col.n_current:,} values")
        _, expr, method_name, n_current = key
        found = kept.get(key)
        if found is None:
            try:
                pool = calib.reference_pool(storage, reference, name)
                found = calib.calibrate(
                    pool, col.kind, method_name, col.n_reference, n_current, seed=calib.seed_of(name, n_current)
                )
            except (StorageError, ValueError) as exc:
                log.error("threshold calibration failed; keeping the fixed threshold", column=name, error=str(exc))
                continue
            fresh.append((name, expr, found))
        threshold = found.threshold
        if how == "auto" and col.threshold is not None and threshold <= col.threshold:
            continue
        method = REGISTRY[method_name]
        drift = method.drifted(col.statistic, threshold) if col.statistic is not None else None
        columns[name] = replace(col, threshold=threshold, drift=drift, threshold_source="calibrated")
    if cache is not None and fresh:
        cache.put_many(fresh)
    return replace(result, columns=columns)


def _multivariate(
    storage: Storage,
    reference: Sample,
    current: Sample,
    result: DatasetDrift,
    options: DriftOptions,
    say: Callable[[str], None],
) -> list[MultivariateDrift]:
    """The multivariate methods over the columns that got a verdict (a column without values on a side
    would be all imputation)."""
    from detectors.drift.multivariate.compare import MultivariateOptions
    from detectors.drift.multivariate.compare import compare as compare_multivariate

    names = [n for n, c in result.columns.items() if c.status == "ok"]
    kinds = {n: result.columns[n].kind for n in names}
    say(f"multivariate drift over {len(names)} columns (at most {options.multivariate_rows:,} rows a side)")
    methods = tuple(m for m in MULTIVARIATE_METHODS if m in options.multivariate)
    return compare_multivariate(
        storage, reference, current, names, kinds, MultivariateOptions(methods=methods, limit=options.multivariate_rows)
    )


def _compare(
    storage: Storage,
    reference: Sample,
    current: Sample,
    options: DriftOptions,
    say: Callable[[str], None],
    reference_side: ReferenceSide | None,
) -> DatasetDrift:
    names = [n for n in reference.columns if n in current.columns]
    if not names:
        raise InputError(
            f"no common columns between {reference.description or 'the reference'} "
            f"and {current.description or 'the current data'}"
        )
    unknown = [c for c in options.columns if c not in names]
    if unknown:
        raise InputError(f"no common column {', '.join(repr(c) for c in unknown)}")
    ref_kinds = {n: reference.columns[n].kind for n in names}
    cur_kinds = {n: current.columns[n].kind for n in names}
    if CATEGORICAL in ref_kinds.values():
        _prefetch("scipy.special")
    levels: dict[str, ReferenceLevels] = {}
    if reference_side is not None and reference_side.covers(reference, names):
        n_ref_rows, ref_stats = reference_side.rows, {n: reference_side.stats[n] for n in names}
        levels = {n: reference_side.levels[n] for n in names if n in reference_side.levels}
    else:
        say(f"profiling the reference ({len(names)} columns)")
        n_ref_rows, ref_stats = profile_in_parallel(storage, reference, names, ref_kinds, True, options.parallelism())
    say(f"reference: {n_ref_rows:,} rows; profiling the current data")
    n_cur_rows = count_rows(storage, current)
    # Large numerical columns: the current side is read once, by the histogram query (which counts its
    # missing values too); until then their ColumnSummary say "every row has a value".
    deferred = [
        n
        for n in names
        if ref_kinds[n] == NUMERICAL == cur_kinds[n]
        and ref_stats[n].n > 0
        and ref_stats[n].n + n_cur_rows > options.exact_limit
    ]
    profiled = [n for n in names if n not in deferred]
    cur_stats = (
        profile_in_parallel(storage, current, profiled, cur_kinds, False, options.parallelism(), n_cur_rows)[1]
        if profiled
        else {}
    )
    cur_stats |= {n: ColumnSummary(kind=NUMERICAL, count=n_cur_rows, missing=0) for n in deferred}
    kinds = _resolve_kinds(names, ref_stats, cur_stats)
    for name, kind in kinds.items():  # a side without any value takes the other side's kind
        if ref_stats[name].kind != kind:
            ref_stats[name] = ColumnSummary(kind=kind, count=0, missing=ref_stats[name].rows)
        if cur_stats[name].kind != kind:
            cur_stats[name] = ColumnSummary(kind=kind, count=0, missing=cur_stats[name].rows)
    say(f"comparing {len(names)} columns ({n_cur_rows:,} current rows)")
    small = [
        n
        for n in names
        if kinds[n] == NUMERICAL
        and ref_stats[n].n
        and cur_stats[n].n
        and ref_stats[n].n + cur_stats[n].n <= options.exact_limit
    ]
    # PSI/JS bin counts: one cheap scan per side for the small columns; large ones get them from their histogram
    edges = {n: ref_stats[n].edges for n in small}
    for stats, sample, kinds_of in ((ref_stats, reference, ref_kinds), (cur_stats, current, cur_kinds)):
        for name, below in count_below_edges(storage, sample, edges, kinds_of).items():
            stats[name] = replace(stats[name], below_edges=below)
    exact: dict[str, NumericComparison] = {}

    def exact_size(name: str) -> int:  # EXACT_BATCH columns a query, fewer where expressions are long
        return sql_bytes(reference.columns[name].expr) + sql_bytes(current.columns[name].expr) + 200

    for batch in batches(small, exact_size, max_items=EXACT_BATCH):
        try:
            exact |= compare_numeric_exact(
                storage, reference, current, batch, {n: (ref_stats[n].n, cur_stats[n].n) for n in batch}
            )
        except StorageError as exc:  # recorded per column below (missing from `exact`)
            log.error("exact drift statistics failed", columns=batch, error=str(exc))
    large = [n for n in names if kinds[n] == NUMERICAL and ref_stats[n].n + cur_stats[n].n > options.exact_limit]
    done = iter(range(1, len(large) + 1))
    workers = options.parallelism() if len(large) > 1 else 1
    if workers > 1:  # each query on one thread, `workers` columns at a time (no per-query merge of hash tables)
        reference, current = single_threaded(reference), single_threaded(current)

    def one(connection: Storage, name: str) -> ColumnDrift:
        ref, cur = ref_stats[name], cur_stats[name]
        try:
            column = _compare_column(
                connection, reference, current, name, kinds[name], ref, cur, options, exact.get(name), levels.get(name)
            )
        except (StorageError, ValueError, ArithmeticError) as exc:
            log.error("drift statistic failed", column=name, error=str(exc))
            column = ColumnDrift(
                column=name,
                kind=kinds[name],
                status="error",
                n_reference=ref.n,
                n_current=cur.n,
                missing_reference=ref.missing_share,
                missing_current=cur.missing_share,
                message=f"{type(exc).__name__}: {exc}",
            )
        if name in large:
            say(f"column {next(done)}/{len(large)} of the large ones done: {name}")
        return column

    order = sorted(names, key=lambda n: n not in large)  # the slow ones first, so the workers finish together
    computed = dict(zip(order, in_parallel(storage, workers, order, one), strict=True))
    columns = {name: computed[name] for name in names}
    if options.fdr:
        columns = _apply_fdr(columns)
    return DatasetDrift(columns, n_ref_rows, n_cur_rows, options.threshold_share, options.fdr)


def _prefetch(module: str) -> None:
    """Import ``module`` on a background thread while ClickHouse works (queries release the GIL).

    scipy.special (chi-square and z p-values) would otherwise be imported after the last
    query, on the critical path of a short ``monitor drift``. The import lock makes the later ordinary
    import wait for this one, never run twice.
    """
    if module not in sys.modules:
        threading.Thread(target=importlib.import_module, args=(module,), name=f"prefetch-{module}", daemon=True).start()


def _resolve_kinds(names: list[str], ref: dict[str, ColumnSummary], cur: dict[str, ColumnSummary]) -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    conflicts: list[str] = []
    for name in names:
        r, c = ref[name], cur[name]
        if r.kind == c.kind or c.n == 0:
            kinds[name] = r.kind
        elif r.n == 0:
            kinds[name] = c.kind
        else:
            word = {NUMERICAL: "numeric", CATEGORICAL: "text"}
            conflicts.append(f"{name!r} is {word[r.kind]} in the reference and {word[c.kind]} in the current data")
    if conflicts:
        raise InputError(f"column types differ: {'; '.join(conflicts)}")
    return kinds


def _compare_column(
    storage: Storage,
    reference: Sample,
    current: Sample,
    name: str,
    kind: Kind,
    ref: ColumnSummary,
    cur: ColumnSummary,
    options: DriftOptions,
    exact: NumericComparison | None,
    levels: ReferenceLevels | None = None,
) -> ColumnDrift:
    base: dict[str, Any] = {
        "column": name,
        "kind": kind,
        "n_reference": ref.n,
        "n_current": cur.n,
        "missing_reference": ref.missing_share,
        "missing_current": cur.missing_share,
    }
    if ref.n == 0 or cur.n == 0:
        side = "reference" if ref.n == 0 else "current data"
        return ColumnDrift(**base, status="insufficient_data", message=f"no value in the {side}")

    value_counts: Distribution | None = None
    extra: dict[str, Any] = {}
    if kind == NUMERICAL:
        if ref.n + cur.n <= options.exact_limit:
            if exact is None:
                raise ValueError("the exact KS/Wasserstein query failed (see the log)")
            comparison = exact
        else:
            comparison = compare_numeric_large(storage, reference, current, name, ref, levels)
            if comparison.missing_current is not None:  # the histogram counted the current side
                cur = ColumnSummary(
                    kind=NUMERICAL, count=cur.rows - comparison.missing_current, missing=comparison.missing_current
                )
                base |= {"n_current": cur.n, "missing_current": cur.missing_share}
            if cur.n == 0:
                return ColumnDrift(**base, status="insufficient_data", message="no value in the current data")
            if ref.n + cur.n <= options.exact_limit:  # many missing values: few enough for the exact path
                exact_now = compare_numeric_exact(storage, reference, current, [name], {name: (ref.n, cur.n)})[name]
                comparison = replace(
                    exact_now, reference_bins=comparison.reference_bins, current_bins=comparison.current_bins
                )
        bins = Distribution(
            _bin_labels(ref.edges),
            np.asarray(comparison.reference_bins or ref.bin_counts(), dtype=float),
            np.asarray(comparison.current_bins or cur.bin_counts(), dtype=float),
        )
        summary = Summary(
            kind=NUMERICAL,
            n_reference=ref.n,
            n_current=cur.n,
            bins=bins,
            ks_statistic=comparison.ks_statistic,
            ks_exact=comparison.ks_exact,
            wasserstein=comparison.wasserstein,
            reference_std=ref.std,
        )
        if comparison.value_counts is not None:
            values = sorted(comparison.value_counts)
            value_counts = Distribution(
                tuple(repr(v) for v in values),
                np.asarray([comparison.value_counts[v][0] for v in values], dtype=float),
                np.asarray([comparison.value_counts[v][1] for v in values], dtype=float),
            )
        n_distinct = len(comparison.value_counts) if comparison.value_counts is not None else 6
        approximate = not comparison.ks_exact
    elif ref.truncated or cur.truncated:  # too many categories to bring to Python: counted in ClickHouse
        limit = options.max_listed_categories
        grouped = compare_categories(storage, reference, current, name, ref, cur, limit)
        summary = Summary(kind=CATEGORICAL, n_reference=ref.n, n_current=cur.n, bins=grouped.bins)
        n_distinct = grouped.categories
        approximate = False
        extra = {"new_categories": grouped.new, "vanished_categories": grouped.vanished}
    else:
        labels = sorted(set(ref.frequencies) | set(cur.frequencies))
        bins = Distribution(
            tuple(labels),
            np.asarray([ref.frequencies.get(c, 0) for c in labels], dtype=float),
            np.asarray([cur.frequencies.get(c, 0) for c in labels], dtype=float),
        )
        summary = Summary(kind=CATEGORICAL, n_reference=ref.n, n_current=cur.n, bins=bins)
        n_distinct = len(labels)
        approximate = False
        new = [c for c in labels if c not in ref.frequencies]
        vanished = [c for c in labels if c not in cur.frequencies]
        limit = options.max_listed_categories
        extra = {"new_categories": tuple(new[:limit]), "vanished_categories": tuple(vanished[:limit])}

    computed = {method: method.evaluate(summary) for method in reported(kind)}
    stats = {str(method.report_key): _stat_json(method, value) for method, value in computed.items()}
    column_options = options.columns.get(name, ColumnOptions())
    choice = choose(
        name,
        kind,
        ref.n,
        n_distinct,
        method=options.method,
        threshold=options.threshold,
        per_column={name: (column_options.method, column_options.threshold)},
    )
    if choice.as_categories and value_counts is not None:
        value = choice.method.compute(Summary(kind=CATEGORICAL, n_reference=ref.n, n_current=cur.n, bins=value_counts))
    else:
        value = computed.get(choice.method) or choice.method.evaluate(summary)
    sufficient = sample_status(min(ref.n, cur.n), options.min_samples) == "ok"
    configured = column_options.threshold is not None or (
        options.threshold is not None and (options.method is None or choice.method.name == options.method)
    )
    return ColumnDrift(
        **base,
        status="ok" if sufficient else "insufficient_data",
        method=choice.method.name,
        statistic=value.statistic,
        p_value=value.p_value,
        threshold=choice.threshold,
        drift=choice.method.drifted(choice.method.decisive(value), choice.threshold) if sufficient else None,
        stats=stats,
        approximate=approximate,
        message="" if sufficient else f"fewer than min_samples={options.min_samples} values on a side",
        threshold_source="configured" if configured else "default",
        **extra,
    )


def _stat_json(method: Method, value: Value) -> object:
    if method.score == "p_value":
        return {"statistic": value.statistic, "p_value": value.p_value}
    return value.statistic


def _bin_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    bounds = ["-inf", *(repr(e) for e in edges), "inf"]
    return tuple(f"[{a}, {b})" for a, b in itertools.pairwise(bounds))


def _apply_fdr(columns: dict[str, ColumnDrift]) -> dict[str, ColumnDrift]:
    """Benjamini-Hochberg across the decided columns whose method gives a p-value."""
    tested = [c for c in columns.values() if c.drift is not None and c.method and REGISTRY[c.method].score == "p_value"]
    adjusted = bh_adjust([c.p_value for c in tested if c.p_value is not None])
    result = dict(columns)
    for col, p_adj in zip(tested, adjusted, strict=True):
        drift = REGISTRY[col.method].drifted(p_adj, col.threshold)  # type: ignore[index,arg-type]
        result[col.column] = replace(col, p_value_adjusted=p_adj, drift=drift)
    return result
