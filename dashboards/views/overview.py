"""Overview: every model's health, freshness, drift status and open alerts at a glance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.common import ago, client, guarded, sidebar

st.title("Model monitor")
every = sidebar()


def overview() -> None:
    api = client()
    models = api.models()
    if not models:
        st.info("No models yet: configure one in monitor.yaml or send prediction events.")
        return
    cols = st.columns(4)
    cols[0].metric("Models", len(models))
    cols[1].metric("Events (24 h)", f"{sum(m['events_24h'] for m in models):,}")
    cols[2].metric("Drifting", sum(1 for m in models if m.get("drift") and m["drift"].get("dataset_drift")))
    cols[3].metric("Open alerts", sum(m.get("open_alerts") or 0 for m in models))
    rows = []
    for m in models:
        drift = m.get("drift") or {}
        rows.append(
            {
                "health": m["health"],
                "model": m["name"],
                "events (24 h)": m["events_24h"],
                "last event": ago(m.get("last_event")),
                "drift": "drift" if drift.get("dataset_drift") else ("no drift" if drift else "not evaluated"),
                "drifted features": ", ".join(drift.get("drifted_features") or []),
                "open alerts": m.get("open_alerts") or 0,
                "last run": ago(m.get("last_run")),
                "next run": ago(m.get("next_run")) if m.get("next_run") else "",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("Open a model on the **Model** page for its drift heatmap, distributions, quality and alerts.")
    open_alerts = api.alerts(state="open")
    if open_alerts:
        st.subheader("Open alerts")
        st.dataframe(pd.DataFrame(open_alerts), hide_index=True, width="stretch")


@st.fragment(run_every=every)
def refreshing() -> None:
    guarded(overview)


refreshing()
