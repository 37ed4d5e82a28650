"""The project's exception hierarchy.

Every error a user can cause maps to exit code 2 with a one-line reason; infrastructure errors
(ClickHouse or Kafka down past their retries) are distinct so callers can stop loudly instead of
limping on. Always ``raise ... from exc`` so the cause stays visible in logs.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class for every error raised on purpose by this project."""


class UserError(MonitorError):
    """Bad usage or bad input: the CLI prints the message on one line and exits 2."""


class ConfigError(UserError):
    """The configuration file or environment is invalid; the message names file, key path and reason."""


class InputError(UserError):
    """A file, column or argument given by the user cannot be used."""


class NotFoundError(InputError):
    """The named thing (a model's alert, say) does not exist: the API answers 404, not 409."""


class StorageError(MonitorError):
    """ClickHouse could not be reached or refused a statement after retries.

    ``code`` is ClickHouse's numeric error code when the server answered (None when it could not be
    reached): callers tell a statement refused for its data from an unreachable server by it.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class BrokerError(MonitorError):
    """The local Kafka broker could not be fetched, started, stopped or reached."""
