"""DataFrame rows to ``log_many`` items, without making pandas a dependency of the SDK.

pandas is imported only when a DataFrame is logged (whoever has one has pandas). Missing values in
any of pandas' spellings (NaN, None, NA, NaT) become null features; a missing event id or timestamp
means "generate one" / "now", as in ``log()``; a missing prediction is rejected with the row's index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def dataframe_items(
    df: Any,
    *,
    feature_columns: Sequence[str] | None,
    prediction_column: str,
    event_id_column: str | None,
    timestamp_column: str | None,
    probability_columns: Mapping[str, str] | None,
    segment_columns: Sequence[str] | None,
) -> Iterator[dict[str, Any]]:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"log_dataframe expects a pandas DataFrame, got {type(df).__name__}")
    named = [prediction_column, event_id_column, timestamp_column, *(probability_columns or {}).values()]
    named += list(segment_columns or [])
    special = {c for c in named if c is not None}
    columns = list(df.columns)
    missing = sorted(str(c) for c in special | set(feature_columns or []) if c not in columns)
    if missing:
        raise KeyError(f"columns not in the DataFrame: {missing}")
    features = list(feature_columns) if feature_columns is not None else [c for c in columns if c not in special]

    def value(row: Mapping[Any, Any], column: Any) -> Any:
        cell = row[column]
        return None if _is_missing(pd, cell) else cell

    for row in df.to_dict("records"):
        item: dict[str, Any] = {
            "features": {str(c): value(row, c) for c in features},
            "prediction": value(row, prediction_column),
        }
        if event_id_column is not None:
            item["event_id"] = value(row, event_id_column)
        if timestamp_column is not None:
            item["timestamp"] = value(row, timestamp_column)
        if probability_columns:
            item["probabilities"] = {str(k): value(row, c) for k, c in probability_columns.items()}
        if segment_columns:
            item["segment"] = {str(c): str(row[c]) for c in segment_columns if not _is_missing(pd, row[c])}
        yield item


def _is_missing(pd: Any, cell: Any) -> bool:
    try:
        return bool(pd.isna(cell))
    except (TypeError, ValueError):  # a list or other container: not a missing scalar
        return False
