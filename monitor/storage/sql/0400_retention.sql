-- Default retention (issue 10), numbered after every table it sets; `retention:` settings replace these at start-up
-- (monitor/storage/retention.py). References and the small registries (feature_columns,
-- model_features, schema_migrations) are kept: they are configuration, not a stream.
-- Events and labels expire a retention period after they were *stored* (ingested_at), not after
-- their own timestamp: a backfill of old events is kept, rather than deleted on arrival.
ALTER TABLE {db}.events MODIFY TTL toDateTime(ingested_at) + toIntervalSecond(7776000);
ALTER TABLE {db}.event_keys MODIFY TTL toDateTime(ingested_at) + toIntervalSecond(7776000);
ALTER TABLE {db}.labels MODIFY TTL toDateTime(ingested_at) + toIntervalSecond(7776000);
ALTER TABLE {db}.dead_letters MODIFY TTL toDateTime(received_at) + toIntervalSecond(2592000);
ALTER TABLE {db}.alert_outbox MODIFY TTL toDateTime(created_at) + toIntervalSecond(2592000);
ALTER TABLE {db}.alerts MODIFY TTL toDateTime(created_at) + toIntervalSecond(34560000);
ALTER TABLE {db}.alert_state MODIFY TTL toDateTime(evaluated_at) + toIntervalSecond(34560000);
ALTER TABLE {db}.detector_results MODIFY TTL toDateTime(window_end) + toIntervalSecond(34560000);
ALTER TABLE {db}.detector_runs MODIFY TTL toDateTime(window_end) + toIntervalSecond(34560000);
ALTER TABLE {db}.schedule_runs MODIFY TTL toDateTime(due_at) + toIntervalSecond(34560000);
