-- References and detector results (owner: detectors, issue 3).

-- The registry of reference sets, one row per (model, version); re-adding a version inserts a newer
-- row (ReplacingMergeTree(created_at)) and every reader uses FINAL. The rows themselves live in
-- `reference_rows` under `load_id`; `profile` is the JSON summary computed once at registration
-- (deciles, frequencies, std, min/max, missing share, the reference's own performance), so a
-- scheduled run never rescans the reference for what the profile already knows.
CREATE TABLE IF NOT EXISTS {db}.`references` (
    model LowCardinality(String),
    version String,
    kind LowCardinality(String),          -- training | baseline (files) | window (a range of logged events)
    source String,                        -- absolute file path, or events:<start>/<end>
    rows UInt64,
    load_id String,                       -- the partition of reference_rows holding this version's rows
    columns String,                       -- JSON {feature: numerical|categorical}
    segment_keys Array(String),           -- segment keys the rows carry in `segment`
    has_prediction UInt8,
    has_label UInt8,
    profile String,                       -- JSON, see detectors/profile.py
    created_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (model, version);

-- Reference rows laid out like `events` (typed per-feature columns n__<name> / c__<name>, added on
-- first sight with the same names), so the same Sample expressions read both. One partition per
-- load: replacing a version inserts a new load and drops the old partition, which is instant.
CREATE TABLE IF NOT EXISTS {db}.reference_rows (
    load_id String,
    row_id UInt64,
    prediction_num Float64 DEFAULT nan,
    prediction_cat LowCardinality(Nullable(String)),
    probabilities Map(LowCardinality(String), Float64),
    label_num Float64 DEFAULT nan,
    label_cat LowCardinality(Nullable(String)),
    segment Map(LowCardinality(String), String)
) ENGINE = MergeTree
PARTITION BY load_id
ORDER BY row_id;

-- One row per (model, window, detector, segment, column, statistic). Idempotent per window: a run
-- inserts its rows, then deletes the rows of the same (model, window) written by older runs
-- (computed_at < its own). Readers use FINAL, so between the two steps they see the new value of
-- every key, and a key that a rerun no longer produces disappears with the delete.
CREATE TABLE IF NOT EXISTS {db}.detector_results (
    model LowCardinality(String),
    version LowCardinality(String),           -- model_version seen most in the window ('' if none)
    reference_version String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    detector LowCardinality(String),
    segment String,                           -- '' = whole population, else key=value
    column String,                            -- '' = dataset level, __prediction__ = the prediction
    statistic LowCardinality(String),
    value Nullable(Float64),
    threshold Nullable(Float64),
    verdict Nullable(Bool),                   -- drift / breach; NULL when the row decides nothing
    status LowCardinality(String),            -- ok | insufficient_data | error
    n_reference UInt64,
    n_current UInt64,
    details String,                           -- JSON
    run_id String,
    computed_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY (model, window_end, window_start, detector, segment, column, statistic);

-- One row per detection run of a (model, window): status, counts and timing, latest run wins.
CREATE TABLE IF NOT EXISTS {db}.detector_runs (
    model LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    run_id String,
    version LowCardinality(String),
    reference_version String,
    status LowCardinality(String),
    message String,
    n_current UInt64,
    n_reference UInt64,
    n_results UInt32,
    n_errors UInt32,
    duration_seconds Float64,
    computed_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (model, window_end, window_start);
