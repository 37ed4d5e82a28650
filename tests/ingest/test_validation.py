"""The validator against the contract's event rules: examples plus property-based tests."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ingest.validation import (
    InvalidMessage,
    format_timestamp,
    model_hint,
    model_name_problem,
    parse_label,
    parse_prediction,
    validate_label,
    validate_prediction,
)

VALID = {
    "event_id": "5f0c",
    "model": "fraud",
    "model_version": "3",
    "timestamp": "2026-11-27T10:00:00.123Z",
    "features": {"amount": 12.5, "country": "DE", "is_new_user": True, "age": None, "n": 3},
    "prediction": 0.83,
}


def encode(doc: object) -> bytes:
    return orjson.dumps(doc)


def rejected(raw: bytes, **kwargs: int) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as info:
        parse_prediction(raw, **kwargs)
    return info.value


def test_valid_event_keeps_every_field() -> None:
    event = parse_prediction(encode(VALID | {"probabilities": {"0": 0.17, "1": 0.83}, "segment": {"region": "eu"}}))
    assert event.event_id == "5f0c"
    assert event.model == "fraud"
    assert event.model_version == "3"
    assert event.ts_ms == int(datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC).timestamp() * 1000)
    assert event.features == {"amount": 12.5, "country": "DE", "is_new_user": True, "age": None, "n": 3.0}
    assert type(event.features["n"]) is float
    assert event.prediction == 0.83
    assert event.probabilities == {"0": 0.17, "1": 0.83}
    assert event.segment == {"region": "eu"}


def test_string_prediction_and_epoch_milliseconds() -> None:
    event = parse_prediction(encode(VALID | {"timestamp": 1795773600123, "prediction": "fraud"}))
    assert event.ts_ms == 1795773600123
    assert event.prediction == "fraud"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27t10:00:00.5z", datetime(2026, 11, 27, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-27T10:00:00.123456789+02:00", datetime(2026, 11, 27, 8, 0, 0, 123000, tzinfo=UTC)),
        ("2026-11-27 10:00:00-05:30", datetime(2026, 11, 27, 15, 30, tzinfo=UTC)),
        ("1969-12-31T23:59:59.999Z", datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_rfc3339_forms(text: str, expected: datetime) -> None:
    for _ in range(2):  # the second parse takes the cached fast path
        assert parse_prediction(encode(VALID | {"timestamp": text})).ts_ms == round(expected.timestamp() * 1000)


@pytest.mark.parametrize(
    ("raw", "kind", "words"),
    [
        (b"\xff\xfe{}", "not_utf8", "UTF-8"),
        (b"{not json", "not_json", "not valid JSON"),
        (b"", "not_json", "empty"),
        (b"[1, 2]", "not_object", "got array"),
        (b'"text"', "not_object", "got string"),
        (encode({k: v for k, v in VALID.items() if k != "event_id"}), "missing_field", "'event_id'"),
        (encode({k: v for k, v in VALID.items() if k != "model"}), "missing_field", "'model'"),
        (encode({k: v for k, v in VALID.items() if k != "timestamp"}), "missing_field", "'timestamp'"),
        (encode({k: v for k, v in VALID.items() if k != "features"}), "missing_field", "'features'"),
        (encode({k: v for k, v in VALID.items() if k != "prediction"}), "missing_field", "'prediction'"),
        (encode(VALID | {"event_id": 7}), "wrong_type", "'event_id' must be a string"),
        (encode(VALID | {"event_id": ""}), "bad_value", "'event_id' must not be empty"),
        (encode(VALID | {"model": None}), "wrong_type", "'model' must be a string, got null"),
        (encode(VALID | {"features": [1]}), "wrong_type", "'features' must be an object"),
        (encode(VALID | {"features": {"a": {"b": 1}}}), "wrong_type", "'features.a'"),
        (encode(VALID | {"features": {"a": [1]}}), "wrong_type", "got array"),
        (encode(VALID | {"prediction": True}), "wrong_type", "'prediction' must be a number or string"),
        (encode(VALID | {"prediction": None}), "wrong_type", "'prediction'"),
        (encode(VALID | {"prediction": {"p": 1}}), "wrong_type", "'prediction'"),
        (encode(VALID | {"timestamp": "yesterday"}), "bad_timestamp", "RFC 3339"),
        (encode(VALID | {"timestamp": "2026-02-30T00:00:00Z"}), "bad_timestamp", "not a valid date"),
        (encode(VALID | {"timestamp": "2026-11-27T10:00:00"}), "bad_timestamp", "time zone"),
        (encode(VALID | {"timestamp": "2026-11-27T25:00:00Z"}), "bad_timestamp", "not a valid date"),
        (encode(VALID | {"timestamp": True}), "bad_timestamp", "got boolean"),
        (encode(VALID | {"timestamp": 1795773600}), "bad_timestamp", "looks like epoch seconds"),
        (encode(VALID | {"timestamp": 10**16}), "bad_timestamp", "1900-2299"),
        (encode(VALID | {"probabilities": {"a": "x"}}), "wrong_type", "'probabilities.a'"),
        (encode(VALID | {"probabilities": [0.1]}), "wrong_type", "'probabilities'"),
        (encode(VALID | {"segment": {"region": 1}}), "wrong_type", "'segment.region'"),
        (encode(VALID | {"model_version": [1]}), "wrong_type", "'model_version'"),
        (
            b'{"event_id":"1","model":"m","timestamp":1795773600000,"features":{"a":1e400},"prediction":1}',
            "not_json",
            "infinity",
        ),
        (
            b'{"event_id":"1","model":"m","timestamp":1795773600000,"features":{},"prediction":1' + b"0" * 400 + b"}",
            "not_json",
            "infinity",
        ),
        (encode(VALID | {"timestamp": "9999-12-31T23:59:59Z"}), "bad_timestamp", "1900-2299"),
        (encode(VALID | {"timestamp": "0001-01-01T00:00:00Z"}), "bad_timestamp", "1900-2299"),
        (encode(VALID | {"timestamp": "1899-12-31T23:59:59.999Z"}), "bad_timestamp", "1900-2299"),
        (encode(VALID | {"timestamp": "2300-01-01T00:00:00Z"}), "bad_timestamp", "1900-2299"),
        # RFC 3339 digits are ASCII: other scripts' digits are not a timestamp
        (encode(VALID | {"timestamp": "\u0662\u0660\u0662\u0666-11-27T10:00:00Z"}), "bad_timestamp", "RFC 3339"),
        (encode(VALID | {"timestamp": "2026-11-27T10:00:00.\uff11\uff12\uff13Z"}), "bad_timestamp", "RFC 3339"),
        (encode(VALID | {"timestamp": "2026-11-27T10:00:00+\u0660\u0662:00"}), "bad_timestamp", "RFC 3339"),
        (encode(VALID | {"timestamp": "2026-11-27T10:00:00Z\n"}), "bad_timestamp", "RFC 3339"),
        (encode(VALID | {"timestamp": -5}), "bad_timestamp", "negative epoch"),
        (encode(VALID | {"timestamp": -2_000_000_000_000}), "bad_timestamp", "negative epoch"),
        (encode(VALID | {"timestamp": 0}), "bad_timestamp", "looks like epoch seconds"),
        (encode(VALID | {"timestamp": 99_999_999_999}), "bad_timestamp", "looks like epoch seconds"),
        (encode(VALID | {"model": "fr\x00aud"}), "bad_value", "'model' contains the control character U+0000"),
        (encode(VALID | {"model": "a\nb"}), "bad_value", "'model' contains the control character U+000A"),
        (encode(VALID | {"model": "x\x7fy"}), "bad_value", "'model' contains the control character U+007F"),
        (encode(VALID | {"model": "c1\x85"}), "bad_value", "'model' contains the control character U+0085"),
        (encode(VALID | {"model": "a/b"}), "bad_value", "'model' must not contain '/'"),
        (encode(VALID | {"event_id": "a\x00b"}), "bad_value", "'event_id' contains the control character U+0000"),
        (encode(VALID | {"event_id": "a\tb"}), "bad_value", "'event_id' contains the control character U+0009"),
        (encode(VALID | {"event_id": "\x9fz"}), "bad_value", "'event_id' contains the control character U+009F"),
    ],
)
def test_malformed_messages_are_named(raw: bytes, kind: str, words: str) -> None:
    error = rejected(raw)
    assert error.kind == kind
    assert words in error.reason
    assert "\n" not in error.reason


@pytest.mark.parametrize("text", ["1900-01-01T00:00:00Z", "2299-12-31T23:59:59.999Z", "1969-12-31T23:59:59Z"])
def test_rfc3339_text_at_the_ends_of_the_range(text: str) -> None:
    assert parse_prediction(encode(VALID | {"timestamp": text})).ts_ms == round(
        datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    )


@pytest.mark.parametrize("number", [2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -(10**30)])
def test_integers_beyond_64_bits_are_numbers(number: int) -> None:
    """JSON numbers are doubles: an integer orjson cannot hold in 64 bits is the nearest float, never text."""
    raw = (
        b'{"event_id":"1","model":"m","timestamp":1795773600000,"features":{"amount":%d},"prediction":%d,'
        b'"probabilities":{"a":%d}}' % (number, number, number)
    )
    event = parse_prediction(raw)
    assert event.features == {"amount": float(number)} and type(event.features["amount"]) is float
    assert event.prediction == float(number) and type(event.prediction) is float
    assert event.probabilities == {"a": float(number)}


def test_integers_too_large_for_a_double_from_python_objects_are_refused() -> None:
    """The SDK validates Python objects, whose integers have no bound: one beyond a double is refused
    like the JSON number it would be (never an OverflowError)."""
    doc = VALID | {"timestamp": 1795773600000}
    for bad, name in [
        (doc | {"features": {"x": 10**400}}, "'features.x'"),
        (doc | {"prediction": -(10**400)}, "'prediction'"),
        (doc | {"probabilities": {"a": 10**400}}, "'probabilities.a'"),
    ]:
        with pytest.raises(InvalidMessage, match=name) as info:
            validate_prediction(bad)
        assert info.value.kind == "bad_value"
    with pytest.raises(InvalidMessage, match="'label' must be a finite number"):
        validate_label({"event_id": "e", "model": "m", "label": 10**400})


@pytest.mark.parametrize("name", ["fraud", "fraud.v2", "Zoë ünïcödé", 'it\'s "quoted"', "a b", "a\\b", "x" * 128])
def test_model_names_the_rule_allows(name: str) -> None:
    assert model_name_problem(name) is None
    assert parse_prediction(encode(VALID | {"model": name})).model == name
    assert parse_label(encode({"event_id": "e", "model": name, "label": 1})).model == name


@pytest.mark.parametrize("name", ["", "  ", "a/b", "/", "fr\x00aud", "a\nb", "x\x7fy", "c1\x80", "x" * 129])
def test_model_names_the_rule_refuses_for_events_labels_and_hints(name: str) -> None:
    assert model_name_problem(name) is not None
    assert rejected(encode(VALID | {"model": name})).kind == "bad_value"
    with pytest.raises(InvalidMessage, match="'model'"):
        parse_label(encode({"event_id": "e", "model": name, "label": 1}))
    # A dead letter's model hint (a metric label) never carries the refused name.
    hint = model_hint(encode(VALID | {"model": name}), 1_000_000)
    assert "/" not in hint and not any(unicodedata.category(c) == "Cc" for c in hint)
    assert model_hint(encode(VALID | {"model": "fr\x00aud"}), 1_000_000) == ""


def test_event_ids_refuse_control_characters_in_labels_too() -> None:
    with pytest.raises(InvalidMessage, match="'event_id' contains the control character U\\+0000"):
        parse_label(encode({"event_id": "e\x00", "model": "m", "label": 1}))
    assert parse_prediction(encode(VALID | {"event_id": "a/b c"})).event_id == "a/b c"  # '/' is fine in an id


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=10), st.characters(categories=["Cc"]) | st.just("/"), st.text(max_size=10))
def test_every_control_character_or_slash_in_a_model_name_is_refused(before: str, bad: str, after: str) -> None:
    assert rejected(encode(VALID | {"model": f"x{before}{bad}{after}"})).kind == "bad_value"


def test_oversized_message() -> None:
    raw = encode(VALID | {"features": {"blob": "x" * 2000}})
    error = rejected(raw, max_bytes=1000)
    assert error.kind == "oversized"
    assert f"{len(raw)} bytes" in error.reason


def test_labels() -> None:
    label = parse_label(b'{"event_id": "e1", "model": "fraud", "label": 1, "timestamp": "2026-11-27T11:00:00Z"}')
    assert (label.event_id, label.model, label.label) == ("e1", "fraud", 1.0)
    assert parse_label(b'{"event_id": "e1", "model": "m", "label": "spam"}', received_ms=5).ts_ms == 5
    assert parse_label(b'{"event_id": "e1", "model": "m", "label": true}').label is True
    with pytest.raises(InvalidMessage, match="'label'"):
        parse_label(b'{"event_id": "e1", "model": "m"}')
    with pytest.raises(InvalidMessage, match="'label' must be a number, string or boolean"):
        parse_label(b'{"event_id": "e1", "model": "m", "label": [1]}')


# ---------------------------------------------------------------------------- properties

texts = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != "")
# Identifiers hold no control character (Unicode's Cc: U+0000-U+001F, U+007F-U+009F), models no '/'.
event_ids = st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=30).filter(
    lambda s: s.strip() != ""
)
model_names = event_ids.filter(lambda s: "/" not in s)
feature_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
instants = st.datetimes(min_value=datetime(1975, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def valid_events(draw: st.DrawFn) -> dict:
    moment = draw(instants)
    if draw(st.booleans()):
        stamp: object = moment.astimezone(draw(offsets)).isoformat(timespec="milliseconds")
    else:
        stamp = round(moment.timestamp() * 1000)
    doc = {
        "event_id": draw(event_ids),
        "model": draw(model_names),
        "timestamp": stamp,
        "features": draw(st.dictionaries(texts, feature_values, max_size=8)),
        "prediction": draw(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10))),
    }
    if draw(st.booleans()):
        doc["model_version"] = draw(st.text(max_size=10))
    if draw(st.booleans()):
        doc["probabilities"] = draw(st.dictionaries(texts, st.floats(0, 1), max_size=3))
    if draw(st.booleans()):
        doc["segment"] = draw(st.dictionaries(texts, st.text(max_size=10), max_size=3))
    return doc


@settings(max_examples=300, deadline=None)
@given(valid_events())
def test_every_valid_event_is_accepted_and_round_trips(doc: dict) -> None:
    event = parse_prediction(encode(doc))
    assert event.event_id == doc["event_id"]
    assert event.model == doc["model"]
    expected_ms = (
        doc["timestamp"]
        if isinstance(doc["timestamp"], int)
        else round(datetime.fromisoformat(doc["timestamp"]).timestamp() * 1000)
    )
    assert event.ts_ms == expected_ms
    assert set(event.features) == set(doc["features"])
    for key, value in doc["features"].items():
        got = event.features[key]
        if isinstance(value, bool) or value is None or isinstance(value, str):
            assert got is value or got == value
        else:
            assert type(got) is float and math.isclose(got, float(value))
    # What the SDK re-serialises is accepted again and means the same.
    again = parse_prediction(encode(event.to_json()))
    assert again == event


required = st.sampled_from(["event_id", "model", "timestamp", "features", "prediction"])
small_ints = st.integers(min_value=-1000, max_value=1000)
bad_feature_values = st.one_of(st.lists(small_ints, max_size=2), st.dictionaries(texts, small_ints, max_size=2))


@settings(max_examples=200, deadline=None)
@given(valid_events(), required)
def test_dropping_a_required_field_is_rejected_naming_it(doc: dict, field: str) -> None:
    del doc[field]
    error = rejected(encode(doc))
    assert error.kind == "missing_field"
    assert repr(field) in error.reason


@settings(max_examples=200, deadline=None)
@given(valid_events(), texts, bad_feature_values)
def test_a_nested_feature_value_is_rejected_naming_it(doc: dict, key: str, value: object) -> None:
    doc["features"][key] = value
    error = rejected(encode(doc))
    assert error.kind == "wrong_type"
    assert f"features.{key}" in error.reason


@settings(max_examples=200, deadline=None)
@given(valid_events(), st.text(max_size=30))
def test_garbage_timestamps_are_rejected(doc: dict, text: str) -> None:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        return  # may be a valid form; covered by the examples above
    except ValueError:
        pass
    doc["timestamp"] = text
    assert rejected(encode(doc)).kind == "bad_timestamp"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    try:
        parse_prediction(raw)
    except InvalidMessage as exc:
        assert exc.reason and "\n" not in exc.reason


def test_format_timestamp_round_trip() -> None:
    assert format_timestamp(1795773600123) == "2026-11-27T10:00:00.123Z"
