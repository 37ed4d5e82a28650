"""Categorical columns with very many categories (IDs): compared inside ClickHouse, a few rows back.

A side of a comparison brings at most :data:`~detectors.drift.collect.MAX_COUNTED_CATEGORIES` categories
of a column to Python (:func:`~detectors.drift.collect.category_counts`); past that the column's summary
is ``truncated`` and this one query compares it instead. It counts every category on both sides
(``GROUP BY`` over the two sides' values tagged by side) and then groups the categories by their pair
of counts: an ID seen once in the reference and never in the window is one of perhaps a million
categories behind the single row ``(1, 0)``. chi2, PSI, JS and Hellinger are sums over categories of
terms that depend only on that pair and the two totals (and chi2's degrees of freedom on the number
of categories), so the grouped rows, weighted by how many categories each stands for
(:class:`~detectors.drift.stats.registry.Distribution` ``weights``), give the contract's statistics
exactly. The number of distinct pairs grows at most like the 2/3 power of the values compared, not
with the categories. The same query lists the first ``limit`` new and vanished categories in sorted
order (``groupArraySorted``), as the small path does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.drift.collect import BOOLEAN_SPELLINGS, categorical_value, settings_of
from detectors.drift.sample import Sample
from detectors.drift.stats import Distribution
from detectors.references.profile import ColumnSummary
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string_array

BOOLEAN_VALUES = frozenset(BOOLEAN_SPELLINGS.values())


@dataclass(frozen=True)
class CategoryComparison:
    """Both sides' categories of one column, grouped by their pair of counts."""

    bins: Distribution  # one entry per (reference count, current count) pair, weighted by its categories
    categories: int  # distinct categories on either side
    new: tuple[str, ...]  # the first ``limit`` categories the reference lacks, sorted
    vanished: tuple[str, ...]  # the first ``limit`` categories the current side lacks, sorted


def _values(sample: Sample, name: str, side: int, summary: ColumnSummary) -> str:
    """The side's non-missing values of ``name`` tagged ``side``. A side whose counted categories were all
    spellings of true/false (CSV) reads them as 'true'/'false', as :func:`category_counts` did."""
    category = categorical_value(sample.columns[name].expr)
    raw = f"SELECT {category} AS __category FROM {sample.from_sql} WHERE {sample.where_sql}"
    value = "assumeNotNull(__category)"
    if not summary.truncated and summary.frequencies and set(summary.frequencies) <= BOOLEAN_VALUES:
        spellings, labels = (sql_string_array(list(side)) for side in zip(*BOOLEAN_SPELLINGS.items(), strict=True))
        value = f"transform({value}, {spellings}, {labels}, {value})"
    return f"SELECT {value} AS v, {side} AS s FROM ({raw}) WHERE __category IS NOT NULL"


def compare_categories(
    storage: Storage,
    reference: Sample,
    current: Sample,
    name: str,
    ref: ColumnSummary,
    cur: ColumnSummary,
    limit: int,
) -> CategoryComparison:
    """Count ``name``'s categories on both sides inside ClickHouse; see the module's docstring."""
    both = f"{_values(reference, name, 0, ref)} UNION ALL {_values(current, name, 1, cur)}"
    listed = int(limit)
    sql = f"""
SELECT grouping(r, c) AS g, r, c, count() AS k,
    if(g = 0, [], groupArraySortedIf({listed})(v, r = 0)), if(g = 0, [], groupArraySortedIf({listed})(v, c = 0))
FROM (SELECT v, countIf(s = 0) AS r, countIf(s = 1) AS c FROM ({both}) GROUP BY v)
GROUP BY GROUPING SETS ((r, c), ())
ORDER BY g, r, c"""
    pairs: list[tuple[int, int, int]] = []
    new: tuple[str, ...] = ()
    vanished: tuple[str, ...] = ()
    categories = 0
    for g, r, c, k, first_new, first_vanished in storage.rows(sql, settings=settings_of(reference, current)):
        if int(g) == 0:
            pairs.append((int(r), int(c), int(k)))
        else:
            categories = int(k)
            new, vanished = tuple(first_new), tuple(first_vanished)  # groupArraySorted keeps ``listed``
    counts = np.asarray([(r, c, k) for r, c, k in pairs], dtype=float).reshape(-1, 3)
    bins = Distribution(
        tuple(f"({r}, {c})" for r, c, _ in pairs), counts[:, 0].copy(), counts[:, 1].copy(), counts[:, 2].copy()
    )
    return CategoryComparison(bins, categories, new, vanished)
