"""The estimated-versus-realized chart: what it draws from the API's result rows."""

from __future__ import annotations

import pytest

from dashboards import charts


def _row(detector: str, end: str, statistic: str, value: float | None, **extra: object) -> dict:
    return {"detector": detector, "window_end": end, "statistic": statistic, "value": value, **extra}


def test_estimated_band_and_realized_per_window() -> None:
    estimated = [
        _row("estimated_performance", "2026-11-20T10:00:00Z", "roc_auc", 0.9, drift=False,
             details={"lower": 0.88, "upper": 0.92}),
        _row("estimated_performance", "2026-11-20T11:00:00Z", "roc_auc", 0.7, drift=True,
             details={"lower": 0.67, "upper": 0.73}),
        _row("estimated_performance", "2026-11-20T11:00:00Z", "accuracy", 0.6, drift=True, details={}),
    ]  # fmt: skip
    realized = [_row("performance", "2026-11-20T10:00:00Z", "roc_auc", 0.905)]  # the later window: no labels yet
    frame = charts.estimation_frame(estimated, realized, "roc_auc")
    assert list(frame["estimated"]) == [0.9, 0.7]
    assert list(frame["lower"]) == [0.88, 0.67] and list(frame["upper"]) == [0.92, 0.73]
    assert frame["realized"].iloc[0] == pytest.approx(0.905) and frame["realized"].isna().iloc[1]
    assert list(frame["alert"]) == [False, True]
    spec = charts.estimated_vs_realized(estimated, realized, "roc_auc").to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["area", "line", "point"]
