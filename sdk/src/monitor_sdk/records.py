"""From the caller's arguments to validated, serialised records ready for a transport.

Everything here runs in the caller's thread, before anything is queued, so an invalid event raises
:class:`~monitor_sdk.validation.InvalidMessage` where the bug is (the serving code) instead of
becoming a dead letter in the service.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from monitor_sdk import _json
from monitor_sdk.validation import (
    MAX_MESSAGE_BYTES,
    InvalidMessage,
    feature_name_problem,
    validate_label,
    validate_prediction,
)

RecordKind = Literal["prediction", "label"]
Timestamp = datetime | int | float | str | None


class Features(Protocol):
    """What ``log()`` takes as features: a mapping, or any one-row object with ``items()``.

    A pandas Series (``df.iloc[0]``, a DataFrame's row) is not a ``Mapping`` but has ``items()``;
    it is accepted by that method, so pandas is not imported.
    """

    def items(self) -> Iterable[tuple[Any, Any]]: ...


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """One serialised message: what Kafka or the HTTP API receives, byte for byte.

    ``on_error`` callbacks receive the record, so an application can keep or resend ``value``.
    ``notify`` is internal: the asyncio form uses it to wake an awaiting caller.
    """

    kind: RecordKind
    topic: str
    event_id: str
    key: bytes
    value: bytes
    notify: Callable[[BaseException | None], None] | None = field(default=None, repr=False)


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})
_PANDAS_MISSING = frozenset({"NAType", "NaTType"})  # the types of pd.NA and pd.NaT


def is_pandas_missing(value: Any) -> bool:
    """pandas' NA or NaT, recognised by type name: pandas is not a dependency."""
    kind = type(value)
    return kind.__name__ in _PANDAS_MISSING and kind.__module__.startswith("pandas.")


def plain(value: Any) -> Any:
    """numpy / pandas scalars and subclasses of str, int and float to plain Python.

    pandas' missing values (NA, NaT) become None, JSON's null, as they do in ``log_dataframe``. The
    validator checks exact types (``type(x) is str``: the consumer's hot path), so a subclass
    such as numpy's ``str_`` and ``float64``, a ``StrEnum`` or an ``IntEnum`` member becomes the
    builtin value it holds. numpy's other scalars convert themselves through ``.item()``, so numpy
    is never imported here.
    """
    if type(value) in _PLAIN_TYPES:
        return value  # the common case, first
    if isinstance(value, str):
        return str.__str__(value)  # not str(): a (str, Enum) member's __str__ is "Class.NAME"
    if isinstance(value, int):  # bool cannot be subclassed, so this is never a bool
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if is_pandas_missing(value):
        return None
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, bytes):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def epoch_ms(value: Timestamp) -> int | float | str:
    """Now, an aware datetime, epoch milliseconds or RFC 3339 text (the last two validated later).

    None or pandas' NaT means now, as a missing timestamp does in ``log_dataframe``.
    """
    if value is None or is_pandas_missing(value):
        return int(datetime.now(tz=UTC).timestamp() * 1000)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidMessage("bad_timestamp", "timestamp must be timezone-aware (e.g. datetime.now(tz=UTC))")
        ms = int(value.timestamp() * 1000)
        # Epoch milliseconds below 10^11 (before 1973-03-03) are refused as probable epoch seconds:
        # an earlier instant goes as RFC 3339 text.
        return ms if ms >= 100_000_000_000 else value.astimezone(UTC).isoformat(timespec="milliseconds")
    return plain(value)  # type: ignore[no-any-return]


def _feature(value: Any) -> Any:
    value = plain(value)
    # A missing value: NaN is how numpy and pandas spell it; JSON's spelling is null.
    if type(value) is float and not math.isfinite(value):
        return None
    return value


def _finite_number(value: Any, name: str) -> Any:
    value = plain(value)
    if type(value) is float and not math.isfinite(value):
        raise InvalidMessage("bad_value", f"field {name!r} must be a finite number, got {value}")
    return value


