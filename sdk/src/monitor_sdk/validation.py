"""Validation of prediction and label messages, exactly as docs/ingestion.md states the rules.

One function per message type takes the raw bytes from Kafka (or an HTTP body line) and returns a
typed event, or raises :class:`InvalidMessage` whose ``reason`` names the field and the problem in one
line; the caller stores that reason with the raw bytes in ``dead_letters``. The dict-level
functions are shared with the SDK and the HTTP API so every entry point applies the same rules.

This is the consumer's hot path (tens of thousands of messages per second in one process), so the
checks are plain ``type(x) is ...`` tests on the parsed object rather than a schema library.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor_sdk import _json as orjson  # orjson itself when installed (the service), else a strict stdlib stand-in

MAX_ID_LENGTH = 256
MAX_MODEL_LENGTH = 128
MAX_FEATURES = 1000
MAX_KEY_LENGTH = 256
# The service's default kafka.max_message_bytes: a larger message is dead-lettered (``oversized``).
MAX_MESSAGE_BYTES = 1_000_000

# Earliest and latest instants ClickHouse DateTime64(3) stores: 1900-01-01 and 2299-12-31.
_MIN_MS = -2_208_988_800_000
_MAX_MS = 10_413_791_999_999
# Below this an epoch value is almost surely seconds, not milliseconds (1973-03-03).
_SECONDS_SUSPECT_MS = 100_000_000_000

# Characters an identifier cannot hold: control characters (C0, DEL and C1: U+0000-U+001F,
# U+007F-U+009F), which no URL path, Prometheus label or log line carries safely; a model name
# cannot hold '/' either, which separates the API's path segments (GET /api/v1/models/{model}).
_EVENT_ID_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f]")
_MODEL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f/]")

# ASCII digits only: Python's \d would also take other scripts' digits (and int() would read them).
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z",
    re.ASCII,
)

FeatureValue = float | str | bool | None


class InvalidMessage(ValueError):
    """A message that breaks the event schema; ``kind`` is a short machine-readable category."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(slots=True)
class PredictionEvent:
    """A validated prediction: features keep their JSON types (numbers as float)."""

    event_id: str
    model: str
    ts_ms: int
    features: dict[str, FeatureValue]
    prediction: float | str
    model_version: str = ""
    probabilities: dict[str, float] | None = None
    segment: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as a contract-valid JSON object (timestamps as RFC 3339 UTC)."""
        doc: dict[str, Any] = {
            "event_id": self.event_id,
            "model": self.model,
            "timestamp": format_timestamp(self.ts_ms),
            "features": self.features,
            "prediction": self.prediction,
        }
        if self.model_version:
            doc["model_version"] = self.model_version
        if self.probabilities is not None:
            doc["probabilities"] = self.probabilities
        if self.segment is not None:
            doc["segment"] = self.segment
        return doc


@dataclass(slots=True)
class LabelEvent:
    """Ground truth for one earlier prediction."""

    event_id: str
    model: str
    label: float | str | bool
    ts_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "model": self.model,
            "label": self.label,
            "timestamp": format_timestamp(self.ts_ms),
        }


def format_timestamp(ts_ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-27T10:00:00.123Z``."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------ raw bytes


def decode_json_object(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """Size, UTF-8 and JSON checks shared by both topics; returns the top-level object."""
    if len(raw) > max_bytes:
        raise InvalidMessage("oversized", f"message is {len(raw)} bytes, more than the limit of {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise InvalidMessage("not_utf8", f"message is not valid UTF-8 (byte {uexc.start})") from exc
        if not raw.strip():
            raise InvalidMessage("not_json", "message is empty") from exc
        raise InvalidMessage("not_json", f"message is not valid JSON: {exc}") from exc
    if type(obj) is not dict:
        raise InvalidMessage("not_object", f"message must be a JSON object, got {_json_type(obj)}")
    return obj


def parse_prediction(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> PredictionEvent:
    """Validate one prediction message from its raw bytes."""
    return validate_prediction(decode_json_object(raw, max_bytes))


def parse_label(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES, received_ms: int | None = None) -> LabelEvent:
    """Validate one label message from its raw bytes."""
    return validate_label(decode_json_object(raw, max_bytes), received_ms)


# ------------------------------------------------------------------------------ objects


def validate_prediction(obj: Any) -> PredictionEvent:
    """Validate a parsed prediction object (a dict from JSON) against the contract's rules."""
    if type(obj) is not dict:
        raise InvalidMessage("not_object", f"message must be a JSON object, got {_json_type(obj)}")
    event_id = _required_text(obj, "event_id", MAX_ID_LENGTH, _EVENT_ID_FORBIDDEN)
    model = _required_text(obj, "model", MAX_MODEL_LENGTH, _MODEL_FORBIDDEN)
    ts_ms = _timestamp(obj, "timestamp", required=True)
    features = _features(obj)
    prediction = _prediction(obj)
    model_version = _model_version(obj.get("model_version"))
    probabilities = _probabilities(obj.get("probabilities"))
    segment = _segment(obj.get("segment"))
    return PredictionEvent(event_id, model, ts_ms, features, prediction, model_version, probabilities, segment)


