"""References: loading (chDB file() and Arrow streaming alike), profiles against numpy, versions, event ranges."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from detectors.checks.performance import settings_key
from detectors.references.store import get_reference, list_references, training_reference
from detectors.registration import add_events, add_file
from monitor.errors import InputError
from monitor.settings import IngestSettings, PredictionSettings
from monitor.storage import Storage
from tests.detectors.event_rows import T0, Rows, reference_frame, spread, write_events, write_labels

DECILES = [0.1 * i for i in range(1, 10)]


@pytest.fixture
def frame() -> pd.DataFrame:
    data = reference_frame(1200, seed=3)
    data.loc[::7, "amount"] = np.nan  # missing numbers
    data.loc[::11, "country"] = None  # missing categories
    data["constant"] = 5.0
    data["ties"] = np.round(np.random.default_rng(4).normal(size=len(data)), 0)  # heavy ties
    return data


def _check_profile(reference, data: pd.DataFrame) -> None:
    profile = reference.profile
    amount = data["amount"].dropna().to_numpy()
    p = profile.columns["amount"]
    assert p.kind == "numerical"
    assert p.count == len(amount) and p.missing == data["amount"].isna().sum()
    np.testing.assert_allclose(p.deciles, np.quantile(amount, DECILES), rtol=1e-12)
    assert p.std == pytest.approx(np.std(amount), rel=1e-10)
    assert p.mean == pytest.approx(np.mean(amount), rel=1e-12)
    assert (p.min, p.max) == (amount.min(), amount.max())
    assert p.missing_share == pytest.approx(data["amount"].isna().mean())
    ties = data["ties"].to_numpy()
    np.testing.assert_allclose(profile.columns["ties"].deciles, np.quantile(ties, DECILES), rtol=1e-12)
    assert profile.columns["ties"].edges == tuple(sorted(set(np.quantile(ties, DECILES))))
    assert profile.columns["ties"].distinct == len(set(ties))
    constant = profile.columns["constant"]
    assert constant.std == 0 and constant.edges == (5.0,)
    country = profile.columns["country"]
    assert country.kind == "categorical"
    assert country.frequencies == data["country"].value_counts().to_dict()
    assert country.missing == data["country"].isna().sum()
    flags = profile.columns["is_new"]
    assert flags.kind == "categorical"
    assert flags.frequencies == {"true": int(data["is_new"].sum()), "false": int((~data["is_new"]).sum())}
    assert reference.has_prediction and reference.has_label
    assert profile.prediction.mean == pytest.approx(data["prediction"].mean())
    assert profile.label.kind == "numerical"


@pytest.mark.parametrize("suffix", ["parquet", "indexed.parquet", "parquet.csv", "csv", "quoted.csv", "tsv"])
@pytest.mark.parametrize("mode", ["file", "stream"])
def test_profile_matches_numpy(storage: Storage, tmp_path: Path, frame: pd.DataFrame, suffix: str, mode: str) -> None:
    """Files as pandas writes them, read as pandas reads them back: a named index is not a column, a
    Parquet file saved as .csv is Parquet, a TSV is CSV with tabs."""
    path = tmp_path / f"ref.{suffix}"
    if suffix in ("parquet", "parquet.csv"):
        frame.to_parquet(path)
    elif suffix == "indexed.parquet":
        frame.assign(row=np.arange(len(frame)) * 7).set_index("row").to_parquet(path)
    elif suffix == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    else:  # quoted: every field in quotes, numbers and missing values ("") too, as pandas' QUOTE_ALL writes
        frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL if suffix == "quoted.csv" else csv.QUOTE_MINIMAL)
    messages: list[str] = []
    reference = add_file(storage, "fraud", path, mode=mode, progress=messages.append)
    assert reference.rows == len(frame)
    assert reference.columns == {
        "amount": "numerical",
        "country": "categorical",
        "is_new": "categorical",
        "constant": "numerical",
        "ties": "numerical",
    }
    _check_profile(reference, frame)
    assert any("registered" in m for m in messages)
    # The stored rows hold exactly the file's values (booleans as events store them).
    stored = storage.frame(
        f"SELECT n__amount, c__country, c__is_new FROM {storage.table('reference_rows')} "
        f"WHERE load_id = '{reference.load_id}' ORDER BY row_id"
    )
    np.testing.assert_array_equal(stored["n__amount"].to_numpy(), frame["amount"].to_numpy())
    assert stored["c__is_new"].tolist() == ["true" if b else "false" for b in frame["is_new"]]


def test_versions_replace_and_list(storage: Storage, tmp_path: Path) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    reference_frame(300, seed=1).to_parquet(first)
    reference_frame(500, seed=2).to_parquet(second)
    v1 = add_file(storage, "fraud", first)
    v2 = add_file(storage, "fraud", second, kind="baseline")
    assert (v1.version, v2.version) == ("1", "2")
    assert get_reference(storage, "fraud").version == "2"  # newest wins
    assert training_reference(storage, "fraud").version == "1"  # newest of kind training
    replaced = add_file(storage, "fraud", second, version="1")
    assert replaced.rows == 500
    assert [(r.version, r.rows) for r in list_references(storage, "fraud")] == [("2", 500), ("1", 500)]
    loads = dict(storage.rows(f"SELECT load_id, count() FROM {storage.table('reference_rows')} GROUP BY load_id"))
    assert loads == {v2.load_id: 500, replaced.load_id: 500}  # the replaced load's rows are gone
    assert list_references(storage, "other") == []


def test_configured_features_and_kinds(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "ref.parquet"
    data = reference_frame(200)
    data["zip"] = np.arange(200) % 7
    data.to_parquet(path)
    reference = add_file(storage, "m", path, features={"amount": "numerical", "zip": "categorical"})
    assert reference.columns == {"amount": "numerical", "zip": "categorical"}
    assert reference.profile.columns["zip"].frequencies["3"] == int((data["zip"] == 3).sum())
    with pytest.raises(InputError, match="holds text but is configured numerical"):
        add_file(storage, "m", path, features={"country": "numerical"})


def test_reference_performance_stored_in_profile(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "ref.parquet"
    data = reference_frame(2000, seed=9)
    data.to_parquet(path)
    reference = add_file(storage, "m", path, prediction=PredictionSettings(type="probability", threshold=0.5))
    metrics = reference.profile.performance["metrics"]
    y, p = data["label"].to_numpy(), data["prediction"].to_numpy()
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5), rel=1e-12)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-9)
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
    # Without configured settings the stored metrics use what a run will infer (scores in [0, 1]).
    inferred = add_file(storage, "m", path, version="2").profile.performance
    assert inferred["settings"] == settings_key(PredictionSettings(type="probability"))
    assert inferred["metrics"] == metrics


BAD_FILES = [
    ("missing.parquet", None, "no such file"),
    ("ref.json", b"{}", "unsupported format"),
    ("latin1.csv", "amount,country\n1.5,Côte\n".encode("latin-1"), r"'country' holds text that is not UTF-8"),
    ("broken.parquet", b"not parquet at all", "cannot read"),
    ("header.csv", b"a,b\n", "cannot read|no rows"),
    ("empty.csv", b"", "the file is empty"),
    ("header_only.csv", b"amount,country\n", "the file has no rows$"),  # as `monitor drift` says it
    ("not_a_table.csv", b'{"a": 1}\n', "the file has no rows$"),
]


def test_bad_files(storage: Storage, tmp_path: Path) -> None:
    for name, content, message in BAD_FILES:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(InputError, match=message) as caught:
            add_file(storage, "m", path)
        assert "\n" not in str(caught.value)
    assert list_references(storage, "m") == []


def test_reference_from_logged_events(storage: Storage) -> None:
    rng = np.random.default_rng(5)
    n = 400
    amount = rng.normal(10, 2, n)
    ts = spread(n, end=T0 - timedelta(days=1))
    ids = write_events(
        storage,
        Rows(
            "m",
            ts,
            {"amount": amount, "country": rng.choice(["DE", "FR"], n)},
            prediction=rng.random(n),
            segment=[{"region": "eu"}] * n,
        ),
    )
    write_events(storage, Rows("m", spread(50), {"amount": np.zeros(50)}, prediction=np.zeros(50)))  # outside
    write_labels(storage, "m", ids[:100], [1.0] * 100)
    reference = add_events(storage, "m", T0 - timedelta(days=2), T0 - timedelta(hours=12))
    assert reference.kind == "window" and reference.rows == n
    assert reference.columns == {"amount": "numerical", "country": "categorical"}
    np.testing.assert_allclose(reference.profile.columns["amount"].deciles, np.quantile(amount, DECILES), rtol=1e-12)
    assert reference.has_label and reference.profile.label.count == 100
    with pytest.raises(InputError, match="no events"):
        add_events(storage, "m", T0 - timedelta(days=30), T0 - timedelta(days=29))


BAD_NAMES = [
    ({"version": ""}, "version must not be empty"),
    ({"version": " "}, "may hold only letters"),
    ({"version": "it's"}, "may hold only letters"),
    ({"version": "a/b"}, "may hold only letters"),  # a version is a URL path segment of the API
    ({"version": "v" * 101}, "at most 100"),
    ({"version": "latest"}, "reserved"),
    ({"model": "a/b"}, "must not contain '/'"),  # events can never carry this model
    ({"model": " "}, "must not be empty"),
]


@pytest.mark.parametrize(("names", "message"), BAD_NAMES)
def test_model_and_version_follow_the_rules_of_events_and_the_api(
    storage: Storage, tmp_path: Path, names: dict[str, str], message: str
) -> None:
    path = tmp_path / "ref.parquet"
    reference_frame(50).to_parquet(path)
    model, version = names.get("model", "m"), names.get("version")
    with pytest.raises(InputError, match=message):
        add_file(storage, model, path, version=version)
    with pytest.raises(InputError, match=message):
        add_events(storage, model, T0 - timedelta(hours=1), T0, version=version)
    assert list_references(storage, model) == []
    assert add_file(storage, "m", path, version="v1.2-rc_3").version == "v1.2-rc_3"


def test_file_columns_within_ingestion_limits(storage: Storage, tmp_path: Path, monkeypatch) -> None:
    """A column events could never carry is skipped; a file wider than a model may be is refused early."""
    data = reference_frame(60)
    long_name = "x" * 257
    data[long_name] = 1.0
    for i in range(40):
        data[f"f{i}"] = float(i)
    path = tmp_path / "wide.csv"
    data.to_csv(path, index=False)
    alters: list[str] = []
    command = storage.command

    def recording(sql: str, *args, **kwargs):
        if sql.startswith("ALTER TABLE") and "ADD COLUMN" in sql:
            alters.append(sql)
        return command(sql, *args, **kwargs)

    monkeypatch.setattr(storage, "command", recording)
    messages: list[str] = []
    reference = add_file(storage, "m", path, progress=messages.append)
    assert long_name not in reference.columns and "f39" in reference.columns
    assert any("1 column(s) with names longer than ingest.max_feature_name_length = 256" in m for m in messages)
    assert len(alters) == 1  # the 43 new typed columns in one statement, not one ALTER each

    limits = IngestSettings(max_features_per_model=40)
    for name, write in (("w.csv", data.to_csv), ("w.parquet", data.to_parquet)):
        wide = tmp_path / name
        write(wide, index=False)
        with pytest.raises(InputError, match=r"43 feature columns, more than one model may have .*= 40\)"):
            add_file(storage, "n", wide, limits=limits)
    assert list_references(storage, "n") == []
    # Configured features pick the columns, so the file's width does not matter.
    picked = add_file(storage, "n", path, features={"amount": "numerical"}, limits=limits)
    assert picked.columns == {"amount": "numerical"}
