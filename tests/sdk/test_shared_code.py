"""One validator for everyone, with or without orjson: the service re-exports the SDK's objects, and the
SDK's stdlib JSON stand-in decides every message exactly as orjson does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import monitor.ingest.validation as service_validation
import monitor.sdk
import monitor_sdk
import monitor_sdk.validation as sdk_validation
from monitor_sdk import _json
from monitor_sdk.validation import InvalidMessage, parse_label, parse_prediction

RAW = [
    b'{"event_id":"a","model":"m","timestamp":"2026-11-27T10:00:00.123Z","features":{"x":1,"y":"DE","z":null},'
    b'"prediction":0.5}',
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{"x":NaN},"prediction":0.5}',
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{"x":Infinity},"prediction":0.5}',
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{},"prediction":-Infinity}',
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{"caf\xc3\xa9":"\xe2\x82\xac"},"prediction":"x"}',
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{"x":1},"prediction":0.5',
    b"\xff\xfe{}",
    b"   ",
    b"[1, 2]",
    b'"text"',
    b'{"event_id":"a","model":"m","label":1}',
    # numbers beyond 64 bits (floats for orjson) or beyond a double (refused by orjson)
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{"x":18446744073709551616},'
    b'"prediction":-9223372036854775809,"label":100000000000000000000000}',
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{"x":1e400},"prediction":1,"label":1}',
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{},"prediction":1' + b"0" * 400 + b"}",
    b'{"event_id":"a","model":"m","label":' + b"9" * 5000 + b"}",
    b'{"event_id":"a","model":"m","timestamp":1795773600000,"features":{},"prediction":18446744073709551615}',
    b'{"event_id":"a","model":"a/b","timestamp":-5,"features":{},"prediction":1,"label":1}',
]


def decide(raw: bytes) -> str:
    outcomes = []
    for parse in (parse_prediction, parse_label):
        try:
            event = parse(raw, 1_000_000)  # type: ignore[operator]
            outcomes.append(json.dumps(event.to_json() if parse is parse_prediction else event.label, sort_keys=True))
        except InvalidMessage as exc:
            outcomes.append(exc.kind)
    return "|".join(outcomes)


def test_the_service_uses_the_sdks_validator_and_logger() -> None:
    for name in service_validation.__all__:
        assert getattr(service_validation, name) is getattr(sdk_validation, name), name
    assert set(monitor.sdk.__all__) == set(monitor_sdk.__all__)
    for name in monitor_sdk.__all__:
        assert getattr(monitor.sdk, name) is getattr(monitor_sdk, name), name


def test_without_orjson_every_message_is_decided_the_same_way() -> None:
    assert _json.loads.__module__ == "orjson"  # this process has orjson: the reference decisions
    expected = [decide(raw) for raw in RAW]
    code = (
        "import sys, json\n"
        "sys.modules['orjson'] = None  # as in an environment with the SDK alone\n"
        "from monitor_sdk import _json\n"
        "assert _json.loads.__module__ == 'monitor_sdk._json', _json.loads.__module__\n"
        "from tests.sdk.test_shared_code import RAW, decide\n"
        "print(json.dumps([decide(raw) for raw in RAW]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    assert expected[1].startswith("not_json") and expected[6].startswith("not_utf8")  # the cases that differ by default
    assert expected[-3].startswith("not_json") and expected[-4].startswith("not_json")  # infinity, as orjson


def test_a_subclass_of_a_json_type_is_named_by_its_own_type() -> None:
    """The checks are exact (``type(x) is str``), so the reason names the subclass, not "string"."""

    class Text(str):
        pass

    doc = {"event_id": "a", "model": "m", "timestamp": 1795773600000, "features": {"x": Text("DE")}, "prediction": 1}
    with pytest.raises(InvalidMessage, match=r"'features\.x' must be a number, string, boolean or null, got Text$"):
        sdk_validation.validate_prediction(doc)


def test_the_sdks_message_limit_is_the_services_default() -> None:
    """The SDK refuses at log() what a consumer with the default kafka.max_message_bytes dead-letters."""
    from monitor.settings import KafkaSettings

    assert KafkaSettings().max_message_bytes == sdk_validation.MAX_MESSAGE_BYTES
