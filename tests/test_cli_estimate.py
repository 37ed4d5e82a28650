"""``monitor estimate`` as users run it: a subprocess of the installed console script, real files, real chDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

MONITOR = str(Path(sys.executable).parent / "monitor")


def run(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MONITOR, "estimate", *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def _binary(rng: np.random.Generator, n: int, scale: float) -> pd.DataFrame:
    x = rng.normal(0.0, scale, (n, 2))
    p = 1.0 / (1.0 + np.exp(-(2.0 * x[:, 0] - 1.5 * x[:, 1])))
    label = rng.random(n) < p
    return pd.DataFrame({"x1": x[:, 0], "proba": p, "predicted": p >= 0.5, "label": label})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("estimate-cli")
    rng = np.random.default_rng(11)
    ref = _binary(rng, 20_000, 1.0)
    cur = pd.concat([_binary(rng, 6000, 1.0), _binary(rng, 6000, 0.3)], ignore_index=True)
    paths = {name: folder / name for name in ("ref.parquet", "cur.csv", "cur_nolabel.parquet", "same.parquet")}
    ref.to_parquet(paths["ref.parquet"], index=False)
    cur.to_csv(paths["cur.csv"], index=False)
    cur.drop(columns=["label"]).to_parquet(paths["cur_nolabel.parquet"], index=False)
    _binary(rng, 12_000, 1.0).to_parquet(paths["same.parquet"], index=False)
    # multiclass with text classes
    logits = rng.normal(0, 1.5, (16_000, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = np.array(["cat", "dog", "bird"])
    drawn = (rng.random((16_000, 1)) > np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1)
    multi = pd.DataFrame({"p_cat": probs[:, 0], "p_dog": probs[:, 1], "p_bird": probs[:, 2], "y": classes[drawn]})
    multi["pred"] = classes[np.argmax(probs, axis=1)]
    multi.iloc[:10_000].to_parquet(folder / "mref.parquet", index=False)
    multi.iloc[10_000:].to_parquet(folder / "mcur.parquet", index=False)
    # regression
    x = rng.normal(0, 1, 9000)
    group = rng.choice(["a", "b"], 9000)
    mean = 10 + 2 * x
    reg = pd.DataFrame(
        {"x": x, "group": group, "pred": mean, "price": mean + rng.normal(0, 1, 9000) * (0.5 + np.abs(x))}
    )
    reg.iloc[:6000].to_parquet(folder / "rref.parquet", index=False)
    reg.iloc[6000:].to_parquet(folder / "rcur.parquet", index=False)
    (folder / "empty.csv").write_text("")
    paths |= {p.name: p for p in folder.iterdir()}
    paths["frame"] = cur  # type: ignore[assignment]
    return paths


def test_binary_json_shape_realized_and_alerts(files: dict[str, Path]) -> None:
    args = ["--reference", files["ref.parquet"], "--current", files["cur.csv"], "--target", "label"]
    out = run(*args, "--score", "proba", "--prediction", "predicted", "--chunk-size", "3000", "--format", "json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["task"] == "binary"
    assert result["metrics"] == ["roc_auc", "accuracy", "precision", "recall", "f1", "specificity"]
    assert (result["reference_rows"], result["current_rows"]) == (20_000, 12_000)
    chunks = result["chunks"]
    assert [(c["index"], c["start_row"], c["end_row"], c["rows"]) for c in chunks] == [
        (i, 3000 * i, 3000 * i + 2999, 3000) for i in range(4)
    ]
    frame: pd.DataFrame = files["frame"]  # type: ignore[assignment]
    for chunk in chunks:
        assert set(chunk) == {"index", "start_row", "end_row", "rows", "estimates", "realized"}
        assert set(chunk["estimates"]) == set(result["metrics"])
        for estimate in chunk["estimates"].values():
            assert set(estimate) == {"value", "lower", "upper", "alert"}
            assert estimate["lower"] <= estimate["value"] <= estimate["upper"]
        part = frame.iloc[chunk["start_row"] : chunk["end_row"] + 1]
        assert chunk["realized"]["roc_auc"] == pytest.approx(skm.roc_auc_score(part["label"], part["proba"]))
        assert chunk["realized"]["f1"] == pytest.approx(skm.f1_score(part["label"], part["predicted"]))
    accuracy = [c["estimates"]["accuracy"] for c in chunks]
    assert [a["alert"] for a in accuracy] == [False, False, True, True]  # the shift starts at row 6000
    assert accuracy[3]["value"] < accuracy[0]["value"] - 0.1

    gated = run(*args, "--score", "proba", "--prediction", "predicted", "--chunk-size", "3000", "--fail-on-alert")
    assert gated.returncode == 1
    assert "ALERT" in gated.stdout and "accuracy" in gated.stdout


def test_estimates_never_read_the_current_target(files: dict[str, Path]) -> None:
    common = ["--reference", files["ref.parquet"], "--target", "label", "--score", "proba", "--chunks", "3"]
    with_target = json.loads(run(*common, "--current", files["cur.csv"], "--format", "json").stdout)
    without = json.loads(run(*common, "--current", files["cur_nolabel.parquet"], "--format", "json").stdout)
    assert all("realized" not in c for c in without["chunks"])
    assert [c["estimates"] for c in without["chunks"]] == [c["estimates"] for c in with_target["chunks"]]
    assert [c["rows"] for c in without["chunks"]] == [4000, 4000, 4000]


def test_no_shift_no_alert_exit_zero(files: dict[str, Path]) -> None:
    out = run(
        "--reference", files["ref.parquet"], "--current", files["same.parquet"], "--target", "label",
        "--score", "proba", "--metric", "roc_auc", "--metric", "accuracy", "--chunks", "3", "--fail-on-alert",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 alert(s) over 3 chunks" in out.stdout


def test_multiclass_text_classes(files: dict[str, Path]) -> None:
    out = run(
        "--reference", files["mref.parquet"], "--current", files["mcur.parquet"], "--target", "y",
        "--score", "cat=p_cat", "--score", "dog=p_dog", "--score", "bird=p_bird", "--prediction", "pred",
        "--metric", "f1", "--metric", "accuracy", "--chunks", "2", "--format", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["task"] == "multiclass"
    assert result["metrics"] == ["accuracy", "f1_macro", "f1_weighted"]
    cur = pd.read_parquet(files["mcur.parquet"])
    for chunk in result["chunks"]:
        part = cur.iloc[chunk["start_row"] : chunk["end_row"] + 1]
        assert chunk["realized"]["f1_macro"] == pytest.approx(skm.f1_score(part["y"], part["pred"], average="macro"))
        assert abs(chunk["estimates"]["accuracy"]["value"] - chunk["realized"]["accuracy"]) < 0.03


def test_regression_task_inferred(files: dict[str, Path]) -> None:
    out = run(
        "--reference", files["rref.parquet"], "--current", files["rcur.parquet"], "--target", "price",
        "--prediction", "pred", "--chunks", "2", "--format", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["task"] == "regression" and result["metrics"] == ["mae", "mse", "rmse", "mape"]
    for chunk in result["chunks"]:
        real, est = chunk["realized"]["mae"], chunk["estimates"]["mae"]["value"]
        assert abs(est - real) / real < 0.1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--current", "missing.parquet", "--score", "proba"], "no such file"),
        (["--current", "empty.csv", "--score", "proba"], "empty"),
        (["--current", "cur.csv", "--score", "nope"], "no column 'nope'"),
        (["--current", "cur.csv", "--score", "proba", "--chunks", "2", "--chunk-size", "5"], "not both"),
        (["--current", "cur.csv", "--score", "proba", "--metric", "mae"], "not a binary metric"),
        (["--current", "cur.csv", "--score", "proba", "--metric", "roc"], "'roc' is not a binary metric"),
        (["--current", "cur.csv", "--score", "proba", "--chunk-size", "99999"], "larger than"),
        (["--current", "cur.csv", "--score", "a=proba", "--score", "proba"], "CLASS=COLUMN"),
        (["--current", "cur.csv"], "give --score"),
    ],
)
def test_bad_input_exit_2_with_one_line(files: dict[str, Path], args: list[str], message: str) -> None:
    folder = files["ref.parquet"].parent
    resolved = [str(folder / a) if a.endswith((".parquet", ".csv")) else a for a in args]
    out = run("--reference", files["ref.parquet"], "--target", "label", *resolved)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monitor: error: ") and message in lines[0], out.stderr


@pytest.fixture(scope="module")
def odd_files(files: dict[str, Path]) -> dict[str, Path]:
    """Current files that disagree with the reference in ways that would silently skew the numbers."""
    folder = files["ref.parquet"].parent / "odd"
    folder.mkdir()
    cur: pd.DataFrame = files["frame"]  # type: ignore[assignment]
    out = {name: folder / f"{name}.parquet" for name in ("yes_no", "margins", "text_target", "class_2")}
    cur.assign(predicted=np.where(cur["predicted"], "yes", "no")).to_parquet(out["yes_no"], index=False)
    cur.assign(proba=cur["proba"] * 4 - 2).to_parquet(out["margins"], index=False)
    cur.assign(label=np.where(cur["label"], "fraud", "ok")).to_parquet(out["text_target"], index=False)
    cur.assign(label=cur["label"].astype(int).where(cur.index != 5, 2)).to_parquet(out["class_2"], index=False)
    reg = pd.read_parquet(files["rcur.parquet"])
    out["x_text"] = folder / "x_text.csv"
    reg.assign(x=reg["x"].astype(object).where(reg.index != 7, "oops")).to_csv(out["x_text"], index=False)
    out["group_codes"] = folder / "group_codes.parquet"
    reg.assign(group=reg["group"].map({"a": 1, "b": 2})).to_parquet(out["group_codes"], index=False)
    return out


def _one_line_error(out: subprocess.CompletedProcess[str], message: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monitor: error: ") and message in lines[0], out.stderr


def test_inputs_that_would_skew_the_numbers_are_refused(files: dict[str, Path], odd_files: dict[str, Path]) -> None:
    binary = ["--reference", files["ref.parquet"], "--target", "label"]
    # A binary prediction column with values that are not the target's classes (was: all negatives).
    out = run(*binary, "--current", odd_files["yes_no"], "--score", "proba", "--prediction", "predicted")
    _one_line_error(out, "holds 'no', not a class of the target (0, 1)")
    out = run(*binary, "--current", files["cur.csv"], "--score", "proba", "--prediction", "proba")
    _one_line_error(out, "not a class of the target")
    # Margins where the reference has probabilities (was: clipped into confident probabilities).
    _one_line_error(run(*binary, "--current", odd_files["margins"], "--score", "proba"), "outside [0, 1]")
    # A named positive class the target does not have (was: "use --task multiclass").
    _one_line_error(run(*binary, "--current", files["cur.csv"], "--score", "2=proba"), "class '2' is not in target")
    # More chunks than rows, as --chunk-size larger than the data.
    _one_line_error(run(*binary, "--current", files["cur.csv"], "--score", "proba", "--chunks", "12001"), "more than")
    # A multiclass --score for a class the reference never shows (was: averaged in as a class).
    multi = ["--reference", files["mref.parquet"], "--current", files["mcur.parquet"], "--target", "y"]
    scores = ["--score", "cat=p_cat", "--score", "dog=p_dog", "--score", "bird=p_bird"]
    _one_line_error(run(*multi, *scores, "--score", "fish=p_bird"), "class 'fish' is not in target 'y'")
    # A regressor's feature that changed kind between the files (was: a traceback, or all categories unseen).
    regression = ["--reference", files["rref.parquet"], "--target", "price", "--prediction", "pred"]
    _one_line_error(run(*regression, "--current", odd_files["x_text"]), "feature 'x' holds string")
    _one_line_error(run(*regression, "--current", odd_files["group_codes"]), "feature 'group' holds int64")


def test_current_classes_the_reference_lacks_stay_out_of_realized(
    files: dict[str, Path], odd_files: dict[str, Path]
) -> None:
    common = ["--reference", files["ref.parquet"], "--target", "label", "--score", "proba", "--chunks", "1"]
    out = run(*common, "--current", odd_files["class_2"], "--prediction", "predicted", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert "1 current rows with a class the reference lacks left out of realized metrics" in out.stderr
    frame: pd.DataFrame = files["frame"]  # type: ignore[assignment]
    kept = frame[frame.index != 5]
    realized = json.loads(out.stdout)["chunks"][0]["realized"]
    assert realized["accuracy"] == pytest.approx(skm.accuracy_score(kept["label"], kept["predicted"]), abs=1e-12)
    assert realized["recall"] == pytest.approx(skm.recall_score(kept["label"], kept["predicted"]), abs=1e-12)
    out = run(*common, "--current", odd_files["text_target"], "--format", "json")
    assert out.returncode == 0, out.stderr
    assert "12000 current rows with a class the reference lacks" in out.stderr
    assert set(json.loads(out.stdout)["chunks"][0]["realized"].values()) == {None}


def test_short_last_chunk_is_judged_and_shown_with_its_own_band(files: dict[str, Path]) -> None:
    args = ["--reference", files["ref.parquet"], "--current", files["cur.csv"], "--target", "label"]
    out = run(*args, "--score", "proba", "--chunk-size", "5000", "--metric", "accuracy", "--format", "json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [c["rows"] for c in result["chunks"]] == [5000, 5000, 2000]
    bands = [b["accuracy"] for b in result["chunk_thresholds"]]
    assert bands[0] == bands[1] == result["thresholds"]["accuracy"]
    assert bands[2]["lower"] < bands[0]["lower"] and bands[2]["upper"] > bands[0]["upper"]
    for chunk, band in zip(result["chunks"], bands, strict=True):
        value = chunk["estimates"]["accuracy"]["value"]
        assert chunk["estimates"]["accuracy"]["alert"] == (not band["lower"] <= value <= band["upper"])
    table = run(*args, "--score", "proba", "--chunk-size", "5000", "--metric", "accuracy").stdout
    last = next(line for line in table.splitlines() if line.startswith("2 [10000-11999]"))
    assert f"{bands[2]['lower']:.4f} - {bands[2]['upper']:.4f}" in last


def test_text_target_needs_a_named_class(files: dict[str, Path]) -> None:
    out = run(
        "--reference", files["mref.parquet"], "--current", files["mcur.parquet"], "--target", "y", "--score", "p_cat"
    )
    assert out.returncode == 2
    assert "--score CLASS=COLUMN" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_help_lists_the_command() -> None:
    out = subprocess.run([MONITOR, "estimate", "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0
    assert "confidence-based" in out.stdout and "--fail-on-alert" in out.stdout


def test_large_inputs_report_progress_on_stderr_and_quiet_silences_it(tmp_path: Path) -> None:
    """Inputs of 16 MiB or more (together) get timed progress lines on stderr, as ``monitor drift`` does;
    ``--quiet`` leaves only the result, which is the same either way."""
    rng = np.random.default_rng(5)
    paths = []
    for name in ("big_ref.csv", "big_cur.csv"):
        frame = _binary(rng, 200_000, 1.0)[["proba", "label", "x1"]]
        frame.to_csv(tmp_path / name, index=False, float_format="%.17g")
        paths.append(tmp_path / name)
    assert sum(p.stat().st_size for p in paths) >= 16 * 1024 * 1024
    args = ("--reference", paths[0], "--current", paths[1], "--target", "label", "--score", "proba", "-f", "json")
    loud, quiet = run(*args), run(*args, "--quiet")
    assert loud.returncode == quiet.returncode == 0, loud.stderr
    assert loud.stdout == quiet.stdout and quiet.stderr == ""
    lines = loud.stderr.strip().splitlines()
    steps = ["reading big_ref.csv and big_cur.csv", "binary: fitting", "estimating 10 chunks of 200,000 current rows"]
    assert len(lines) == len(steps), lines
    for line, step in zip(lines, steps, strict=True):
        assert line.startswith("monitor estimate: [") and "s] " in line and step in line, lines
    drift = subprocess.run(
        [MONITOR, "drift", "--reference", paths[0], "--current", paths[1], "-f", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert drift.returncode == 0 and "monitor drift: [" in drift.stderr and "profiling the current data" in drift.stderr
