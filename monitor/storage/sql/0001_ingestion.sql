-- Prediction events. One row per (model, event_id); duplicates from redelivery share the whole
-- sorting key (model, ts, event_id), so ReplacingMergeTree collapses them and every query reads
-- `FINAL`. Sorting by time first keeps a model's window contiguous and makes FINAL almost free
-- (parts written in time order do not overlap; see BENCHMARKS.md).
--
-- Features are typed columns added on first sight by monitor.storage.events (never a Map or JSON
-- blob): reading one feature of one model reads one column, not all of them.
--   n__<name> Float64 DEFAULT nan                    numbers; NaN = missing
--   c__<name> LowCardinality(Nullable(String))       strings and booleans ('true'/'false'); NULL = missing
-- `feature_keys` lists the keys the event carried, so an absent key differs from an explicit null.
CREATE TABLE IF NOT EXISTS {db}.events (
    model LowCardinality(String),
    event_id String,
    ts DateTime64(3, 'UTC'),
    model_version LowCardinality(String) DEFAULT '',
    prediction_num Float64 DEFAULT nan,
    prediction_cat LowCardinality(Nullable(String)),
    probabilities Map(LowCardinality(String), Float64),
    segment Map(LowCardinality(String), String),
    feature_keys Array(LowCardinality(String)),
    source LowCardinality(String) DEFAULT '',
    source_partition Int32 DEFAULT -1,
    source_offset Int64 DEFAULT -1,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (model, ts, event_id);

-- Which typed column holds which feature of which model (written before the column is first used).
CREATE TABLE IF NOT EXISTS {db}.feature_columns (
    model LowCardinality(String),
    feature String,
    kind Enum8('numerical' = 1, 'categorical' = 2),
    column String,
    first_seen DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(first_seen)
ORDER BY (model, feature, kind);

-- Ground truth, possibly days after the prediction; the latest label per (model, event_id) wins.
CREATE TABLE IF NOT EXISTS {db}.labels (
    model LowCardinality(String),
    event_id String,
    label_num Float64 DEFAULT nan,
    label_cat LowCardinality(Nullable(String)),
    ts DateTime64(3, 'UTC'),
    source LowCardinality(String) DEFAULT '',
    source_partition Int32 DEFAULT -1,
    source_offset Int64 DEFAULT -1,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (model, event_id);

-- Everything that could not be stored as an event or label, with the exact bytes received.
-- Keyed by where it came from, so a redelivered bad message is kept once.
CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    received_at DateTime64(3, 'UTC') DEFAULT now64(3),
    topic LowCardinality(String),
    partition Int32,
    offset Int64,
    raw String,
    reason String,
    error_kind LowCardinality(String),
    model LowCardinality(String) DEFAULT ''
) ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset);
