"""Drift methods, one module each, registered by name in :data:`REGISTRY` on import."""

from __future__ import annotations

import importlib
import pkgutil

from detectors.drift.stats.registry import KINDS, REGISTRY, Distribution, Kind, Method, Summary, Value, reported

# Every module of this package is a method: importing it registers it. A new method is one new module.
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "KINDS",
    "REGISTRY",
    "Distribution",
    "Kind",
    "Method",
    "Summary",
    "Value",
    "reported",
]
