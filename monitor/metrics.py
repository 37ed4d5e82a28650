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
