"""``monitor detect``: run every configured detector once for one window, store the rows, print a summary."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.commands.common import ConfigOption, settings_from
from monitor.commands.reference import open_for_command
from monitor.errors import InputError, UserError
from monitor.logs import configure_logging

if TYPE_CHECKING:
    from detectors.report import StatResult, WindowReport
    from monitor.pipeline import OneShot


def alerts_document(outcome: OneShot) -> dict[str, Any]:
    """What the step did to the alerts and how its notifications ended up, for the JSON output."""
    evaluation = outcome.step.evaluation
    waited = outcome.deliveries
    return {
        "alerts": {
            "rules": [
                {"rule": o.rule, "outcome": o.outcome, "status": o.status_after, "reason": o.reason}
                for o in (evaluation.outcomes if evaluation is not None else ())
            ],
            "events": [
                {"alert_id": e.alert_id, "kind": e.kind, "severity": e.severity}
                for e in (evaluation.events if evaluation is not None else ())
            ],
            "deliveries": None
            if waited is None
            else {
                "delivered": waited.delivered,
                "failed": waited.failed,
                "pending": waited.pending,
                "failures": list(waited.failures),
            },
        }
    }


def alert_lines(extra: dict[str, Any]) -> list[str]:
    alerts = extra.get("alerts")
    if not alerts or not alerts["rules"]:
        return []
    lines = ["", "alerts:"]
    lines += [f"  {r['rule']:<32} {r['status']:<8} {r['outcome']:<12} {r['reason']}" for r in alerts["rules"]]
    lines += [f"  -> {e['kind']} {e['alert_id']} ({e['severity']})" for e in alerts["events"]]
    waited = alerts["deliveries"]
    if waited:
        lines.append(
            f"  notifications: {waited['delivered']} delivered, {waited['failed']} failed, {waited['pending']} pending"
        )
        lines += [f"    failed: {failure}" for failure in waited["failures"]]
        if waited["pending"]:
            lines.append("    pending notifications stay queued; `monitor up` delivers them")
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _verdict(row: StatResult) -> str:
    if row.status != "ok":
        return row.status.replace("_", " ")
    if row.drift is None:
        return ""
    return "DRIFT" if row.drift else "ok"


def _with_reference(row: StatResult) -> str:
    """``accuracy 0.81 (reference 0.86)`` where the reference's own value is known."""
    reference = row.details.get("reference") if row.detector == "performance" else None
    return f"{row.statistic} {_fmt(row.value)}" + (f" (reference {_fmt(reference)})" if reference is not None else "")