def validate_label(obj: Any, received_ms: int | None = None) -> LabelEvent:
    """Validate a parsed label object; a missing timestamp means "when it was received"."""
    if type(obj) is not dict:
        raise InvalidMessage("not_object", f"message must be a JSON object, got {_json_type(obj)}")
    event_id = _required_text(obj, "event_id", MAX_ID_LENGTH, _EVENT_ID_FORBIDDEN)
    model = _required_text(obj, "model", MAX_MODEL_LENGTH, _MODEL_FORBIDDEN)
    if "label" not in obj:
        raise InvalidMessage("missing_field", "missing required field 'label'")
    label = obj["label"]
    kind = type(label)
    if kind is int or kind is float:
        label = _finite(_float(label, "label"), "label")
    elif kind is not str and kind is not bool:
        raise InvalidMessage(
            "wrong_type", f"field 'label' must be a number, string or boolean, got {_json_type(label)}"
        )
    ts_ms = _timestamp(obj, "timestamp", required=False)
    if ts_ms is None:
        ts_ms = received_ms if received_ms is not None else int(datetime.now(tz=UTC).timestamp() * 1000)
    return LabelEvent(event_id, model, label, ts_ms)


# ------------------------------------------------------------------------------ fields


_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _json_type(value: Any) -> str:
    """The JSON name of a rejected value's type, or its Python name when it is not exactly a JSON type.

    Exact, as the checks are: a ``str`` subclass (numpy's ``str_``, a ``StrEnum``) fails ``type(x)
    is str``, and "must be a string, got string" would contradict itself.
    """
    return _JSON_TYPES.get(type(value), type(value).__name__)


def model_name_problem(name: str) -> str | None:
    """What makes ``name`` no model name (e.g. "must not contain '/'"), or None: the one rule for
    events, labels, the configuration and the API's paths (non-blank, at most MAX_MODEL_LENGTH
    characters, no control character U+0000-U+001F or U+007F-U+009F, no '/')."""
    if not name.strip():
        return "must not be empty"
    if len(name) > MAX_MODEL_LENGTH:
        return f"is longer than {MAX_MODEL_LENGTH} characters"
    bad = _MODEL_FORBIDDEN.search(name)
    return None if bad is None else _forbidden(bad.group())


