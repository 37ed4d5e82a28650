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
  (which keeps ∫(F_r - F_c) exact and is exact for a bin holding one value, i.e. ties). Measured error
  (tests, and ``bench/drift.py``): under 0.1% of W on unchanged data, the worst case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from detectors.sqlfmt import sql_float

BITS = 22
EXACT_BITS = 64  # a 64-bit key is the value itself
KS_TOLERANCE = 0.0015
REFINE_MAX_ROWS = 3_000_000  # split straight to exact values up to this many rows, else in two steps
_SIGN = np.uint64(1 << 63)

# query(bits, parent_bits, parent_keys) -> rows (side, key, count, sum), side 0 = reference, 1 = current,
# at `bits` resolution, restricted to rows whose `parent_bits` key is in `parent_keys` (None: every row);
# at EXACT_BITS the key is the value itself.
QueryFn = Callable[[int, int, Sequence[int] | None], list[tuple]]


def key_sql(value: str, center: float, scale: float, bits: int) -> str:
    """SQL of the bin of a finite Float64 ``value``: the top ``bits`` of the ordered bit pattern of ``u``."""
    u = f"(({value}) - {sql_float(center)}) * {sql_float(scale)}"
    ordered = f"if({u} < 0, bitNot(reinterpretAsUInt64({u})), bitOr(reinterpretAsUInt64({u}), {int(_SIGN)}))"
    return ordered if bits >= EXACT_BITS else f"bitShiftRight({ordered}, {64 - bits})"


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
    lower: np.ndarray
    ref_count: np.ndarray
    ref_sum: np.ndarray
    cur_count: np.ndarray
    cur_sum: np.ndarray

    def __len__(self) -> int:
        return len(self.key)

    @property
    def single(self) -> np.ndarray:
        return self.bits >= EXACT_BITS

    def take(self, index: np.ndarray) -> Bins:
        return Bins(*(getattr(self, f)[index] for f in _FIELDS))


_FIELDS = ("key", "bits", "lower", "ref_count", "ref_sum", "cur_count", "cur_sum")


@dataclass(frozen=True)
class HistogramResult:
    ks_statistic: float
    ks_bound: float  # the exact D lies in [ks_statistic, ks_statistic + ks_bound]
    wasserstein: float
    n_bins: int
    refined_bins: int
    value_counts: dict[float, tuple[int, int]] | None  # value -> (reference, current) for at most 5 values


def _ordered(u: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 of float64 values (as :func:`key_sql` computes it in ClickHouse)."""
    raw = np.ascontiguousarray(u, dtype=np.float64).view(np.uint64)
    return np.where(raw & _SIGN, ~raw, raw | _SIGN)


def _level(
    query: QueryFn, bits: int, parent_bits: int, parents: Sequence[int] | None, center: float, scale: float
) -> Bins:
    """Both sides at ``bits`` resolution (within ``parents``), merged on their keys.

    At :data:`EXACT_BITS` the rows are grouped by the value itself; each bin's key is then the full
    ordered pattern of its ``u`` (computed here with the same float arithmetic), so bins of every level
    sort consistently by the start of their range.
    """
    exact = bits >= EXACT_BITS
    dtype = np.float64 if exact else np.uint64
    rows = query(bits, parent_bits, parents)
    side = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    raw_keys = np.fromiter((r[1] for r in rows), dtype=dtype, count=len(rows))
    keys, index = np.unique(raw_keys, return_inverse=True)
    counts = np.zeros((2, len(keys)), dtype=np.int64)
    sums = np.zeros((2, len(keys)), dtype=np.float64)
    counts[side, index] = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    sums[side, index] = np.fromiter((r[3] for r in rows), dtype=np.float64, count=len(rows))
    if exact:
        lower = keys
        keys = _ordered((keys - center) * scale)
    else:
        lower = _decode(keys << np.uint64(64 - bits), center, scale)
    return Bins(keys, np.full(len(keys), bits), lower, counts[0], sums[0], counts[1], sums[1])


def _split(bins: Bins, which: np.ndarray, query: QueryFn, center: float, scale: float) -> Bins:
    """Replace the selected bins by their content at a finer resolution (one filtered query)."""
    parts = [bins.take(~which)]
    rows = int((bins.ref_count + bins.cur_count)[which].sum())
    for parent_bits in np.unique(bins.bits[which]):
        chosen = which & (bins.bits == parent_bits)
        target = EXACT_BITS if rows <= REFINE_MAX_ROWS else min(int(parent_bits) + 21, EXACT_BITS)
        parts.append(_level(query, target, int(parent_bits), [int(k) for k in bins.key[chosen]], center, scale))
    merged = Bins(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))
    # Order by where each bin's range starts in the common 64-bit ordering (exact), then by value.
    shift = (np.int64(64) - merged.bits).astype(np.uint64)
    start = np.where(merged.bits >= EXACT_BITS, merged.key, merged.key << np.minimum(shift, np.uint64(63)))
    return merged.take(np.lexsort((merged.lower, start)))


def compare_histograms(
    query: QueryFn,
    n_ref: int,
    n_cur: int,
    center: float,
    scale: float,
    maximum: float,
    want_values: bool,
) -> HistogramResult:
    """KS statistic (within :data:`KS_TOLERANCE`) and Wasserstein distance of one column.

    ``maximum`` is the largest value of both sides (the end of the last bin); ``want_values`` asks for
    the value counts when the column holds at most 5 distinct values.
    """
    bins = _level(query, BITS, 0, None, center, scale)
    refined = 0
    if want_values and len(bins) <= 5:  # few bins: are they few values? (Evidently's rule)
        everything = np.ones(len(bins), dtype=bool)
        refined += len(bins)
        bins = _split(bins, everything, query, center, scale)
    for _ in range(4):  # each round at least 21 bits finer; 64 bits are exact values
        heavy = _potential(bins, n_ref, n_cur)[1] > KS_TOLERANCE
        heavy &= ~bins.single
        if not heavy.any():
            break
        refined += int(heavy.sum())
        bins = _split(bins, heavy, query, center, scale)
    d_lo, excess = _potential(bins, n_ref, n_cur)
    values = None
    if want_values and len(bins) <= 5 and bins.single.all():
        values = {
            float(v): (int(r), int(c)) for v, r, c in zip(bins.lower, bins.ref_count, bins.cur_count, strict=True)
        }
    bound = float(np.max(excess)) if len(bins) else 0.0
    return HistogramResult(d_lo, max(bound, 0.0), _wasserstein(bins, n_ref, n_cur, maximum), len(bins), refined, values)


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


def _wasserstein(bins: Bins, n_ref: int, n_cur: int, maximum: float) -> float:
    """∫|F_r - F_c| dx: exact where the difference keeps its sign in a bin, interpolated elsewhere."""
    if len(bins) == 0:
        return 0.0
    before, after = _differences(bins, n_ref, n_cur)
    upper = np.concatenate([bins.lower[1:], [max(maximum, bins.lower[-1])]])
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
