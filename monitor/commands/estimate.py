"""``monitor estimate``: a model's performance on unlabelled data, estimated from a labelled reference.

The files are read in file order (:mod:`monitor.commands.file_tables`: text files as ``monitor drift``
reads them), then handed to :mod:`detectors.estimation`.
CUR's target column, when present, is read apart and only used for the ``realized`` figures.
"""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.commands.common import QuietOption, progress_for
from monitor.errors import InputError

if TYPE_CHECKING:
    from detectors.estimation.estimator import Estimate

EXAMPLES = (
    "Examples:\n\n"
    "monitor estimate --reference ref.parquet --current today.parquet --target label --score proba\n\n"
    "monitor estimate --reference ref.csv --current cur.csv --target y --score cat=p_cat --score dog=p_dog "
    "--score bird=p_bird --prediction predicted --chunk-size 5000\n\n"
    "monitor estimate --reference ref.parquet --current cur.parquet --target price --prediction predicted_price "
    "--task regression --metric mae --metric rmse --fail-on-alert  (exit 1 when an estimate alerts)"
)

HELP = (
    "Estimate a model's performance on CURRENT, which has no labels yet, from a REFERENCE that has them.\n\n"
    "Classifiers (binary, multiclass): confidence-based estimation. The scores are calibrated on the "
    "reference (isotonic, when that calibrates better on held-out reference rows), and each metric is "
    "computed on the expected confusion matrix: roc_auc, accuracy, precision, recall, f1, specificity "
    "(multiclass: _macro and _weighted). Regressors: direct loss estimation, a gradient-boosted model of "
    "each row's error fitted on the reference from the features and the prediction: mae, mse, rmse, mape.\n\n"
    "CURRENT is cut into consecutive chunks in file order (--chunk-size N, or --chunks K; default 10 "
    "chunks). Each estimate has a confidence band (3 sampling standard deviations) and alerts when it leaves "
    "the reference band (mean +/- 3 standard deviations of the metric between reference chunks of that size). "
    "When CURRENT holds the target column, the realized metrics are shown too; the estimator never reads them.\n\n"
    "--score COL is the positive class's probability (binary, target 0/1 or true/false); --score CLASS=COL "
    "names the class (repeat it for every class of a multiclass model). Without --prediction the predicted "
    "class is score >= 0.5 (binary) or the highest score (multiclass). A regressor's prediction is "
    "--prediction, or --score. --task defaults to multiclass for several scores, regression when the "
    "reference target has non-integer numbers, else binary.\n\n"
    "Exit codes: 0 done; 1 an estimate alerts with --fail-on-alert; 2 bad input (one line on stderr)."
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class TaskOption(StrEnum):
    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


def estimate(
    reference: Annotated[Path, typer.Option("--reference", help="Labelled reference data: Parquet, CSV or TSV.")],
    current: Annotated[Path, typer.Option("--current", help="Data to estimate on: Parquet, CSV or TSV.")],
    target: Annotated[str, typer.Option("--target", help="The label column (needed in REFERENCE only).")],
    score: Annotated[
        list[str] | None,
        typer.Option("--score", help="Score column (positive class), or CLASS=COLUMN per class. Repeat."),
    ] = None,
    prediction: Annotated[
        str | None, typer.Option("--prediction", help="Predicted class (or a regressor's prediction) column.")
    ] = None,
    task: Annotated[TaskOption | None, typer.Option("--task", help="binary, multiclass or regression.")] = None,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Rows per chunk (the last may be shorter).", min=1)
    ] = None,
    chunks: Annotated[
        int | None, typer.Option("--chunks", help="Number of chunks of (nearly) equal size.", min=1)
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="A metric to estimate (default: all of the task's). Repeat.")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="table (readable) or json.")] = (
        OutputFormat.table
    ),
    fail_on_alert: Annotated[bool, typer.Option("--fail-on-alert", help="Exit 1 when any estimate alerts.")] = False,
    quiet: QuietOption = False,
) -> None:
    from detectors.estimation.chunks import chunk_bounds
    from detectors.estimation.estimator import estimate_chunks, fit, realized
    from detectors.estimation.metrics import resolve_metrics
    from detectors.file_format import check_file
    from monitor.commands.estimate_inputs import Request, read_inputs

    if chunk_size is not None and chunks is not None:
        raise InputError("give --chunk-size or --chunks, not both")
    check_file(reference)  # fail fast, before ClickHouse starts
    check_file(current)
    request = Request.parse(target, score or [], prediction, task.value if task else None)
    progress = progress_for("estimate", (reference, current), quiet) or (lambda _message: None)
    progress(f"reading {reference.name} and {current.name}")
    data = read_inputs(reference, current, request)
    try:
        names = resolve_metrics(data.task, metric or [])
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if chunk_size is not None and chunk_size > data.current.rows:
        raise InputError(f"--chunk-size {chunk_size} is larger than {current}'s {data.current.rows} rows")
    if chunks is not None and chunks > data.current.rows:
        raise InputError(f"--chunks {chunks} is more than {current}'s {data.current.rows} rows")
    bounds = chunk_bounds(data.current.rows, chunk_size, chunks)
    largest = max(end - start for start, end in bounds)
    fitting = "loss models" if data.task == "regression" else "calibration and reference bands"
    progress(f"{data.task}: fitting the {fitting} on {data.reference.rows:,} reference rows")
    fitted = fit(data.task, data.reference, data.reference_labels, data.classes, names, largest)
    out_chunks: list[dict[str, Any]] = []
    progress(f"estimating {len(bounds)} chunks of {data.current.rows:,} current rows")
    per_chunk = estimate_chunks(fitted, data.current, bounds)
    # The reference band each chunk was judged by: a short last chunk gets a wider one than the
    # full-size ``thresholds``. Beside the chunks, so each chunk keeps the documented shape.
    chunk_thresholds = [
        {name: {"lower": _num(e.threshold_lower), "upper": _num(e.threshold_upper)} for name, e in estimates.items()}
        for estimates in per_chunk
    ]
    for index, ((start, end), estimates) in enumerate(zip(bounds, per_chunk, strict=True)):
        part = data.current.take(start, end)
        entry: dict[str, Any] = {
            "index": index,
            "start_row": start,
            "end_row": end - 1,
            "rows": end - start,
            "estimates": {name: _estimate_json(e) for name, e in estimates.items()},
        }
        if data.current_labels is not None:
            entry["realized"] = realized(fitted, part, data.current_labels[start:end])
        out_chunks.append(entry)
    thresholds = {}
    for name in names:
        band = fitted.bands.get(name)
        low, high = band.at(largest) if band is not None else (None, None)
        thresholds[name] = {"lower": _num(low), "upper": _num(high)}
    result: dict[str, Any] = {
        "task": data.task,
        "metrics": list(names),
        "reference_rows": data.reference.rows,
        "current_rows": data.current.rows,
        "chunks": out_chunks,
        "calibrated": bool(fitted.meta.get("calibrated", False)),
        "reference": {name: _num(fitted.reference.get(name)) for name in names},
        "thresholds": thresholds,
        "chunk_thresholds": chunk_thresholds,
    }
    for note in data.notes:
        typer.echo(f"monitor estimate: {note}", err=True)
    if output is OutputFormat.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        typer.echo(render_table(result))
    alerts = any(e["alert"] for c in out_chunks for e in c["estimates"].values())
    if fail_on_alert and alerts:
        raise typer.Exit(1)


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _estimate_json(e: Estimate) -> dict[str, Any]:
    return {"value": _num(e.value), "lower": _num(e.lower), "upper": _num(e.upper), "alert": e.alert}