def feature_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a feature name beyond its length (a control character), or None.

    The consumer dead-letters such an event (``bad_feature_name``) and the SDK refuses it at ``log()``
    with the same reason: one rule, one place. Not part of :func:`validate_prediction`, whose verdicts
    the consumer's fast path must match, so the consumer applies it with its other limits.
    """
    bad = _EVENT_ID_FORBIDDEN.search(name)
    if bad is None:
        return None
    return f"feature name {name[:40]!r} contains the control character U+{ord(bad.group()):04X}"


def _forbidden(found: str) -> str:
    if found == "/":
        return "must not contain '/'"
    return f"contains the control character U+{ord(found):04X}"


def _required_text(obj: dict[str, Any], name: str, max_length: int, forbidden: re.Pattern[str]) -> str:
    if name not in obj:
        raise InvalidMessage("missing_field", f"missing required field {name!r}")
    value = obj[name]
    if type(value) is not str:
        raise InvalidMessage("wrong_type", f"field {name!r} must be a string, got {_json_type(value)}")
    if not value.strip():
        raise InvalidMessage("bad_value", f"field {name!r} must not be empty")
    if len(value) > max_length:
        raise InvalidMessage("bad_value", f"field {name!r} is longer than {max_length} characters")
    bad = forbidden.search(value)
    if bad is not None:
        raise InvalidMessage("bad_value", f"field {name!r} {_forbidden(bad.group())}")
    return value


def _float(value: float, name: str) -> float:
    """A JSON number as float; an integer too large for a double is refused (orjson, which decodes
    every message, refuses it as "number is infinity"; Python objects from the SDK can still hold one)."""
    try:
        return float(value)
    except OverflowError:
        raise InvalidMessage("bad_value", f"field {name!r} must be a finite number") from None


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise InvalidMessage("bad_value", f"field {name!r} must be a finite number")
    return value


def _timestamp(obj: dict[str, Any], name: str, required: bool) -> int | None:
    if name not in obj or (not required and obj[name] is None):
        if required:
            raise InvalidMessage("missing_field", f"missing required field {name!r}")
        return None
    value = obj[name]
    kind = type(value)
    if kind is str:
        ts_ms = _parse_rfc3339(value, name)
    elif kind is int or kind is float:
        if not math.isfinite(value):
            raise InvalidMessage("bad_timestamp", f"field {name!r} must be a finite number of epoch milliseconds")
        ts_ms = round(value)
        if ts_ms < 0:
            raise InvalidMessage(
                "bad_timestamp",
                f"field {name!r} = {value} is a negative epoch; epoch milliseconds must be at least 10^11 "
                "(1973-03-03): send RFC 3339 text for earlier times",
            )
        if ts_ms < _SECONDS_SUSPECT_MS:
            raise InvalidMessage(
                "bad_timestamp",
                f"field {name!r} = {value} looks like epoch seconds; send epoch milliseconds or RFC 3339 text",
            )
    else:
        raise InvalidMessage(
            "bad_timestamp",
            f"field {name!r} must be RFC 3339 text or epoch milliseconds, got {_json_type(value)}",
        )
    if not _MIN_MS <= ts_ms <= _MAX_MS:
        raise InvalidMessage("bad_timestamp", f"field {name!r} is outside the years 1900-2299")
    return ts_ms


def _parse_rfc3339(text: str, name: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp.

    Fast path: a stream's timestamps share their date-and-second prefix with many neighbours, so the
    epoch second of ``YYYY-MM-DDTHH:MM:SS`` is cached and only the common suffixes (``Z``,
    ``.fffZ``) are handled inline; anything else takes the full regular-expression parse.
    """
    if len(text) >= 20:
        base = _SECOND_CACHE.get(text[:19])
        if base is not None:
            rest = text[19:]
            if rest == "Z" or rest == "z":
                return base
            digits = rest[1:-1]
            if rest[0] == "." and rest[-1] in "Zz" and digits.isdigit() and digits.isascii():
                return base + int(digits[:3].ljust(3, "0"))
    return _parse_rfc3339_full(text, name)


