"""Scheduled detection: one APScheduler job per model, each run evaluating the window it was due for.

``times`` holds the pure window arithmetic (which window is due at a given moment), ``scheduler`` the
:class:`DetectionScheduler` that ``monitor up`` starts. See docs/alerting.md.
"""

from monitor.scheduling.scheduler import DetectionScheduler, ModelSchedule, RunRecord, default_detect, load_last_runs
from monitor.scheduling.times import (
    EPOCH,
    DelayedTrigger,
    DueWindow,
    cron_trigger,
    due_time,
    due_window,
    make_trigger,
    schedule_text,
)

__all__ = [
    "EPOCH",
    "DelayedTrigger",
    "DetectionScheduler",
    "DueWindow",
    "ModelSchedule",
    "RunRecord",
    "cron_trigger",
    "default_detect",
    "due_time",
    "due_window",
    "load_last_runs",
    "make_trigger",
    "schedule_text",
]
