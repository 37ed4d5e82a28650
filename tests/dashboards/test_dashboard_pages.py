"""Streamlit AppTest for each page against a running API (and against an API that is down)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import READ_TOKEN, TOKEN
from dashboard_story import MODEL
from streamlit.testing.v1 import AppTest

PAGES = Path(__file__).resolve().parents[2] / "dashboards" / "views"


def _run(
    page: str, api_url: str, monkeypatch: pytest.MonkeyPatch, token: str | None = READ_TOKEN, **query: str
) -> AppTest:
    """Run a page as the dashboard would: MONITOR_API_URL, and the read token in MONITOR_API_READ_TOKEN."""
    monkeypatch.setenv("MONITOR_API_URL", api_url)
    monkeypatch.delenv("MONITOR_API_TOKEN", raising=False)
    monkeypatch.delenv("MONITOR_API_READ_TOKEN", raising=False)
    if token is not None:
        monkeypatch.setenv("MONITOR_API_READ_TOKEN", token)
    app = AppTest.from_file(str(PAGES / page), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_overview_lists_models_with_health_and_alerts(story_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _run("overview.py", story_api, monkeypatch)
    table = app.dataframe[0].value
    row = table[table["model"] == MODEL].iloc[0]
    assert row["health"] == "alerting" and row["events (24 h)"] == 300
    assert row["drift"] == "drift" and row["drifted features"] == "amount" and row["open alerts"] == 1
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Open alerts"] == "1" and metrics["Drifting"] == "1"
    open_alerts = app.dataframe[1].value
    assert list(open_alerts["rule"]) == ["dataset_drift"]


def test_model_page_shows_heatmap_distributions_quality_performance_alerts(
    story_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _run("model.py", story_api, monkeypatch, model=MODEL)
    assert app.selectbox(key="model_name").value == MODEL
    assert [t.label for t in app.tabs] == [
        "Drift",
        "Distributions",
        "Data quality",
        "Performance",
        "Alerts",
        "Evidently report",
        "Events",
    ]
    charts = app.get("vega_lite_chart")
    assert len(charts) >= 5  # heatmap, distribution, quality shares, estimated performance, performance
    assert app.selectbox(key=f"estimated-{MODEL}").value == "roc_auc"
    assert any('"area"' in c.proto.spec and '"realized"' in c.proto.spec for c in charts)
    heatmap = charts[0].proto.spec
    assert '"field": "feature"' in heatmap and '"field": "verdict"' in heatmap and '"rect"' in heatmap
    app.selectbox(key="dist_feature").select("amount").run()
    caption_text = " ".join(c.value for c in app.caption)
    assert "reference version 1" in caption_text and "current: 300 events" in caption_text
    alerts = [d.value for d in app.dataframe if "rule" in d.value.columns]
    assert alerts and alerts[0].iloc[0]["status"] == "firing"
    app.selectbox(key="dist_feature").select("country").run()
    assert not app.exception


def test_evidently_report_is_embedded(story_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _run("model.py", story_api, monkeypatch, model=MODEL)
    app.button(key="build_report").click().run(timeout=120)
    assert not app.exception
    frames = app.get("iframe")
    assert frames, [e.value for e in app.error]
    assert "Sampled report, model " in frames[0].proto.srcdoc


@pytest.mark.parametrize("page", ["overview.py", "model.py"])
@pytest.mark.parametrize(("token", "hint"), [(None, "set MONITOR_API_READ_TOKEN"), ("wrong", "token was refused")])
def test_refused_token_is_a_visible_message(
    page: str, token: str | None, hint: str, story_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _run(page, story_api, monkeypatch, token=token, model=MODEL)
    assert app.error and "Access denied" in app.error[0].value and hint in app.error[0].value
    assert "401" in app.error[0].value


def test_write_token_alone_is_used_for_reads(story_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_API_URL", story_api)
    monkeypatch.delenv("MONITOR_API_READ_TOKEN", raising=False)
    monkeypatch.setenv("MONITOR_API_TOKEN", TOKEN)
    app = AppTest.from_file(str(PAGES / "overview.py"), default_timeout=60)
    app.run()
    assert not app.exception and not app.error
    assert MODEL in app.dataframe[0].value["model"].tolist()


@pytest.mark.parametrize("page", ["overview.py", "model.py"])
def test_api_down_is_a_visible_message(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _run(page, "http://127.0.0.1:9", monkeypatch)
    assert app.error and "API unavailable" in app.error[0].value


def test_heatmap_frame_marks_each_feature_and_window() -> None:
    from dashboards.charts import heatmap_frame

    points = [
        {
            "window_end": "2026-01-01T10:00:00Z",
            "column": "amount",
            "statistic": "psi",
            "value": 0.4,
            "threshold": 0.1,
            "drift": True,
            "status": "ok",
        },
        {
            "window_end": "2026-01-01T10:00:00Z",
            "column": "",
            "statistic": "drift_share",
            "value": 0.5,
            "threshold": 0.5,
            "drift": False,
            "status": "ok",
        },
        {
            "window_end": "2026-01-01T11:00:00Z",
            "column": "amount",
            "statistic": "psi",
            "value": None,
            "threshold": None,
            "drift": None,
            "status": "insufficient_data",
        },
    ]
    frame = heatmap_frame(points)
    assert list(frame["feature"]) == ["amount", "(dataset)", "amount"]
    assert list(frame["verdict"]) == ["drift", "no drift", "insufficient data"]
