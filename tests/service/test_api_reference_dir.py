"""Reference files over the API come only from api.reference_dir; every way of naming something else
(outside, '..', a symlink, missing, unreadable) gets one identical answer; no response names a host path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from api_support import RunningApi

from monitor.storage import Storage

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symlinks and FIFOs as POSIX has them")


def _frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.normal(0, 1, n), "country": rng.choice(["DE", "FR"], n)})


def _post(api: RunningApi, file: str, **extra: str) -> tuple[int, bytes]:
    body = json.dumps({"file": file, **extra})  # ASCII with escapes: a lone surrogate travels too
    headers = {**api.auth(), "Content-Type": "application/json"}
    response = api.anonymous.post("/api/v1/models/m/references", content=body, headers=headers)
    return response.status_code, response.content


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """refs/ (the reference directory) with good and bad entries, and a secret file beside it."""
    refs = tmp_path / "refs"
    (refs / "team").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    _frame().to_parquet(outside / "private.parquet")
    _frame().to_parquet(refs / "good.parquet")
    _frame(seed=1).to_csv(refs / "team" / "nested.csv", index=False)
    (refs / "link.parquet").symlink_to(outside / "private.parquet")
    (refs / "inner-link.parquet").symlink_to(refs / "good.parquet")  # even pointing inside: refused
    (refs / "linkdir").symlink_to(outside, target_is_directory=True)
    (refs / "dir.parquet").mkdir()
    os.mkfifo(refs / "fifo.parquet")
    (refs / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet at all")
    (refs / "empty.csv").write_bytes(b"")
    return {"refs": refs, "outside": outside}


def test_files_inside_the_reference_dir_work_and_show_relative_names(
    serve, layout: dict[str, Path], storage: Storage
) -> None:
    refs = layout["refs"]
    api = serve(api={"reference_dir": str(refs)})
    created = api.anonymous.post(
        "/api/v1/models/m/references", json={"file": "good.parquet", "version": "a"}, headers=api.auth()
    )
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "good.parquet" and created.json()["rows"] == 120
    nested = api.anonymous.post(
        "/api/v1/models/m/references", json={"file": "team/nested.csv", "version": "b"}, headers=api.auth()
    )
    assert nested.status_code == 201, nested.text
    absolute = api.anonymous.post(
        "/api/v1/models/m/references", json={"file": str(refs / "good.parquet"), "version": "c"}, headers=api.auth()
    )
    assert absolute.status_code == 201 and absolute.json()["source"] == "good.parquet"
    dotted = api.anonymous.post(
        "/api/v1/models/m/references", json={"file": "./team/./nested.csv", "version": "d"}, headers=api.auth()
    )
    assert dotted.status_code == 201 and dotted.json()["source"] == "team/nested.csv"
    listed = api.client.get("/api/v1/models/m/references")
    assert [r["source"] for r in listed.json()["references"]] == [
        "good.parquet",
        "team/nested.csv",
        "good.parquet",
        "team/nested.csv",
    ]
    one = api.client.get("/api/v1/models/m/references/b").json()
    assert one["source"] == "team/nested.csv" and one["profile"]["columns"]["amount"]["count"] == 120
    stored = storage.rows(f"SELECT DISTINCT source FROM {storage.table('references')}")
    assert {row[0] for row in stored} == {"good.parquet", "team/nested.csv"}  # stored relative, not only shown
    for response in (created, nested, absolute, listed):
        assert str(layout["refs"].parent) not in response.text


def test_everything_else_gets_one_identical_answer(serve, layout: dict[str, Path]) -> None:
    refs, outside = layout["refs"], layout["outside"]
    api = serve(api={"reference_dir": str(refs)})
    requests = {
        "outside (absolute)": str(outside / "private.parquet"),
        "outside (dot-dot)": "../secret/private.parquet",
        "dot-dot inside": "team/../good.parquet",
        "symlink file": "link.parquet",
        "symlink inside the dir": "inner-link.parquet",
        "symlink directory": "linkdir/private.parquet",
        "missing": "missing.parquet",
        "missing directory": "nope/missing.parquet",
        "directory": "dir.parquet",
        "fifo": "fifo.parquet",
        "corrupt": "corrupt.parquet",
        "empty": "empty.csv",
        "a system file": "/etc/passwd.csv",
        "file below a file": "good.parquet/x.csv",
        "a name too long": "x" * 300 + ".csv",
    }
    answers = {name: _post(api, file) for name, file in requests.items()}
    distinct = {answer for answer in answers.values()}
    assert len(distinct) == 1, answers
    status, body = distinct.pop()
    assert status == 422
    assert b"reference_file_not_usable" in body and str(refs.parent).encode() not in body
    assert _post(api, "\ud800.csv")[0] == 422  # a lone surrogate: refused by validation, never a 500


def test_unsupported_extensions_are_refused_by_name(serve, layout: dict[str, Path]) -> None:
    api = serve(api={"reference_dir": str(layout["refs"])})
    status, body = _post(api, "/etc/passwd")
    assert status == 422 and b"Parquet or CSV" in body and b"/etc" not in body
    assert _post(api, "good.txt") == (status, body)  # decided from the name: same answer, existing or not


def test_without_a_reference_dir_file_registration_is_refused(serve, tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "ref.parquet")
    api = serve(api={"reference_dir": None})
    response = api.anonymous.post(
        "/api/v1/models/m/references", json={"file": str(tmp_path / "ref.parquet")}, headers=api.auth()
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "reference_files_disabled" and "api.reference_dir" in error["message"]
    assert _post(api, "missing.parquet")[0] == 403  # the same whether or not the file exists


def test_column_errors_name_the_file_relative(serve, layout: dict[str, Path]) -> None:
    (layout["refs"] / "text.csv").write_text("amount\nabc\ndef\n")
    api = serve(api={"reference_dir": str(layout["refs"])}, models={"m": {"features": {"amount": "numerical"}}})
    response = api.anonymous.post("/api/v1/models/m/references", json={"file": "text.csv"}, headers=api.auth())
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert message.startswith("text.csv: ") and "numerical" in message
    assert str(layout["refs"]) not in response.text


def test_references_registered_by_the_cli_show_only_the_file_name(serve, storage: Storage, tmp_path: Path) -> None:
    from detectors.registration import add_file

    elsewhere = tmp_path / "private" / "area"
    elsewhere.mkdir(parents=True)
    _frame().to_parquet(elsewhere / "train.parquet")
    add_file(storage, "m", elsewhere / "train.parquet", version="cli")  # the CLI reads any file its user can
    api = serve()
    listed = api.client.get("/api/v1/models/m/references")
    one = api.client.get("/api/v1/models/m/references/cli")
    assert listed.json()["references"][0]["source"] == "train.parquet"
    assert one.json()["source"] == "train.parquet"
    assert str(elsewhere) not in listed.text and str(elsewhere) not in one.text
