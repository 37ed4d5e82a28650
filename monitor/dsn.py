"""ClickHouse DSNs: the one parser, used to validate ``clickhouse.dsn`` at start-up and to connect.

``chdb://PATH`` is the embedded engine; ``http(s)://user:pass@host:port/db?option=value`` (or
``clickhouse(s)://``) a server. A server DSN's query string may carry ``user``/``username`` and
``password`` (when the DSN has no user information) and the clickhouse-connect client options in
:data:`CLIENT_OPTIONS`; anything else is refused here, with a message that never holds the password,
rather than failing later inside the client. Light on purpose: the settings import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

EMBEDDED_SCHEME = "chdb://"
SERVER_SCHEMES = ("http", "https", "clickhouse", "clickhouses")
TLS_SCHEMES = ("https", "clickhouses")

# Keyword arguments of clickhouse-connect's HttpClient that a DSN may set (tests/test_transport.py checks
# they still exist). The connection itself (host, port, database, TLS: clickhouse.verify and
# clickhouse.ca_file, session settings) is spelled out by the monitor and cannot be overridden here.
CLIENT_OPTIONS = frozenset(
    {
        "compress",
        "query_limit",
        "query_retries",
        "connect_timeout",
        "send_receive_timeout",
        "client_name",
        "client_cert",
        "client_cert_key",
        "session_id",
        "http_proxy",
        "https_proxy",
        "server_host_name",
        "tz_source",
        "tz_mode",
        "autogenerate_session_id",
        "autogenerate_query_id",
        "form_encode_query_params",
        "dedicated_pool",
    }
)
_USER_OPTIONS = ("user", "username")


@dataclass(frozen=True)
class ServerDsn:
    """What a server DSN says, decoded."""

    secure: bool
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    database: str  # '' when the path names none
    options: dict[str, str]


def parse_server_dsn(dsn: str) -> ServerDsn:
    """Decode an ``http(s)://`` or ``clickhouse(s)://`` DSN; ``ValueError`` (without the password) if malformed."""
    try:
        parts = urlsplit(dsn)
        port = parts.port
        username, password, hostname = parts.username, parts.password, parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", a port that is not a number
        raise ValueError(f"malformed URL: {exc}") from None
    if parts.scheme not in SERVER_SCHEMES:
        raise ValueError("must start with chdb://, http:// or https:// (e.g. chdb://./.monitor/db)")
    if not hostname:
        raise ValueError(f"no host name (expected {parts.scheme}://[user:password@]host[:port]/database)")
    if parts.fragment:
        raise ValueError("a DSN has no #fragment (write '#' in a password as %23)")
    secure = parts.scheme in TLS_SCHEMES
    options: dict[str, str] = {}
    user = unquote(username) if username else None
    secret = unquote(password) if password else None
    seen: set[str] = set()
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        key = "user" if name in _USER_OPTIONS else name
        if key in seen:
            raise ValueError(f"query parameter {name!r} given twice")
        seen.add(key)
        if key == "user":
            if username is not None:
                raise ValueError(f"query parameter {name!r}: the DSN names its user before the host already")
            user = value
        elif key == "password":
            if password is not None:
                raise ValueError("query parameter 'password': the DSN has a password before the host already")
            secret = value
        elif key in CLIENT_OPTIONS:
            options[key] = value
        else:
            known = ", ".join(["user", "password", *sorted(CLIENT_OPTIONS)])
            raise ValueError(f"unknown query parameter {name!r} (known: {known})")
    return ServerDsn(
        secure=secure,
        host=hostname,
        port=port or (8443 if secure else 8123),
        username=user or "default",
        password=secret or "",
        database=unquote(parts.path).strip("/").split("/")[0],
        options=options,
    )


def check_dsn(dsn: str) -> None:
    """Raise ``ValueError`` (a message without the password) unless ``dsn`` is one the monitor can open."""
    if dsn.startswith(EMBEDDED_SCHEME):
        if not dsn[len(EMBEDDED_SCHEME) :].split("?", 1)[0].strip():
            raise ValueError("chdb:// needs a path (e.g. chdb://./.monitor/db)")
        return
    parse_server_dsn(dsn)
