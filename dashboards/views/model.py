"""One model: drift heatmap, reference vs current distributions, data quality, performance, alerts,
the Evidently report and a sample of events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from dashboards import charts
from dashboards.common import HEALTH_ICONS, ago, client, guarded, sidebar

every = sidebar()
HISTORY = {
    "last hour": timedelta(hours=1),
    "last 6 hours": timedelta(hours=6),
    "last day": timedelta(days=1),
    "last week": timedelta(days=7),
}


def _choose_model() -> str | None:
    names = [m["name"] for m in client().models()]
    if not names:
        st.info("No models yet.")
        return None
    wanted = st.query_params.get("model")
    index = names.index(wanted) if wanted in names else 0
    name = st.selectbox("Model", names, index=index, key="model_name")
    st.query_params["model"] = name
    return name


def _header(model: dict) -> None:
    st.title(f"{HEALTH_ICONS.get(model['health'], '')} {model['name']}")
    cols = st.columns(5)
    cols[0].metric("Health", model["health"])
    cols[1].metric("Events (24 h)", f"{model['events_24h']:,}")
    cols[2].metric("Last event", ago(model.get("last_event")))
    cols[3].metric("Open alerts", model.get("open_alerts") or 0)
    drift = model.get("drift") or {}
    cols[4].metric("Latest window", "drift" if drift.get("dataset_drift") else ("ok" if drift else "—"))


def _drift_tab(name: str, start: str) -> list[dict]:
    points = client().timeline(name, start=start)
    if not points:
        st.info("No detection results in this period yet.")
        return []
    features = [p for p in points if p["column"]]
    st.altair_chart(charts.drift_heatmap(features), width="stretch")
    prediction = client().timeline(name, start=start, detector="prediction_drift")
    if prediction:
        st.caption("Prediction drift")
        st.altair_chart(charts.drift_heatmap(prediction), width="stretch")
    return points


def _distribution_tab(name: str, model: dict, points: list[dict]) -> None:
    features = sorted(model.get("features") or {})
    if not features:
        st.info("This model has not logged any features yet.")
        return
    windows = sorted({(p["window_start"], p["window_end"]) for p in points}, reverse=True)
    left, right = st.columns(2)
    feature = left.selectbox("Feature", features, key="dist_feature")
    labels = ["latest window (now)"] + [f"{s[:19]} → {e[11:19]}" for s, e in windows]
    choice = right.selectbox("Window", range(len(labels)), format_func=lambda i: labels[i], key="dist_window")
    start, end = (None, None) if choice == 0 else windows[choice - 1]
    body = client().distribution(name, feature, start=start, end=end)
    if not body:
        st.warning("No distribution for this feature and window.")
        return
    st.altair_chart(charts.distribution_chart(body), width="stretch")
    current = body["current"]
    ref = body.get("reference") or {}
    st.caption(
        f"current: {current['total']:,} events, {current['missing']:,} missing"
        + (
            f" · reference version {ref.get('version')}, missing share {ref.get('missing_share') or 0:.2%}"
            if ref
            else " · no reference registered"
        )
    )


def _quality_tab(name: str, start: str) -> None:
    rows = client().results(name, start=start, detector="data_quality")
    if not rows:
        st.info("No data-quality results yet.")
        return
    latest_end = rows[0]["window_end"]
    latest = [r for r in rows if r["window_end"] == latest_end]
    st.caption(f"Latest window ending {latest_end}")
    st.dataframe(
        pd.DataFrame(latest)[["column", "statistic", "value", "threshold", "drift", "status"]],
        hide_index=True,
        width="stretch",
    )
    shares = [r for r in rows if r["statistic"] in ("missing_share", "out_of_range_share") and r["column"]]
    if shares:
        for r in shares:
            r["statistic"] = f"{r['column']}: {r['statistic']}"
        st.altair_chart(charts.metric_lines(shares, "share"), width="stretch")


def _performance_tab(name: str, start: str) -> None:
    realized = client().results(name, start=start, detector="performance")
    estimated = client().results(name, start=start, detector="estimated_performance")
    if estimated:
        metrics = sorted({r["statistic"] for r in estimated})
        default = metrics.index("roc_auc") if "roc_auc" in metrics else metrics.index("mae") if "mae" in metrics else 0
        metric = st.selectbox("Estimated metric", metrics, index=default, key=f"estimated-{name}")
        st.caption(
            "Estimated before labels arrive (line, shaded confidence band; red where it left the reference band) "
            "and realized once labelled (green diamonds)."
        )
        st.altair_chart(charts.estimated_vs_realized(estimated, realized, metric), width="stretch")
    rows = [r for r in realized if r["statistic"] != "label_coverage" and r.get("value") is not None]
    if not rows:
        st.info("No performance results: labels have not arrived for these windows yet.")
        return
    st.altair_chart(charts.metric_lines(rows, "metric value"), width="stretch")


def _alerts_tab(name: str) -> None:
    alerts = client().alerts(model=name)
    if not alerts:
        st.success("No alerts for this model.")
    else:
        st.dataframe(pd.DataFrame(alerts), hide_index=True, width="stretch")
    deliveries = client().deliveries(model=name)
    if deliveries:
        st.caption("Notifications")
        st.dataframe(pd.DataFrame(deliveries), hide_index=True, width="stretch")


def _report_tab(name: str) -> None:
    st.caption("Evidently's data drift report for the latest window against the reference (bounded sample).")
    if st.button("Build the Evidently report", key="build_report"):
        with st.spinner("Running Evidently…"):
            st.session_state[f"report:{name}"] = client().report_html(name)
    html = st.session_state.get(f"report:{name}")
    if html:
        components.html(html, height=900, scrolling=True)


def page() -> None:
    name = _choose_model()
    if name is None:
        return
    model = client().model(name)
    if model is None:
        st.warning(f"Model {name!r} not found.")
        return
    _header(model)
    period = st.radio("Period", list(HISTORY), index=2, horizontal=True, key="period")
    start = (datetime.now(UTC) - HISTORY[period]).isoformat()
    tabs = st.tabs(["Drift", "Distributions", "Data quality", "Performance", "Alerts", "Evidently report", "Events"])
    with tabs[0]:
        points = _drift_tab(name, start)
    with tabs[1]:
        _distribution_tab(name, model, points)
    with tabs[2]:
        _quality_tab(name, start)
    with tabs[3]:
        _performance_tab(name, start)
    with tabs[4]:
        _alerts_tab(name)
    with tabs[5]:
        _report_tab(name)
    with tabs[6]:
        events = client().events(name, limit=20)
        st.dataframe(pd.json_normalize(events) if events else pd.DataFrame(), hide_index=True, width="stretch")


@st.fragment(run_every=every)
def refreshing() -> None:
    guarded(page)


refreshing()
