"""Model monitoring and drift detection: prediction events from Kafka into ClickHouse, scheduled
detectors, alerts to Slack, PagerDuty and retraining webhooks."""

__version__ = "0.1.0"
