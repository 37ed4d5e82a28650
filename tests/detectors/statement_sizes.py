"""A fixture recording the size of every statement a test sends, for the max_query_size checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.storage import Storage


@pytest.fixture
def statements(storage: Storage) -> Iterator[list[int]]:
    """The size of every statement sent, Arrow fetches included, as ClickHouse counts it."""
    sizes: list[int] = []
    originals = {name: getattr(storage.client, name) for name in ("query", "query_arrow")}

    def measured(original):
        def call(sql, *args, **kwargs):
            sizes.append(len(str(sql).encode()))
            return original(sql, *args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(storage.client, name, measured(original))
    try:
        yield sizes
    finally:
        for name, original in originals.items():
            setattr(storage.client, name, original)
