"""ClickHouse access: one client per process, versioned schema, typed feature columns."""

from monitor.storage.client import Storage, connect, connect_dsn, embedded_path, quote_identifier
from monitor.storage.migrations import open_storage

__all__ = ["Storage", "connect", "connect_dsn", "embedded_path", "open_storage", "quote_identifier"]
