"""Drift: the engine that compares two sides inside ClickHouse, its statistics registry
(:mod:`detectors.drift.stats`), the default choice of method, the reference's stored summary and the
drift detectors of a scheduled run."""
