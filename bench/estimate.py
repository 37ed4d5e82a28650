"""Performance estimation side by side with NannyML 0.13.1 (BENCHMARKS.md, "Performance estimation").

The same generated data and the same chunks go through whole-process ``monitor estimate --format json``
and through a whole process running NannyML (CBPE for classifiers, DLE for the regressor) in its own
virtual environment (:mod:`bench.nannyml_venv`, created on first use), alternating. Each task's truth
is known: the labels of the current data are drawn from a known model, kept in memory here and never
written to the current file; part-way the inputs shift so that the model gets worse.

Reported per task: for each tool, the mean absolute error of its estimates against the realized metric
of every chunk (per metric and overall), and the wall and CPU seconds of the whole process (start to
JSON written), median over runs.

    .venv/bin/python bench/estimate.py [--task binary|multiclass|regression ...] [--rows 50000]
        [--chunk-size 5000] [--runs 3]

One JSON line per task and tool, then a summary line per task.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MONITOR = str(Path(sys.executable).parent / "monitor")

from bench import nannyml_venv  # noqa: E402

METRICS = {
    "binary": ["roc_auc", "accuracy", "precision", "recall", "f1", "specificity"],
    "multiclass": ["roc_auc", "accuracy", "precision", "recall", "f1", "specificity"],
    "regression": ["mae", "mse", "rmse", "mape"],
}
CLASSES = ["a", "b", "c"]

NANNYML_SCRIPT = r"""
import json, sys
import pandas as pd
import nannyml as nml

task, ref_path, cur_path, chunk_size, out_path = sys.argv[1:6]
metrics = sys.argv[6].split(",")
reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
if task == "regression":
    reference["group"] = reference["group"].astype("category")
    current["group"] = current["group"].astype("category")
    estimator = nml.DLE(feature_column_names=["x1", "x2", "group"], y_pred="pred", y_true="label",
                        metrics=metrics, chunk_size=int(chunk_size))
elif task == "binary":
    estimator = nml.CBPE(y_pred_proba="proba", y_pred="pred", y_true="label", metrics=metrics,
                         problem_type="classification_binary", chunk_size=int(chunk_size))
else:
    estimator = nml.CBPE(y_pred_proba={c: f"p_{c}" for c in "abc"}, y_pred="pred", y_true="label",
                         metrics=metrics, problem_type="classification_multiclass", chunk_size=int(chunk_size))
estimator.fit(reference)
frame = estimator.estimate(current).filter(period="analysis").to_df()
out = {m: [float(v) for v in frame[(m, "value")]] for m in metrics}
with open(out_path, "w") as handle:
    json.dump(out, handle)
"""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def generate(task: str, rows: int, seed: int, shifted: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Features, the model's outputs and the drawn labels (returned apart)."""
    rng = np.random.default_rng(seed)
    scale = 0.4 if shifted else 1.0
    x = rng.normal(0.0, scale, (rows, 2))
    if task == "binary":
        logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.3
        truth = _sigmoid(logit)
        score = _sigmoid(2.0 * logit)  # over-confident: both tools calibrate on the reference
        label = (rng.random(rows) < truth).astype(int)
        return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "proba": score, "pred": (score >= 0.5).astype(int)}), label
    if task == "multiclass":
        logits = np.column_stack([2 * x[:, 0], -1.5 * x[:, 0] + 1.5 * x[:, 1], -1.5 * x[:, 1] + 0.2])
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        drawn = (rng.random((rows, 1)) > np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1)
        frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1]})
        for k, c in enumerate(CLASSES):
            frame[f"p_{c}"] = probs[:, k]
        frame["pred"] = np.array(CLASSES)[np.argmax(probs, axis=1)]
        return frame, np.array(CLASSES)[drawn]
    if shifted:
        x1 = rng.choice([-1.0, 1.0], rows) * rng.uniform(1.0, 2.5, rows)
        group = rng.choice(["a", "b", "c"], rows, p=[0.2, 0.2, 0.6])
    else:
        x1 = rng.normal(0.0, 1.0, rows)
        group = rng.choice(["a", "b", "c"], rows)
    x2 = rng.normal(0.0, 1.0, rows)
    mean = 30.0 + 3.0 * x1 + x2 + np.where(group == "b", 4.0, 0.0)
    noise = 0.5 + np.abs(x1) + np.where(group == "c", 1.0, 0.0)
    label = mean + rng.normal(0.0, 1.0, rows) * noise
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group, "pred": mean}), label


def realized(task: str, frame: pd.DataFrame, label: np.ndarray, metric: str) -> float:
    if task == "regression":
        pred = frame["pred"].to_numpy()
        return {
            "mae": skm.mean_absolute_error(label, pred),
            "mse": skm.mean_squared_error(label, pred),
            "rmse": float(np.sqrt(skm.mean_squared_error(label, pred))),
            "mape": skm.mean_absolute_percentage_error(label, pred),
        }[metric]
    pred = frame["pred"].to_numpy()
    if task == "binary":
        return {
            "roc_auc": lambda: skm.roc_auc_score(label, frame["proba"]),
            "accuracy": lambda: skm.accuracy_score(label, pred),
            "precision": lambda: skm.precision_score(label, pred),
            "recall": lambda: skm.recall_score(label, pred),
            "f1": lambda: skm.f1_score(label, pred),
            "specificity": lambda: skm.recall_score(label, pred, pos_label=0),
        }[metric]()
    scores = frame[[f"p_{c}" for c in CLASSES]].to_numpy()
    return {
        "roc_auc": lambda: skm.roc_auc_score(label, scores, multi_class="ovr", average="macro", labels=CLASSES),
        "accuracy": lambda: skm.accuracy_score(label, pred),
        "precision": lambda: skm.precision_score(label, pred, average="macro", labels=CLASSES),
        "recall": lambda: skm.recall_score(label, pred, average="macro", labels=CLASSES),
        "f1": lambda: skm.f1_score(label, pred, average="macro", labels=CLASSES),
        "specificity": lambda: float(np.mean([skm.recall_score(label != c, pred != c) for c in CLASSES])),
    }[metric]()


