"""KS statistic and Wasserstein distance of large columns from fine histograms, with a proven KS bound.

Sorting millions of values per column is what makes exact KS and Wasserstein slow, so above
``DriftOptions.exact_limit`` values a column is summarised by one ``GROUP BY`` per side into a
*log-linear* histogram: the value is centred on the reference median and scaled by the reference std
(``u = (v - median) / std``), and its bin is the top :data:`BITS` bits of ``u``'s order-preserving
IEEE-754 bit pattern (sign, exponent, 10 mantissa bits). Bins are value intervals of relative width
2^-10 around the median, finer near it, unbounded in range (an outlier costs one bin, never
resolution) and exactly reproducible. Per bin and side ClickHouse returns the count and the sum.

- **KS**: both ECDFs are exact at every bin boundary, so D_lo = max over boundaries of |F_r - F_c| is a
  value the exact statistic attains. Inside a bin holding values of both sides the difference can rise
  above its boundary values by at most min(share_r, share_c) of that bin; every bin where that could
  lift D by more than :data:`KS_TOLERANCE` is *refined* (its rows grouped again at a finer resolution,
  down to exact values, by a filtered query) until none is left. The reported D is therefore at most
  KS_TOLERANCE (< the contract's 0.002) below the exact one, never above it.
- **Wasserstein**: ∫(F_r - F_c) over a bin is exact from the bin's counts and sums; where the difference
  keeps its sign through the bin (or the bin is a single value), that is ∫|F_r - F_c| exactly. Only bins
  where the sign may change are estimated, with each side's mass in the bin placed at that side's mean
  (which keeps ∫(F_r - F_c) exact and is exact for a bin holding one value, i.e. ties). The measured
  error is in BENCHMARKS.md (``bench/drift.py``) and bounded by the tests against the contract's 1%.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.storage.sqlfmt import sql_float

BITS = 22
EXACT_BITS = 64  # a 64-bit key is the value itself
KS_TOLERANCE = 0.0015
MISSING_PART = 15  # the `part` of NULL/NaN/±inf rows in a first-level query
FEW_VALUES_FIRST = 10_000  # a first pass by value gives up past this many (side, value) groups
MAX_EXACT_VALUES = 1_000_000  # distinct values one refinement may return; more: a 21-bit finer step first
_SIGN = np.uint64(1 << 63)

# query(bits, parent_bits, parent_keys, max_keys) -> arrays (side, key, part, count, sum), side 0 = reference,
# 1 = current, at `bits` resolution, restricted to rows whose `parent_bits` key is in `parent_keys` (None:
# every row, missing ones included as part MISSING_PART); `part` = number of PSI/JS bin edges <= value.
# At EXACT_BITS the key is the value itself (0 for missing). With `max_keys`, None when there are more keys
# (the query stops growing its hash table there, so memory stays bounded).
Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
QueryFn = Callable[[int, int, Sequence[int] | None, int | None], Columns | None]


def key_sql(value: str, center: float, scale: float, bits: int) -> str:
    """SQL of the bin of a finite Float64 ``value``: the top ``bits`` of the ordered bit pattern of ``u``."""
    u = f"(({value}) - {sql_float(center)}) * {sql_float(scale)}"
    ordered = f"if({u} < 0, bitNot(reinterpretAsUInt64({u})), bitOr(reinterpretAsUInt64({u}), {int(_SIGN)}))"
    return ordered if bits >= EXACT_BITS else f"bitShiftRight({ordered}, {64 - bits})"


def part_sql(value: str, edges: Sequence[float]) -> str:
    """SQL of the PSI/JS bin of ``value``: how many bin edges are <= it (0 .. len(edges))."""
    if not len(edges):
        return "0"
    return "(" + " + ".join(f"({value} >= {sql_float(e)})" for e in edges) + ")"


def _decode(start64: np.ndarray, center: float, scale: float) -> np.ndarray:
    """The value whose ordered bit pattern is ``start64`` (the smallest value of a bin starting there)."""
    raw = np.ascontiguousarray(np.where(start64 & _SIGN, start64 & ~_SIGN, ~start64), dtype=np.uint64)
    with np.errstate(over="ignore", invalid="ignore"):
        return center + raw.view(np.float64) / scale


@dataclass
class Bins:
    """Bins of both sides in value order: their key and resolution, lower bound, counts and sums."""

    key: np.ndarray  # uint64
    bits: np.ndarray  # int64; EXACT_BITS = a single value
    part: np.ndarray  # int64: which PSI/JS bin (number of reference bin edges <= the values)
    lower: np.ndarray
    ref_count: np.ndarray
    ref_sum: np.ndarray
    cur_count: np.ndarray
    cur_sum: np.ndarray
    missing: tuple[int, int] = (0, 0)  # rows without a value (first level only): reference, current

    def __len__(self) -> int:
        return len(self.key)

    @property
    def single(self) -> np.ndarray:
        return self.bits >= EXACT_BITS

    def take(self, index: np.ndarray) -> Bins:
        return Bins(*(getattr(self, f)[index] for f in _FIELDS))


_FIELDS = ("key", "bits", "part", "lower", "ref_count", "ref_sum", "cur_count", "cur_sum")


@dataclass(frozen=True)
class HistogramResult:
    ks_statistic: float
    ks_bound: float  # the exact D lies in [ks_statistic, ks_statistic + ks_bound]
    wasserstein: float
    n_bins: int
    refined_bins: int
    value_counts: dict[float, tuple[int, int]] | None  # value -> (reference, current) for at most 5 values
    reference_bins: tuple[int, ...] = ()  # counts per PSI/JS bin (-inf, e1), [e1, e2), ..., [ek, inf)
    current_bins: tuple[int, ...] = ()
    n_reference: int = 0  # values (missing ones excluded)
    n_current: int = 0
    missing_reference: int = 0  # rows without a value
    missing_current: int = 0


def _ordered(u: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 of float64 values (as :func:`key_sql` computes it in ClickHouse)."""
    raw = np.ascontiguousarray(u, dtype=np.float64).view(np.uint64)
    return np.where(raw & _SIGN, ~raw, raw | _SIGN)


