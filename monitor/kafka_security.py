"""Kafka transport security: one function from settings to kafka-python connection arguments.

Every Kafka client the service creates (the ingest consumer, the admin client that creates topics,
the readiness probe, the demo's producer) takes its connection arguments from
:func:`kafka_client_kwargs`, so SSL and SASL settings apply to all of them alike. Passwords given by
environment variable name (``sasl_password_env``, ``ssl_key_password_env``) are read here, when a
client is about to connect, and are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from collections.abc import Iterator

from pydantic import SecretStr

from monitor.errors import ConfigError
from monitor.settings import KafkaSettings


def _secret(inline: SecretStr | None, variable: str | None, key: str) -> str | None:
    if inline is not None:
        return inline.get_secret_value()
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"kafka.{key}: environment variable {variable} is not set")
    return value


def kafka_client_kwargs(settings: KafkaSettings) -> dict[str, object]:
    """``bootstrap_servers`` plus the security arguments of KafkaConsumer, KafkaProducer and KafkaAdminClient.

    With SSL or SASL_SSL, an ``ssl.SSLContext`` is built here (verification on; the CA file if given,
    else the system's trust store; the client certificate if given), which kafka-python uses as is.
    """
    kwargs: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap,
        "security_protocol": settings.security_protocol,
        "bootstrap_timeout_ms": int(settings.connect_timeout.total_seconds() * 1000),
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl_context(settings)
    if settings.security_protocol.startswith("SASL_"):
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = _secret(settings.sasl_password, settings.sasl_password_env, "sasl_password_env")
    return kwargs


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A verifying TLS client context from the ``ssl_*`` settings; a bad file is a configuration error."""
    try:
        context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
        context.check_hostname = settings.ssl_check_hostname
        if settings.ssl_certfile is not None:
            password = _secret(settings.ssl_key_password, settings.ssl_key_password_env, "ssl_key_password_env")
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
                password=password,
            )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka: cannot load the TLS files ({type(exc).__name__}: {exc})") from exc
    return context


class _LastBootstrapFailure(logging.Handler):
    """Keeps the reason of the last failed bootstrap attempt that kafka-python logs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(("Bootstrap connection to", "Bootstrap attempt to")) and " failed: " in message:
            self.reasons.append(message.split(" failed: ", 1)[1].rsplit(" (backoff", 1)[0])

    @property
    def reason(self) -> str | None:
        """The most telling failure: a rejected credential or certificate if any attempt met one (after a
        failed authentication the broker drops later connections early, which says less), else the last
        failure that says more than "timed out" (the attempt cut short by the deadline)."""
        for words in (("authentication", "certificate", "ssl"), ("",)):
            telling = [r for r in self.reasons if any(w in r.lower() for w in words) and "timed out" not in r.lower()]
            if telling:
                return telling[-1]
        return self.reasons[-1] if self.reasons else None


def failure_reason(settings: KafkaSettings, reasons: _LastBootstrapFailure) -> str | None:
    """Why bootstrapping failed, in words that say what to fix.

    With SASL, kafka-python does not always read the broker's authentication error before the broker
    closes the connection (a race inside the client): every attempt then reports only "socket
    disconnected". A broker that completes TLS and then closes every connection of a SASL client is, in
    practice, refusing its credentials, so that case names the settings to check.
    """
    reason = reasons.reason
    sasl = settings.security_protocol.startswith("SASL")
    if sasl and reasons.reasons and all("socket disconnected" in r for r in reasons.reasons):
        return (
            f"every connection was closed by the broker during SASL {settings.sasl_mechanism} "
            "authentication: the credentials were most likely refused (check kafka.sasl_username, "
            f"sasl_password and sasl_mechanism); last error: {reason}"
        )
    return reason


@contextlib.contextmanager
def bootstrap_failures() -> Iterator[_LastBootstrapFailure]:
    """Within the block, ``.reason`` is why the last bootstrap attempt failed (connection refused, a TLS
    verification error, ``SaslAuthenticationFailedError``): kafka-python retries those until its
    timeout and then reports only "Unable to bootstrap", which does not say what to fix."""
    handler = _LastBootstrapFailure()
    logger = logging.getLogger("kafka.net.manager")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
