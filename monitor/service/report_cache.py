"""Rendered Evidently reports, kept a while: each one scans a window of events and runs Evidently.

A bounded LRU with a time-to-live, keyed by what decides the page (model, the window as asked,
reference version and load). One lock per key makes concurrent requests for the same report wait
for a single build instead of each running Evidently; a small semaphore bounds builds overall.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_CONCURRENT_BUILDS = 2


class ReportCache:
    """``get_or_build(key, build)`` returns ``(page, hit)``; ``size`` 0 disables keeping pages."""

    def __init__(self, size: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.ttl = ttl_seconds
        self._clock = clock
        self._pages: OrderedDict[Hashable, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self._builds = threading.BoundedSemaphore(MAX_CONCURRENT_BUILDS)

    def _fresh(self, key: Hashable) -> str | None:
        with self._lock:
            entry = self._pages.get(key)
            if entry is None:
                return None
            stored_at, page = entry
            if self._clock() - stored_at > self.ttl:
                del self._pages[key]
                return None
            self._pages.move_to_end(key)
            return page

    def get_or_build(self, key: Hashable, build: Callable[[], str]) -> tuple[str, bool]:
        page = self._fresh(key)
        if page is not None:
            return page, True
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        try:
            with key_lock:
                page = self._fresh(key)  # built by the request this one waited for
                if page is not None:
                    return page, True
                with self._builds:
                    page = build()
                with self._lock:
                    if self.size > 0:
                        self._pages[key] = (self._clock(), page)
                        self._pages.move_to_end(key)
                        while len(self._pages) > self.size:
                            self._pages.popitem(last=False)
        finally:
            with self._lock:
                if self._building.get(key) is key_lock:
                    del self._building[key]
        return page, False

    def __len__(self) -> int:
        with self._lock:
            return len(self._pages)