def summary_lines(report: WindowReport) -> list[str]:
    """A readable summary: verdicts per drift detector and column, quality, volume, performance, errors."""
    lines = [
        f"model {report.model} (version {report.model_version or '-'}), window "
        f"{report.window_start.isoformat()} .. {report.window_end.isoformat()}",
        f"{report.n_current:,} events against reference {report.reference_version} ({report.n_reference:,} rows); "
        f"status {report.status}" + (f": {report.message}" if report.message else ""),
    ]
    for detector in ("feature_drift", "prediction_drift", "window_drift", "skew"):
        rows = report.select(detector=detector)
        dataset = [r for r in rows if r.statistic == "drift_share"]
        deciding = [r for r in rows if r.column and r.threshold is not None]
        if not rows:
            continue
        head = dataset[0] if dataset else None
        verdict = "DRIFT" if head and head.drift else "no drift" if head and head.status == "ok" else "undecided"
        share = f" (drift share {_fmt(head.value)}, threshold {_fmt(head.threshold)})" if head else ""
        lines.append("")
        lines.append(f"{detector}: {verdict}{share}")
        for r in sorted(deciding, key=lambda r: r.column):
            value, threshold = _fmt(r.value), _fmt(r.threshold)
            lines.append(f"  {r.column:<24} {r.statistic:<18} {value:>10}  threshold {threshold:<8} {_verdict(r)}")
        for r in rows:
            if not r.column or r.threshold is not None:
                continue
            if r.status != "ok" and not any(d.column == r.column for d in deciding):
                lines.append(f"  {r.column:<24} {r.status.replace('_', ' ')} {r.details.get('message', '')}".rstrip())
    quality = [r for r in report.select(detector="data_quality") if r.value]
    if quality:
        lines.append("")
        lines.append("data quality (non-zero):")
        for r in quality:
            extra = f" {r.details.get('categories')}" if r.statistic == "new_categories" else ""
            extra = f" {r.details.get('features')}" if r.column == "" else extra
            lines.append(f"  {r.column or '(dataset)':<24} {r.statistic:<20} {_fmt(r.value):>10}{extra}")
    for detector in ("volume", "freshness", "performance"):
        rows = [r for r in report.select(detector=detector) if r.value is not None]
        if rows:
            lines.append(f"{detector}: " + ", ".join(_with_reference(r) for r in rows))
    estimated = [r for r in report.select(detector="estimated_performance") if r.value is not None]
    if estimated:
        parts = [
            f"{r.statistic} {_fmt(r.value)} [{_fmt(r.details.get('lower'))}, {_fmt(r.details.get('upper'))}]"
            + (" OUTSIDE the reference band" if r.drift else "")
            for r in estimated
        ]
        lines.append("estimated performance (no labels needed): " + ", ".join(parts))
    stale = report.select(detector="freshness", statistic="seconds_since_last_event")
    if stale and stale[0].value is None:
        lines.append("freshness: no event of this model before the window's end")
    segments = sorted({r.segment for r in report.results if r.segment})
    if segments:
        drifted = [
            r.segment
            for r in report.results
            if r.segment and r.detector == "feature_drift" and r.statistic == "drift_share" and r.drift
        ]
        lines.append(f"segments: {len(segments)} evaluated; feature drift in {', '.join(drifted) or 'none'}")
    errors = [r for r in report.results if r.status == "error"]
    if errors:
        lines.append("")
        lines.append(f"errors ({len(errors)}):")
        for r in errors:
            where = f"{r.detector}/{r.column or '*'}" + (f" [{r.segment}]" if r.segment else "")
            lines.append(f"  {where}: {r.details.get('error') or r.details.get('message', '')}")
    return lines


def report_json(report: WindowReport, extra: dict[str, Any]) -> dict[str, Any]:
    from detectors.results import report_document

    document = report_document(report)
    results = document.pop("results")
    document["window_start"] = report.window_start.isoformat()
    document["window_end"] = report.window_end.isoformat()
    return {**document, **extra, "results": results}


def detect(
    model: Annotated[str, typer.Option("--model", "-m", help="model name")],
    window: Annotated[str | None, typer.Option(help="window length, e.g. 1h or 30m (default: the model's)")] = None,
    end: Annotated[
        str | None, typer.Option(help="window end, RFC 3339 (2026-11-27T10:00:00Z) or epoch ms (default: now)")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    fail_on_drift: Annotated[bool, typer.Option(help="exit 1 when the features drift (dataset drift)")] = False,
    wait_deliveries: Annotated[
        float, typer.Option(min=0, help="seconds to wait for alert notifications; the rest stay queued")
    ] = 30.0,
    config: ConfigOption = None,
) -> None:
    """Run every configured detector once for one window [end - window, end), store the results, print a summary.

    Rerunning the same window replaces its stored results (labels that arrived since are picked up).

    Examples:

      monitor detect --model fraud

      monitor detect --model fraud --window 1h --end 2026-11-27T10:00:00Z --format json
    """
    from monitor.durations import parse_duration
    from monitor.pipeline import run_once
    from monitor.windows import parse_timestamp

    if output not in ("table", "json"):
        raise UserError(f"--format must be table or json, not {output!r}")
    try:
        length = parse_duration(window) if window is not None else None
    except ValueError as exc:
        raise InputError(f"--window: {exc}") from exc
    try:
        window_end = parse_timestamp(end) if end is not None else None
    except InputError as exc:
        raise InputError(f"--end: {exc}") from exc

    settings = settings_from(config)
    configure_logging(settings.log_level, settings.log_format)  # logs on stderr: stdout is the result
    storage = open_for_command(settings)
    try:
        outcome = run_once(
            storage,
            settings,
            model,
            window_end,
            length,
            wait=wait_deliveries,
            progress=lambda message: typer.echo(message, err=True),
        )
    finally:
        storage.close()
    report, extra = outcome.step.report, alerts_document(outcome)
    if output == "json":
        typer.echo(json.dumps(report_json(report, extra), indent=2, default=str))
    else:
        typer.echo("\n".join(summary_lines(report) + alert_lines(extra)))
    if fail_on_drift and report.dataset_drift():
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("detect")(detect)