def _level(
    query: QueryFn,
    bits: int,
    parent_bits: int,
    parents: Sequence[int] | None,
    grid: Grid,
    max_keys: int | None = None,
) -> Bins | None:
    """Both sides at ``bits`` resolution (within ``parents``), merged on (key, part).

    At :data:`EXACT_BITS` the rows are grouped by the value itself; each bin's key is then the full
    ordered pattern of its ``u`` (computed here with the same float arithmetic), so bins of every level
    sort consistently by the start of their range. None when ``max_keys`` was exceeded.
    """
    result = query(bits, parent_bits, parents, max_keys)
    return None if result is None else bins_of(result, bits, grid)


def bins_of(result: Columns, bits: int, grid: Grid) -> Bins:
    """Both sides' rows of one level (as a :data:`QueryFn` returns them), merged into bins on (key, part)."""
    exact = bits >= EXACT_BITS
    side, raw, raw_parts, counts_in, sums_in = (np.asarray(a) for a in result)
    side, raw_parts, counts_in = side.astype(np.int64), raw_parts.astype(np.int64), counts_in.astype(np.int64)
    absent = raw_parts == MISSING_PART
    missing = [int(counts_in[absent & (side == i)].sum()) for i in (0, 1)]
    present = ~absent
    side, raw, raw_parts = side[present], raw[present], raw_parts[present]
    counts_in, sums_in = counts_in[present], sums_in[present].astype(np.float64)
    if exact:  # the key is the value; its part follows from it
        values = raw.astype(np.float64)
        raw_keys = _ordered((values - grid.center) * grid.scale)
        raw_parts = np.searchsorted(grid.edges, values, side="right").astype(np.int64)
        combined = _ordered(values)  # one bin per distinct value, even where two values share a u
    else:  # keys are below 2^44: key and part fit one sortable uint64
        raw_keys = raw.astype(np.uint64)
        combined = (raw_keys << np.uint64(4)) | raw_parts.astype(np.uint64)
    _, first, index = np.unique(combined, return_index=True, return_inverse=True)
    index = index.reshape(-1)
    keys, parts = raw_keys[first], raw_parts[first]
    counts = np.zeros((2, len(keys)), dtype=np.int64)
    sums = np.zeros((2, len(keys)), dtype=np.float64)
    counts[side, index] = counts_in
    sums[side, index] = sums_in
    if exact:
        present = np.where(counts[0] > 0, 0, 1)
        lower = sums[present, np.arange(len(keys))] / counts[present, np.arange(len(keys))]
    else:
        lower = _decode(keys << np.uint64(64 - bits), grid.center, grid.scale)
        # a bin cut by a PSI/JS edge: its upper part starts exactly at that edge
        cut = parts > 0
        lower[cut] = np.maximum(lower[cut], grid.edges[parts[cut] - 1])
    bins = Bins(keys, np.full(len(keys), bits), parts, lower, counts[0], sums[0], counts[1], sums[1])
    bins.missing = (missing[0], missing[1])
    return bins


