"""Chunks: consecutive runs of rows in their given order."""

from __future__ import annotations

DEFAULT_CHUNKS = 10


def chunk_bounds(rows: int, chunk_size: int | None = None, chunks: int | None = None) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` (end exclusive) covering ``rows`` rows.

    ``chunk_size``: runs of that many rows, the last one shorter when ``rows`` is not a multiple;
    ``chunks``: that many runs whose sizes differ by at most one (default :data:`DEFAULT_CHUNKS`).
    """
    if chunk_size is not None and chunks is not None:
        raise ValueError("give a chunk size or a number of chunks, not both")
    if rows <= 0:
        return []
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"the chunk size must be at least 1, not {chunk_size}")
        return [(start, min(start + chunk_size, rows)) for start in range(0, rows, chunk_size)]
    count = DEFAULT_CHUNKS if chunks is None else chunks
    if count < 1:
        raise ValueError(f"the number of chunks must be at least 1, not {count}")
    count = min(count, rows)
    base, extra = divmod(rows, count)
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds
