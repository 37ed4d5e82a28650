-- What the multivariate drift detector fitted on a registered reference (owner: detectors, issue 13;
-- detectors/multivariate/store.py): for PCA reconstruction the encoder (reference means, stds and
-- category shares), the kept components and the out-of-fold spread of the per-row error, as JSON.
-- Fitted once per reference, so a scheduled run reads only the window's rows.
--
-- One row per (load, scope, columns, method): `scope` is the reference sample's WHERE, `columns` the
-- compared columns with their kinds and expressions (a change of the feature set is another fit).
-- Rows of a replaced load are deleted with its reference summaries.
CREATE TABLE IF NOT EXISTS {db}.multivariate_fits (
    load_id String,
    scope String,
    columns String,
    method LowCardinality(String),
    fit String,
    computed_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (load_id, scope, columns, method);
