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
from typing import TypeVar

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