def run_child(args: list[str], stdout: Path | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, wait4) of a whole process, its output written to ``stdout``."""
    with open(stdout or os.devnull, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args[0]} failed: {stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def ours_args(task: str, ref: Path, cur: Path, chunk: int) -> list[str]:
    base = [MONITOR, "estimate", "--reference", str(ref), "--current", str(cur), "--target", "label"]
    if task == "binary":
        base += ["--score", "proba", "--prediction", "pred"]
    elif task == "multiclass":
        base += [arg for c in CLASSES for arg in ("--score", f"{c}=p_{c}")] + ["--prediction", "pred"]
    else:
        base += ["--prediction", "pred", "--task", "regression"]
    names = METRICS[task] if task != "multiclass" else [f"{m}_macro" if m != "accuracy" else m for m in METRICS[task]]
    base += [arg for m in names for arg in ("--metric", m)]
    return [*base, "--chunk-size", str(chunk), "--format", "json"]


def ours_values(task: str, out: Path) -> dict[str, list[float]]:
    result = json.loads(out.read_text())
    values: dict[str, list[float]] = {}
    for metric in METRICS[task]:
        name = metric if task != "multiclass" or metric == "accuracy" else f"{metric}_macro"
        values[metric] = [c["estimates"][name]["value"] for c in result["chunks"]]
    return values


def bench_task(task: str, rows: int, chunk: int, runs: int, python: Path, folder: Path) -> dict:
    ref, ref_label = generate(task, rows, 1, False)
    half = rows // 2
    first, first_label = generate(task, half, 2, False)
    second, second_label = generate(task, rows - half, 3, True)
    cur = pd.concat([first, second], ignore_index=True)
    cur_label = np.concatenate([first_label, second_label])
    ref_path, cur_path = folder / f"{task}_ref.parquet", folder / f"{task}_cur.parquet"
    ref.assign(label=ref_label).to_parquet(ref_path, index=False)
    cur.to_parquet(cur_path, index=False)  # no label: neither tool can see it
    bounds = [(s, min(s + chunk, rows)) for s in range(0, rows, chunk)]
    truth = {m: [realized(task, cur.iloc[s:e], cur_label[s:e], m) for s, e in bounds] for m in METRICS[task]}
    script = folder / "nannyml_run.py"
    script.write_text(NANNYML_SCRIPT)
    timings: dict[str, list[tuple[float, float]]] = {"monitor": [], "nannyml": []}
    outputs = {"monitor": folder / f"{task}_ours.json", "nannyml": folder / f"{task}_nannyml.json"}
    commands = {
        "monitor": ours_args(task, ref_path, cur_path, chunk),
        "nannyml": [
            str(python),
            str(script),
            task,
            str(ref_path),
            str(cur_path),
            str(chunk),
            str(outputs["nannyml"]),
            ",".join(METRICS[task]),
        ],
    }
    for _ in range(runs):
        for tool in ("monitor", "nannyml"):
            timings[tool].append(run_child(commands[tool], outputs[tool] if tool == "monitor" else None))
    estimates = {
        "monitor": ours_values(task, outputs["monitor"]),
        "nannyml": json.loads(outputs["nannyml"].read_text()),
    }
    summary: dict = {"task": task, "rows": rows, "chunk_size": chunk, "chunks": len(bounds), "runs": runs}
    for tool in ("monitor", "nannyml"):
        per_metric = {
            m: float(np.mean(np.abs(np.asarray(estimates[tool][m], dtype=float) - np.asarray(truth[m]))))
            for m in METRICS[task]
        }
        line = {
            "task": task,
            "tool": tool,
            "mae": per_metric,
            "mae_overall": float(np.mean(list(per_metric.values()))),
            "wall_s": statistics.median(t[0] for t in timings[tool]),
            "cpu_s": statistics.median(t[1] for t in timings[tool]),
            "walls": [round(t[0], 2) for t in timings[tool]],
        }
        print(json.dumps(line), flush=True)
        summary[tool] = line
    summary["speedup_wall"] = summary["nannyml"]["wall_s"] / summary["monitor"]["wall_s"]
    summary["speedup_cpu"] = summary["nannyml"]["cpu_s"] / summary["monitor"]["cpu_s"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", action="append", choices=sorted(METRICS))
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = nannyml_venv.ensure()
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        for task in args.task or ["binary", "multiclass", "regression"]:
            s = bench_task(task, args.rows, args.chunk_size, args.runs, python, Path(tmp))
            print(
                f"{task}: MAE monitor {s['monitor']['mae_overall']:.4f} vs NannyML {s['nannyml']['mae_overall']:.4f}; "
                f"wall {s['monitor']['wall_s']:.2f}s vs {s['nannyml']['wall_s']:.2f}s "
                f"({s['speedup_wall']:.1f}x); CPU {s['monitor']['cpu_s']:.2f}s vs {s['nannyml']['cpu_s']:.2f}s "
                f"({s['speedup_cpu']:.1f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
