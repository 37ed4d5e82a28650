"""Drift, skew, data-quality and performance detectors; heavy statistics run inside ClickHouse."""
