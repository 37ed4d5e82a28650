"""``pip install ./sdk`` into a fresh virtual environment: none of the service's dependencies come with it,
and a model server's script logs through the real broker and through the real HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from api_support import TOKEN

from monitor.storage import Storage
from tests.sdk.topics import read_topic, topics

REPO = Path(__file__).resolve().parents[2]
HEAVY_DISTRIBUTIONS = {
    "chdb",
    "clickhouse-connect",
    "streamlit",
    "evidently",
    "scikit-learn",
    "fastapi",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
    "orjson",
    "pydantic",
    "model-monitor",
}
HEAVY_MODULES = [
    "chdb",
    "clickhouse_connect",
    "streamlit",
    "evidently",
    "sklearn",
    "fastapi",
    "pandas",
    "numpy",
    "scipy",
]
# What the SDK with its http extra may bring: kafka-python, httpx and httpx's own dependencies.
ALLOWED = {
    "model-monitor-sdk",
    "kafka-python",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "idna",
    "certifi",
    "sniffio",
    "typing-extensions",
    "exceptiongroup",
}

SCRIPT = """
import importlib.util, json, sys
from monitor_sdk import HttpPredictionLogger, PredictionLogger

bootstrap, topic, url, token, heavy = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")
errors = []
def on_error(error, record):
    errors.append(f"{record.event_id}: {type(error).__name__}: {error}")

with PredictionLogger("venv-model", bootstrap, "7", predictions_topic=topic, on_error=on_error) as logger:
    logger.log({"amount": 1.5, "country": "DE", "flag": True, "age": None}, prediction=0.5, event_id="via-kafka")
with HttpPredictionLogger("venv-model", url=url, token=token, model_version="7", on_error=on_error) as logger:
    logger.log({"amount": 2.5, "country": "FR"}, prediction="yes", event_id="via-http")
    logger.log_label("via-http", label=True)
print(json.dumps({
    "errors": errors,
    "importable": [m for m in heavy if importlib.util.find_spec(m) is not None],
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in heavy),
}))
"""


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@pytest.mark.slow
@pytest.mark.kafka
def test_the_sdk_installs_alone_and_logs_through_kafka_and_http(
    tmp_path: Path, kafka_bootstrap: str, serve, storage: Storage
) -> None:
    source = tmp_path / "sdk"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO / "sdk", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    venv = tmp_path / "venv"
    # No pip inside (ensurepip alone takes seconds): this process's pip installs into it with --python.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env, timeout=120)
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    install = [*pip, "install", "--quiet", f"{source}[http]"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    listing = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {_normal(name) for name in json.loads(listing.stdout)}
    assert {"model-monitor-sdk", "kafka-python", "httpx"} <= installed
    assert not installed & HEAVY_DISTRIBUTIONS, sorted(installed & HEAVY_DISTRIBUTIONS)
    assert installed <= ALLOWED, f"unexpected distributions: {sorted(installed - ALLOWED)}"

    api = serve()
    predictions, _ = topics(kafka_bootstrap)
    run = subprocess.run(
        [python, "-c", SCRIPT, kafka_bootstrap, predictions, api.url, TOKEN, ",".join(HEAVY_MODULES)],
        env=env,
        cwd=tmp_path,  # not the checkout: nothing of the service is importable from there
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report == {"errors": [], "importable": [], "loaded": []}

    [(key, event)] = read_topic(kafka_bootstrap, predictions, 1)
    assert key == b"venv-model:via-kafka"
    assert event["features"] == {"amount": 1.5, "country": "DE", "flag": True, "age": None}
    assert event["model_version"] == "7" and event["prediction"] == 0.5
    events = storage.table("events")
    stored = storage.rows(
        f"SELECT event_id, model_version, prediction_cat FROM {events} FINAL WHERE model = 'venv-model'"
    )
    assert [tuple(row) for row in stored] == [("via-http", "7", "yes")]
    labels = storage.rows(f"SELECT event_id, label_cat FROM {storage.table('labels')} FINAL")
    assert [tuple(row) for row in labels] == [("via-http", "true")]
