"""A running API over a database that tells a story (events, a reference, drift results, an alert),
for the dashboard tests (a plain module: test files import MODEL from here, never from conftest)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from api_support import insert_events, make_settings, synthetic_rows

from detectors.report import StatResult, WindowReport
from detectors.results import store_report
from monitor.service.app import create_app
from monitor.service.context import ServiceContext
from monitor.service.server import ApiServer
from monitor.storage import Storage

MODEL = "demo-model"
CONFIG = {
    "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    "models": {
        MODEL: {
            "features": {"amount": "numerical", "country": "categorical"},
            "window": "1h",
            "alerts": [{"when": "dataset_drift", "notify": ["hook"], "severity": "critical"}],
        }
    },
}


def _report(end: datetime, drift: bool, value: float) -> WindowReport:
    rows = (
        StatResult("feature_drift", "amount", "wasserstein_norm", value, threshold=0.1, drift=drift, n_current=600),
        StatResult("feature_drift", "country", "jensen_shannon", 0.02, threshold=0.1, drift=False, n_current=600),
        StatResult("feature_drift", "", "drift_share", 0.5 if drift else 0.0, threshold=0.5, drift=drift),
        StatResult("data_quality", "age", "missing_share", 0.1),
        StatResult("performance", "__prediction__", "accuracy", 0.9 - value / 4),
        StatResult(
            "estimated_performance",
            "",
            "roc_auc",
            0.92 - value / 4,
            threshold=0.85,
            drift=drift,
            details={"lower": 0.9 - value / 4, "upper": 0.94 - value / 4},
        ),
    )
    return WindowReport(MODEL, "1", end - timedelta(hours=1), end, "ok", 600, 600, rows, run_id=f"r{end:%H%M}")


@pytest.fixture
def story_api(storage: Storage, tmp_path: Path) -> Iterator[str]:
    now = datetime.now(UTC)
    insert_events(storage, MODEL, synthetic_rows(300, end=now, span=timedelta(minutes=50)))
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"amount": rng.normal(40, 20, 500), "country": rng.choice(["DE", "FR", "US"], 500)})
    frame.to_parquet(tmp_path / "reference.parquet")
    from detectors.registration import add_file

    settings = make_settings(storage, **CONFIG)
    add_file(storage, MODEL, tmp_path / "reference.parquet", features=dict(settings.models[MODEL].features))
    base = now.replace(minute=0, second=0, microsecond=0)
    from alerts.engine import AlertEngine

    engine = AlertEngine(storage, settings)
    for hours, drift, value in ((4, False, 0.03), (3, False, 0.05), (2, True, 0.25), (1, True, 0.4)):
        report = _report(base - timedelta(hours=hours), drift, value)
        store_report(storage, report, datetime.now(UTC), 0.2)
        engine.evaluate(report)
    server = ApiServer(create_app(ServiceContext(settings=settings, storage=storage)), "127.0.0.1", 0)
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()
