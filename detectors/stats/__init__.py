"""Drift methods, one module each, registered by name in :data:`REGISTRY` on import."""

from __future__ import annotations

from detectors.stats import chi2, hellinger, jensen_shannon, ks, psi, wasserstein, z
from detectors.stats.registry import KINDS, REGISTRY, Distribution, Kind, Method, Summary, Value

__all__ = [
    "KINDS",
    "REGISTRY",
    "Distribution",
    "Kind",
    "Method",
    "Summary",
    "Value",
    "chi2",
    "hellinger",
    "jensen_shannon",
    "ks",
    "psi",
    "wasserstein",
    "z",
]
