"""The API's Evidently report: any window of a model against its newest reference.

The page itself is built by :mod:`detectors.drift.evidently`, the same builder as ``monitor drift
--report``; the API samples fewer rows per side (:data:`SAMPLE_ROWS`) because a person waits for it.
"""

from __future__ import annotations

from datetime import datetime

from detectors.drift.evidently import render
from detectors.drift.reference_side import registered_sample
from detectors.drift.sample import Sample
from detectors.references.store import get_reference
from monitor.errors import InputError
from monitor.storage import Storage

SAMPLE_ROWS = 5000


def build_report_html(storage: Storage, model: str, start: datetime, end: datetime) -> str:
    """The report as a self-contained HTML page; :class:`InputError` without a reference or rows."""
    reference = get_reference(storage, model)
    if reference is None:
        raise InputError(f"model {model!r} has no reference: register one first")
    current = Sample.for_events(storage, model, start, end, features=dict(reference.columns))
    if not current.columns:
        raise InputError(f"model {model!r} has logged none of its reference's features")
    columns = sorted(current.columns)
    baseline = registered_sample(storage, reference, {name: current.columns[name].kind for name in columns})
    title = f"model {model}, window [{start.isoformat()}, {end.isoformat()}) against reference {reference.version}"
    return render(storage, baseline, current, columns, SAMPLE_ROWS, title).html
