"""Alert conditions: what a rule sees in one ``WindowReport``. Pure functions, no I/O, no clock.

Each condition names the detector rows it reads (vocabulary in ``detectors/report.py``) and says
which way is bad explicitly: drift verdicts come from the detector's deciding row (which already knows
whether a p-value or a distance is compared); user bounds are ``above`` (bad when the value is greater)
and ``below`` (bad when smaller).

A row whose status is not ``ok`` (too few samples, a failed detector) says nothing: when no usable
row is left the outcome is ``insufficient`` and the alert neither fires nor resolves. Drift conditions
additionally need the window to have enough events and their own detector not to have failed for the
whole population (a detector that could not compare has no verdict; another detector's failure says
nothing about drift), while volume and freshness read their own rows, because a nearly empty window
is exactly what a volume rule is about.

Columns that triggered are listed strongest evidence first (:mod:`detectors.evidence`: how far past its
threshold, in the row's own direction), never by raw value, which for a p-value is backwards.
"""

from __future__ import annotations

from collections.abc import Callable

from alerts.model import Finding, Observation
from detectors.evidence import row_strength, strength, strongest_first
from detectors.report import DATASET, PREDICTION_COLUMN, StatResult, WindowReport
from monitor.settings import AlertRule

# Columns named in a reason or a dataset-level finding's list.
TOP_FINDINGS = 10
# Findings carry every column that triggered, so a retraining webhook gets the whole list; the bound is
# the default ingest.max_features_per_model, so only a model allowed more features can exceed it
# (``Observation.findings_total`` keeps the real count, and channels say how many were left out).
FINDINGS_MAX = 2000
DATA_QUALITY_COLUMN_CHECKS = ("missing_share", "out_of_range_share", "new_categories", "absent_key_share")
DATA_QUALITY_DATASET_CHECKS = ("unexpected_features", "absent_features")


def evaluate_rule(rule: AlertRule, report: WindowReport) -> Observation:
    """The outcome of one rule over one window's report."""
    return _CONDITIONS[rule.when](rule, report)


# ---------------------------------------------------------------- helpers


def _usable(row: StatResult) -> bool:
    return row.status == "ok" and row.value is not None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _column_stats(report: WindowReport, detector: str, column: str) -> dict[str, float | None]:
    return {r.statistic: r.value for r in report.select(detector=detector, column=column)}


def _breaches(rule: AlertRule, value: float) -> bool:
    return (rule.above is not None and value > rule.above) or (rule.below is not None and value < rule.below)


def _bound(rule: AlertRule) -> float | None:
    return rule.above if rule.above is not None else rule.below


def _rule_strength(rule: AlertRule, row: StatResult) -> float:
    """How far ``row`` is past the rule's bound on its bad side (``above``: larger is worse, ``below``:
    smaller is worse; both: the farther of the two); with no bound, its own threshold and direction."""
    sides = [strength(row.value, rule.above, smaller=False)] if rule.above is not None else []
    if rule.below is not None:
        sides.append(strength(row.value, rule.below, smaller=True))
    return max(sides) if sides else row_strength(row)


def _bound_text(rule: AlertRule) -> str:
    parts = []
    if rule.above is not None:
        parts.append(f"> {rule.above:g}")
    if rule.below is not None:
        parts.append(f"< {rule.below:g}")
    return " or ".join(parts)


def _finding(report: WindowReport, row: StatResult, threshold: float | None = None) -> Finding:
    return Finding(
        name=row.column,
        detector=row.detector,
        statistic=row.statistic,
        value=row.value,
        threshold=row.threshold if threshold is None else threshold,
        stats=_column_stats(report, row.detector, row.column),
        details=dict(row.details),
    )


def _insufficient_report(report: WindowReport, detector: str) -> Observation | None:
    """No verdict from ``detector`` in this window: too few events, or that detector failed for the whole
    population. Another detector failing (performance, a segment's run) leaves this one's verdict
    standing; its rows still carry their own status."""
    if report.status not in ("ok", "error"):
        detail = f": {report.message}" if report.message else ""
        return Observation("insufficient", f"window has no verdict ({report.status}{detail})")
    failed = [r for r in report.select(detector=detector) if r.status == "error"]
    if failed:
        where = f" for {', '.join(r.column for r in failed[:3])}" if any(r.column for r in failed) else ""
        error = failed[0].details.get("error", "")
        return Observation(
            "insufficient", f"window has no verdict ({detector} failed{where}{': ' if error else ''}{error})"
        )
    return None


# ---------------------------------------------------------------- drift


