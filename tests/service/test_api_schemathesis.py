"""Schemathesis against the OpenAPI spec over HTTP: nothing the spec allows (or nearly allows) is a 500.

Every operation is exercised with positive and negative examples (hypothesis, bounded count), with the
write token so that write endpoints reach their validation, on a database holding a model with events,
a reference and detector results so that read endpoints reach their queries. Then again with the read
token (reads reach their queries, every write is 403) and with no token (every /api/v1 operation and
/metrics answer 401, whatever the input).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import schemathesis
from api_support import READ_TOKEN, TOKEN, RunningApi, insert_events, synthetic_rows
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation.modes import GenerationMode

from monitor.storage import Storage

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 25


def _story(serve, storage: Storage, tmp_path: Path) -> RunningApi:
    insert_events(storage, "m", synthetic_rows(50, end=datetime.now(UTC)))
    frame = pd.DataFrame({"amount": np.arange(100.0), "country": ["DE", "FR"] * 50})
    frame.to_parquet(tmp_path / "ref.parquet")
    api = serve(models={"m": {"features": {"amount": "numerical", "country": "categorical"}, "window": "1h"}})
    created = api.client.post("/api/v1/models/m/references", json={"file": "ref.parquet"}, headers=api.auth())
    assert created.status_code == 201, created.text
    return api


def _fuzz(api: RunningApi, token: str | None, per_operation: int) -> tuple[list[str], list[tuple[str, str, int]], int]:
    """Run every operation; returns (5xx failures, (method, path, status) of the others, operations run)."""
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    failures: list[str] = []
    tested = 0
    statuses: list[tuple[str, str, int]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/v1/models/{model}/report" or operation.path.endswith("/detect"):
            examples = min(5, per_operation)  # each runs Evidently or every detector: a few prove the error paths
        else:
            examples = per_operation

        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            case.headers = headers
            response = case.call(base_url=api.url, timeout=60)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: {response.text[:300]}"
                )
            else:
                statuses.append((case.method.upper(), case.operation.path, response.status_code))

        run()
        tested += 1
    return failures, statuses, tested


def test_no_server_errors_anywhere(serve, storage: Storage, tmp_path: Path) -> None:
    api = _story(serve, storage, tmp_path)
    failures, statuses, tested = _fuzz(api, TOKEN, EXAMPLES_PER_OPERATION)
    assert tested >= 15
    seen = {status for _, _, status in statuses}
    assert {200, 404, 422} <= seen, sorted(seen)  # both sides of validation reached
    assert 401 not in seen and 403 not in seen
    assert not failures, "\n".join(failures[:20])


def test_no_server_errors_with_the_read_token(serve, storage: Storage, tmp_path: Path) -> None:
    api = _story(serve, storage, tmp_path)
    failures, statuses, tested = _fuzz(api, READ_TOKEN, 10)
    assert tested >= 15
    assert not failures, "\n".join(failures[:20])
    reads = {status for method, _, status in statuses if method == "GET"}
    assert {200, 404, 422} <= reads and 401 not in reads and 403 not in reads, sorted(reads)
    writes = {status for method, path, status in statuses if method != "GET" and path.startswith("/api/v1/")}
    assert writes == {403}, sorted(writes)


def test_only_401_without_a_token(serve, storage: Storage, tmp_path: Path) -> None:
    api = _story(serve, storage, tmp_path)
    failures, statuses, tested = _fuzz(api, None, 10)
    assert tested >= 15
    assert not failures, "\n".join(failures[:20])
    protected = {s for _, path, s in statuses if path.startswith("/api/v1/") or path == "/metrics"}
    assert protected == {401}, sorted(protected)
    assert {s for _, path, s in statuses if path in ("/healthz", "/readyz")} == {200}
