"""One ClickHouse connection per process, from the DSN, for embedded chDB and a server alike.

``chdb://PATH`` opens the embedded engine in this process (relative paths are resolved against the
working directory and created); ``http(s)://user:pass@host:8123/db`` talks to a server. Both give the
same clickhouse-connect client API, so nothing else in the code base knows which one it has.

``https://`` (or ``clickhouses://``) means TLS: clickhouse-connect decides TLS from its ``secure``
argument, not from the DSN's scheme, so :func:`server_client_kwargs` spells every connection argument
out (TLS on, certificate verified, port 8443 when the DSN names none). The DSN's password never
appears in an error message (:func:`monitor.secrets.redact_dsn`).

chDB hosts one database path per process: every component of a process (consumer, scheduler, API)
must share the :class:`Storage` returned by :func:`open_storage` rather than opening its own.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from monitor.dsn import EMBEDDED_SCHEME, parse_server_dsn
from monitor.errors import InputError, StorageError
from monitor.secrets import redact_dsn

if TYPE_CHECKING:  # pandas and the settings models are slow to import: loaded only where they are used
    import pandas as pd
    import pyarrow as pa

    from monitor.settings import ClickHouseSettings


def server_client_kwargs(
    dsn: str, ca_file: Path | str | None = None, verify: bool = True
) -> tuple[dict[str, Any], str]:
    """The ``clickhouse_connect.get_client`` arguments for a server DSN, and the database its path names.

    A pure function, so what a DSN turns into is testable without a server. The client connects to
    the ``default`` database (ours may not exist yet; migrations create it). ``ValueError`` (without the
    password) for a DSN :func:`monitor.dsn.parse_server_dsn` refuses.
    """
    parsed = parse_server_dsn(dsn)
    kwargs: dict[str, Any] = dict(parsed.options)  # clickhouse-connect's own client options
    kwargs.update(
        interface="https" if parsed.secure else "http",
        host=parsed.host,
        port=parsed.port,
        username=parsed.username,
        password=parsed.password,
        database="default",
        secure=parsed.secure,
        settings=SESSION_SETTINGS,
    )
    if parsed.secure:
        kwargs["verify"] = verify
        if ca_file is not None and verify:
            kwargs["ca_cert"] = str(ca_file)
    return kwargs, parsed.database


def embedded_path(dsn: str) -> Path | None:
    """The filesystem path of a ``chdb://`` DSN (absolute), or None for a server DSN."""
    if not dsn.startswith(EMBEDDED_SCHEME):
        return None
    raw = dsn[len(EMBEDDED_SCHEME) :].split("?", 1)[0]
    return Path(raw).expanduser().resolve()


