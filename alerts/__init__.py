"""Alert rules, notification channels and the durable delivery outbox.

Interfaces other packages use (see docs/alerting.md):

- ``alerts.channels.check_channels(settings)`` at start-up (a bad template stops it).
- ``alerts.delivery.deliver_now(storage, settings, event_ids, wait)`` for one-shot commands.
- ``alerts.engine.AlertEngine(storage, settings, on_enqueued).evaluate(report) -> Evaluation``.
- ``alerts.delivery.DeliveryWorker(storage, settings)``: ``start()``, ``stop(timeout)``, ``healthy()``,
  ``wake()``, ``run_once()``; ``wait_for_deliveries(storage, event_ids, timeout)``.
- Queries for the API: ``alerts.store.list_alerts / open_alert_count / alert_history``, ``AlertEngine.acknowledge``,
  ``alerts.outbox.list_deliveries``, ``alerts.channels.redacted_channels(settings)``.
"""
