"""Helpers for showing configuration that holds secrets without showing the secrets.

Kept free of heavy imports: the storage layer uses :func:`redact_dsn` in its error messages.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***`` (``http://user:***@host:8123/db``); unchanged if none.

    The query string is dropped as well: clickhouse-connect accepts settings there, and a user may put
    credentials in it.
    """
    try:
        parts = urlsplit(dsn)
        password = parts.password
    except ValueError:  # e.g. a port that is not a number: show only the scheme
        return dsn.split("://", 1)[0] + "://" + MASK
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
