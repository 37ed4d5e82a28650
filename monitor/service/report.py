"""The API's Evidently report: any window of a model against a reference (default: the newest).

The page itself is built by :mod:`detectors.drift.evidently`, the same builder as ``monitor drift
--report``, on a bounded random sample of each side (``api.report_sample_rows``), said so at the top of
the page. Drawing the sample still reads the whole window, so the endpoint caps the window's length and
its number of events (:func:`window_event_count`) before calling :func:`build_report_html`, and caches
pages. The statistics that drive alerts come from the detectors, never from here.
"""

from __future__ import annotations

from datetime import datetime

from detectors.drift.evidently import render
from detectors.drift.reference_side import registered_sample
from detectors.drift.sample import Sample
from detectors.references.store import Reference, get_reference
from monitor.errors import InputError
from monitor.service.queries import _WINDOW, _window_params
from monitor.storage import Storage

SAMPLE_ROWS = 5000


def window_event_count(storage: Storage, model: str, start: datetime, end: datetime) -> int:
    """Events of ``model`` stored in ``[start, end)``, duplicates included: an upper bound read from the
    primary key (model, ts) alone, cheap enough to run before deciding whether a report may scan them."""
    rows = storage.rows(
        f"SELECT count() FROM {storage.table('events')} WHERE model = {{model:String}} AND {_WINDOW}",
        parameters={"model": model, **_window_params(start, end)},
    )
    return int(rows[0][0])


def build_report_html(
    storage: Storage,
    model: str,
    start: datetime,
    end: datetime,
    reference: Reference | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> str:
    """The report as a self-contained HTML page (against ``reference``, default the newest);
    :class:`InputError` without a reference or rows."""
    reference = reference or get_reference(storage, model)
    if reference is None:
        raise InputError(f"model {model!r} has no reference: register one first")
    current = Sample.for_events(storage, model, start, end, features=dict(reference.columns))
    if not current.columns:
        raise InputError(f"model {model!r} has logged none of its reference's features")
    columns = sorted(current.columns)
    baseline = registered_sample(storage, reference, {name: current.columns[name].kind for name in columns})
    title = f"model {model}, window [{start.isoformat()}, {end.isoformat()}) against reference {reference.version}"
    return render(storage, baseline, current, columns, sample_rows, title).html
