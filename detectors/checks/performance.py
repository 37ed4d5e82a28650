"""Model performance once labels arrive: predictions joined with ``labels FINAL`` inside ClickHouse.

Only sums and counts come back to Python: confusion counts, sums of (log) losses and errors, and for
ROC AUC the exact rank statistic computed over distinct scores with a window function (ties count
one half, as in scikit-learn). Definitions follow scikit-learn: binary precision/recall/F1 of
``positive_label`` with 0 where undefined; for ``class`` predictions also the multiclass averages
``precision_macro``/``_weighted``, ``recall_...`` and ``f1_...`` over every class seen among labels
and predictions (macro: plain mean over classes; weighted: by each class's labelled rows), from the
confusion counts grouped in ClickHouse; log loss with probabilities clipped to [eps, 1 - eps]
(eps = float64 machine epsilon); MAPE divides by max(|y|, eps); R2 is 1 when the labels are constant
and predicted exactly, else 0 (``force_finite``).

Prediction types: ``probability`` (the prediction is P(positive); the class is ``score >=
threshold``), ``class`` (the prediction is a class; scores for AUC/log loss come from
``probabilities[positive_label]`` when events carry them) and ``regression``. Labels and predicted
classes compare as text with true/false and 1/0 unified, because JSON booleans and numbers arrive as
different types from different producers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detectors.context import RunContext
from detectors.references.store import ROWS_TABLE, Reference
from detectors.report import DATASET, StatResult
from detectors.segments import Segment, segment_label
from monitor.settings import PredictionSettings
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string

DETECTOR = "performance"
EPS = float(np.finfo(np.float64).eps)
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")
AVERAGED_METRICS = tuple(f"{m}_{avg}" for m in ("precision", "recall", "f1") for avg in ("macro", "weighted"))


def _text(cat: str, num: str) -> str:
    """Canonical class text of a (text, number) pair: booleans and 1/0 unified."""
    raw = f"multiIf({cat} IS NOT NULL, toString({cat}), isNaN({num}), NULL, toString({num}))"
    return f"multiIf(lower({raw}) = 'true', '1', lower({raw}) = 'false', '0', {raw})"


def positive_text(prediction: PredictionSettings) -> str:
    """SQL for the canonical text of ``positive_label`` (same rules as :func:`_text`)."""
    value = prediction.positive_label
    if isinstance(value, bool):
        return "'1'" if value else "'0'"
    if isinstance(value, int | float):
        return f"toString(toFloat64({float(value)!r}))"
    lowered = str(value).lower()
    return "'1'" if lowered == "true" else "'0'" if lowered == "false" else sql_string(str(value))


def score_expr(prediction: PredictionSettings) -> str:
    """The score of the positive class: the prediction itself, or ``probabilities[positive]`` for classes."""
    if prediction.type == "probability":
        return "p_num"
    if prediction.type == "class":
        positive = prediction.positive_label
        key = sql_string(str(positive).lower() if isinstance(positive, bool) else str(positive))
        return f"if(mapContains(probs, {key}), probs[{key}], nan)"
    return "nan"


def events_rows_sql(ctx: RunContext, segment: Segment) -> str:
    """One row per event of the window: p_num, p_cat, probs, y_num, y_cat, labelled (0/1)."""
    where = ctx.events_where(segment=segment)
    events = ctx.events_from
    return (
        f"SELECT e.prediction_num AS p_num, e.prediction_cat AS p_cat, e.probabilities AS probs, "
        f"l.label_num AS y_num, l.label_cat AS y_cat, l.labelled AS labelled "
        f"FROM (SELECT event_id, prediction_num, prediction_cat, probabilities FROM {events} WHERE {where}) AS e "
        f"LEFT ANY JOIN (SELECT event_id, label_num, label_cat, toUInt8(1) AS labelled "
        f"FROM {ctx.storage.table('labels')} FINAL WHERE model = {sql_string(ctx.model)} "
        f"AND event_id IN (SELECT event_id FROM {events} WHERE {where})) AS l ON e.event_id = l.event_id"
    )


def reference_rows_sql(storage: Storage, where_sql: str) -> str:
    """The same row shape over reference rows, where the label travels in the row itself."""
    return (
        f"SELECT prediction_num AS p_num, prediction_cat AS p_cat, probabilities AS probs, label_num AS y_num, "
        f"label_cat AS y_cat, toUInt8(NOT isNaN(label_num) OR label_cat IS NOT NULL) AS labelled "
        f"FROM {storage.table(ROWS_TABLE)} WHERE {where_sql}"
    )


def compute_metrics(storage: Storage, rows_sql: str, prediction: PredictionSettings) -> dict[str, Any]:
    """``{"rows", "labelled", "n", "metrics": {name: value or None}}`` over the rows of ``rows_sql``."""
    if prediction.type == "regression":
        return _regression(storage, rows_sql)
    return _classification(storage, rows_sql, prediction)


def _classification(storage: Storage, rows_sql: str, prediction: PredictionSettings) -> dict[str, Any]:
    label = _text("y_cat", "y_num")
    positive = positive_text(prediction)
    score = score_expr(prediction)
    if prediction.type == "probability":
        valid = "labelled = 1 AND y IS NOT NULL AND isFinite(score)"
        predicted_positive = f"score >= {float(prediction.threshold)!r}"
        correct = "(pred_pos = y_pos)"
    else:
        valid = "labelled = 1 AND y IS NOT NULL AND pred IS NOT NULL"
        predicted_positive = f"pred = {positive}"
        correct = "(pred = y)"
    clipped = f"least(greatest(score, {EPS!r}), 1 - {EPS!r})"
    inner = (
        f"SELECT labelled, {label} AS y, {_text('p_cat', 'p_num')} AS pred, {score} AS score, "
        f"y = {positive} AS y_pos, {predicted_positive} AS pred_pos FROM ({rows_sql})"
    )
    row = storage.rows(
        f"SELECT count(), countIf(labelled = 1), countIf({valid}), "
        f"countIf({valid} AND pred_pos AND y_pos), countIf({valid} AND pred_pos AND NOT y_pos), "
        f"countIf({valid} AND NOT pred_pos AND y_pos), countIf({valid} AND {correct}), "
        f"countIf({valid} AND isFinite(score)), "
        f"sumIf(-if(y_pos, log({clipped}), log(1 - {clipped})), {valid} AND isFinite(score)) "
        f"FROM ({inner})"
    )[0]
    loss = float(row[8] or 0.0)
    rows, labelled, n, tp, fp, fn, correct_n, scored = (int(v) for v in row[:8])
    metrics: dict[str, float | None] = dict.fromkeys(CLASSIFICATION_METRICS)
    if n:
        metrics["accuracy"] = correct_n / n
        metrics["precision"] = tp / (tp + fp) if tp + fp else 0.0
        metrics["recall"] = tp / (tp + fn) if tp + fn else 0.0
        metrics["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    if scored:
        metrics["log_loss"] = float(loss) / scored
        auc_row = storage.rows(
            f"SELECT sum(pos * (neg_below + neg / 2)), sum(pos), sum(neg) FROM ("
            f"SELECT pos, neg, sum(neg) OVER (ORDER BY score ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
            f"AS neg_below FROM (SELECT score, countIf(y_pos) AS pos, countIf(NOT y_pos) AS neg "
            f"FROM ({inner}) WHERE {valid} AND isFinite(score) GROUP BY score))"
        )[0]
        pairs, positives, negatives = float(auc_row[0] or 0), int(auc_row[1] or 0), int(auc_row[2] or 0)
        metrics["roc_auc"] = pairs / (positives * negatives) if positives and negatives else None
    notes: dict[str, str] = {}
    if prediction.type == "class":
        counts = storage.rows(f"SELECT y, pred, count() FROM ({inner}) WHERE {valid} GROUP BY y, pred")
        classes = {str(y) for y, _, _ in counts} | {str(p) for _, p, _ in counts}
        if len(classes) > 2 and tp + fp + fn == 0:
            # A multiclass window without the positive label: precision/recall/F1 "of positive_label" are
            # undefined (scikit-learn refuses them), not 0 (which would trip a `performance` rule).
            for name in ("precision", "recall", "f1"):
                metrics[name] = None
                notes[name] = (
                    f"positive_label {prediction.positive_label!r} is not among the {len(classes)} classes "
                    f"of the labels and predictions; see {name}_macro / {name}_weighted"
                )
        metrics.update(averaged_metrics([(str(y), str(p), int(c)) for y, p, c in counts]))
    return {"rows": rows, "labelled": labelled, "n": n, "metrics": metrics, "notes": notes}


def averaged_metrics(counts: list[tuple[str, str, int]]) -> dict[str, float | None]:
    """Macro and weighted precision, recall and F1 from ``(label, predicted, rows)`` confusion counts."""
    out: dict[str, float | None] = dict.fromkeys(AVERAGED_METRICS)
    total = sum(c for _, _, c in counts)
    if not total:
        return out
    classes = sorted({y for y, _, _ in counts} | {p for _, p, _ in counts})
    tp = dict.fromkeys(classes, 0)
    true_n = dict.fromkeys(classes, 0)
    pred_n = dict.fromkeys(classes, 0)
    for y, p, c in counts:
        true_n[y] += c
        pred_n[p] += c
        if y == p:
            tp[y] += c
    per_class = {
        "precision": [tp[k] / pred_n[k] if pred_n[k] else 0.0 for k in classes],
        "recall": [tp[k] / true_n[k] if true_n[k] else 0.0 for k in classes],
        "f1": [2 * tp[k] / (true_n[k] + pred_n[k]) if true_n[k] + pred_n[k] else 0.0 for k in classes],
    }
    support = [true_n[k] for k in classes]
    for name, values in per_class.items():
        out[f"{name}_macro"] = sum(values) / len(values)
        out[f"{name}_weighted"] = sum(v * w for v, w in zip(values, support, strict=True)) / total
    return out


def _regression(storage: Storage, rows_sql: str) -> dict[str, Any]:
    valid = "labelled = 1 AND isFinite(y_num) AND isFinite(p_num)"
    row = storage.rows(
        f"SELECT count(), countIf(labelled = 1), countIf({valid}), sumIf(abs(y_num - p_num), {valid}), "
        f"sumIf((y_num - p_num) * (y_num - p_num), {valid}), "
        f"sumIf(abs(y_num - p_num) / greatest(abs(y_num), {EPS!r}), {valid}), "
        f"varPopStableIf(y_num, {valid}) FROM ({rows_sql})"
    )[0]
    rows, labelled, n = (int(v) for v in row[:3])
    abs_sum, sq_sum, ape_sum, var_y = (float(v) for v in row[3:])
    metrics: dict[str, float | None] = dict.fromkeys(REGRESSION_METRICS)
    if n:
        metrics["mae"] = abs_sum / n
        metrics["rmse"] = math.sqrt(sq_sum / n)
        metrics["mape"] = ape_sum / n
    if n >= 2:
        total = var_y * n
        metrics["r2"] = (1.0 - sq_sum / total) if total > 0 else (1.0 if sq_sum == 0 else 0.0)
    return {"rows": rows, "labelled": labelled, "n": n, "metrics": metrics}


def infer_prediction(text: bool, low: float | None, high: float | None) -> PredictionSettings:
    """Prediction settings from what predictions look like, for models whose ``prediction`` is not configured:
    text means classes, numbers within [0, 1] probabilities (threshold 0.5, positive label 1), other
    numbers a regression."""
    if text:
        return PredictionSettings(type="class")
    inside_unit = low is not None and high is not None and low >= 0.0 and high <= 1.0
    return PredictionSettings(type="probability" if inside_unit else "regression")


def settings_key(prediction: PredictionSettings) -> str:
    """Identifies the prediction settings a stored reference performance was computed with."""
    return f"{prediction.type}|{prediction.threshold!r}|{prediction.positive_label!r}"


def reference_metrics(storage: Storage, reference: Reference, prediction: PredictionSettings) -> dict[str, Any]:
    """The reference's own performance: from its profile if computed with these settings, else computed now."""
    if not (reference.has_label and reference.has_prediction):
        return {}
    stored = reference.profile.performance
    if stored.get("settings") == settings_key(prediction):
        return dict(stored.get("metrics") or {})
    metrics: dict[str, Any] = compute_metrics(storage, reference_rows_sql(storage, reference.where_sql()), prediction)[
        "metrics"
    ]
    return metrics


def performance(ctx: RunContext, segment: Segment = None, reference: dict[str, Any] | None = None) -> list[StatResult]:
    """Metrics of the window's labelled events (``label_coverage`` always; the others once labelled)."""
    result = compute_metrics(ctx.storage, events_rows_sql(ctx, segment), ctx.prediction)
    rows, labelled, n = result["rows"], result["labelled"], result["n"]
    label = segment_label(segment)
    reference = reference or {}
    out = [
        StatResult(
            DETECTOR,
            DATASET,
            "label_coverage",
            labelled / rows if rows else None,
            segment=label,
            status="ok" if rows else "insufficient_data",
            n_current=rows,
            details={"labelled": labelled, "events": rows},
        )
    ]
    status = ctx.status_for(n)
    for name, value in result["metrics"].items():
        out.append(
            StatResult(
                DETECTOR,
                DATASET,
                name,
                value,
                segment=label,
                status=status if value is not None else "insufficient_data",
                n_current=n,
                details={"reference": reference.get(name), "labelled": labelled}
                | ({"message": result["notes"][name]} if name in result.get("notes", {}) else {}),
            )
        )
    return out
