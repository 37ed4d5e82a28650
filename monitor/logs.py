"""Structured logging for every process: structlog in front, the standard library underneath.

Our modules log key-value events (``log.info("batch stored", events=1200, seconds=0.08)``); third-party
libraries keep logging through ``logging`` and come out in the same format. ``console`` is readable
for people, ``json`` one object per line for log shippers.

Tracebacks never show local variables. structlog's console renderer uses Rich's traceback with
``show_locals`` on when Rich is installed, and a frame's locals hold whatever it was handling: the
settings, a DSN with its password, a webhook URL whose path is its token. Both formats therefore get
an exception formatter configured without locals; the JSON format carries the traceback as structured
frames (``exception`` key) rather than dropping it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

_configured = False
REPEAT_WINDOW = 60.0  # seconds during which a chatty library's repeated message is shown once


class RepeatFilter(logging.Filter):
    """Show each of a library's messages once per window, then how many like it were left out.

    kafka-python logs four lines per reconnection attempt to a broker that is down (connection
    failed, connection lost, bootstrap failed with its backoff, not ready): a consumer that cannot
    reach Kafka for a minute filled the log with them before its one-line reason. A message is
    "like" another when it comes from the same logger with the same format string (the arguments,
    such as the backoff, differ).
    """

    def __init__(self, prefix: str, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.prefix = prefix
        self.window = window
        self.clock = clock
        self._shown: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (shown at, left out since)

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == self.prefix or record.name.startswith(self.prefix + ".")):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        shown = self._shown.get(key)
        if shown is not None and now - shown[0] < self.window:
            self._shown[key] = (shown[0], shown[1] + 1)
            return False
        if shown is not None and shown[1]:
            record.msg = f"{record.msg} ({shown[1]} like it left out in the last {now - shown[0]:.0f} s)"
        if len(self._shown) > 1000:  # format strings are few; bound the table all the same
            self._shown.clear()
        self._shown[key] = (now, 0)
        return True


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Idempotent; call once at process start (the CLI does)."""
    import structlog

    global _configured
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_render(fmt)],
        )
    )
    handler.addFilter(RepeatFilter("kafka"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # kafka-python is chatty at INFO (every connection, every rebalance step).
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
    if not _configured:
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    _configured = True


def _render(fmt: str) -> list[Any]:
    """The last processors of the chain: traceback handling without locals, then the renderer."""
    import structlog
    from structlog.tracebacks import ExceptionDictTransformer

    if fmt == "json":
        exceptions = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        return [exceptions, structlog.processors.JSONRenderer()]
    colors = sys.stderr.isatty()
    formatter: Any = structlog.dev.plain_traceback
    if importlib.util.find_spec("rich") is not None:
        formatter = structlog.dev.RichTracebackFormatter(
            show_locals=False, color_system="truecolor" if colors else None
        )
    return [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=formatter)]


class _DeferredLogger:
    """Stands for ``structlog.get_logger(name)`` until first used.

    Importing structlog is slow (it pulls in rich's traceback renderer); modules create their
    logger at import time, and ``monitor drift``, which mostly never logs, should not pay for that.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return _DeferredLogger(name)  # type: ignore[return-value]
