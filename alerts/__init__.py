"""Alert rules, notification channels and the durable delivery outbox."""
