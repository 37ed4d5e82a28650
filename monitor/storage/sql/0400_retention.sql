-- Default retention (issue 10), numbered after every table it sets; `retention:` settings replace
-- these at start-up (monitor/storage/retention.py). References and the small registries
-- (feature_columns, model_features, schema_migrations) are kept: they are configuration, not a stream.
--
-- Every TTL counts from when a row was stored, never from a time the row describes (an event's
-- timestamp, a window's end): a backfill of old events, or results recomputed for an old window,
-- are kept for the retention period instead of being deleted as they arrive. Tables without such a
-- column get `stored_at` (MATERIALIZED, so `SELECT *` does not return it).
ALTER TABLE {db}.events MODIFY TTL toDateTime(ingested_at) + toIntervalSecond(7776000);
ALTER TABLE {db}.event_keys MODIFY TTL toDateTime(ingested_at) + toIntervalSecond(7776000);
ALTER TABLE {db}.labels MODIFY TTL toDateTime(ingested_at) + toIntervalSecond(7776000);
ALTER TABLE {db}.dead_letters MODIFY TTL toDateTime(received_at) + toIntervalSecond(2592000);
ALTER TABLE {db}.alert_outbox ADD COLUMN IF NOT EXISTS stored_at DateTime MATERIALIZED now();
ALTER TABLE {db}.alert_outbox MODIFY TTL stored_at + toIntervalSecond(2592000);
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS stored_at DateTime MATERIALIZED now();
ALTER TABLE {db}.alerts MODIFY TTL stored_at + toIntervalSecond(34560000);
ALTER TABLE {db}.alert_state ADD COLUMN IF NOT EXISTS stored_at DateTime MATERIALIZED now();
ALTER TABLE {db}.alert_state MODIFY TTL stored_at + toIntervalSecond(34560000);
ALTER TABLE {db}.detector_results ADD COLUMN IF NOT EXISTS stored_at DateTime MATERIALIZED now();
ALTER TABLE {db}.detector_results MODIFY TTL stored_at + toIntervalSecond(34560000);
ALTER TABLE {db}.detector_runs ADD COLUMN IF NOT EXISTS stored_at DateTime MATERIALIZED now();
ALTER TABLE {db}.detector_runs MODIFY TTL stored_at + toIntervalSecond(34560000);
ALTER TABLE {db}.schedule_runs ADD COLUMN IF NOT EXISTS stored_at DateTime MATERIALIZED now();
ALTER TABLE {db}.schedule_runs MODIFY TTL stored_at + toIntervalSecond(34560000);
