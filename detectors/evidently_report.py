"""``monitor drift --report``: Evidently 0.7's DataDriftPreset as HTML, on a bounded random sample.

Evidently needs the rows in pandas and takes minutes past a few hundred thousand of them, so the report
is drawn from at most :data:`REPORT_ROWS` rows per side, sampled uniformly inside ClickHouse. The HTML
says so in its title, and the verdicts of ``monitor drift`` (computed on every row) remain the ones
that count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from detectors.collect import categorical_value, numeric_value
from detectors.sample import NUMERICAL, Sample
from monitor.errors import InputError
from monitor.storage import Storage, quote_identifier

REPORT_ROWS = 50_000


def sample_rows(storage: Storage, sample: Sample, columns: Sequence[str], limit: int = REPORT_ROWS):
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
    ref = sample_rows(storage, reference, columns, limit)
    cur = sample_rows(storage, current, columns, limit)
    used = max(len(ref), len(cur))
    say(
        f"report: Evidently DataDriftPreset on a random sample of at most {limit:,} rows per side "
        f"({len(ref):,} reference, {len(cur):,} current rows); the verdicts above use every row"
    )
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [c for c in columns if reference.columns[c].kind == NUMERICAL]
    categorical = [c for c in columns if c not in numerical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(path))
        note = (
            f"<!-- monitor drift: Evidently DataDriftPreset on a uniform random sample of at most {limit} rows per "
            f"side ({len(ref)} reference, {len(cur)} current rows); the verdicts of monitor drift use every row -->"
        )
        html = path.read_text(encoding="utf-8")
        banner = (
            f'<div style="font-family:sans-serif;padding:8px;background:#fff3cd">Sampled report: at most '
            f"{limit:,} rows per side ({len(ref):,} reference, {len(cur):,} current). "
            "monitor drift's own verdicts are computed on every row.</div>"
        )
        html = html.replace("<body>", f"<body>{note}{banner}", 1) if "<body>" in html else note + html
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--report {path}: cannot write ({exc.strerror or exc})") from exc
    say(f"report written to {path}")
    return used