def quote_identifier(name: str) -> str:
    """Backtick-quote a ClickHouse identifier (feature columns may hold any character)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Storage:
    """A clickhouse-connect client bound to the project's database, with the few calls we need.

    Thread-safe for our use: clickhouse-connect serialises calls per client, and chDB runs queries
    from several threads through one engine.
    """

    def __init__(
        self, client: Client, database: str, dsn: str, ca_file: Path | str | None = None, verify: bool = True
    ) -> None:
        self.client = client
        self.database = database
        self.dsn = dsn
        self._tls = (ca_file, verify)

    def __repr__(self) -> str:
        return f"Storage({redact_dsn(self.dsn)!r}, database={self.database!r})"

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith(EMBEDDED_SCHEME)

    def table(self, name: str) -> str:
        """The fully qualified, quoted name of one of our tables."""
        return f"{quote_identifier(self.database)}.{quote_identifier(name)}"

    def command(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        try:
            return self.client.command(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            raise StorageError(f"ClickHouse command failed: {_first_line(exc)}", _code(exc)) from exc

    def rows(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a query and return its rows as tuples (for small results)."""
        try:
            return [tuple(row) for row in self.client.query(sql, parameters=parameters, settings=settings).result_rows]
        except ClickHouseError as exc:
            raise StorageError(f"ClickHouse query failed: {_first_line(exc)}", _code(exc)) from exc

    def dicts(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts keyed by column name (for small results)."""
        try:
            result = self.client.query(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            raise StorageError(f"ClickHouse query failed: {_first_line(exc)}", _code(exc)) from exc
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def frame(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        try:
            return self.client.query_df(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            raise StorageError(f"ClickHouse query failed: {_first_line(exc)}", _code(exc)) from exc

    def arrow(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> pa.Table:
        try:
            return self.client.query_arrow(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            raise StorageError(f"ClickHouse query failed: {_first_line(exc)}", _code(exc)) from exc

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any] | None = None) -> None:
        try:
            self.client.insert_arrow(table, data, database=self.database, settings=settings)
        except ClickHouseError as exc:
            raise StorageError(f"insert into {table} failed: {_first_line(exc)}", _code(exc)) from exc

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        settings: dict[str, Any] | None = None,
    ) -> None:
        try:
            self.client.insert(
                table, list(rows), column_names=list(column_names), database=self.database, settings=settings
            )
        except ClickHouseError as exc:
            raise StorageError(f"insert into {table} failed: {_first_line(exc)}", _code(exc)) from exc

    def release_memory(self) -> None:
        """Give memory the embedded engine freed back to the system (no-op on a server).

        chDB's allocator keeps freed pages for reuse; a consumer that allocates a batch's worth
        and frees it would otherwise hold its peak for good (BENCHMARKS.md, ingestion memory).
        """
        if not self.embedded:
            return
        with contextlib.suppress(ClickHouseError):  # an engine built without jemalloc: nothing to give back
            self.client.command("SYSTEM JEMALLOC PURGE")

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def close(self) -> None:
        self.client.close()

    def clone(self) -> Storage:
        """Another connection to the same database, for running queries from two threads at once.

        clickhouse-connect serialises the calls of one client; a second client (on chDB, a second handle
        on this process's engine) runs concurrently. Close it when done.
        """
        return Storage(_open_client(self.dsn, *self._tls)[0], self.database, self.dsn, *self._tls)


def _code(exc: BaseException) -> int | None:
    """ClickHouse's error code of a refused statement (None when the server was not reached)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return code
    # A server reached over HTTP reports it in the message's fixed prefix ("Code: 62. DB::Exception").
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


_CODE = re.compile(r"\bCode: (\d+)\. DB::Exception")


def _first_line(exc: BaseException, limit: int = 400) -> str:
    """The first line of an error, shortened: ClickHouse repeats the whole statement in its messages."""
    text = str(exc).strip()
    lines = text.splitlines()
    line = lines[0] if text else type(exc).__name__
    if line.endswith("Error:") and len(lines) > 1:  # "cannot be extracted ... Error:", the cause on the next line
        line = f"{line} {lines[1].strip()}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def connect(settings: ClickHouseSettings) -> Storage:
    """Open a client for the DSN; the database named in a server DSN's path wins over the default."""
    return connect_dsn(settings.dsn.get_secret_value(), settings.database, settings.ca_file, settings.verify)


def connect_dsn(dsn: str, database: str, ca_file: Path | str | None = None, verify: bool = True) -> Storage:
    """:func:`connect` from a DSN and a default database, for commands that load no configuration."""
    client, url_db = _open_client(dsn, ca_file, verify)
    return Storage(client, url_db or database, dsn, ca_file, verify)


# Session settings of every connection, for reading users' text files as pandas writes them:
# - ClickHouse infers a CSV column holding a float written with an exponent (pandas writes 1.5e-05 that
#   way) as *text* unless told otherwise, so one small value would turn a numeric column categorical, or
#   fail the comparison as "numeric in one file, text in the other";
# - an empty TSV field is a missing value (pandas writes NA as nothing), not a parse error.
SESSION_SETTINGS = {"input_format_try_infer_exponent_floats": 1, "input_format_tsv_empty_as_default": 1}


def _open_client(dsn: str, ca_file: Path | str | None = None, verify: bool = True) -> tuple[Client, str]:
    """A client for the DSN, and the database a server DSN names in its path ('' if none).

    :class:`InputError` for a malformed DSN (bad input, not an unreachable server)."""
    path = embedded_path(dsn)
    if path is None:
        try:
            kwargs, url_db = server_client_kwargs(dsn, ca_file, verify)
        except ValueError as exc:
            raise InputError(f"ClickHouse DSN {redact_dsn(dsn)}: {exc}") from exc
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(interface="chdb", path=str(path), settings=SESSION_SETTINGS), ""
        return clickhouse_connect.get_client(**kwargs), url_db
    except Exception as exc:
        raise StorageError(f"cannot open ClickHouse at {redact_dsn(dsn)}: {_first_line(exc)}", _code(exc)) from exc
