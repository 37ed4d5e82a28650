-- A layout that holds a fleet (issue 10). Every feature value lands in one of two maps, so the
-- statement that inserts events is the same whatever features or models a batch carries:
--   fnum  numbers
--   fcat  strings and booleans ('true' / 'false')
-- Typed columns n__<name> / c__<name> remain for the features detectors read; they are now
-- computed by ClickHouse from the maps (DEFAULT expressions, see monitor/storage/layout.py), so one
-- can be added at any time, off the insert path, and it also reads correctly for rows stored before.
ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS fnum Map(LowCardinality(String), Float64);
ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS fcat Map(LowCardinality(String), String);

-- Every distinct feature of every model ever stored (typed or not): what the limits count. A row
-- with feature '' registers the model itself.
CREATE TABLE IF NOT EXISTS {db}.model_features (
    model LowCardinality(String),
    feature String,
    kind LowCardinality(String),
    first_seen DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(first_seen)
ORDER BY (model, feature, kind);

INSERT INTO {db}.model_features (model, feature, kind)
SELECT DISTINCT model, feature, toString(kind) FROM {db}.feature_columns;

INSERT INTO {db}.model_features (model, feature, kind)
SELECT DISTINCT model, '', '' FROM {db}.feature_columns;

-- The first timestamp stored for each (model, event_id): an event re-sent with another timestamp is
-- recognised at insert and not stored again (see docs/ingestion.md, "Duplicates"). A batch finds its
-- keys by `key` (8 bytes a row, scanned whole: random ids defeat the sparse index) and then checks
-- model and event_id on the few rows found, so a hash collision cannot drop an event.
CREATE TABLE IF NOT EXISTS {db}.event_keys (
    model LowCardinality(String),
    event_id String,
    ts DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    key UInt64 MATERIALIZED cityHash64(model, event_id)
) ENGINE = ReplacingMergeTree
ORDER BY (model, event_id);

INSERT INTO {db}.event_keys (model, event_id, ts, ingested_at)
SELECT model, event_id, min(ts), min(ingested_at) FROM {db}.events GROUP BY model, event_id;

-- Existing databases: of an event stored with several timestamps, keep the first.
DELETE FROM {db}.events WHERE (model, event_id, ts) NOT IN (SELECT model, event_id, min(ts) FROM {db}.events GROUP BY model, event_id);

-- Messages over the size limit keep a prefix in `raw`; these say what the whole was.
ALTER TABLE {db}.dead_letters ADD COLUMN IF NOT EXISTS raw_size UInt64 DEFAULT length(raw);
ALTER TABLE {db}.dead_letters ADD COLUMN IF NOT EXISTS raw_sha256 String DEFAULT '';
