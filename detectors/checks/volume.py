"""Volume and freshness: is traffic arriving as usual, and when did the last event arrive.

``volume``: events in the window, and the relative change against the same window a day and a week
earlier (``count / earlier - 1``; -0.4 means 40% fewer), all three counted in one scan with ``FINAL``
so redelivered events count once. ``freshness``: seconds from the last event before the window's
end to the evaluation time (the window's end, or now if that is earlier), so a rerun of a past
window answers what it would have answered then.
"""

from __future__ import annotations

from detectors.context import RunContext
from detectors.report import DATASET, StatResult
from detectors.segments import Segment, segment_condition, segment_label
from monitor.storage.sqlfmt import sql_datetime, sql_string, window_condition
from monitor.windows import DAY, WEEK, to_utc


def volume(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    label = segment_label(segment)
    windows = {"count": ctx.window, "day": ctx.window.shifted(-DAY), "week": ctx.window.shifted(-WEEK)}
    where = f"model = {sql_string(ctx.model)} AND ({' OR '.join(f'({window_condition(w)})' for w in windows.values())})"
    where += segment_condition(segment)
    counts = ctx.storage.rows(
        f"SELECT {', '.join(f'countIf({window_condition(w)})' for w in windows.values())} "
        f"FROM {ctx.events_from} WHERE {where}"
    )[0]
    current, day, week = (int(c) for c in counts)
    results = [
        StatResult("volume", DATASET, "count", float(current), segment=label, n_current=current),
    ]
    for name, earlier in (("change_vs_day", day), ("change_vs_week", week)):
        results.append(
            StatResult(
                "volume",
                DATASET,
                name,
                current / earlier - 1.0 if earlier > 0 else None,
                segment=label,
                status="ok" if earlier > 0 else "insufficient_data",
                n_reference=earlier,
                n_current=current,
                details={"earlier_count": earlier, "earlier_window_start": windows[name[10:]].start.isoformat()},
            )
        )
    return results


def freshness(ctx: RunContext, segment: Segment = None) -> list[StatResult]:
    evaluated_at = min(ctx.window.end, ctx.now)
    where = f"model = {sql_string(ctx.model)} AND ts < {sql_datetime(ctx.window.end)}"
    where += segment_condition(segment)
    # No FINAL: a duplicate cannot change the latest timestamp, and this reads in key order.
    rows = ctx.storage.rows(
        f"SELECT ts FROM {ctx.storage.table('events')} WHERE {where} ORDER BY model DESC, ts DESC LIMIT 1"
    )
    last = to_utc(rows[0][0]) if rows else None
    seconds = max((evaluated_at - last).total_seconds(), 0.0) if last is not None else None
    return [
        StatResult(
            "freshness",
            DATASET,
            "seconds_since_last_event",
            seconds,
            segment=segment_label(segment),
            details={"last_event": last.isoformat() if last else None, "evaluated_at": evaluated_at.isoformat()},
        )
    ]
