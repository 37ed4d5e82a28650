"""The Streamlit dashboard (reads the HTTP API only)."""
