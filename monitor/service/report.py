"""An Evidently DataDriftPreset HTML report for any window of a model, against its newest reference.

Evidently works on pandas frames, so this is the one place that pulls raw rows out of ClickHouse:
a bounded random sample of each side (``api.report_sample_rows``), said so at the top of the page.
Drawing the sample still reads the whole window, so the endpoint caps the window's length and its
number of events before calling :func:`build_report_html` (and caches pages). The statistics that
drive alerts come from the detectors, never from here.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from monitor.errors import InputError
from monitor.service.queries import _WINDOW, _window_params
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureColumns

if TYPE_CHECKING:
    from detectors.references import Reference

SAMPLE_ROWS = 5000


def window_event_count(storage: Storage, model: str, start: datetime, end: datetime) -> int:
    """Events of ``model`` stored in ``[start, end)``, duplicates included: an upper bound read from the
    primary key (model, ts) alone, cheap enough to run before deciding whether a report may scan them."""
    rows = storage.rows(
        f"SELECT count() FROM {storage.table('events')} WHERE model = {{model:String}} AND {_WINDOW}",
        parameters={"model": model, **_window_params(start, end)},
    )
    return int(rows[0][0])


def _frame(storage: Storage, sql: str, parameters: dict | None, features: dict[str, str]) -> pd.DataFrame:
    frame = storage.frame(sql, parameters=parameters)
    for name, kind in features.items():
        if name not in frame.columns:
            frame[name] = None
        if kind == NUMERICAL:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        else:
            frame[name] = frame[name].astype("object").where(frame[name].notna(), None)
    return frame[list(features)]


def build_report_html(
    storage: Storage,
    model: str,
    start: datetime,
    end: datetime,
    reference: Reference | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> str:
    """The report as a self-contained HTML page (against ``reference``, default the newest);
    :class:`InputError` if a side has no rows."""
    from detectors.references import get_reference

    reference = reference or get_reference(storage, model)
    if reference is None:
        raise InputError(f"model {model!r} has no reference: register one first")
    logged = FeatureColumns(storage).for_model(model)
    features: dict[str, str] = {}
    current_exprs: list[str] = []
    reference_exprs: list[str] = []
    for i, (name, kind) in enumerate(sorted(reference.columns.items())):
        column = logged.get(name, {}).get(kind)  # type: ignore[call-overload]
        if column is None:
            continue
        alias = f"f{i}"
        features[alias] = kind
        current_exprs.append(f"{quote_identifier(column)} AS {alias}")
        reference_exprs.append(f"{reference.column_expr(name)} AS {alias}")
    if not features:
        raise InputError(f"model {model!r} has logged none of its reference's features")
    names = {f"f{i}": name for i, name in enumerate(sorted(reference.columns))}
    current = _frame(
        storage,
        f"SELECT {', '.join(current_exprs)} FROM {storage.table('events')} FINAL "
        f"WHERE model = {{model:String}} AND {_WINDOW} ORDER BY rand() LIMIT {int(sample_rows)}",
        {"model": model, **_window_params(start, end)},
        features,
    ).rename(columns=names)
    baseline = _frame(
        storage,
        f"SELECT {', '.join(reference_exprs)} FROM {reference.from_sql(storage)} "
        f"WHERE {reference.where_sql()} ORDER BY rand() LIMIT {int(sample_rows)}",
        None,
        features,
    ).rename(columns=names)
    if current.empty:
        raise InputError(f"model {model!r} has no events in [{start.isoformat()}, {end.isoformat()})")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[names[a] for a, k in features.items() if k == NUMERICAL],
        categorical_columns=[names[a] for a, k in features.items() if k == CATEGORICAL],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(baseline, data_definition=definition),
    )
    banner = (
        f"<div style='font-family:sans-serif;padding:8px;background:#fff3cd'>Evidently report for model "
        f"<b>{html.escape(model)}</b>, window [{start.isoformat()}, {end.isoformat()}) against reference version "
        f"{html.escape(reference.version)}: random samples of at most {sample_rows:,} rows per side "
        f"({len(current):,} current, {len(baseline):,} reference).</div>"
    )
    page = snapshot.get_html_str(as_iframe=False)
    return page.replace("<body>", "<body>" + banner, 1) if "<body>" in page else banner + page