def _dataset_level(rule: AlertRule, report: WindowReport, detector: str, label: str) -> Observation:
    if (early := _insufficient_report(report, detector)) is not None:
        return early
    rows = [r for r in report.select(detector=detector, statistic="drift_share", column=DATASET) if _usable(r)]
    if not rows:
        return Observation("insufficient", f"no {label} verdict in this window")
    share = rows[0]
    deciding = [r for r in report.select(detector=detector) if r.column != DATASET and r.drift is not None]
    drifted = strongest_first(report.drifted_columns(detector))
    assert share.value is not None
    threshold: float | None
    if rule.above is not None:
        triggered, threshold = share.value > rule.above, rule.above
    else:
        triggered, threshold = bool(share.drift), share.threshold
    reason = (
        f"{label}: {len(drifted)} of {len(deciding)} columns drifted "
        f"(share {_fmt(share.value)}, threshold {_fmt(threshold)})"
    )
    findings = tuple(_finding(report, r) for r in drifted[:FINDINGS_MAX])
    return Observation(
        "triggered" if triggered else "clear", reason, share.value, threshold, findings, findings_total=len(drifted)
    )


def _columns_drift(
    rule: AlertRule, report: WindowReport, detector: str, label: str, columns: list[str] | None
) -> Observation:
    if (early := _insufficient_report(report, detector)) is not None:
        return early
    rows = [r for r in report.select(detector=detector) if r.column != DATASET and _usable(r)]
    if columns is not None:
        rows = [r for r in rows if r.column in columns]
    if rule.metric is not None:
        rows = [r for r in rows if r.statistic == rule.metric]
        hits = [r for r in rows if r.value is not None and _breaches(rule, r.value)]
        threshold = _bound(rule)
    else:
        rows = [r for r in rows if r.drift is not None]
        hits = [r for r in rows if r.drift]
        threshold = None
    if not rows:
        wanted = ", ".join(columns) if columns else "any column"
        return Observation("insufficient", f"no {label} verdict for {wanted} in this window")

    def evidence(row: StatResult) -> float:  # strongest first, whether p-values or distances decide
        return _rule_strength(rule, row) if rule.metric is not None else row_strength(row)

    hits.sort(key=lambda r: -evidence(r))
    findings = tuple(_finding(report, r, threshold) for r in hits[:FINDINGS_MAX])
    if hits:
        top = ", ".join(
            f"{f.name} ({f.statistic} {_fmt(f.value)}, threshold {_fmt(f.threshold)})" for f in findings[:3]
        )
        more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
        reason = f"{label} in {top}{more}"
        return Observation("triggered", reason, hits[0].value, findings[0].threshold, findings, len(hits))
    worst = max(rows, key=evidence)  # the closest to its threshold
    return Observation(
        "clear",
        f"no {label} in {len(rows)} checked column(s)",
        worst.value,
        threshold if threshold is not None else worst.threshold,
    )


def _dataset_drift(rule: AlertRule, report: WindowReport) -> Observation:
    return _dataset_level(rule, report, "feature_drift", "dataset drift")


def _feature_drift(rule: AlertRule, report: WindowReport) -> Observation:
    columns = rule.features
    if columns is None:
        # "any feature": the prediction is watched by prediction_drift, not here.
        names = {r.column for r in report.select(detector="feature_drift")} - {DATASET, PREDICTION_COLUMN}
        columns = sorted(names)
    return _columns_drift(rule, report, "feature_drift", "feature drift", columns)


def _prediction_drift(rule: AlertRule, report: WindowReport) -> Observation:
    if report.select(detector="prediction_drift", segment=None):
        return _columns_drift(rule, report, "prediction_drift", "prediction drift", None)
    return _columns_drift(rule, report, "feature_drift", "prediction drift", [PREDICTION_COLUMN])


def _skew(rule: AlertRule, report: WindowReport) -> Observation:
    if rule.features or rule.metric:
        return _columns_drift(rule, report, "skew", "training-serving skew", rule.features)
    return _dataset_level(rule, report, "skew", "training-serving skew")


def _multivariate_drift(rule: AlertRule, report: WindowReport) -> Observation:
    """Any multivariate method's verdict (or only ``metric``'s: pca_reconstruction, domain_classifier)."""
    if (early := _insufficient_report(report, "multivariate_drift")) is not None:
        return early
    rows = [
        r
        for r in report.select(detector="multivariate_drift", column=DATASET)
        if _usable(r) and r.drift is not None and rule.metric in (None, r.statistic)
    ]
    if not rows:
        return Observation("insufficient", "no multivariate drift verdict in this window")
    hits = [r for r in rows if r.drift]
    worst = (hits or rows)[0]
    text = ", ".join(f"{r.statistic} {_fmt(r.value)} (threshold {_fmt(r.threshold)})" for r in (hits or rows))
    if hits:
        findings = tuple(_finding(report, r) for r in hits)
        return Observation("triggered", f"multivariate drift: {text}", worst.value, worst.threshold, findings)
    return Observation("clear", f"no multivariate drift: {text}", worst.value, worst.threshold)


