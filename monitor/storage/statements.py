"""Keeping generated SQL under ClickHouse's ``max_query_size`` whatever the number and length of names.

ClickHouse refuses a statement longer than ``max_query_size`` (262,144 bytes by default; a server's
profile may set it lower and users cannot always raise it). Statements that name every feature of a
model (one aggregate or one column per feature) grow with the features and with their names: 1000
features of 256 characters, which ingestion accepts, name 256 kB to 1 MB of text before any SQL is
wrapped around it. Such statements are split here into several of bounded size, by a byte budget
well below the default limit so that the fixed text around the parts always fits too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.errors import StorageError

if TYPE_CHECKING:
    import pyarrow as pa

    from monitor.storage.client import Storage

T = TypeVar("T")

MAX_QUERY_SIZE = 262_144
"""ClickHouse's default ``max_query_size``: no generated statement may come near it."""
PARTS_BUDGET = 96_000
"""Bytes of per-item SQL one statement may carry; the fixed rest of a statement stays far below the
difference, so a statement built from one batch stays under :data:`MAX_QUERY_SIZE`."""


def sql_bytes(text: str) -> int:
    """The size ClickHouse counts: UTF-8 bytes, not characters (a CJK name is three bytes a character)."""
    return len(text.encode("utf-8"))


def batches(
    items: Sequence[T], size: Callable[[T], int], budget: int = PARTS_BUDGET, max_items: int | None = None
) -> list[list[T]]:
    """``items`` in order, cut into consecutive batches whose ``size`` adds up to at most ``budget`` (and
    of at most ``max_items``). An item larger than the budget on its own gets a batch of its own; an empty
    input gives no batch."""
    result: list[list[T]] = []
    current: list[T] = []
    used = 0
    for item in items:
        cost = size(item)
        if current and (used + cost > budget or (max_items is not None and len(current) >= max_items)):
            result.append(current)
            current, used = [], 0
        current.append(item)
        used += cost
    if current:
        result.append(current)
    return result


def read_aligned(
    storage: Storage, statements: Sequence[str], key: str, settings: dict[str, Any] | None = None
) -> list[pa.Table]:
    """The tables of ``statements`` that read the same rows in the same order, one batch of columns each.

    A wide model's columns are read in several statements (:func:`batches`); each must return the
    row key ``key`` (a column, unique per row, that every statement orders by). The keys are compared
    across statements, and everything read once more when rows were written in between; a second
    mismatch is a :class:`~monitor.errors.StorageError`. The key column is dropped from the tables.
    """
    for _ in range(2):
        tables: list[pa.Table] = []
        for sql in statements:
            table = storage.arrow(sql, settings=settings)
            if tables and not table.column(key).equals(tables[0].column(key)):
                break  # not the same rows in the same order: read them all again
            tables.append(table)
        else:
            return [table.drop_columns([key]) for table in tables]
    raise StorageError("the rows changed while their columns were read in batches")