def prediction_doc(
    model: str,
    model_version: str,
    features: Features,
    prediction: Any,
    *,
    event_id: str | None = None,
    timestamp: Timestamp = None,
    probabilities: Mapping[str, Any] | None = None,
    segment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event as the contract's JSON object, before validation."""
    doc: dict[str, Any] = {
        "event_id": plain(event_id) or uuid.uuid4().hex,
        "model": model,
        "timestamp": epoch_ms(timestamp),
        "features": _named(_feature_items(features), _feature, "features"),
        "prediction": _finite_number(prediction, "prediction"),
    }
    if model_version:
        doc["model_version"] = model_version
    if probabilities is not None:
        doc["probabilities"] = {
            key: _finite_number(value, f"probabilities.{key}")
            for key, value in _named(probabilities.items(), plain, "probabilities").items()
        }
    if segment is not None:
        doc["segment"] = _named(segment.items(), plain, "segment")
    return doc


def _named(items: Iterable[tuple[Any, Any]], convert: Callable[[Any], Any], field_name: str) -> dict[str, Any]:
    """A JSON object from (key, value) pairs whose keys may be anything ``str()`` can spell.

    Keys become text as values do (numpy's ``str_``, a ``StrEnum`` member: their plain value; an
    integer: its digits), and two keys that spell the same text (``1`` and ``"1"``, or a Series'
    repeated label) are refused rather than one silently replacing the other.
    """
    pairs = list(items)
    doc = {key if type(key) is str else str(plain(key)): convert(value) for key, value in pairs}
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            name = key if type(key) is str else str(plain(key))
            if name in seen:
                raise InvalidMessage("bad_value", f"field {field_name!r} has two keys named {name!r}")
            seen.add(name)
    return doc


def _feature_items(features: Any) -> Iterable[tuple[Any, Any]]:
    """A mapping's or a pandas Series' (name, value) pairs; anything else is rejected by name."""
    items = getattr(features, "items", None)
    ndim = getattr(features, "ndim", 1)  # a DataFrame has items() too, of whole columns
    if callable(items) and ndim == 1:
        return items()
    hint = ": log a DataFrame with log_dataframe()" if ndim == 2 else ""
    raise InvalidMessage(
        "wrong_type", f"field 'features' must be a mapping or a pandas Series, got {type(features).__name__}{hint}"
    )


def _encode(doc: dict[str, Any]) -> bytes:
    try:
        return _json.dumps(doc)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage("not_json", f"event cannot be encoded as JSON: {exc}") from exc


def prediction_record(model: str, topic: str, doc: dict[str, Any], max_bytes: int = MAX_MESSAGE_BYTES) -> Record:
    """Validate with the service's own rules and serialise; the Kafka key is ``model:event_id``.

    Besides the schema, the consumer's fixed limits that the event alone decides: feature names
    without control characters, and the message size (``max_bytes``, the service's
    ``kafka.max_message_bytes``).
    """
    event = validate_prediction(doc)
    names = "".join(event.features)  # one search for the common case, where no name has a control character
    if feature_name_problem(names) is not None:
        for name in event.features:
            problem = feature_name_problem(name)
            if problem is not None:
                raise InvalidMessage("bad_feature_name", problem)
    value = _encode(event.to_json())
    _check_size(value, max_bytes)
    return Record("prediction", topic, event.event_id, f"{model}:{event.event_id}".encode(), value)


def _check_size(value: bytes, max_bytes: int) -> None:
    """The consumer dead-letters a message over ``kafka.max_message_bytes`` (``oversized``): refuse it here."""
    if len(value) > max_bytes:
        raise InvalidMessage(
            "oversized",
            f"event is {len(value)} bytes as JSON, more than max_message_bytes = {max_bytes} "
            "(the service's kafka.max_message_bytes)",
        )


def label_record(
    model: str, topic: str, event_id: str, label: Any, timestamp: Timestamp, max_bytes: int = MAX_MESSAGE_BYTES
) -> Record:
    doc = {"event_id": plain(event_id), "model": model, "label": plain(label), "timestamp": epoch_ms(timestamp)}
    event = validate_label(doc)
    value = _encode(event.to_json())
    _check_size(value, max_bytes)
    return Record("label", topic, event.event_id, f"{model}:{event.event_id}".encode(), value)


LOG_ARGUMENTS = frozenset(
    {"features", "prediction", "event_id", "timestamp", "probabilities", "segment", "model_version"}
)


def check_batch_item(index: int, item: Any) -> Mapping[str, Any]:
    """One element of ``log_many``: a mapping with ``log()``'s argument names."""
    if not isinstance(item, Mapping):
        raise InvalidMessage("wrong_type", f"record {index}: expected a mapping, got {type(item).__name__}")
    unknown = set(item) - LOG_ARGUMENTS
    if unknown:
        raise InvalidMessage(
            "unknown_field", f"record {index}: unknown keys {sorted(map(str, unknown))}; use {sorted(LOG_ARGUMENTS)}"
        )
    for required in ("features", "prediction"):
        if required not in item:
            raise InvalidMessage("missing_field", f"record {index}: missing {required!r}")
    return item
