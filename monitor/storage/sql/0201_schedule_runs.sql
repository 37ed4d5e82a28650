-- Scheduled detection runs (owner: monitor/scheduling.py, issue 4): one row per (model, due time),
-- written when the run starts and again when it ends (latest version wins). The API reads last runs
-- from here after a restart, and the scheduler uses the latest due time to decide on a catch-up run.
CREATE TABLE IF NOT EXISTS {db}.schedule_runs (
    model LowCardinality(String),
    due_at DateTime64(3, 'UTC'),             -- the schedule's fire time; the window ends here
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    trigger LowCardinality(String),          -- schedule | catch_up | manual
    started_at DateTime64(3, 'UTC'),
    finished_at Nullable(DateTime64(3, 'UTC')),
    status LowCardinality(String),           -- running | ok | insufficient_data | error
    error String,
    run_id String,
    alert_events UInt32,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(due_at)
ORDER BY (model, due_at);