def _split(bins: Bins, which: np.ndarray, query: QueryFn, grid: Grid) -> Bins:
    """Replace the selected bins (with every part of their key) by their content at a finer resolution."""
    parts = []
    keep = np.ones(len(bins), dtype=bool)
    for parent_bits in np.unique(bins.bits[which]):
        same_level = bins.bits == parent_bits
        parents = np.unique(bins.key[which & same_level])
        keep &= ~(same_level & np.isin(bins.key, parents))
        keys = [int(k) for k in parents]
        # Straight to exact values (ties: a heavy bin is often one value), unless there are too many.
        part = _level(query, EXACT_BITS, int(parent_bits), keys, grid, MAX_EXACT_VALUES)
        if part is None:
            part = _level(query, min(int(parent_bits) + 21, EXACT_BITS - 1), int(parent_bits), keys, grid)
        assert part is not None
        parts.append(part)
    merged: dict[str, Any] = {f: np.concatenate([getattr(p, f) for p in [bins.take(keep), *parts]]) for f in _FIELDS}
    return _sorted(Bins(**merged))


def _sorted(bins: Bins) -> Bins:
    """Bins ordered by where their range starts in the common 64-bit ordering (exact), then part, then value."""
    shift = (np.int64(64) - bins.bits).astype(np.uint64)
    start = np.where(bins.bits >= EXACT_BITS, bins.key, bins.key << np.minimum(shift, np.uint64(63)))
    return bins.take(np.lexsort((bins.lower, bins.part, start)))


@dataclass(frozen=True)
class Grid:
    """How values map to bins: centre and scale of ``u``, and the PSI/JS bin edges."""

    center: float
    scale: float
    edges: np.ndarray


def compare_histograms(
    query: QueryFn,
    grid: Grid,
    want_values: bool,
    values_first: bool = False,
    first: Bins | None = None,
) -> HistogramResult:
    """KS statistic (within :data:`KS_TOLERANCE`), Wasserstein distance, PSI/JS bin counts and sizes of a column.

    ``want_values`` asks for the value counts when the column holds at most 5 distinct values.
    ``values_first``: the column is expected to hold few distinct values (counts, ratings), so the first
    pass counts by value (falling back to the histogram past :data:`FEW_VALUES_FIRST` of them).
    ``first``: the first level when the caller already has it (:func:`bins_of` over both sides' rows at
    :data:`BITS` or by value, every row counted): each side can then be read on its own, and a
    reference's side once for many comparisons. ``query`` then only serves refinements.
    """
    if first is None and values_first:
        first = _level(query, EXACT_BITS, 0, None, grid, FEW_VALUES_FIRST)
    if first is None:
        first = _level(query, BITS, 0, None, grid)
    assert first is not None
    missing = first.missing
    bins = _sorted(first)
    n_ref, n_cur = int(bins.ref_count.sum()), int(bins.cur_count.sum())
    empty = HistogramResult(0.0, 0.0, 0.0, 0, 0, None, (), (), n_ref, n_cur, missing[0], missing[1])
    if n_ref == 0 or n_cur == 0:
        return empty
    refined = 0
    if want_values and len(np.unique(bins.key)) <= 5 and not bins.single.all():
        refined += len(bins)  # few bins: are they few values? (Evidently's rule)
        bins = _split(bins, np.ones(len(bins), dtype=bool), query, grid)
    for _ in range(4):  # each round at least 21 bits finer; 64 bits are exact values
        heavy = (_potential(bins, n_ref, n_cur)[1] > KS_TOLERANCE) & ~bins.single
        if not heavy.any():
            break
        refined += int(heavy.sum())
        bins = _split(bins, heavy, query, grid)
    d_lo, excess = _potential(bins, n_ref, n_cur)
    values = None
    if want_values and len(bins) <= 5 and bins.single.all():
        values = {
            float(v): (int(r), int(c)) for v, r, c in zip(bins.lower, bins.ref_count, bins.cur_count, strict=True)
        }
    bound = float(np.max(excess)) if len(bins) else 0.0
    n_parts = len(grid.edges) + 1
    return HistogramResult(
        d_lo,
        max(bound, 0.0),
        _wasserstein(bins, n_ref, n_cur, grid),
        len(bins),
        refined,
        values,
        tuple(int(x) for x in np.bincount(bins.part, weights=bins.ref_count, minlength=n_parts)),
        tuple(int(x) for x in np.bincount(bins.part, weights=bins.cur_count, minlength=n_parts)),
        n_ref,
        n_cur,
        missing[0],
        missing[1],
    )


