"""Fixtures for the alerting tests: real local HTTP receivers, closed after each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerts.receivers import Receiver


@pytest.fixture
def receivers() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        receiver = Receiver(*args, **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()
