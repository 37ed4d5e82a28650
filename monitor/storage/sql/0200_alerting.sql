-- Alerting (owner: alerts, issue 4): alert history, current rule state, and the delivery outbox.
--
-- ClickHouse has no transactions and no row updates, so every change is a new row: state and outbox
-- tables are ReplacingMergeTree(version) read with FINAL (the highest version of a key wins), and ids
-- are deterministic (uuid5 of model, rule, kind and window) so a replayed write collapses into the
-- row it repeats instead of adding a second one. See alerts/store.py and alerts/outbox.py.

-- The history of every alert event, one row per event. An alert's stable identity is (model, rule);
-- `rule` is the rule's `name`, or one derived from its condition (AlertRule.identity).
-- `payload` is the channel-neutral notification (JSON, no secrets); `notify` the channels it goes to.
CREATE TABLE IF NOT EXISTS {db}.alerts (
    event_id String,
    model LowCardinality(String),
    rule String,
    kind Enum8('firing' = 1, 'repeat' = 2, 'resolved' = 3, 'acknowledged' = 4),
    condition LowCardinality(String),
    severity Enum8('info' = 1, 'warning' = 2, 'error' = 3, 'critical' = 4),
    model_version String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    opened_event_id String,                  -- the firing event this event belongs to
    reason String,
    value Nullable(Float64),
    threshold Nullable(Float64),
    notify Array(String),
    payload String,
    actor String DEFAULT '',                 -- who acknowledged (kind = acknowledged)
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (model, rule, event_id);

-- The current state of each (model, rule): the latest version wins. Written after the window's
-- events, so a lost state write is detected (a newer event than the state's window) and rolled
-- forward from `alerts` on the next load.
CREATE TABLE IF NOT EXISTS {db}.alert_state (
    model LowCardinality(String),
    rule String,
    condition LowCardinality(String),
    severity Enum8('info' = 1, 'warning' = 2, 'error' = 3, 'critical' = 4),
    status Enum8('ok' = 1, 'pending' = 2, 'firing' = 3),
    consecutive UInt32,                      -- consecutive windows the condition held
    last_outcome Enum8('clear' = 1, 'triggered' = 2, 'insufficient' = 3),
    last_window_start DateTime64(3, 'UTC'),
    last_window_end DateTime64(3, 'UTC'),
    last_value Nullable(Float64),
    last_reason String,
    open_event_id String,                    -- the firing event of the open alert ('' when not firing)
    opened_at Nullable(DateTime64(3, 'UTC')),
    last_notified_window_end Nullable(DateTime64(3, 'UTC')),
    evaluated_at DateTime64(3, 'UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (model, rule);

-- One row version per state change of one delivery (one alert event to one channel). The first row
-- has version 0 so that re-enqueueing the same event never hides a later state.
-- status: pending (due at next_attempt_at) -> sending (claimed by `owner` until lease_until; recorded
-- before the HTTP request) -> delivered | pending (retry) | failed.
CREATE TABLE IF NOT EXISTS {db}.alert_outbox (
    delivery_id String,                      -- uuid5(event_id, channel); also the Idempotency-Key
    event_id String,
    model LowCardinality(String),
    rule String,
    kind LowCardinality(String),
    channel String,
    channel_type LowCardinality(String),
    payload String,                          -- the alert event (JSON); rendered per channel at send time
    status Enum8('pending' = 1, 'sending' = 2, 'delivered' = 3, 'failed' = 4),
    attempts UInt32,
    next_attempt_at DateTime64(3, 'UTC'),
    owner String,
    lease_until DateTime64(3, 'UTC'),
    last_error String,
    last_status_code Int32,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    delivered_at Nullable(DateTime64(3, 'UTC')),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY delivery_id;
