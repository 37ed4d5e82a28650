"""Scheduled detection: one APScheduler job per model, each run evaluating the window it was due for.

``times`` holds the pure window arithmetic (which window is due at a given moment), ``scheduler`` the
:class:`DetectionScheduler` that ``monitor up`` starts. See docs/alerting.md.
"""

from monitor.scheduling.scheduler import DetectionScheduler, ModelSchedule, RunRecord, load_last_runs
from monitor.scheduling.times import (
    DelayedTrigger,
    due_time,
    due_window,
    make_trigger,
    schedule_text,
)

__all__ = [
    "DelayedTrigger",
    "DetectionScheduler",
    "ModelSchedule",
    "RunRecord",
    "due_time",
    "due_window",
    "load_last_runs",
    "make_trigger",
    "schedule_text",
]
