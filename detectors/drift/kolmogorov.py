"""Kolmogorov-Smirnov distributions carried from scipy, so a KS p-value needs no ``import scipy.stats``.

Importing ``scipy.stats`` costs more CPU than a whole ``monitor drift`` of two large files needs
otherwise, and its exact two-sample computation lives in private modules that may move. This module
carries scipy's own algorithms, unchanged in their arithmetic (the tests compare with scipy):

* :func:`kstwo_sf`: ``scipy.stats.kstwo.sf(d, n)``, the survival function of the two-sided one-sample
  statistic (``scipy/stats/_ksstats.py``, Simard & L'Ecuyer 2011: Ruben-Gambino, the Durbin matrix of
  Marsaglia, Tsang & Wang, the Pomeranz recursion, Pelz-Good, and 2 x the exact one-sided Smirnov SF
  from ``scipy.special``), the survival branch only: the asymptotic two-sample p-value.
* :func:`ks_2samp_exact`: the exact two-sided two-sample p-value that ``scipy.stats.ks_2samp`` computes
  for ``method="exact"`` (and for ``"auto"`` up to 10,000 values per side), ``_attempt_exact_2kssamp``
  of ``scipy/stats/_stats_py.py`` with ``_compute_prob_outside_square`` (equal sizes) and
  ``_compute_outer_prob_inside_method`` of ``scipy/stats/_stats_pythran.py`` (Hodges 1958, with
  Viehmann's recursion for 1 - p).

Copyright (c) 2001-2002 Enthought, Inc. 2003, SciPy Developers (BSD-3-Clause); adapted.
"""

from __future__ import annotations

import math

import numpy as np

_E128 = 128
_EP128 = np.ldexp(np.longdouble(1), _E128)
_EM128 = np.ldexp(np.longdouble(1), -_E128)
_SQRT2PI = np.sqrt(2 * np.pi)
_LOG_2PI = np.log(2 * np.pi)
_MIN_LOG = -708
_SQRT3 = np.sqrt(3)
_PI_SQUARED = np.pi**2
_PI_FOUR = np.pi**4
_PI_SIX = np.pi**6
_STIRLING_COEFFS = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
]


def kstwo_sf(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``: P(D_n >= d) for a sample of size ``n`` (support [0.5/n, 1])."""
    if n < 1 or int(n) != n:
        raise ValueError(f"n must be a positive integer, got {n}")
    n = int(n)
    if math.isnan(d):
        return math.nan
    if d <= 0.5 / n:
        return 1.0
    if d >= 1.0:
        return 0.0
    return float(_sf(n, float(d)))


def _smirnov(n: int, x: float) -> float:
    from scipy.special import smirnov  # cephes' exact one-sided SF; scipy.special without scipy.stats

    return float(smirnov(n, x))


def _clip(p: float) -> float:
    """Clip to [0, 1], keeping the type (long double where scaling made it one, as scipy does)."""
    clipped: float = np.clip(p, 0.0, 1.0)
    return clipped


def _log_nfactorial_div_n_pow_n(n: int) -> float:
    rn = 1.0 / n
    return float(np.log(n) / 2 - n + _LOG_2PI / 2 + rn * np.polyval(_STIRLING_COEFFS, rn / n))


def _sf(n: int, x: float) -> float:
    """scipy's ``_kolmogn(n, x, cdf=False)``."""
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        if n <= 140:
            prob = np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1))
        else:
            prob = np.exp(_log_nfactorial_div_n_pow_n(n) + n * np.log(2 * t - 1))
        return _clip(1.0 - prob)
    if t >= n - 1:  # Ruben-Gambino
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:  # exact: 2 * smirnov
        return _clip(2 * _smirnov(n, x))
    nxsquared = t * x
    if n <= 140:
        if nxsquared <= 0.754693:
            return _clip(1.0 - _dmtw_cdf(n, x))
        if nxsquared <= 4:
            return _clip(1.0 - _pomeranz_cdf(n, x))
        return _clip(2 * _smirnov(n, x))  # Miller's approximation of 2 * smirnov
    if nxsquared >= 370.0:
        return 0.0
    if nxsquared >= 2.2:
        return _clip(2 * _smirnov(n, x))
    if nxsquared >= 18.0:  # kept as in scipy (unreachable here)
        cdfprob = 1.0
    elif n <= 100000 and n * x**1.5 <= 1.4:
        cdfprob = _dmtw_cdf(n, x)
    else:
        cdfprob = _pelz_good_cdf(n, x)
    return _clip(1.0 - cdfprob)


