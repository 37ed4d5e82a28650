"""``monitor drift``: compare two files offline, through the same engine as the service.

No service and no configured database: the command opens embedded ClickHouse (chDB) in a private
temporary directory, lets it read both files in place (Parquet, CSV, TSV) and runs
:func:`detectors.drift.engine.compare`. Only summaries leave ClickHouse; ``--report`` is the one exception and
draws a bounded random sample of rows for Evidently's HTML report.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.commands.common import QuietOption, progress_for
from monitor.errors import InputError

if TYPE_CHECKING:
    from detectors.drift.engine import DatasetDrift, DriftOptions
    from detectors.drift.sample import Sample

EXAMPLES = (
    "Examples:\n\n"
    "monitor drift --reference train.parquet --current today.parquet\n\n"
    "monitor drift --reference ref.csv --current cur.csv --format json --columns amount,country\n\n"
    "monitor drift --reference ref.parquet --current cur.parquet --fail-on-drift  (exit 1 on drift: a CI gate)\n\n"
    "monitor drift --reference ref.parquet --current cur.parquet --method psi --threshold 0.2 "
    "--method country=chi2 --threshold country=0.01 --report drift.html\n\n"
    "monitor drift --reference ref.parquet --current cur.parquet --threshold calibrated --multivariate"
)


# Inputs up to this size (together) are read into memory once instead of decoded again for every column.
MATERIALIZE_BYTES = 256 * 1024 * 1024


CALIBRATED = "calibrated"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def drift(
    reference: Annotated[Path, typer.Option("--reference", help="Reference data: Parquet, CSV or TSV.")],
    current: Annotated[Path, typer.Option("--current", help="Current data to compare: Parquet, CSV or TSV.")],
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns to compare (default: all common).")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="table (readable) or json.")] = (
        OutputFormat.table
    ),
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write Evidently's DataDriftPreset HTML (sampled rows).")
    ] = None,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="Exit 1 when the dataset drifts.")] = False,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", help="Deciding method for every column it applies to, or COLUMN=METHOD. Repeat."),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="Threshold for the deciding method, or COLUMN=VALUE; 'calibrated' (or COLUMN=calibrated) measures "
            "distance thresholds for the current data's size. Repeat.",
        ),
    ] = None,
    threshold_share: Annotated[
        float, typer.Option("--threshold-share", help="Dataset drift when this share of columns drifts.")
    ] = 0.5,
    fdr: Annotated[bool, typer.Option("--fdr", help="Benjamini-Hochberg adjustment across p-value columns.")] = False,
    min_samples: Annotated[
        int, typer.Option("--min-samples", help="Fewer non-missing values on a side: no verdict.")
    ] = 1,
    quiet: QuietOption = False,
    multivariate: Annotated[
        bool,
        typer.Option(
            "--multivariate",
            help="Also PCA reconstruction error and a domain classifier over all columns together (sampled rows).",
        ),
    ] = False,
) -> None:
    """Compare CURRENT with REFERENCE column by column and say what drifted (no service needed)."""
    from detectors.file_format import check_file

    check_file(reference)  # fail fast, before ClickHouse starts
    check_file(current)
    if report is not None:
        check_writable(report)
    drift_options = options_from(method or [], threshold or [], threshold_share, fdr, min_samples)
    if multivariate:
        from dataclasses import replace

        from detectors.drift.multivariate.result import METHODS

        drift_options = replace(drift_options, multivariate=METHODS)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None  # '': every column
    if wanted == []:
        raise InputError(f"--columns {columns!r} names no column")
    progress = progress_for("drift", (reference, current), quiet)
    workdir = Path(tempfile.mkdtemp(prefix="monitor-drift-"))
    try:
        result = run(workdir, reference, current, wanted, drift_options, report, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if output is OutputFormat.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(result.to_contract(), option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        typer.echo(render_table(result))
    for col in result.columns.values():
        if col.status == "error":
            typer.echo(f"monitor drift: warning: column {col.column!r} failed: {col.message}", err=True)
    if fail_on_drift and result.dataset_drift:
        raise typer.Exit(1)


def check_writable(path: Path) -> None:
    """Refuse a ``--report`` path that cannot be written before any work (one line, exit 2), as the
    write itself would: its folder is created, an existing file is left as it is."""
    if path.is_dir():
        raise InputError(f"--report {path}: cannot write (Is a directory)")
    if any(parent.is_file() for parent in path.parents):
        raise InputError(f"--report {path}: cannot write (Not a directory)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with path.open("ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise InputError(f"--report {path}: cannot write ({exc.strerror or exc})") from exc


def options_from(
    methods: list[str], thresholds: list[str], threshold_share: float, fdr: bool, min_samples: int
) -> DriftOptions:
    """``--method``/``--threshold`` values (global, or ``COLUMN=...``) as engine options."""
    from detectors.drift.engine import ColumnOptions, DriftOptions

    global_method: str | None = None
    global_threshold: float | None = None
    calibrate = "fixed"
    per_column: dict[str, dict[str, object]] = {}
    for entry in methods:
        column, _, name = entry.rpartition("=")
        if column:
            per_column.setdefault(column, {})["method"] = name.strip()
        else:
            global_method = name.strip()
    for entry in thresholds:
        column, _, text = entry.rpartition("=")
        if text.strip().lower() == CALIBRATED:
            if column:
                per_column.setdefault(column, {})["calibrated"] = True
            else:
                calibrate = "calibrated"
            continue
        try:
            value = float(text)
        except ValueError as exc:
            raise InputError(f"--threshold {entry!r}: {text!r} is neither a number nor 'calibrated'") from exc
        if column:
            per_column.setdefault(column, {})["threshold"] = value
        else:
            global_threshold = value
    options = DriftOptions(
        threshold_share=threshold_share,
        method=global_method,
        threshold=global_threshold,
        columns={c: ColumnOptions(**kw) for c, kw in per_column.items()},  # type: ignore[arg-type]
        fdr=fdr,
        min_samples=min_samples,
        calibrate=calibrate,  # type: ignore[arg-type]
    )
    options.validate()
    return options


def run(
    workdir: Path,
    reference: Path,
    current: Path,
    columns: list[str] | None,
    options: DriftOptions,
    report: Path | None,
    progress: Callable[[str], None] | None,
) -> DatasetDrift:
    """Open a private embedded ClickHouse under ``workdir``, compare the files, write the report if asked."""
    from detectors.drift.engine import compare
    from detectors.drift.sample import Sample
    from monitor.storage import connect_dsn

    storage = connect_dsn(f"chdb://{workdir / 'db'}", "drift")  # no configuration: no settings models to load
    try:
        ref = Sample.from_file(storage, reference)
        cur = Sample.from_file(storage, current)
        if columns is not None:
            for sample in (ref, cur):
                unknown = [c for c in columns if c not in sample.columns and c not in sample.skipped]
                if unknown:
                    raise InputError(f"--columns: {sample.description} has no column {', '.join(map(repr, unknown))}")
                not_comparable = [c for c in columns if c in sample.skipped]
                if not_comparable:
                    c = not_comparable[0]
                    raise InputError(
                        f"--columns: {c!r} in {sample.description} cannot be compared ({sample.skipped[c]})"
                    )
            ref, cur = ref.select(columns), cur.select(columns)
        left_out = uncompared(ref, cur)  # said once the comparison stands (a bad input gets one line only)
        if reference.stat().st_size + current.stat().st_size <= MATERIALIZE_BYTES:
            common = [c for c in ref.columns if c in cur.columns]
            ref = ref.select(common).materialize(storage, "reference")
            cur = cur.select(common).materialize(storage, "current")
        result = compare(storage, ref, cur, options, progress)
        for note in left_out:
            typer.echo(f"monitor drift: not compared: {note}", err=True)
        if report is not None:
            from detectors.drift.evidently import write_report

            write_report(
                storage, ref, cur, list(result.columns), report, lambda m: typer.echo(f"monitor drift: {m}", err=True)
            )
        return result
    finally:
        storage.close()


def uncompared(ref: Sample, cur: Sample) -> list[str]:
    """What the comparison leaves out, so that no column disappears without a word: columns of a type
    that is neither numeric nor text, and columns that only one of the files has."""
    notes = [f"{sample.description}: {name} ({why})" for sample in (ref, cur) for name, why in sample.skipped.items()]
    for sample, other, where in ((ref, cur, "the reference"), (cur, ref, "the current data")):
        alone = [n for n in sample.columns if n not in other.columns and n not in other.skipped]
        if alone:
            notes.append(f"only in {where}: {', '.join(alone)}")
    return notes


def render_table(result: DatasetDrift) -> str:
    """A readable summary: one line per column, the deciding statistic first."""
    header = ("column", "type", "method", "statistic", "p-value", "threshold", "drift", "missing ref/cur")
    lines: list[tuple[str, ...]] = [header]
    for col in result.columns.values():
        verdict = {True: "DRIFT", False: "no", None: col.status.replace("_", " ")}[col.drift]
        calibrated = " (calibrated)" if col.threshold_source == "calibrated" else ""
        lines.append(
            (
                col.column,
                col.kind,
                col.method or "-",
                _num(col.statistic),
                _num(col.p_value_adjusted if col.p_value_adjusted is not None else col.p_value),
                _num(col.threshold) + calibrated,
                verdict,
                f"{_pct(col.missing_reference)} / {_pct(col.missing_current)}",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    drifted = [c.column for c in result.drifted]
    verdict = "DATASET DRIFT" if result.dataset_drift else "no dataset drift"
    text.append("")
    text.append(
        f"{verdict}: {len(drifted)} of {len(result.decided)} columns drifted "
        f"(share {result.drift_share:.2f}, threshold {result.threshold_share:.2f}); "
        f"{result.n_reference:,} reference rows, {result.n_current:,} current rows"
    )
    for found in result.multivariate or ():
        verdict = {True: "DRIFT", False: "no drift", None: found.status.replace("_", " ")}[found.drift]
        text.append(
            f"multivariate {found.method}: {_num(found.value)} (threshold {_num(found.threshold)}) {verdict}; "
            f"{found.n_reference:,} reference / {found.n_current:,} current rows used"
        )
    for col in result.columns.values():
        if col.new_categories:
            shown = ", ".join(col.new_categories[:10]) + (" ..." if len(col.new_categories) > 10 else "")
            text.append(f"new categories in {col.column}: {shown}")
    return "\n".join(text)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


HELP = (
    "Compare CURRENT with REFERENCE column by column and say what drifted. No service is needed: embedded "
    "ClickHouse reads both files in place.\n\n"
    "Numerical columns report KS, normalised Wasserstein, PSI, Jensen-Shannon (base 2) and Hellinger; "
    "categorical ones (strings and booleans) chi-square, PSI, Jensen-Shannon, Hellinger and new categories. "
    "The deciding method per column is Evidently's default (reference of at most 1,000 values: ks / chi2 / z "
    "at p < 0.05; larger: wasserstein_norm / jensen_shannon at 0.1) unless --method says otherwise. "
    "Methods: ks, wasserstein_norm, psi, jensen_shannon, hellinger, chi2, z. Missing values (NULL, NaN) are "
    "left out and reported as missing_share. --threshold calibrated replaces the fixed distance thresholds by "
    "mean + 3 std of the distance between same-distribution samples of the reference's and the current data's "
    "sizes. --multivariate adds PCA reconstruction error and a domain classifier (ROC AUC) over all columns, "
    "on at most 50,000 sampled rows a side.\n\n"
    "Exit codes: 0 done; 1 dataset drift with --fail-on-drift; 2 bad input (one line on stderr)."
)


def register(app: typer.Typer) -> None:
    app.command("drift", epilog=EXAMPLES, help=HELP)(drift)
