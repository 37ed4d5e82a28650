"""Independent implementations of the contract's drift statistics on raw arrays, for the tests.

Written from the contract's definitions with numpy and scipy, never with the engine's code, so a test
comparing the two can fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial import distance

from detectors.drift.sample import Sample
from monitor.settings import ClickHouseSettings
from monitor.storage import Storage, connect


@pytest.fixture(scope="module")
def files_storage(chdb_path: Path) -> Storage:
    """The session's embedded ClickHouse without a migrated database: enough for samples read from files."""
    return connect(ClickHouseSettings(dsn=f"chdb://{chdb_path}", database="default"))


@dataclass(frozen=True)
class Expected:
    ks: float
    ks_p: float
    wasserstein_norm: float
    psi: float
    js: float
    hellinger: float


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def decile_proportions(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Proportions in (-inf, e1), [e1, e2), ..., [ek, inf) with e = distinct reference deciles."""
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))

    def props(x: np.ndarray) -> np.ndarray:
        index = np.searchsorted(edges, x, side="right")  # number of edges <= x
        return np.bincount(index, minlength=len(edges) + 1) / len(x)

    return props(ref), props(cur)


def psi_formula(r: np.ndarray, c: np.ndarray) -> float:
    r = np.where(r == 0, 1e-4, r)
    c = np.where(c == 0, 1e-4, c)
    return float(np.sum((c - r) * np.log(c / r)))


def hellinger_formula(r: np.ndarray, c: np.ndarray) -> float:
    return float(np.sqrt(0.5 * np.sum((np.sqrt(r) - np.sqrt(c)) ** 2)))


def expected_numeric(ref_values: Sequence[float], cur_values: Sequence[float]) -> Expected:
    ref, cur = finite(ref_values), finite(cur_values)
    ks = stats.ks_2samp(ref, cur)
    std = float(np.std(ref))
    r, c = decile_proportions(ref, cur)
    return Expected(
        ks=float(ks.statistic),
        ks_p=float(ks.pvalue),
        wasserstein_norm=float(stats.wasserstein_distance(ref, cur)) / (std if std > 0 else 1e-3),
        psi=psi_formula(r, c),
        js=float(distance.jensenshannon(r, c, base=2)),
        hellinger=hellinger_formula(r, c),
    )


def category_proportions(ref: Sequence[str | None], cur: Sequence[str | None]) -> tuple[list, np.ndarray, np.ndarray]:
    rc = Counter(v for v in ref if v is not None)
    cc = Counter(v for v in cur if v is not None)
    labels = sorted(set(rc) | set(cc))
    r = np.array([rc[k] for k in labels], dtype=float)
    c = np.array([cc[k] for k in labels], dtype=float)
    return labels, r, c


def expected_categorical(ref: Sequence[str | None], cur: Sequence[str | None]) -> dict[str, float]:
    _, r, c = category_proportions(ref, cur)
    table = np.vstack([r, c])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2:
        chi = stats.chi2_contingency(table, correction=False)
        chi2, chi2_p = float(chi.statistic), float(chi.pvalue)
    else:
        chi2, chi2_p = 0.0, 1.0
    rp, cp = r / r.sum(), c / c.sum()
    return {
        "chi2": chi2,
        "chi2_p": chi2_p,
        "psi": psi_formula(rp, cp),
        "js": float(distance.jensenshannon(rp, cp, base=2)),
        "hellinger": hellinger_formula(rp, cp),
    }


def parquet_sample(storage: Storage, folder: Path, name: str, frame: pd.DataFrame) -> Sample:
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return Sample.from_file(storage, path)


def compare_tables(storage: Storage, folder: Path, reference: pa.Table, current: pa.Table) -> dict:
    """The engine's contract document for two Arrow tables written as Parquet files (nulls and NaNs kept
    apart, as pandas would not)."""
    from detectors.drift.engine import compare

    pq.write_table(reference, folder / "r.parquet")
    pq.write_table(current, folder / "c.parquet")
    ref, cur = (Sample.from_file(storage, folder / f"{side}.parquet") for side in ("r", "c"))
    return compare(storage, ref, cur).to_contract()
