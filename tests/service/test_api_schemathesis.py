"""Schemathesis against the OpenAPI spec over HTTP: nothing the spec allows (or nearly allows) is a 500.

Every operation is exercised with positive and negative examples (hypothesis, bounded count), with the
right token so that write endpoints reach their validation, on a database holding a model with events,
a reference and detector results so that read endpoints reach their queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import schemathesis
from api_support import TOKEN, insert_events, synthetic_rows
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation.modes import GenerationMode

from monitor.storage import Storage

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 25


def test_no_server_errors_anywhere(serve, storage: Storage, tmp_path: Path) -> None:
    insert_events(storage, "m", synthetic_rows(50, end=datetime.now(UTC)))
    frame = pd.DataFrame({"amount": np.arange(100.0), "country": ["DE", "FR"] * 50})
    frame.to_parquet(tmp_path / "ref.parquet")
    api = serve(models={"m": {"features": {"amount": "numerical", "country": "categorical"}, "window": "1h"}})
    api.client.post("/api/v1/models/m/references", json={"file": str(tmp_path / "ref.parquet")}, headers=api.auth())
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    failures: list[str] = []
    tested = 0
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/v1/models/{model}/report" or operation.path.endswith("/detect"):
            examples = 5  # each runs Evidently or every detector: a few examples prove the error paths
        else:
            examples = EXAMPLES_PER_OPERATION

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
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
            response = case.call(base_url=api.url, timeout=60)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: {response.text[:300]}"
                )
            else:
                statuses.append(response.status_code)

        run()
        tested += 1
    assert tested >= 15
    assert {200, 404, 422} <= set(statuses), sorted(set(statuses))  # both sides of validation reached
    assert not failures, "\n".join(failures[:20])
