"""Altair charts built from API payloads (pure functions: payload in, chart out, easy to test)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

DRIFT_COLORS = alt.Scale(
    domain=["drift", "no drift", "insufficient data", "error"], range=["#d62728", "#2ca02c", "#c7c7c7", "#7f7f7f"]
)


def _verdict(point: dict[str, Any]) -> str:
    if point.get("status") == "insufficient_data":
        return "insufficient data"
    if point.get("status") == "error":
        return "error"
    return "drift" if point.get("drift") else "no drift"


def heatmap_frame(points: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        {
            "window": pd.Timestamp(p["window_end"]).strftime("%m-%d %H:%M:%S"),
            "feature": p["column"] or "(dataset)",
            "statistic": p["statistic"],
            "value": p["value"],
            "threshold": p["threshold"],
            "verdict": _verdict(p),
        }
        for p in points
    ]
    return pd.DataFrame(rows, columns=["window", "feature", "statistic", "value", "threshold", "verdict"])


def drift_heatmap(points: list[dict[str, Any]]) -> alt.LayerChart | alt.FacetChart:
    """Feature x window, red where the feature drifted; hover shows the statistic, value and threshold."""
    frame = heatmap_frame(points)
    base = alt.Chart(frame).encode(
        x=alt.X("window:O", title="window end (UTC)", sort="ascending", axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("feature:N", title=None),
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("verdict:N", scale=DRIFT_COLORS, legend=alt.Legend(orient="bottom")),
        tooltip=["feature", "window", "statistic", alt.Tooltip("value:Q", format=".4f"), "threshold", "verdict"],
    )
    text = base.mark_text(fontSize=10).encode(text=alt.Text("value:Q", format=".2f"))
    # A step (pixels per feature row) rather than a total height: discrete scales size themselves.
    return alt.layer(cells, text).properties(height=alt.Step(34))


def distribution_chart(body: dict[str, Any]) -> alt.Chart:
    """Reference vs current proportions on the same bins (or categories)."""
    rows = []
    for i, label in enumerate(body["bins"]):
        rows.append({"bin": label, "order": i, "side": "current", "share": body["current"]["proportions"][i]})
        if body.get("reference"):
            rows.append({"bin": label, "order": i, "side": "reference", "share": body["reference"]["proportions"][i]})
    frame = pd.DataFrame(rows)
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("bin:N", sort=alt.SortField("order"), title=body["feature"]),
            xOffset="side:N",
            y=alt.Y("share:Q", title="share of values", axis=alt.Axis(format="%")),
            color=alt.Color("side:N", scale=alt.Scale(domain=["reference", "current"], range=["#9ecae1", "#ff7f0e"])),
            tooltip=["bin", "side", alt.Tooltip("share:Q", format=".2%")],
        )
        .properties(height=320)
    )


def metric_lines(results: list[dict[str, Any]], title: str) -> alt.Chart:
    """One line per statistic over window end (performance, quality shares)."""
    frame = pd.DataFrame(
        [
            {"window_end": pd.Timestamp(r["window_end"]), "metric": r["statistic"], "value": r["value"]}
            for r in results
            if r.get("value") is not None
        ],
        columns=["window_end", "metric", "value"],
    )
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("window_end:T", title="window end"),
            y=alt.Y("value:Q", title=title),
            color="metric:N",
            tooltip=["metric", "window_end", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=280)
    )


def estimation_frame(estimated: list[dict[str, Any]], realized: list[dict[str, Any]], metric: str) -> pd.DataFrame:
    """One row per window: the estimate of ``metric``, its confidence band and the realized value (if any)."""
    truth = {r["window_end"]: r["value"] for r in realized if r["statistic"] == metric and r.get("value") is not None}
    rows = []
    for r in estimated:
        if r["statistic"] != metric or r.get("value") is None:
            continue
        details = r.get("details") or {}
        rows.append(
            {
                "window_end": pd.Timestamp(r["window_end"]),
                "estimated": r["value"],
                "lower": details.get("lower"),
                "upper": details.get("upper"),
                "realized": truth.get(r["window_end"]),
                "alert": bool(r.get("drift")),
            }
        )
    return pd.DataFrame(rows, columns=["window_end", "estimated", "lower", "upper", "realized", "alert"])


def estimated_vs_realized(
    estimated: list[dict[str, Any]], realized: list[dict[str, Any]], metric: str
) -> alt.LayerChart | alt.FacetChart:
    """The estimate of one metric per window with its confidence band (shaded), and the realized value
    as labels arrive (dots); windows whose estimate left the reference band are red."""
    frame = estimation_frame(estimated, realized, metric)
    base = alt.Chart(frame).encode(x=alt.X("window_end:T", title="window end"))
    band = base.mark_area(opacity=0.25).encode(
        y=alt.Y("lower:Q", title=metric, scale=alt.Scale(zero=False)), y2="upper:Q"
    )
    line = base.mark_line(point=True).encode(
        y="estimated:Q",
        color=alt.condition("datum.alert", alt.value("#d62728"), alt.value("#1f77b4")),
        tooltip=[
            "window_end",
            alt.Tooltip("estimated:Q", format=".4f"),
            alt.Tooltip("lower:Q", format=".4f"),
            alt.Tooltip("upper:Q", format=".4f"),
            alt.Tooltip("realized:Q", format=".4f"),
            "alert",
        ],
    )
    truth = (
        base.transform_filter("isValid(datum.realized)")
        .mark_point(shape="diamond", size=70, filled=True)
        .encode(y="realized:Q", color=alt.value("#2ca02c"))
    )
    return alt.layer(band, line, truth).properties(height=280)