def render_table(result: dict[str, Any]) -> str:
    """One line per chunk and metric: estimate, band, reference thresholds, realized, verdict."""
    header = ("chunk", "rows", "metric", "estimate", "band", "thresholds", "realized", "alert")
    lines: list[tuple[str, ...]] = [header]
    for chunk, bands in zip(result["chunks"], result["chunk_thresholds"], strict=True):
        for name, e in chunk["estimates"].items():
            t = bands[name]
            real = chunk.get("realized", {}).get(name)
            lines.append(
                (
                    f"{chunk['index']} [{chunk['start_row']}-{chunk['end_row']}]",
                    str(chunk["rows"]),
                    name,
                    _fmt(e["value"]),
                    f"{_fmt(e['lower'])} - {_fmt(e['upper'])}",
                    f"{_fmt(t['lower'])} - {_fmt(t['upper'])}",
                    _fmt(real),
                    "ALERT" if e["alert"] else "no",
                )
            )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    alerts = sum(e["alert"] for c in result["chunks"] for e in c["estimates"].values())
    calibrated = "scores calibrated on the reference" if result["calibrated"] else "scores used as they are"
    if result["task"] == "regression":
        calibrated = "loss models fitted on the reference"
    text.append("")
    text.append(
        f"{result['task']}: {alerts} alert(s) over {len(result['chunks'])} chunks; {result['reference_rows']:,} "
        f"reference rows, {result['current_rows']:,} current rows; {calibrated}"
    )
    return "\n".join(text)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def register(app: typer.Typer) -> None:
    app.command("estimate", epilog=EXAMPLES, help=HELP)(estimate)
