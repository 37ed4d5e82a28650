"""Fitted PCA models of registered references, kept in ``multivariate_fits`` (migration 0102).

A registered reference's rows never change (a new registration is a new ``load_id``), so the PCA is
fitted on the first run that needs it and read back by every later one. Keyed by the sample's WHERE
and the compared columns (names, kinds, expressions), so nothing stale can be read back.
"""

from __future__ import annotations

import json

from detectors.drift.multivariate.pca import PcaFit
from detectors.drift.sample import Sample
from monitor.storage import Storage
from monitor.storage.sqlfmt import sql_string

TABLE = "multivariate_fits"
PCA = "pca_reconstruction"
# part of the key, so older fits are made anew: 2 since rows are drawn with aliases that cannot shadow a
# column (a fit of version 1 may have read a column named like an alias, c0, c1, ..., as another column);
# 3 since a numerical column's std is the imputed column's, huge or tiny magnitudes no longer overflow
# and a reference without variance keeps no component
FIT_VERSION = 3


def columns_key(sample: Sample) -> str:
    """The compared columns as stored: name, kind and expression of each, in order (and the fit's version)."""
    return json.dumps([[n, s.kind, s.expr] for n, s in sample.columns.items()] + [FIT_VERSION])


def load(storage: Storage, load_id: str, sample: Sample) -> PcaFit | None:
    # The columns' key names every column: bound as a parameter, not inlined, so the statement stays
    # small however many columns and however long their names (ClickHouse's max_query_size).
    rows = storage.rows(
        f"SELECT fit FROM {storage.table(TABLE)} FINAL WHERE load_id = {sql_string(load_id)} "
        f"AND scope = {sql_string(sample.where_sql)} AND columns = {{columns:String}} "
        f"AND method = {sql_string(PCA)} LIMIT 1",
        parameters={"columns": columns_key(sample)},
    )
    return PcaFit.from_json(json.loads(rows[0][0])) if rows else None


def store(storage: Storage, load_id: str, sample: Sample, fit: PcaFit) -> None:
    storage.insert_rows(
        TABLE,
        [(load_id, sample.where_sql, columns_key(sample), PCA, json.dumps(fit.to_json()))],
        ["load_id", "scope", "columns", "method", "fit"],
    )


def forget(storage: Storage, load_id: str) -> None:
    """Delete the fits of a load whose rows are dropped."""
    storage.command(f"DELETE FROM {storage.table(TABLE)} WHERE load_id = {sql_string(load_id)}")
