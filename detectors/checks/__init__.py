"""Checks of a window that are not distribution comparisons: data quality, volume and freshness, and
performance once labels arrive."""
