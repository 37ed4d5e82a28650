"""Pieces shared by the dashboard pages: the client, the "API is down" message, auto-refresh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import streamlit as st

from dashboards.client import ApiAccessDenied, ApiClient, ApiUnavailable

HEALTH_ICONS = {
    "ok": ":green[●]",
    "stale": ":orange[●]",
    "drift": ":orange[▲]",
    "alerting": ":red[▲]",
    "no_data": ":gray[○]",
}


def client() -> ApiClient:
    if "api_client" not in st.session_state:
        st.session_state["api_client"] = ApiClient()
    return st.session_state["api_client"]


def sidebar() -> float | None:
    """Refresh controls; returns the refresh interval in seconds (None = off)."""
    with st.sidebar:
        st.caption(f"API: {client().base_url}")
        auto = st.toggle("Auto-refresh", value=True, key="auto_refresh")
        every = st.select_slider("Every (s)", options=[5, 10, 30, 60], value=10, key="refresh_every")
    return float(every) if auto else None


def guarded(render: Callable[[], None]) -> None:
    """Run a page body; if the API is down or refuses the token say so plainly instead of a stack trace."""
    try:
        render()
    except ApiAccessDenied as exc:
        st.error(f"**Access denied.** {exc}.", icon="🔒")
    except ApiUnavailable as exc:
        st.error(f"**API unavailable.** {exc}. The dashboard retries on the next refresh.", icon="🚫")


def ago(value: str | None) -> str:
    if not value:
        return "never"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
