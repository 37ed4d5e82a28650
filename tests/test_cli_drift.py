"""``monitor drift`` as users run it: a subprocess of the installed console script, real files, real chDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.detectors.drift_oracle import expected_categorical, expected_numeric

MONITOR = str(Path(sys.executable).parent / "monitor")


def run(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MONITOR, "drift", *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("drift-cli")
    rng = np.random.default_rng(21)
    n_ref, n_cur = 3000, 2500
    ref = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n_ref),
            "age": rng.integers(18, 90, n_ref),
            "country": rng.choice(["DE", "FR", "IT"], n_ref),
            "is_new": rng.choice([True, False], n_ref),
        }
    )
    cur = pd.DataFrame(
        {
            "amount": rng.lognormal(3.5, 1, n_cur),  # drifted
            "age": rng.integers(18, 90, n_cur),
            "country": rng.choice(["DE", "FR", "IT", "BR"], n_cur, p=[0.2, 0.2, 0.2, 0.4]),  # drifted, new BR
            "is_new": rng.choice([True, False], n_cur),
        }
    )
    paths = {"ref": folder / "ref.parquet", "cur": folder / "cur.csv", "same": folder / "same.parquet"}
    ref.to_parquet(paths["ref"], index=False)
    cur.to_csv(paths["cur"], index=False)
    ref.sample(frac=1.0, random_state=1).to_parquet(paths["same"], index=False)
    (folder / "empty.csv").write_text("")
    (folder / "header_only.csv").write_text("amount,age\n")
    (folder / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    (folder / "data.xlsx").write_bytes(b"not a format we read")
    pd.DataFrame({"other": [1.0, 2.0]}).to_parquet(folder / "other.parquet")
    pd.DataFrame({"amount": ["a", "b"], "age": [1, 2]}).to_parquet(folder / "text_amount.parquet")
    (folder / "latin1.csv").write_bytes("amount,country\n1.5,Genève\n2.5,Zürich\n".encode("latin-1"))
    (folder / "dup_names.csv").write_text("amount,amount\n1,2\n3,4\n")
    paths |= {p.stem: p for p in folder.iterdir()}
    paths["folder"] = folder
    paths["frames"] = (ref, cur)  # type: ignore[assignment]
    return paths


def test_json_document_matches_the_contract_and_scipy(files: dict) -> None:
    proc = run("--reference", files["ref"], "--current", files["cur"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    ref, cur = files["frames"]
    assert set(doc) >= {"dataset_drift", "drift_share", "threshold_share", "n_reference", "n_current", "columns"}
    assert doc["n_reference"] == len(ref) and doc["n_current"] == len(cur)
    assert list(doc["columns"]) == ["amount", "age", "country", "is_new"]
    amount = doc["columns"]["amount"]
    assert set(amount) >= {"type", "method", "statistic", "p_value", "threshold", "drift", "stats", "missing_share"}
    assert amount["type"] == "numerical" and amount["method"] == "wasserstein_norm" and amount["p_value"] is None
    assert set(amount["stats"]) >= {"ks", "wasserstein_norm", "psi", "js"}
    want = expected_numeric(ref.amount.to_numpy(), cur.amount.to_numpy())
    assert amount["stats"]["wasserstein_norm"] == pytest.approx(want.wasserstein_norm, rel=1e-6)
    assert amount["stats"]["ks"]["p_value"] == pytest.approx(want.ks_p, rel=0.01)
    assert amount["drift"] is True
    country = doc["columns"]["country"]
    assert country["type"] == "categorical" and country["method"] == "jensen_shannon"
    assert country["new_categories"] == ["BR"]
    assert country["stats"]["js"] == pytest.approx(expected_categorical(ref.country, cur.country)["js"], rel=1e-6)
    assert doc["columns"]["is_new"]["type"] == "categorical"  # booleans are categorical, CSV True/False too
    assert doc["columns"]["is_new"]["new_categories"] == []
    assert doc["columns"]["age"]["type"] == "numerical"
    assert doc["dataset_drift"] is True and doc["drift_share"] == 0.5


def test_table_is_the_default_and_fail_on_drift_gates(files: dict) -> None:
    proc = run("--reference", files["ref"], "--current", files["cur"], "--fail-on-drift")
    assert proc.returncode == 1
    assert "DATASET DRIFT" in proc.stdout and "amount" in proc.stdout and "new categories in country: BR" in proc.stdout
    same = run(
        "--reference", files["ref"], "--current", files["same"], "--fail-on-drift", "--columns", "amount,country"
    )
    assert same.returncode == 0, same.stderr
    assert "no dataset drift: 0 of 2 columns drifted" in same.stdout
    every = run("--reference", files["ref"], "--current", files["cur"], "--columns", "", "--format", "json")
    assert every.returncode == 0, every.stderr  # an empty list (a script's unset variable): every column
    assert list(json.loads(every.stdout)["columns"]) == ["amount", "age", "country", "is_new"]


def test_columns_left_out_are_named_on_stderr_and_exponent_floats_stay_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 500), "seen_at": pd.date_range("2026-01-01", periods=500, freq="h")})
    ref.loc[7, "x"] = 1.5e-05  # pandas writes it as 1.5e-05: still a number, not text
    ref["only_here"] = 1.0
    cur = ref.drop(columns=["only_here"]).assign(only_there="a")
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    proc = run("--reference", tmp_path / "ref.parquet", "--current", tmp_path / "cur.csv", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)["columns"]) == ["x"]
    notes = [line for line in proc.stderr.splitlines() if "not compared" in line]
    assert any("ref.parquet: seen_at (unsupported type" in line for line in notes), proc.stderr
    assert any("cur.csv: seen_at (unsupported type" in line for line in notes), proc.stderr
    assert any(line.endswith("only in the reference: only_here") for line in notes), proc.stderr
    assert any(line.endswith("only in the current data: only_there") for line in notes), proc.stderr


def test_tsv_with_empty_fields_reads_and_a_late_typed_column_is_typed_by_all_its_rows(tmp_path: Path) -> None:
    n = 26_000  # ClickHouse's own inference would look at the first 25,000 rows only
    frame = pd.DataFrame({"x": np.arange(n) % 7, "flag": pd.array([True, None] * (n // 2), dtype="boolean")})
    frame["late"] = np.r_[np.full(25_500, np.nan), np.ones(n - 25_500)]
    frame.to_csv(tmp_path / "ref.tsv", sep="\t", index=False)  # NA written as an empty field
    frame.to_parquet(tmp_path / "cur.parquet")
    same = run("--reference", tmp_path / "ref.tsv", "--current", tmp_path / "ref.tsv", "--format", "json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["columns"]["flag"]["missing_share"]["reference"] == 0.5
    mixed = run("--reference", tmp_path / "ref.tsv", "--current", tmp_path / "cur.parquet", "--format", "json")
    assert mixed.returncode == 0, mixed.stderr
    late = json.loads(mixed.stdout)["columns"]["late"]
    assert late["type"] == "numerical" and late["drift"] is False
    assert late["missing_share"]["reference"] == pytest.approx(25_500 / n)


@pytest.mark.slow
def test_method_threshold_and_report(files: dict) -> None:
    report = files["folder"] / "out" / "report.html"
    proc = run(
        "--reference",
        files["ref"],
        "--current",
        files["cur"],
        "--format",
        "json",
        "--method",
        "psi",
        "--threshold",
        "0.5",
        "--method",
        "age=ks",
        "--threshold",
        "age=0.01",
        "--fdr",
        "--report",
        report,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["columns"]["amount"]["method"] == "psi" and doc["columns"]["amount"]["threshold"] == 0.5
    assert doc["columns"]["age"]["method"] == "ks" and doc["columns"]["age"]["threshold"] == 0.01
    assert "p_value_adjusted" in doc["columns"]["age"]
    html = report.read_text()
    assert "<html" in html.lower() and "Sampled report" in html
    assert "random sample" in proc.stderr


def test_report_leaves_out_a_column_of_more_categories_than_evidently_handles(tmp_path: Path) -> None:
    """An ID-like column (12,000 distinct values in the two samples) took Evidently minutes; the page leaves
    it out and says so, and the printed verdict on it still stands."""
    rng = np.random.default_rng(5)
    n = 6000
    for side, offset in (("ref", 0), ("cur", n)):
        frame = pd.DataFrame({"amount": rng.normal(size=n), "customer_ref": [f"c{offset + i}" for i in range(n)]})
        frame.to_parquet(tmp_path / f"{side}.parquet")
    report = tmp_path / "report.html"
    proc = run(
        "--reference",
        tmp_path / "ref.parquet",
        "--current",
        tmp_path / "cur.parquet",
        "--format",
        "json",
        "--report",
        report,
    )
    assert proc.returncode == 0, proc.stderr
    assert "left out: customer_ref (12,000 categories, over the report's 10,000)" in proc.stderr
    assert json.loads(proc.stdout)["columns"]["customer_ref"]["drift"] is True  # every category is new
    page = report.read_text()
    assert page.count("customer_ref") == 1 and "Left out: customer_ref (12,000 categories" in page
    assert "amount" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reference", "{missing}", "--current", "{cur}"], "no such file"),
        (["--reference", "{empty}", "--current", "{cur}"], "the file is empty"),
        (["--reference", "{ref}", "--current", "{header_only}"], "has no rows"),
        (["--reference", "{broken}", "--current", "{cur}"], "cannot read as Parquet"),
        (["--reference", "{data}", "--current", "{cur}"], "unsupported format"),
        (["--reference", "{ref}", "--current", "{other}"], "no common columns"),
        (["--reference", "{ref}", "--current", "{text_amount}"], "'amount' is numeric in the reference and text"),
        (["--reference", "{ref}", "--current", "{cur}", "--columns", "amount,nope"], "has no column 'nope'"),
        (["--reference", "{ref}", "--current", "{cur}", "--method", "nope"], "unknown drift method 'nope'"),
        (["--reference", "{ref}", "--current", "{latin1}"], "column 'country' holds text that is not UTF-8"),
        (
            ["--reference", "{ref}", "--current", "{dup_names}"],
            'Duplicate column name found while schema inference: "amount"',
        ),
        (["--reference", "{ref}", "--current", "{cur}", "--columns", " , "], "--columns ' , ' names no column"),
        (
            ["--reference", "{ref}", "--current", "{cur}", "--report", "{ref}/report.html"],
            "cannot write (Not a directory)",
        ),
        (["--reference", "{ref}", "--current", "{cur}", "--report", "{folder}"], "cannot write (Is a directory)"),
    ],
)
def test_bad_input_exits_2_with_one_line(files: dict, args: list[str], message: str) -> None:
    values = {k: str(v) for k, v in files.items() if isinstance(v, Path)} | {"missing": "/nonexistent/x.parquet"}
    proc = run(*(a.format(**values) for a in args))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("monitor: error: ") and message in lines[0]
    assert proc.stdout == ""


def test_help_has_examples() -> None:
    proc = subprocess.run([MONITOR, "drift", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    for option in ("--reference", "--current", "--columns", "--format", "--report", "--fail-on-drift", "--fdr"):
        assert option in proc.stdout
    assert "Examples" in proc.stdout


def test_csv_columns_read_as_pandas_reads_them(tmp_path: Path) -> None:
    """Quoted numbers and empty quoted fields, pandas' missing markers, spaces kept in values and
    headers, a text value after row 25,000: the figures are those of the files read with pandas."""
    import csv

    rng = np.random.default_rng(8)
    n = 30_000
    ref = pd.DataFrame({"amount": rng.normal(0, 1, n), " lead": rng.choice([" a", "a", "a "], n)})
    cur = pd.DataFrame({"amount": rng.normal(0.2, 1, n), " lead": rng.choice([" a", "a", "a ", "B,C"], n)})
    ref.loc[::10, "amount"] = np.nan
    cur.loc[::5, "amount"] = np.nan
    ref["count"] = rng.integers(0, 50, n).astype(object)
    ref.loc[::7, "count"] = "NA"
    cur["count"] = rng.integers(0, 60, n).astype(object)
    cur.loc[26_000, "count"] = "null"
    ref["code"] = rng.integers(0, 5, n).astype(str)
    cur["code"] = rng.integers(0, 5, n).astype(str)
    ref.loc[26_500, "code"] = "y7"  # text after ClickHouse's 25,000 inferred rows: a categorical column
    cur.loc[27_000, "code"] = "x9"
    ref.to_csv(tmp_path / "ref.csv", index=False, quoting=csv.QUOTE_ALL)  # every field quoted, NaN as ""
    cur.to_csv(tmp_path / "cur.csv", index=False)
    read = {side: pd.read_csv(tmp_path / f"{side}.csv", dtype={"code": str}) for side in ("ref", "cur")}
    assert read["ref"]["count"].dtype == float and read["cur"]["count"].dtype == float
    proc = run("--reference", tmp_path / "ref.csv", "--current", tmp_path / "cur.csv", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    columns = json.loads(proc.stdout)["columns"]
    assert list(columns) == ["amount", " lead", "count", "code"]
    for name in ("amount", "count"):
        got, ref_values, cur_values = columns[name], read["ref"][name], read["cur"][name]
        assert got["type"] == "numerical"
        assert got["missing_share"] == {
            "reference": pytest.approx(ref_values.isna().mean()),
            "current": pytest.approx(cur_values.isna().mean()),
        }
        want = expected_numeric(ref_values.dropna().to_numpy(), cur_values.dropna().to_numpy())
        assert got["stats"]["ks"]["statistic"] == pytest.approx(want.ks, abs=1e-9)
        assert got["stats"]["wasserstein_norm"] == pytest.approx(want.wasserstein_norm, rel=1e-6)
        assert got["stats"]["psi"] == pytest.approx(want.psi, rel=1e-6)
        assert got["stats"]["js"] == pytest.approx(want.js, rel=1e-6)
    for name in (" lead", "code"):
        got = columns[name]
        assert got["type"] == "categorical"
        want_cat = expected_categorical(list(read["ref"][name]), list(read["cur"][name]))
        assert got["stats"]["chi2"]["statistic"] == pytest.approx(want_cat["chi2"], rel=1e-6)
        assert got["stats"]["psi"] == pytest.approx(want_cat["psi"], rel=1e-6)
    assert columns[" lead"]["new_categories"] == ["B,C"] and columns["code"]["new_categories"] == ["x9"]


def test_bin_edges_are_numpys_to_the_bit(tmp_path: Path) -> None:
    """Values sitting exactly on numpy's interpolated deciles (0.1, 0.2, ... of [0, 1]) fall in the bins
    numpy's edges put them in; ClickHouse's own interpolation is one bit off there."""
    rng = np.random.default_rng(3)
    cases = {
        "edges": (np.array([0.0, 1.0]), np.round(np.arange(1, 10) / 10, 1)),
        "rounded": (np.round(rng.normal(0, 1, 41), 1), np.round(rng.normal(0.1, 1, 300), 1)),
        "ties": (rng.integers(0, 9, 57).astype(float) / 4, rng.integers(0, 9, 70).astype(float) / 4),
    }
    for name, (ref_values, cur_values) in cases.items():
        pd.DataFrame({"x": ref_values}).to_parquet(tmp_path / f"{name}_ref.parquet")
        pd.DataFrame({"x": cur_values}).to_parquet(tmp_path / f"{name}_cur.parquet")
        proc = run(
            "--reference", tmp_path / f"{name}_ref.parquet", "--current", tmp_path / f"{name}_cur.parquet",
            "--format", "json", "--min-samples", "1",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)["columns"]["x"]["stats"]
        want = expected_numeric(ref_values, cur_values)
        assert got["psi"] == pytest.approx(want.psi, rel=1e-9), name
        assert got["js"] == pytest.approx(want.js, rel=1e-9), name


def test_huge_magnitudes_keep_their_spread(tmp_path: Path) -> None:
    """Values near 1e300: their squares overflow, the normalised Wasserstein distance must not."""
    rng = np.random.default_rng(4)
    ref_values, cur_values = rng.normal(0, 1, 3000) * 1e300, rng.normal(0.1, 1, 3000) * 1e300
    pd.DataFrame({"x": ref_values}).to_parquet(tmp_path / "ref.parquet")
    pd.DataFrame({"x": cur_values}).to_parquet(tmp_path / "cur.parquet")
    proc = run("--reference", tmp_path / "ref.parquet", "--current", tmp_path / "cur.parquet", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    want = expected_numeric(ref_values / 1e300, cur_values / 1e300)  # scale-free
    assert json.loads(proc.stdout)["columns"]["x"]["stats"]["wasserstein_norm"] == pytest.approx(
        want.wasserstein_norm, rel=1e-6
    )


def test_parquet_columns_pandas_does_not_read_as_features_are_left_out_on_one_line_each(tmp_path: Path) -> None:
    """The index ``df.to_parquet`` writes (``__index_level_0__`` of a filtered frame, or a named index),
    bytes and durations (ClickHouse reads them as text and integers) are no features: pandas reads no
    such column, or no number or string. Nested types are named on one line. A Parquet file named
    ``.csv`` is read as the Parquet it is."""
    rng = np.random.default_rng(9)
    n = 200

    def frame(shift: float) -> pa.Table:
        data = pd.DataFrame({"x": rng.normal(shift, 1, n), "id": np.arange(n)}).sample(frac=1.0, random_state=2)
        table = pa.Table.from_pandas(data.iloc[: n // 2])  # filtered and shuffled: the index is written
        return (
            table.append_column("raw", pa.array([bytes([65 + i % 3]) for i in range(n // 2)], pa.binary()))
            .append_column("wait", pa.array(rng.integers(0, 100, n // 2), pa.duration("s")))
            .append_column("st", pa.array([{"a": i} for i in range(n // 2)], pa.struct([("a", pa.int64())])))
        )

    pq.write_table(frame(0.0), tmp_path / "ref.parquet")
    pq.write_table(frame(0.0), tmp_path / "cur.csv")  # Parquet, whatever its name
    named = tmp_path / "named.parquet"
    pd.DataFrame({"x": rng.normal(0, 1, n), "id": np.arange(n)}).set_index("id").to_parquet(named)
    proc = run("--reference", tmp_path / "ref.parquet", "--current", tmp_path / "cur.csv", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)["columns"]) == ["x", "id"]
    notes = proc.stderr.splitlines()
    assert all(line.startswith("monitor drift: not compared: ") for line in notes), proc.stderr
    for side in ("ref.parquet", "cur.csv"):
        assert any(line.endswith(f"{side}: __index_level_0__ (the pandas index, not a column)") for line in notes)
        assert any(line.endswith(f"{side}: raw (unsupported type binary)") for line in notes), proc.stderr
        assert any(line.endswith(f"{side}: wait (unsupported type duration[s])") for line in notes), proc.stderr
        assert any(line.endswith(f"{side}: st (unsupported type Tuple(a Nullable(Int64)))") for line in notes)
    proc = run("--reference", named, "--current", named, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)["columns"]) == ["x"] and "id (the pandas index, not a column)" in proc.stderr


def test_tsv_quoted_as_pandas_writes_it_and_trailing_empty_lines(tmp_path: Path) -> None:
    """pandas quotes TSV fields holding a tab, a newline or a quote, and keeps backslashes; a file may
    end with empty lines (pandas skips them): the figures are those of pd.read_csv."""
    rng = np.random.default_rng(10)
    n = 400
    values = ["a", "tab\there", "two\nlines", 'say "hi"', "back\\slash\\t", "c,d"]
    ref = pd.DataFrame({"x": rng.normal(0, 1, n).round(6), "c": rng.choice(values, n)})
    cur = pd.DataFrame(
        {"x": rng.normal(0.3, 1, n).round(6), "c": rng.choice(values, n, p=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1])}
    )
    ref.to_csv(tmp_path / "ref.tsv", sep="\t", index=False)
    (tmp_path / "cur.csv").write_text(cur.to_csv(index=False) + "\n\n")
    read = {"ref": pd.read_csv(tmp_path / "ref.tsv", sep="\t"), "cur": pd.read_csv(tmp_path / "cur.csv")}
    assert len(read["cur"]) == n and set(read["ref"]["c"]) == set(values)
    proc = run("--reference", tmp_path / "ref.tsv", "--current", tmp_path / "cur.csv", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["n_reference"] == n and doc["n_current"] == n
    want = expected_numeric(read["ref"]["x"].to_numpy(), read["cur"]["x"].to_numpy())
    assert doc["columns"]["x"]["stats"]["ks"]["statistic"] == pytest.approx(want.ks, abs=1e-9)
    assert doc["columns"]["x"]["stats"]["psi"] == pytest.approx(want.psi, rel=1e-9)
    got = doc["columns"]["c"]
    want_cat = expected_categorical(list(read["ref"]["c"]), list(read["cur"]["c"]))
    assert got["stats"]["chi2"]["statistic"] == pytest.approx(want_cat["chi2"], rel=1e-9)
    assert got["new_categories"] == [] and got["missing_share"] == {"reference": 0.0, "current": 0.0}