def _dmtw_cdf(n: int, d: float) -> float:
    """Pr(D_n <= d) by the Durbin matrix algorithm (Marsaglia, Tsang & Wang 2003)."""
    if d >= 1.0:
        return 1.0
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(np.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    big_h = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        big_h[i - 1 :, i] = w[: m - i + 1]
    big_h[:, 0] = v
    big_h[-1, :] = np.flip(v, axis=0)
    power = np.eye(np.shape(big_h)[0])
    nn = n
    expnt = 0
    h_expnt = 0
    while nn > 0:
        if nn % 2:
            power = np.matmul(power, big_h)
            expnt += h_expnt
        big_h = np.matmul(big_h, big_h)
        h_expnt *= 2
        if np.abs(big_h[k - 1, k - 1]) > _EP128:
            big_h /= _EP128
            h_expnt += _E128
        nn = nn // 2
    p = power[k - 1, k - 1]
    for i in range(1, n + 1):
        p = i * p / n
        if np.abs(p) < _EM128:
            p *= _EP128
            expnt -= _E128
    if expnt != 0:
        p = np.ldexp(p, expnt)
    return _clip(p)


def _pomeranz_j1j2(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        ip1div2, ip1mod2 = divmod(i + 1, 2)
        if ip1mod2 == 0:
            if ip1div2 == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1
        else:
            j1, j2 = ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _pomeranz_cdf(n: int, x: float) -> float:
    """Pr(D_n <= x) by the Pomeranz recursion (1974)."""
    t = n * x
    ll = int(np.floor(t))
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower = np.empty(npwrs)
    twogpower = np.empty(npwrs)
    onem2gpower = np.empty(npwrs)
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    expnt = 0
    g_over_n, two_g_over_n, one_minus_two_g_over_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_over_n / m
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m
    v0 = np.zeros([npwrs])
    v1 = np.zeros([npwrs])
    v1[0] = 1
    v0s, v1s = 0, 0
    j1, j2 = _pomeranz_j1j2(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        v0, v1 = v1, v0
        v0s, v1s = v1s, v0s
        v1.fill(0.0)
        j1, j2 = _pomeranz_j1j2(i, n, ll, ceilf, roundf)
        pwrs = gpower if i == 1 or i == 2 * n + 1 else (twogpower if i % 2 else onem2gpower)
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(v0[k1 - v0s : k1 - v0s + ln2], pwrs[:ln2])
            conv_start = j1 - k1
            conv_len = j2 - j1 + 1
            v1[:conv_len] = conv[conv_start : conv_start + conv_len]
            if 0 < np.max(v1) < _EM128:
                v1 *= _EP128
                expnt -= _E128
            v1s = v0s + j1 - k1
    ans = v1[n - v1s]
    for m in range(1, n + 1):
        if np.abs(ans) > _EP128:
            ans *= _EM128
            expnt += _E128
        ans *= m
    if expnt != 0:
        ans = np.ldexp(ans, expnt)
    return _clip(ans)


def _pelz_good_cdf(n: int, x: float) -> float:
    """The Pelz-Good approximation of Pr(D_n <= x) (1976)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = np.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:
        return 0.0
    q = np.exp(qlog)
    k1a = -zsquared
    k1b = _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8
    k0to3 = np.zeros(4)
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        qpower = np.power(q, 8 * k)
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * msquared,
                k2a + k2b * msquared + k2c * mfour,
                k3a + k3b * msquared + k3c * mfour + k3d * msix,
            ]
        )
        k0to3 *= qpower
        k0to3 += coeffs
    k0to3 *= q
    k0to3 *= _SQRT2PI
    k0to3 /= np.array([z, 6 * zfour, 72 * z**7, 6480 * z**10])
    q = np.exp(-_PI_SQUARED / 2 / zsquared)
    ks = np.arange(maxk, 0, -1)
    ksquared = ks**2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpwers = q**ksquared
    k2extra = np.sum(ksquared * qpwers)
    k2extra *= _PI_SQUARED * _SQRT2PI / (-36 * zthree)
    k0to3[2] += k2extra
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwers)
    k3extra *= _PI_SQUARED * _SQRT2PI / (216 * zsix)
    k0to3[3] += k3extra
    powers_of_n = np.power(n * 1.0, np.arange(len(k0to3)) / 2.0)
    k0to3 /= powers_of_n
    return float(sum(k0to3))


def ks_2samp_exact(n1: int, n2: int, d: float) -> tuple[bool, float, float]:
    """scipy's ``_attempt_exact_2kssamp(n1, n2, gcd, d, "two-sided")``: ``(success, d, p)``, P(D >= d) exactly.

    ``d`` is first moved to the nearest multiple ``h / lcm(n1, n2)`` (every statistic of these sizes is
    one), as scipy does, so a D computed elsewhere (by ClickHouse) gets scipy's p-value; the moved ``d``
    is returned. ``success`` is False where scipy gives up and switches to the asymptotic p-value: a
    floating-point overflow or invalid operation, or a result outside [0, 1] (equal sizes give one
    when P(D >= d) is 1, or within rounding of 1, and the sum lands just above it).
    """
    g = math.gcd(n1, n2)
    lcm = (n1 // g) * n2
    h = int(np.round(d * lcm))
    d = h * 1.0 / lcm
    if h == 0:
        return True, d, 1.0
    saw_fp_error, prob = False, math.nan
    try:
        with np.errstate(invalid="raise", over="raise"):
            equal = n1 == n2
            prob = _compute_prob_outside_square(n1, h) if equal else _compute_outer_prob_inside_method(n1, n2, g, h)
    except (FloatingPointError, OverflowError):
        saw_fp_error = True
    if saw_fp_error:
        return False, d, math.nan
    if not (0 <= prob <= 1):
        return False, d, prob
    return True, d, prob


def _compute_prob_outside_square(n: int, h: int) -> float:
    """The share of paths that pass outside the lines x - y = +/-h: P(D_{n,n} >= h/n).

    P = 2 * (binom(2n, n-h) - binom(2n, n-2h) + ...) / binom(2n, n), each term divided by binom(2n, n)
    first and the common factors taken out, Horner-like, against the subtractive cancellation:
    P = 2 * A0 * (1 - A1 * (1 - A2 * (1 - ...))).
    """
    P = 0.0
    k = int(np.floor(n / h))
    while k >= 0:
        p1 = 1.0
        # Each Ai has h simple terms in its numerator and its denominator.
        for j in range(h):
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1)
        P = p1 * (1.0 - P)
        k -= 1
    return 2 * P


def _compute_outer_prob_inside_method(m: int, n: int, g: int, h: int) -> float:
    """The share of the lattice paths from (0, 0) to (m, n) that do not stay strictly inside |x/m - y/n| < h/lcm.

    Hodges' inside method (Drion, Gnedenko, Korolyuk), with Viehmann's recursion computing 1 - p
    directly (arXiv:2102.08037): A(x, y) = (A(x-1, y) * x + A(x, y-1) * y) / (x + y) inside the band,
    1 outside it, 0 on the first column inside it; the answer is A(m, n). scipy (compiled by Pythran)
    fills the grid column by column, each column a loop over its band. A cell needs only its left
    and lower neighbours, so all the cells of one anti-diagonal x + y = s follow from the previous
    anti-diagonal: here numpy computes one anti-diagonal per step, every cell with the same
    operations on the same operands as scipy (hence the same bits), in m + n vectorised steps where a
    Python loop over the cells would be far too slow.
    """
    # Probability is symmetrical in m, n; the computation uses m >= n.
    if m < n:
        m, n = n, m
    mg = m // g
    ng = n // g
    # scipy's sliding window: column x keeps the rows minj <= y < maxj (its band), computed with the
    # same integer and floating-point operations.
    x = np.arange(m + 1, dtype=np.int64)
    minj = np.minimum(np.maximum(np.floor((ng * x - h) / mg).astype(np.int64) + 1, 0), n)
    maxj = np.minimum(np.ceil((ng * x + h) / mg).astype(np.int64), n + 1)
    if np.any(maxj[1:] <= minj[1:]):
        return 1.0  # a column with an empty band: every path leaves
    # Both bounds only rise with x, so the band meets the anti-diagonal s in the columns first <= x < stop.
    top = m + n
    diagonals = np.arange(top + 1)
    first: list[int] = np.searchsorted(x + maxj, diagonals, side="right").tolist()
    stop: list[int] = np.searchsorted(x + minj, diagonals, side="right").tolist()
    cols = x.astype(np.float64)
    rows = np.arange(top, -1, -1, dtype=np.float64)  # rows[top - s + x] = s - x, the row of column x on s
    scratch = np.empty(max(b - a for a, b in zip(first, stop, strict=True)))
    # Two anti-diagonals indexed by x, 1 outside the band; written_from[b]: where buffer b's band starts.
    buffers = (np.ones(m + 1), np.ones(m + 1))
    buffers[0][0] = 0.0  # s = 0: A(0, 0)
    written_from = [0, 0]
    for s in range(1, top + 1):
        b = s & 1
        previous, current = buffers[1 - b], buffers[b]
        lo, hi = first[s], stop[s]
        if written_from[b] < lo:
            current[written_from[b] : lo] = 1.0  # cells of anti-diagonal s - 2 left of this band: outside
        written_from[b] = lo
        if lo == 0:
            current[0] = 0.0  # A(0, s) inside the first column's band
            lo = 1
        if lo < hi:
            # (A(x-1, y) * x + A(x, y-1) * y) / (x + y), into preallocated arrays
            out, left = current[lo:hi], scratch[: hi - lo]
            np.multiply(previous[lo - 1 : hi - 1], cols[lo:hi], out=left)
            np.multiply(previous[lo:hi], rows[top - s + lo : top - s + hi], out=out)
            np.add(left, out, out=out)
            np.divide(out, s, out=out)
    return float(buffers[top % 2][m])
