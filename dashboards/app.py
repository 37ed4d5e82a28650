"""Streamlit entry point: ``streamlit run dashboards/app.py`` (``monitor up --dashboard`` does it).

Reads the HTTP API at ``MONITOR_API_URL`` (default http://127.0.0.1:8000) and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Model monitor", page_icon=":material/monitoring:", layout="wide")
HERE = Path(__file__).resolve().parent
navigation = st.navigation(
    [
        st.Page(str(HERE / "views" / "overview.py"), title="Overview", icon=":material/home:", default=True),
        st.Page(str(HERE / "views" / "model.py"), title="Model", icon=":material/monitoring:", url_path="model"),
    ]
)
navigation.run()
