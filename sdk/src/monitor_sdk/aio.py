"""``AsyncPredictionLogger``: the same logger for asyncio applications, without blocking the loop.

``log`` only validates and queues (microseconds), so it runs on the loop; with ``wait=True`` it
awaits the transport's verdict through a future that the background thread resolves with
``call_soon_threadsafe``. ``flush``, ``close`` and the batch forms (whose validation grows with the
batch) run in a worker thread through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any

from monitor_sdk.logger import PredictionLogger
from monitor_sdk.records import Features, Timestamp


class AsyncPredictionLogger:
    """Wraps a :class:`PredictionLogger` built from the same arguments (or one passed as ``logger=``)."""

    def __init__(self, *args: Any, logger: PredictionLogger | None = None, **kwargs: Any) -> None:
        if logger is not None and (args or kwargs):
            raise TypeError("give either a PredictionLogger or the arguments to build one, not both")
        self.logger = logger if logger is not None else PredictionLogger(*args, **kwargs)

    async def log(
        self,
        features: Features,
        prediction: float | int | str,
        *,
        event_id: str | None = None,
        timestamp: datetime | int | str | None = None,
        probabilities: Mapping[str, float] | None = None,
        segment: Mapping[str, str] | None = None,
        model_version: str | None = None,
        wait: bool = False,
    ) -> str:
        """Validate and queue one prediction; with ``wait=True`` also await delivery (raising its error).

        A failed delivery is reported to ``on_error`` (or logged) as well, whether awaited or not.
        """
        record = self.logger.prediction_record(
            features,
            prediction,
            event_id=event_id,
            timestamp=timestamp,
            probabilities=probabilities,
            segment=segment,
            model_version=model_version,
        )
        if not wait:
            self.logger.submit((record,))
            return record.event_id
        future = self._future()
        self.logger.submit((replace(record, notify=future[1]),))
        await future[0]
        return record.event_id

    async def log_label(
        self, event_id: str, label: float | int | str | bool, timestamp: Timestamp = None, *, wait: bool = False
    ) -> None:
        record = self.logger.label_record(event_id, label, timestamp)
        if not wait:
            self.logger.submit((record,))
            return
        future = self._future()
        self.logger.submit((replace(record, notify=future[1]),))
        await future[0]

    async def log_many(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self.logger.log_many, list(events))

    async def log_dataframe(self, df: Any, feature_columns: Sequence[str] | None = None, **kwargs: Any) -> list[str]:
        call = functools.partial(self.logger.log_dataframe, df, feature_columns, **kwargs)
        return await asyncio.to_thread(call)

    async def flush(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.logger.flush, timeout)

    async def close(self, timeout: float | None = 30) -> None:
        await asyncio.to_thread(self.logger.close, timeout)

    @property
    def pending(self) -> int:
        return self.logger.pending

    async def __aenter__(self) -> AsyncPredictionLogger:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @staticmethod
    def _future() -> tuple[asyncio.Future[None], Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        def notify(error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the error went to on_error anyway
                loop.call_soon_threadsafe(settle, error)

        return future, notify
