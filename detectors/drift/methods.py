"""Which method decides a column's verdict, and at which threshold.

The default is Evidently 0.7's choice (``legacy/calculations/stattests/registry.py``,
``_get_default_stattest``), made on the values that are not missing:

=========================  ====================================  ===================================
reference values           numerical column                      categorical column
=========================  ====================================  ===================================
≤ 1,000                    ≤ 2 distinct: ``z``; 3-5: ``chi2``;    ≤ 2 distinct: ``z``; else ``chi2``
                           > 5: ``ks``                            (p < 0.05)
> 1,000                    ≤ 5 distinct: ``jensen_shannon``;      ``jensen_shannon`` (≥ 0.1)
                           > 5: ``wasserstein_norm`` (≥ 0.1)
=========================  ====================================  ===================================

"Distinct" counts the values of both sides together. A numerical column with at most 5 distinct values
is then compared value by value, as categories (``Summary`` of the values, not of decile bins), which
is what Evidently does; its ``stats`` keep the contract's definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from detectors.drift.stats import REGISTRY, Kind, Method
from monitor.errors import InputError

SMALL_REFERENCE = 1_000
FEW_VALUES = 5
BINARY = 2


@dataclass(frozen=True)
class Choice:
    """The deciding method of one column, its threshold, and whether it compares values as categories."""

    method: Method
    threshold: float
    as_categories: bool = False


def get_method(name: str, kind: Kind | None = None) -> Method:
    """The registered method ``name``; :class:`InputError` listing the valid names otherwise."""
    method = REGISTRY.get(name)
    if method is None:
        valid = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown drift method {name!r}; expected one of {valid}")
    if kind is not None and kind not in method.kinds:
        valid = ", ".join(sorted(n for n, m in REGISTRY.items() if kind in m.kinds))
        raise InputError(f"drift method {name!r} does not apply to {kind} columns; use one of {valid}")
    return method


def default_choice(kind: Kind, n_reference: int, n_distinct: int) -> Choice:
    """Evidently's default for a column (``n_distinct``: distinct non-missing values of both sides, capped)."""
    if n_reference <= SMALL_REFERENCE:
        if kind == "numerical" and n_distinct > FEW_VALUES:
            name, as_categories = "ks", False
        else:
            name, as_categories = ("z" if n_distinct <= BINARY else "chi2"), kind == "numerical"
    elif kind == "numerical" and n_distinct > FEW_VALUES:
        name, as_categories = "wasserstein_norm", False
    else:
        name, as_categories = "jensen_shannon", kind == "numerical"
    method = REGISTRY[name]
    return Choice(method, method.default_threshold, as_categories)


def choose(
    column: str,
    kind: Kind,
    n_reference: int,
    n_distinct: int,
    method: str | None = None,
    threshold: float | None = None,
    per_column: Mapping[str, tuple[str | None, float | None]] | None = None,
) -> Choice:
    """The method for one column: a per-column override, else a global one where it applies, else the default.

    A global ``method`` that does not apply to this column's kind (``ks`` on a categorical column) leaves
    the default in place; a per-column method that does not apply is an error. Thresholds: per column,
    else the global ``threshold`` (only for the global method's columns when a global method is named),
    else the method's default.
    """
    column_method, column_threshold = (per_column or {}).get(column, (None, None))
    chosen: Choice
    if column_method is not None:
        chosen = Choice(get_method(column_method, kind), get_method(column_method).default_threshold)
    elif method is not None and kind in get_method(method).kinds:
        chosen = Choice(get_method(method), get_method(method).default_threshold)
    else:
        chosen = default_choice(kind, n_reference, n_distinct)
    # Threshold: per column, else the global one (for the global method's columns when one is named).
    value = column_threshold
    if value is None and threshold is not None and (method is None or chosen.method.name == method):
        value = threshold
    return Choice(chosen.method, value, chosen.as_categories) if value is not None else chosen
