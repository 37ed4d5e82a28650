"""One detection run: every configured detector for one model and one window, stored and returned.

This is the single entry point the scheduler and ``monitor detect`` call. It knows nothing about
scheduling: the caller says which window (its end and length) and the function evaluates exactly that
window, so a late or repeated run of the same window gives the same rows (stored idempotently).

(First version: the signature is stable; the detectors are being filled in.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.report import WindowReport
from monitor.settings import Settings
from monitor.storage import Storage


def run_detection(
    storage: Storage,
    settings: Settings,
    model: str,
    window_end: datetime | None = None,
    window: timedelta | None = None,
    now: datetime | None = None,
) -> WindowReport:
    """Run every detector for ``model`` over ``[window_end - window, window_end)``, store and return the rows.

    ``window_end`` defaults to ``now`` (which defaults to the current UTC time); ``window`` defaults to
    the model's configured ``window``. Raises :class:`monitor.errors.UserError` for an unknown model or
    a model without a reference; a failing detector for one column never raises (it records an error row).
    """
    raise NotImplementedError("run_detection is being implemented (issue 3)")
