"""How strongly one detector row says "drift", comparable across statistics, so lists go strongest first.

Sorting raw values largest-first is right for a distance (PSI, Jensen-Shannon, Wasserstein) and
backwards for a p-value (KS, chi-squared), where a *smaller* value is stronger evidence. The row
itself tells which it is: a deciding drift row records its ``method`` in ``details``, and the method's
``score`` in :data:`detectors.drift.stats.REGISTRY` says ``p_value`` or ``distance`` (a row without one
is judged by its statistic's name, ``*_p_value``).

:func:`strength` puts every row on one scale, "how far past its threshold": 1 at the threshold, more
is stronger. A distance is ``value / threshold``; a p-value ``log(p) / log(threshold)`` (how many
times smaller in orders of magnitude: p = 1e-12 against 0.05 is 9.2, p = 0.01 is 1.5; a ratio
``threshold / p`` would let one tiny p-value dwarf every distance). A p-value of 0 (underflow) is
infinitely strong. Without a threshold the raw value is used in the row's own direction.
"""

from __future__ import annotations

import math

from detectors.drift.stats import REGISTRY
from detectors.report import StatResult


def smaller_is_stronger(row: StatResult) -> bool:
    """True when a smaller value of this row is stronger evidence of drift (a p-value)."""
    method = REGISTRY.get(str(row.details.get("method") or ""))
    if method is None:
        method = next((m for m in REGISTRY.values() if m.stat_key == row.statistic), None)
    if method is not None:
        return method.score == "p_value"
    return row.statistic.endswith("p_value")


def strength(value: float | None, threshold: float | None, smaller: bool) -> float:
    """``value`` measured against ``threshold`` in the bad direction (``smaller``: below is bad)."""
    if value is None or math.isnan(value):
        return -math.inf
    if not smaller:
        return value / threshold if threshold is not None and threshold > 0 else value
    if threshold is not None and 0 < threshold < 1 and value <= 1:  # a probability: orders of magnitude
        return math.inf if value <= 0 else math.log(value) / math.log(threshold)
    if threshold is not None and threshold > 0:
        return math.inf if value <= 0 else threshold / value
    return -value


def row_strength(row: StatResult, threshold: float | None = None, smaller: bool | None = None) -> float:
    """:func:`strength` of a row against its own threshold and direction, or the ones given (a rule's bound)."""
    return strength(
        row.value,
        row.threshold if threshold is None else threshold,
        smaller_is_stronger(row) if smaller is None else smaller,
    )


def strongest_first(rows: list[StatResult]) -> list[StatResult]:
    """Rows ordered by their own strength, strongest first (ties keep their order)."""
    return sorted(rows, key=lambda r: -row_strength(r))
