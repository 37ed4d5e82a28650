"""The event validator, re-exported from the light SDK so that the service and model servers share it.

The code lives in ``sdk/src/monitor_sdk/validation.py`` (distribution ``model-monitor-sdk``), which a
model server installs without any of the service's dependencies. The consumer, the HTTP API and the
SDK all import these same functions, so an event the SDK accepts is one the consumer stores.
"""

from __future__ import annotations

from monitor_sdk.validation import (
    MAX_FEATURES,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_MESSAGE_BYTES,
    MAX_MODEL_LENGTH,
    FeatureValue,
    InvalidMessage,
    LabelEvent,
    PredictionEvent,
    decode_json_object,
    feature_name_problem,
    format_timestamp,
    model_hint,
    model_name_problem,
    parse_label,
    parse_prediction,
    validate_label,
    validate_prediction,
)

__all__ = [
    "MAX_FEATURES",
    "MAX_ID_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_MESSAGE_BYTES",
    "MAX_MODEL_LENGTH",
    "FeatureValue",
    "InvalidMessage",
    "LabelEvent",
    "PredictionEvent",
    "decode_json_object",
    "feature_name_problem",
    "format_timestamp",
    "model_hint",
    "model_name_problem",
    "parse_label",
    "parse_prediction",
    "validate_label",
    "validate_prediction",
]
