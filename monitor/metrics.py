"""Prometheus metric definitions, one place for all of them, each with a comment saying what it counts.

Label sets are bounded: model names come from configuration or from the events themselves (a
deployment monitors tens of models, not thousands), never from event ids or feature values.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# --- ingestion -------------------------------------------------------------------------------
# Prediction events stored in ClickHouse, by model (duplicates redelivered by Kafka included).
EVENTS_INGESTED = Counter("monitor_events_ingested_total", "Prediction events stored", ["model"])
# Labels stored, by model.
LABELS_INGESTED = Counter("monitor_labels_ingested_total", "Labels stored", ["model"])
# Messages that could not be stored as events or labels, by source topic and error kind.
DEAD_LETTERS = Counter("monitor_dead_letters_total", "Messages sent to dead_letters", ["topic", "kind"])
# Wall time of one batch insert into ClickHouse (all tables of the batch, retries included).
INSERT_BATCH_SECONDS = Histogram(
    "monitor_insert_batch_seconds",
    "Time to store one consumer batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Insert attempts that failed and were retried.
INSERT_RETRIES = Counter("monitor_insert_retries_total", "Failed insert attempts that were retried")
# Messages behind the latest offset, by topic and partition (updated after each commit).
CONSUMER_LAG = Gauge("monitor_consumer_lag", "Messages not yet consumed", ["topic", "partition"])

# --- service (monitor up) ----------------------------------------------------------------------
# HTTP requests answered by the API, by method, route template (never the raw path) and status code.
HTTP_REQUESTS = Counter("monitor_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
# Wall time to answer one HTTP request, by route template.
HTTP_REQUEST_SECONDS = Histogram(
    "monitor_http_request_seconds",
    "Time to answer one HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Wall time of one run_detection call (all detectors of one model and window), by model and what
# triggered it (schedule, api, cli). Observed by the caller of run_detection.
DETECTOR_RUN_SECONDS = Histogram(
    "monitor_detector_run_seconds",
    "Time of one detection run over one window",
    ["model", "trigger"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
# Detection runs that raised instead of returning a report, by model and trigger.
DETECTOR_RUN_FAILURES = Counter(
    "monitor_detector_run_failures_total", "Detection runs that failed", ["model", "trigger"]
)

# When the next scheduled detection run of a model is due (Unix seconds, scheduler.delay included),
# counted from the latest run that finished without raising. Set by the scheduler; a time in the past
# means runs were missed or keep failing (the alerting rules compare it with time()).
DETECTION_NEXT_DUE = Gauge(
    "monitor_detection_next_due_timestamp_seconds",
    "When the next scheduled detection run is due, after the latest successful one",
    ["model"],
)

# --- alerting (alerts/) ------------------------------------------------------------------------
# Alert events recorded in `alerts`, by model and kind (firing, repeat, resolved, acknowledged).
ALERT_EVENTS = Counter("monitor_alert_events_total", "Alert events recorded", ["model", "kind"])
# Notifications that reached their receiver (2xx), by channel name (names come from configuration).
NOTIFICATIONS_DELIVERED = Counter("monitor_notifications_delivered_total", "Notifications delivered", ["channel"])
# Notifications given up on, by channel and reason: http_4xx (not retried), gave_up (retried past
# alerting.give_up_after), config (channel missing or a secret's environment variable unset).
NOTIFICATIONS_FAILED = Counter("monitor_notifications_failed_total", "Notifications failed", ["channel", "reason"])
# Send attempts that will be retried, by channel and cause: connection, http_429, http_5xx.
NOTIFICATION_RETRIES = Counter("monitor_notification_retries_total", "Send attempts to retry", ["channel", "cause"])
# Deliveries waiting in the outbox (pending or in flight), as the delivery worker last counted them.
NOTIFICATIONS_PENDING = Gauge("monitor_notifications_pending", "Deliveries waiting in the outbox")
# Time from an alert event entering the outbox to its receiver answering 2xx (retries included).
NOTIFICATION_DELAY_SECONDS = Histogram(
    "monitor_notification_delay_seconds",
    "Outbox to receiver, per delivered notification",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