def _differences(bins: Bins, n_ref: int, n_cur: int) -> tuple[np.ndarray, np.ndarray]:
    """F_r - F_c just before and just after each bin."""
    after = np.cumsum(bins.ref_count) / n_ref - np.cumsum(bins.cur_count) / n_cur
    return np.concatenate([[0.0], after[:-1]]), after


def _potential(bins: Bins, n_ref: int, n_cur: int) -> tuple[float, np.ndarray]:
    """D at bin boundaries, and per bin how far inside it |F_r - F_c| could exceed that."""
    before, after = _differences(bins, n_ref, n_cur)
    d_lo = float(np.max(np.abs(after))) if len(after) else 0.0
    overlap = np.where(bins.single, 0.0, np.minimum(bins.ref_count / n_ref, bins.cur_count / n_cur))
    excess = np.maximum(np.abs(before), np.abs(after)) + overlap - d_lo
    return d_lo, excess


def _last_upper(bins: Bins, grid: Grid) -> float:
    """A bound at or above every value of the last bin: its value, else where its key's range ends."""
    if bins.single[-1]:
        return float(bins.lower[-1])
    shift = np.uint64(64 - int(bins.bits[-1]))
    end = float(_decode(np.array([(int(bins.key[-1]) + 1) << int(shift)], dtype=np.uint64), grid.center, grid.scale)[0])
    if np.isfinite(end):
        return end
    means = [s / c for s, c in ((bins.ref_sum[-1], bins.ref_count[-1]), (bins.cur_sum[-1], bins.cur_count[-1])) if c]
    return float(max([*means, bins.lower[-1]]))  # values near the largest double: nothing finite lies beyond


def _wasserstein(bins: Bins, n_ref: int, n_cur: int, grid: Grid) -> float:
    """∫|F_r - F_c| dx: exact where the difference keeps its sign in a bin, interpolated elsewhere."""
    if len(bins) == 0:
        return 0.0
    before, after = _differences(bins, n_ref, n_cur)
    upper = np.concatenate([bins.lower[1:], [max(_last_upper(bins, grid), bins.lower[-1])]])
    width = np.maximum(upper - bins.lower, 0.0)
    # ∫_a^b F(x) dx = F(a)·(b - a) + Σ_{x_i in [a, b)} (b - x_i) / n, for each side
    signed = (
        before * width
        + (bins.ref_count * upper - bins.ref_sum) / n_ref
        - (bins.cur_count * upper - bins.cur_sum) / n_cur
    )
    share_r, share_c = bins.ref_count / n_ref, bins.cur_count / n_cur
    ambiguous = (before - share_c < 0) & (before + share_r > 0) & ~bins.single
    # Where the sign may change, model each side's mass in the bin as sitting at that side's mean: this
    # keeps ∫(F_r - F_c) exact, is exact for a bin holding one value (ties), and close otherwise.
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_r = np.where(bins.ref_count > 0, bins.ref_sum / np.maximum(bins.ref_count, 1), bins.lower)
        mean_c = np.where(bins.cur_count > 0, bins.cur_sum / np.maximum(bins.cur_count, 1), bins.lower)
    mean_r, mean_c = np.clip(mean_r, bins.lower, upper), np.clip(mean_c, bins.lower, upper)
    ref_first = mean_r <= mean_c
    first, second = np.where(ref_first, mean_r, mean_c), np.where(ref_first, mean_c, mean_r)
    middle = np.where(ref_first, before + share_r, before - share_c)
    two_point = (
        np.abs(before) * (first - bins.lower) + np.abs(middle) * (second - first) + np.abs(after) * (upper - second)
    )
    return float(np.sum(np.where(ambiguous, np.maximum(two_point, np.abs(signed)), np.abs(signed))))
