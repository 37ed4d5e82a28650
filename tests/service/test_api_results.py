"""References and detector results through the API: registered over HTTP, read back filtered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from api_support import insert_events, synthetic_rows

from detectors.report import StatResult, WindowReport
from detectors.results import DETECTORS, store_report
from monitor.storage import Storage


def _report(model: str, end: datetime, drift: bool, value: float) -> WindowReport:
    rows = (
        StatResult("feature_drift", "amount", "wasserstein_norm", value, threshold=0.1, drift=drift),
        StatResult("feature_drift", "amount", "psi", value * 2),
        StatResult("feature_drift", "country", "js", 0.01, threshold=0.1, drift=False),
        StatResult("feature_drift", "", "drift_share", 0.5 if drift else 0.0, threshold=0.5, drift=drift),
        StatResult("data_quality", "age", "missing_share", 0.1),
    )
    return WindowReport(model, "1", end - timedelta(hours=1), end, "ok", 100, 300, rows, run_id=f"r{end:%H}")


def test_reference_registration_needs_token_and_feeds_distributions(serve, storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"amount": rng.normal(50, 10, 400), "country": rng.choice(["DE", "FR"], 400)})
    path = tmp_path / "ref.parquet"
    frame.to_parquet(path)
    now = datetime.now(UTC)
    insert_events(storage, "m", synthetic_rows(60, end=now))
    api = serve()
    assert api.anonymous.post("/api/v1/models/m/references", json={"file": str(path)}).status_code == 401
    missing = api.client.post("/api/v1/models/m/references", json={"file": "/nope.parquet"}, headers=api.auth())
    assert missing.status_code == 422
    both = api.client.post(
        "/api/v1/models/m/references", json={"file": str(path), "start": now.isoformat()}, headers=api.auth()
    )
    assert both.status_code == 422
    created = api.client.post(
        "/api/v1/models/m/references", json={"file": str(path), "version": "v1"}, headers=api.auth()
    )
    assert created.status_code == 201, created.text
    assert created.json()["rows"] == 400
    listed = api.client.get("/api/v1/models/m/references").json()["references"]
    assert [r["version"] for r in listed] == ["v1"]
    profile = api.client.get("/api/v1/models/m/references/v1").json()["profile"]
    assert profile["columns"]["amount"]["count"] == 400
    body = api.client.get("/api/v1/models/m/distribution", params={"feature": "amount"}).json()
    edges = sorted(set(np.quantile(frame["amount"], np.arange(1, 10) / 10).tolist()))
    assert body["edges"] == pytest_approx_list(edges)
    expected = np.histogram(frame["amount"], bins=[-np.inf, *body["edges"], np.inf])[0] / 400
    assert body["reference"]["proportions"] == pytest_approx_list(expected.tolist())
    cats = api.client.get("/api/v1/models/m/distribution", params={"feature": "country"}).json()
    ref = dict(zip(cats["bins"], cats["reference"]["proportions"], strict=True))
    assert ref["DE"] == (frame["country"] == "DE").mean() and ref["US"] == 0.0


def test_category_shares_count_every_category_not_only_those_listed(serve, storage: Storage, tmp_path: Path) -> None:
    """The API lists the top categories of each side, but a share is of all values present on its side:
    a reference of more categories than its profile keeps, and a window of more than the API lists."""
    reference = ["common"] * 9_900 + [f"ref{i}" for i in range(10_100)]
    path = tmp_path / "ref.parquet"
    pd.DataFrame({"tag": reference}).to_parquet(path)
    now = datetime.now(UTC)
    window = ["common"] * 100 + [f"cur{i}" for i in range(100)] + [None] * 20
    rows = [
        {
            "event_id": f"t{i}",
            "ts": now - timedelta(minutes=10) + timedelta(seconds=i),
            "features": {"tag": tag},
            "prediction": 0.5,
        }
        for i, tag in enumerate(window)
    ]
    insert_events(storage, "m", rows)
    api = serve()
    created = api.client.post("/api/v1/models/m/references", json={"file": str(path)}, headers=api.auth())
    assert created.status_code == 201, created.text
    start = (now - timedelta(hours=1)).isoformat()
    body = api.client.get("/api/v1/models/m/distribution", params={"feature": "tag", "start": start}).json()
    assert body["bins"][0] == "common" and body["current"]["total"] == 220 and body["current"]["missing"] == 20
    assert body["current"]["proportions"][0] == 100 / 200
    assert body["reference"]["proportions"][0] == 9_900 / 20_000


def pytest_approx_list(values):
    import pytest

    return pytest.approx(values, rel=1e-9, abs=1e-12)


def test_results_timeline_and_latest_drift(serve, storage: Storage) -> None:
    insert_events(storage, "m", synthetic_rows(10))
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for hours, drift, value in ((3, False, 0.02), (2, False, 0.05), (1, True, 0.3)):
        store_report(storage, _report("m", base - timedelta(hours=hours), drift, value), datetime.now(UTC), 0.1)
    api = serve()
    params = {"feature": "amount", "start": (base - timedelta(hours=5)).isoformat()}
    timeline = api.client.get("/api/v1/models/m/drift/timeline", params=params).json()["points"]
    assert [p["value"] for p in timeline] == [0.02, 0.05, 0.3]
    assert [p["drift"] for p in timeline] == [False, False, True]
    heatmap = api.client.get("/api/v1/models/m/drift/timeline").json()["points"]
    assert {p["column"] for p in heatmap} == {"amount", "country", ""}
    psi = api.client.get("/api/v1/models/m/results", params={"statistic": "psi"}).json()["results"]
    assert [r["value"] for r in psi] == [0.6, 0.1, 0.04]  # newest window first
    quality = api.client.get("/api/v1/models/m/results", params={"detector": "data_quality", "feature": "age"}).json()
    assert len(quality["results"]) == 3 and quality["results"][0]["statistic"] == "missing_share"
    model = api.client.get("/api/v1/models/m").json()
    assert model["drift"]["dataset_drift"] is True
    assert model["drift"]["drifted_features"] == ["amount"]
    assert model["health"] == "drift"
    runs = api.client.get("/api/v1/models/m/runs").json()["runs"]
    assert len(runs) == 3
    # No scheduler in this process (as after a restart, or `monitor up --no-scheduler`): the stored runs say.
    started = datetime.fromisoformat(model["last_run"].replace("Z", "+00:00"))
    assert model["last_run"].endswith("Z") and timedelta(0) <= datetime.now(UTC) - started < timedelta(minutes=5)


def test_results_are_paged_by_offset_without_gaps_or_repeats(serve, storage: Storage) -> None:
    insert_events(storage, "m", synthetic_rows(10))
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for hours in (3, 2, 1):
        store_report(storage, _report("m", base - timedelta(hours=hours), False, 0.01 * hours), datetime.now(UTC), 0.1)
    api = serve()
    whole = api.client.get("/api/v1/models/m/results").json()
    assert len(whole["results"]) == 15 and whole["next_offset"] is None
    pages, offset = [], 0
    while offset is not None:
        page = api.client.get("/api/v1/models/m/results", params={"limit": 4, "offset": offset}).json()
        assert len(page["results"]) == (4 if page["next_offset"] is not None else 3)
        pages.extend(page["results"])
        offset = page["next_offset"]
    assert pages == whole["results"]  # the same rows in the same order, each once
    exact = api.client.get("/api/v1/models/m/results", params={"limit": 5, "offset": 10}).json()
    assert len(exact["results"]) == 5 and exact["next_offset"] is None  # a full last page ends the walk
    beyond = api.client.get("/api/v1/models/m/results", params={"offset": 100}).json()
    assert beyond["results"] == [] and beyond["next_offset"] is None
    assert api.client.get("/api/v1/models/m/results", params={"offset": -1}).status_code == 422


def test_latest_results_include_a_window_ending_ahead_of_the_clock(serve, storage: Storage) -> None:
    """A run asked for a window ending a moment from now (detect with `end` just ahead) is listed by default."""
    insert_events(storage, "m", synthetic_rows(10))
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    store_report(storage, _report("m", ahead, True, 0.4), datetime.now(UTC), 0.1)
    api = serve()
    results = api.client.get("/api/v1/models/m/results", params={"statistic": "psi"}).json()["results"]
    assert [r["value"] for r in results] == [0.8]
    timeline = api.client.get("/api/v1/models/m/drift/timeline", params={"feature": "amount"}).json()["points"]
    assert [p["value"] for p in timeline] == [0.4]
    bounded = api.client.get("/api/v1/models/m/results", params={"end": datetime.now(UTC).isoformat()}).json()
    assert bounded["results"] == []  # an explicit end still bounds the listing


def test_evidently_report_for_a_window(serve, storage: Storage, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    insert_events(storage, "m", synthetic_rows(200, end=now))
    api = serve()
    assert api.client.get("/api/v1/models/m/report").status_code == 422  # no reference yet
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"amount": rng.normal(50, 10, 300), "country": rng.choice(["DE", "FR", "US"], 300)})
    frame.to_parquet(tmp_path / "ref.parquet")
    api.client.post("/api/v1/models/m/references", json={"file": str(tmp_path / "ref.parquet")}, headers=api.auth())
    response = api.client.get("/api/v1/models/m/report", params={"end": (now + timedelta(seconds=1)).isoformat()})
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Sampled report, model m, window" in page and "(300 reference, 200 current rows)" in page
    assert "amount" in page and "country" in page


def test_run_detection_now_through_the_api(serve, storage: Storage, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"amount": rng.normal(0, 1, 600), "country": rng.choice(["DE", "FR", "US"], 600)})
    frame.to_parquet(tmp_path / "ref.parquet")
    now = datetime.now(UTC).replace(microsecond=0)
    rows = synthetic_rows(600, end=now, span=timedelta(minutes=20), shift=50.0)  # amounts far from N(0, 1)
    insert_events(storage, "m", rows)
    config = {"features": {"amount": "numerical", "country": "categorical"}, "window": "30m", "min_samples": 100}
    api = serve(models={"m": config})
    body = {"end": (now + timedelta(seconds=1)).isoformat()}
    assert api.anonymous.post("/api/v1/models/m/detect", json=body).status_code == 401
    no_token = serve(token=None, read_token=None, models={"m": config})
    assert no_token.client.post("/api/v1/models/m/detect", json=body, headers=api.auth()).status_code == 403
    assert api.client.post("/api/v1/models/other/detect", json=body, headers=api.auth()).status_code == 404
    api.client.post("/api/v1/models/m/references", json={"file": str(tmp_path / "ref.parquet")}, headers=api.auth())
    bad = api.client.post("/api/v1/models/m/detect", json={"window": "soon"}, headers=api.auth())
    assert bad.status_code == 422
    report = api.client.post("/api/v1/models/m/detect", json=body, headers=api.auth())
    assert report.status_code == 200, report.text
    data = report.json()
    assert data["status"] == "ok" and data["n_current"] == 600
    assert "amount" in data["drifted_features"]
    stored = api.client.get("/api/v1/models/m/results", params={"detector": "feature_drift", "feature": "amount"})
    assert {r["statistic"] for r in stored.json()["results"]} >= {"ks", "wasserstein_norm", "psi"}
    metrics = api.client.get("/metrics").text
    assert 'monitor_detector_run_seconds_count{model="m",trigger="api"} 1.0' in metrics
    stored_detectors = {r["detector"] for r in api.client.get("/api/v1/models/m/results").json()["results"]}
    assert stored_detectors and stored_detectors <= set(DETECTORS)  # the vocabulary the API accepts
    runs = api.client.get("/api/v1/models/m/runs").json()["runs"]
    assert runs[0]["window_end"] == data["window_end"]  # the same instant, written the same way (with Z)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, f"{text!r} has no offset"
    return moment


def test_result_times_carry_their_offset_and_query_times_keep_theirs(serve, storage: Storage, tmp_path: Path) -> None:
    """Every time the API answers says it is UTC (ClickHouse hands them back naive: JavaScript's Date and
    pandas would read them as local times), and a query time's offset counts, even sent unencoded."""
    insert_events(storage, "m", synthetic_rows(10))
    base = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for hours in (3, 2, 1, 0):
        store_report(storage, _report("m", base - timedelta(hours=hours), hours == 0, 0.1 * hours), base, 0.1)
    pd.DataFrame({"amount": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "ref.parquet")
    api = serve()
    api.client.post("/api/v1/models/m/references", json={"file": "ref.parquet"}, headers=api.auth())
    since = {"start": "2026-11-20T00:00:00Z"}
    results = api.client.get("/api/v1/models/m/results", params=since).json()["results"]
    assert _aware(results[0]["window_end"]) == base and _aware(results[0]["window_start"]) == base - timedelta(hours=1)
    assert all(_aware(r["computed_at"]) == base for r in results)
    points = api.client.get("/api/v1/models/m/drift/timeline", params=since).json()["points"]
    assert [_aware(p["window_end"]) for p in points if p["column"] == "amount"][-1] == base
    run = api.client.get("/api/v1/models/m/runs").json()["runs"][0]
    assert _aware(run["window_end"]) == base and _aware(run["computed_at"]) == base
    assert _aware(api.client.get("/api/v1/models/m").json()["drift"]["window_end"]) == base
    assert _aware(api.client.get("/api/v1/models").json()["models"][0]["drift"]["window_start"])
    _aware(api.client.get("/api/v1/models/m/references").json()["references"][0]["created_at"])
    _aware(api.client.get("/api/v1/models/m/references/latest").json()["created_at"])

    def window_ends(query: str) -> list[str]:
        response = api.client.get(f"/api/v1/models/m/results?statistic=wasserstein_norm&{query}")
        assert response.status_code == 200, response.text
        return [r["window_end"][11:16] for r in response.json()["results"]]

    # windows ending in (start, end]; 11:00+02:00 is 09:00Z
    assert window_ends("start=2026-11-20T11:00:00%2B02:00") == ["12:00", "11:00", "10:00"]
    assert window_ends("start=2026-11-20T11:00:00+02:00") == ["12:00", "11:00", "10:00"]  # '+' read as a space
    assert window_ends("start=2026-11-20T09:00:00Z&end=2026-11-20T13:00:00+02:00") == ["11:00", "10:00"]
    assert window_ends("start=2026-11-20T09:30:00Z&end=2026-11-20T11:59:59.999Z") == ["11:00", "10:00"]
    assert window_ends("start=2026-11-20T08:00:00&end=2026-11-20T12:00:00Z&limit=2") == ["12:00", "11:00"]


def test_unknown_names_are_refused_not_answered_with_nothing(serve, storage: Storage) -> None:
    insert_events(storage, "m", synthetic_rows(10))
    api = serve(models={"m": {"alerts": [{"when": "dataset_drift", "notify": [], "severity": "warning"}]}})
    for path in ("/api/v1/models/m/results", "/api/v1/models/m/drift/timeline"):
        response = api.client.get(path, params={"detector": "feature_drfit"})
        assert response.status_code == 422, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "feature_drfit" in error["message"]
        assert "feature_drift" in error["message"]  # says which names exist
        assert api.client.get(path, params={"detector": "data_quality"}).status_code == 200
    bad_status = api.client.get("/api/v1/deliveries", params={"status": "sent"})
    assert bad_status.status_code == 422 and "delivered" in bad_status.json()["error"]["message"]
    assert api.client.get("/api/v1/models/nosuch/references").status_code == 404
    assert api.client.get("/api/v1/models/m/references").json()["references"] == []
    configured = api.client.post(
        "/api/v1/alerts/acknowledge", json={"model": "m", "rule": "dataset_drift"}, headers=api.auth()
    )
    assert configured.status_code == 409  # a rule of the model that is not firing
