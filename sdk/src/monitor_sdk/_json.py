"""JSON with orjson's strictness, with or without orjson.

The service installs orjson (the consumer decodes tens of thousands of messages per second); a model
server that installs only the SDK may not have it. ``loads`` and ``dumps`` are orjson's own functions
when it is importable, otherwise stdlib stand-ins with the same contract: bytes in and out, UTF-8
only, no ``NaN``/``Infinity`` literals, numbers as orjson reads them (an integer outside the 64-bit
range becomes a float, a number too large for a double is refused), and one ``JSONDecodeError`` (a
``ValueError``) for every malformed input, invalid UTF-8 included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["JSONDecodeError", "JSONEncodeError", "dumps", "loads"]

try:
    from orjson import JSONDecodeError, JSONEncodeError, dumps, loads
except ImportError:  # pragma: no cover - exercised by the fresh-environment test (no orjson there)
    import json
    import math

    class JSONDecodeError(ValueError):  # type: ignore[no-redef]
        """Malformed JSON or invalid UTF-8 (orjson raises a ValueError subclass too)."""

    class JSONEncodeError(TypeError):  # type: ignore[no-redef]
        """A value JSON cannot represent (orjson raises a TypeError subclass too)."""

    def _reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def _float(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise ValueError("number is infinity when parsed as double")
        return value

    def _int(text: str) -> int | float:
        if len(text) > 20:  # beyond 64 bits (and int() refuses over 4,300 digits)
            return _float(text)
        value = int(text)
        return value if -(2**63) <= value < 2**64 else float(value)

    def loads(raw: bytes | bytearray | memoryview | str) -> Any:  # type: ignore[misc]
        try:
            text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8")
            return json.loads(text, parse_constant=_reject_constant, parse_float=_float, parse_int=_int)
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise JSONDecodeError(str(exc)) from exc  # type: ignore[call-arg]

    def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:  # type: ignore[misc]
        try:
            text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default)
            return text.encode("utf-8")
        except (ValueError, TypeError) as exc:  # NaN, unknown types, lone surrogates
            raise JSONEncodeError(str(exc)) from exc