def _parse_rfc3339_full(text: str, name: str) -> int:
    match = _RFC3339.match(text)
    if match is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise InvalidMessage(
            "bad_timestamp",
            f"field {name!r} is not an RFC 3339 timestamp with a time zone (e.g. 2026-11-27T10:00:00.123Z): {shown!r}",
        )
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError as exc:
        raise InvalidMessage("bad_timestamp", f"field {name!r} is not a valid date and time: {exc}") from exc
    offset_min = 0
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            raise InvalidMessage("bad_timestamp", f"field {name!r} has an invalid UTC offset")
        offset_min = (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    base_ms = (moment - _EPOCH) // _ONE_SECOND * 1000
    if len(_SECOND_CACHE) >= _SECOND_CACHE_SIZE:
        _SECOND_CACHE.clear()
    if text[10] in "Tt":
        _SECOND_CACHE[text[:19]] = base_ms
    return base_ms + int((frac or "0")[:3].ljust(3, "0")) - offset_min * 60_000


_SECOND_CACHE: dict[str, int] = {}
_SECOND_CACHE_SIZE = 100_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC) - _EPOCH


def _features(obj: dict[str, Any]) -> dict[str, FeatureValue]:
    if "features" not in obj:
        raise InvalidMessage("missing_field", "missing required field 'features'")
    features = obj["features"]
    if type(features) is not dict:
        raise InvalidMessage("wrong_type", f"field 'features' must be an object, got {_json_type(features)}")
    if len(features) > MAX_FEATURES:
        raise InvalidMessage("bad_value", f"field 'features' has {len(features)} keys, more than {MAX_FEATURES}")
    for key, value in features.items():
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidMessage("bad_value", f"feature names must be 1 to {MAX_KEY_LENGTH} characters: {key[:40]!r}")
        kind = type(value)
        if kind is float:
            continue  # orjson never yields NaN or infinity
        if kind is int:
            features[key] = _float(value, f"features.{key}")
        elif kind is not str and kind is not bool and value is not None:
            raise InvalidMessage(
                "wrong_type",
                f"field 'features.{key}' must be a number, string, boolean or null, got {_json_type(value)}",
            )
    return features


def _prediction(obj: dict[str, Any]) -> float | str:
    if "prediction" not in obj:
        raise InvalidMessage("missing_field", "missing required field 'prediction'")
    value = obj["prediction"]
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return _float(value, "prediction")
    if kind is str:
        return value
    raise InvalidMessage("wrong_type", f"field 'prediction' must be a number or string, got {_json_type(value)}")


def _model_version(value: Any) -> str:
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_MODEL_LENGTH:
            raise InvalidMessage("bad_value", f"field 'model_version' is longer than {MAX_MODEL_LENGTH} characters")
        return value
    if kind is int:
        return str(value)
    raise InvalidMessage("wrong_type", f"field 'model_version' must be a string, got {_json_type(value)}")


def _probabilities(value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise InvalidMessage("wrong_type", f"field 'probabilities' must be an object, got {_json_type(value)}")
    result = {}
    for key, prob in value.items():
        kind = type(prob)
        if kind is not float and kind is not int:
            raise InvalidMessage("wrong_type", f"field 'probabilities.{key}' must be a number, got {_json_type(prob)}")
        result[key] = _float(prob, f"probabilities.{key}")
    return result


def _segment(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise InvalidMessage("wrong_type", f"field 'segment' must be an object, got {_json_type(value)}")
    for key, text in value.items():
        if type(text) is not str:
            raise InvalidMessage("wrong_type", f"field 'segment.{key}' must be a string, got {_json_type(text)}")
    return value


def model_hint(raw: bytes, max_bytes: int) -> str:
    """The model named by a rejected message, when it can be read (helps filter dead letters)."""
    try:
        obj = decode_json_object(raw, max_bytes)
    except InvalidMessage:
        return ""
    model = obj.get("model")
    if not isinstance(model, str):
        return ""
    model = model[:MAX_MODEL_LENGTH]
    # A name the rule refuses is not kept as a hint either (dead_letters.model feeds metric labels).
    return "" if _MODEL_FORBIDDEN.search(model) else model