# ---------------------------------------------------------------- data quality, volume, freshness, performance


def _quality_check(rule: AlertRule, report: WindowReport) -> Observation:
    """``value > above`` (default 0: any) on per-column or dataset-level data-quality rows."""
    bound = rule.above if rule.above is not None else 0.0
    dataset_level = rule.when in DATA_QUALITY_DATASET_CHECKS
    rows = [
        r
        for r in report.select(detector="data_quality", statistic=rule.when)
        if _usable(r) and (r.column == DATASET) == dataset_level
    ]
    if rule.features is not None and not dataset_level:
        rows = [r for r in rows if r.column in rule.features]
    if not rows:
        return Observation("insufficient", f"no {rule.when} measured in this window")
    hits = sorted((r for r in rows if r.value is not None and r.value > bound), key=lambda r: -(r.value or 0.0))
    worst = hits[0] if hits else max(rows, key=lambda r: r.value or 0.0)
    if not hits:
        return Observation("clear", f"{rule.when} at most {_fmt(worst.value)} (bound {bound:g})", worst.value, bound)
    if dataset_level:
        names = worst.details.get("features") or []
        listed = f": {', '.join(map(str, names[:TOP_FINDINGS]))}" if names else ""
        reason = f"{rule.when} {_fmt(worst.value)} > {bound:g}{listed}"
        findings: tuple[Finding, ...] = (_finding(report, worst, bound),)
    else:
        findings = tuple(_finding(report, r, bound) for r in hits[:FINDINGS_MAX])
        top = ", ".join(f"{f.name} {_fmt(f.value)}" for f in findings[:3])
        more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
        reason = f"{rule.when} above {bound:g} in {top}{more}"
    return Observation("triggered", reason, worst.value, bound, findings, len(hits) if not dataset_level else None)


def _single_statistic(rule: AlertRule, report: WindowReport, detector: str, statistic: str) -> Observation:
    rows = [r for r in report.select(detector=detector, statistic=statistic) if _usable(r)]
    dataset_rows = [r for r in rows if r.column == DATASET]
    rows = dataset_rows or rows
    if not rows:
        return Observation("insufficient", f"no {detector} {statistic} in this window")
    row = rows[0]
    assert row.value is not None
    bad = _breaches(rule, row.value)
    reason = f"{detector} {statistic} {_fmt(row.value)} ({'breaches' if bad else 'within'} {_bound_text(rule)})"
    findings = (_finding(report, row, _bound(rule)),) if bad else ()
    return Observation("triggered" if bad else "clear", reason, row.value, _bound(rule), findings)


def _volume(rule: AlertRule, report: WindowReport) -> Observation:
    return _single_statistic(rule, report, "volume", rule.metric or "count")


def _freshness(rule: AlertRule, report: WindowReport) -> Observation:
    return _single_statistic(rule, report, "freshness", rule.metric or "seconds_since_last_event")


def _performance(rule: AlertRule, report: WindowReport) -> Observation:
    assert rule.metric is not None  # AlertRule validates this
    return _single_statistic(rule, report, "performance", rule.metric)


def _estimated_performance(rule: AlertRule, report: WindowReport) -> Observation:
    """``metric`` below/above a bound, or (no bound) the estimate leaving the reference band."""
    assert rule.metric is not None  # AlertRule validates this
    if rule.above is not None or rule.below is not None:
        return _single_statistic(rule, report, "estimated_performance", rule.metric)
    rows = [r for r in report.select(detector="estimated_performance", statistic=rule.metric) if _usable(r)]
    if not rows:
        return Observation("insufficient", f"no estimated {rule.metric} in this window")
    row = rows[0]
    low, high = row.details.get("threshold_lower"), row.details.get("threshold_upper")
    reason = (
        f"estimated {rule.metric} {_fmt(row.value)} {'outside' if row.drift else 'within'} "
        f"the reference band [{_fmt(low)}, {_fmt(high)}]"
    )
    findings = (_finding(report, row),) if row.drift else ()
    return Observation("triggered" if row.drift else "clear", reason, row.value, row.threshold, findings)


_CONDITIONS: dict[str, Callable[[AlertRule, WindowReport], Observation]] = {
    "dataset_drift": _dataset_drift,
    "feature_drift": _feature_drift,
    "prediction_drift": _prediction_drift,
    "skew": _skew,
    **{name: _quality_check for name in DATA_QUALITY_COLUMN_CHECKS + DATA_QUALITY_DATASET_CHECKS},
    "volume": _volume,
    "freshness": _freshness,
    "performance": _performance,
    "multivariate_drift": _multivariate_drift,
    "estimated_performance": _estimated_performance,
}
