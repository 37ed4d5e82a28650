"""The one Evidently report builder: DataDriftPreset as HTML on a bounded random sample of each side.

Used by ``monitor drift --report`` and by the API's report endpoint. Evidently needs the rows in pandas
and takes minutes past a few hundred thousand of them, so each side is sampled uniformly inside
ClickHouse (at most ``limit`` rows) and the page says so at its top; the verdicts that count (CLI
output, detector results, alerts) are computed on every row by the engine, never here.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from detectors.drift.collect import categorical_value, numeric_value
from detectors.drift.sample import NUMERICAL, Sample
from monitor.errors import InputError
from monitor.storage import Storage, quote_identifier

REPORT_ROWS = 50_000  # per side, for a report a user asked to write (monitor drift --report)
# Evidently's time on one categorical column grows faster than its categories (BENCHMARKS.md): past
# this many distinct values in the two samples together (an ID column) the column is left out of the
# page, and the monitor's own verdict on it, computed on every row, stands.
REPORT_MAX_CATEGORIES = 10_000


@dataclass(frozen=True)
class SampledReport:
    """A rendered report and how many rows of each side it saw."""

    html: str
    reference_rows: int
    current_rows: int
    # Columns the page does not show, each with why: no value on one side (Evidently refuses an empty
    # column), or more categories than REPORT_MAX_CATEGORIES.
    left_out: tuple[str, ...] = ()


def sample_rows(storage: Storage, sample: Sample, columns: Sequence[str], limit: int) -> pd.DataFrame:
    """At most ``limit`` uniformly drawn rows of ``columns`` as a pandas DataFrame (numbers with NaN)."""
    parts = []
    for name in columns:
        spec = sample.columns[name]
        value = numeric_value(spec.expr) if spec.kind == NUMERICAL else categorical_value(spec.expr)
        parts.append(f"{value} AS {quote_identifier(name)}")
    sql = (
        f"SELECT {', '.join(parts)} FROM {sample.from_sql} WHERE {sample.where_sql} "
        f"ORDER BY rand64() LIMIT {int(limit)}"
    )
    return storage.frame(sql)


def render(
    storage: Storage, reference: Sample, current: Sample, columns: Sequence[str], limit: int, title: str
) -> SampledReport:
    """The report as one self-contained HTML page headed by ``title`` and what was sampled.

    Columns without a single value on one side (a feature absent from the window), which Evidently
    refuses, and categorical columns of more than :data:`REPORT_MAX_CATEGORIES` distinct values in the
    two samples, which would take it many minutes, are left out, and the page says which and why.
    Raises :class:`InputError` when there is no column to compare or the current side has no rows.
    """
    if not columns:
        raise InputError("no column to compare in the report")
    ref = sample_rows(storage, reference, columns, limit)
    cur = sample_rows(storage, current, columns, limit)
    if cur.empty:
        raise InputError(f"no rows in {current.description}")
    reasons = {c: "no value on one side" for c in columns if cur[c].isna().all() or ref[c].isna().all()}
    for c in columns:
        if c not in reasons and reference.columns[c].kind != NUMERICAL:
            distinct = pd.concat([ref[c], cur[c]], ignore_index=True).nunique()
            if distinct > REPORT_MAX_CATEGORIES:
                reasons[c] = f"{distinct:,} categories, over the report's {REPORT_MAX_CATEGORIES:,}"
    left_out = tuple(f"{c} ({why})" for c, why in reasons.items())
    columns = [c for c in columns if c not in reasons]
    if not columns:
        raise InputError(f"no column to compare in the report; left out: {', '.join(left_out)}")
    ref, cur = ref[columns], cur[columns]
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [c for c in columns if reference.columns[c].kind == NUMERICAL]
    categorical = [c for c in columns if c not in numerical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    banner = (
        "<div style='font-family:sans-serif;padding:8px;background:#fff3cd'>"
        f"Sampled report, {html.escape(title)}: Evidently DataDriftPreset on uniform random samples of at most "
        f"{limit:,} rows per side ({len(ref):,} reference, {len(cur):,} current rows). "
        "The monitor's own verdicts are computed on every row."
        + (f" Left out: {html.escape(', '.join(left_out))}." if left_out else "")
        + "</div>"
    )
    page = snapshot.get_html_str(as_iframe=False)
    page = page.replace("<body>", f"<body>{banner}", 1) if "<body>" in page else banner + page
    return SampledReport(page, len(ref), len(cur), left_out)


def write_report(
    storage: Storage,
    reference: Sample,
    current: Sample,
    columns: Sequence[str],
    path: Path,
    notice: Callable[[str], None] | None = None,
    limit: int = REPORT_ROWS,
) -> int:
    """Write the HTML report to ``path``; returns the number of rows used per side (at most ``limit``).

    ``notice`` receives two lines meant for the user (that the report is sampled, and where it went).
    """
    say = notice or (lambda _m: None)
    report = render(storage, reference, current, columns, limit, f"monitor drift report for {current.description}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.html, encoding="utf-8")
    except OSError as exc:  # only the reason then, on its one line
        raise InputError(f"--report {path}: cannot write ({exc.strerror or exc})") from exc
    say(
        f"report: Evidently DataDriftPreset on a random sample of at most {limit:,} rows per side "
        f"({report.reference_rows:,} reference, {report.current_rows:,} current rows); the verdicts above use every row"
        + (f"; left out: {', '.join(report.left_out)}" if report.left_out else "")
    )
    say(f"report written to {path}")
    return max(report.reference_rows, report.current_rows)
