"""The ClickHouse fast path may only vouch for what the Python validator accepts, with the same values.

Property-based: generated events (valid, mutated, garbage) are staged in real embedded ClickHouse and
written through :class:`BatchWriter`; every stored row must equal what ``parse_prediction`` makes of
the same bytes, and every message the Python validator rejects must end in ``dead_letters``.
"""

from __future__ import annotations

import math
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.ingest.batch import Batch
from monitor.ingest.fastpath import STAGE_ROWS, FastPredictionPath
from monitor.ingest.limits import check_event
from monitor.ingest.validation import InvalidMessage, parse_prediction
from monitor.ingest.writer import BatchWriter
from monitor.settings import IngestSettings
from monitor.storage import Storage
from monitor.storage.events import FeatureColumns
from tests.ingest.test_validation import VALID, valid_events

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5,
)
FIELDS = ["event_id", "model", "timestamp", "features", "prediction", "model_version", "probabilities", "segment"]

# JSON texts that ClickHouse reads otherwise than Python does, or that the validator refuses although
# they parse: numbers beyond 64 bits or a double, years outside 1900-2299, identifiers with control
# characters or '/'. orjson cannot write some of them, so a placeholder string is replaced by the text.
hostile_texts = st.one_of(
    st.integers(2**63, 2**70).map(lambda n: str(n).encode()),
    st.integers(-(2**70), -(2**63) - 1).map(lambda n: str(n).encode()),
    st.integers(0, 9999).map(lambda y: b'"%04d-06-15T12:00:00Z"' % y),
    st.sampled_from(
        [
            b"1e20",
            b"-1e25",
            b"18446744073709551616.0",
            b"1" + b"0" * 400,
            b"-5",
            b'"12345678901234567890123"',
            b'"a/b"',
            b'"a\\u0000b"',
            b'"x\x7fy"',
            b'"c1\xc2\x85"',
        ]
    ),
)
_PLACEHOLDER = "@@hostile:"


def splice(raw: bytes) -> bytes:
    """Replace the placeholder string (see :func:`messages`) by the JSON text it names."""
    start = raw.find(b'"' + _PLACEHOLDER.encode())
    if start < 0:
        return raw
    end = raw.index(b'"', start + 1)
    return raw[:start] + bytes.fromhex(raw[start + 1 + len(_PLACEHOLDER) : end].decode()) + raw[end + 1 :]


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """Mostly valid events, some with one field replaced or removed, some raw garbage, and plain events
    with one hostile text (see :data:`hostile_texts`)."""
    choice = draw(st.integers(0, 11))
    if choice >= 10:
        # an event the fast path would vouch for, but for one hostile text
        words = st.text("abc XYZ.-_09", min_size=1, max_size=8).filter(lambda t: t.strip() != "")
        doc = {
            "event_id": draw(words),
            "model": draw(words),
            "timestamp": draw(st.sampled_from([1795773600123, "2026-11-27T10:00:00.5Z"])),
            "features": draw(st.dictionaries(words, st.floats(-1e6, 1e6) | words | st.booleans(), max_size=3)),
            "prediction": draw(st.floats(0, 1) | words),
        }
        placeholder = _PLACEHOLDER + draw(hostile_texts).hex()
        where = draw(st.sampled_from(["event_id", "model", "timestamp", "prediction", "features", "segment"]))
        if where in ("features", "segment"):
            doc[where] = {**doc.get(where, {}), "h": placeholder}
        else:
            doc[where] = placeholder
        return orjson.dumps(doc)
    doc = draw(valid_events())
    if choice < 5:
        return orjson.dumps(doc)
    if choice < 7:
        doc[draw(st.sampled_from(FIELDS))] = draw(json_values)
        return orjson.dumps(doc)
    if choice < 8:
        doc.pop(draw(st.sampled_from(FIELDS)), None)
        return orjson.dumps(doc)
    if choice < 9:
        raw = orjson.dumps(doc)
        cut = draw(st.integers(0, len(raw)))
        return raw[:cut] + draw(st.binary(max_size=4)) + raw[cut:]
    return draw(st.binary(max_size=60))


def stored_events(storage: Storage) -> dict[tuple[str, str], dict]:
    """Every stored event as {(model, event_id): row with its features read from the maps}; every
    typed column that exists must agree with the map."""
    rows = storage.dicts(f"SELECT * FROM {storage.table('events')} FINAL")
    columns = FeatureColumns(storage)
    result = {}
    for row in rows:
        features = dict(row["fnum"]) | dict(row["fcat"])
        for feature, kinds in columns.for_model(row["model"]).items():
            for kind, column in kinds.items():
                value = row[column]
                held = row["fnum" if kind == "numerical" else "fcat"].get(feature)
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    assert held is None, (feature, column)
                else:
                    assert value == held, (feature, column)
        result[(row["model"], row["event_id"])] = row | {"features": features}
    return result


def expected_features(features: dict) -> dict:
    """What the typed columns hold for Python's parsed features (null = missing, booleans as text)."""
    out = {}
    for key, value in features.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


_writers: dict[str, BatchWriter] = {}  # one per test database: its staging table is reused across examples


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(messages(), min_size=1, max_size=25))
def test_stored_rows_equal_the_python_validator(storage: Storage, raws: list[bytes]) -> None:
    tag = uuid.uuid4().hex[:8]
    # Unique ids per message so that each stored row can be matched to its message.
    unique = []
    for i, raw in enumerate(raws):
        try:
            doc = orjson.loads(raw)
            if isinstance(doc, dict) and isinstance(doc.get("event_id"), str):
                doc["event_id"] = f"{tag}-{i}-{doc['event_id']}"
                raw = orjson.dumps(doc)
        except orjson.JSONDecodeError:
            pass
        unique.append(splice(raw))
    storage.command(f"TRUNCATE TABLE {storage.table('events')}")
    storage.command(f"TRUNCATE TABLE {storage.table('dead_letters')}")
    batch = Batch(raw_predictions=unique, raw_sources=[("t", 0, i) for i in range(len(unique))], messages=len(unique))
    writer = _writers.setdefault(storage.database, BatchWriter(storage, retries=0))
    writer.write(batch)

    stored = stored_events(storage)
    letters = {r[0]: r[1] for r in storage.rows(f"SELECT offset, reason FROM {storage.table('dead_letters')} FINAL")}
    expected_rows = 0
    for offset, raw in enumerate(unique):
        try:
            event = parse_prediction(raw)
            check_event(event, IngestSettings())  # the default limits apply too
        except InvalidMessage as exc:
            assert letters.get(offset) == exc.reason, f"message {raw!r} not dead-lettered with its reason"
            continue
        expected_rows += 1
        row = stored[(event.model, event.event_id)]
        assert row["ts"].timestamp() * 1000 == pytest.approx(event.ts_ms, abs=0.5)
        assert row["model_version"] == event.model_version
        assert row["features"] == expected_features(event.features), raw
        assert row["feature_keys"] == list(event.features)
        if isinstance(event.prediction, str):
            assert row["prediction_cat"] == event.prediction
        else:
            assert row["prediction_num"] == event.prediction
        assert row["probabilities"] == (event.probabilities or {})
        assert row["segment"] == (event.segment or {})
    assert len(stored) == expected_rows
    assert len(letters) == len(unique) - expected_rows


def test_the_fast_path_vouches_for_ordinary_events(storage: Storage) -> None:
    """What the SDK and typical producers send is parsed by ClickHouse, not handed back to Python."""
    docs = [
        VALID,
        VALID | {"timestamp": 1795773600123, "prediction": "fraud", "model_version": 3},
        VALID | {"timestamp": "2026-11-27T10:00:00Z", "probabilities": {"a": 0.2, "b": 0.8}},
        VALID | {"segment": {"region": "eu"}, "features": {"x": -1.5e-7, "name": "Zoë", "flag": False}},
    ]
    raws = [orjson.dumps(d | {"event_id": f"id{i}"}) for i, d in enumerate(docs)]
    fast = FastPredictionPath(storage, max_bytes=1_000_000)
    fast.stage(raws, [("t", 0, i) for i in range(len(raws))], storage.insert_arrow)
    outcome = fast.survey()
    assert ("fraud", "amount", "numerical") in outcome.features
    assert ("fraud", "is_new_user", "categorical") in outcome.features
    assert outcome.deferred == [] and outcome.stored_per_model == {"fraud": len(raws)}
    FeatureColumns(storage).ensure(outcome.features)
    fast.insert_events(outcome.features)
    assert storage.rows(f"SELECT count() FROM {storage.table('events')} FINAL")[0][0] == len(raws)
    fast.close()


def test_a_batch_parsed_in_slices_keeps_every_position_and_source(storage: Storage) -> None:
    """Staging parses STAGE_ROWS messages at a time: a batch over several slices still reports the
    positions of the messages it does not vouch for, and stores the rest with their own offsets."""
    count = 2 * STAGE_ROWS + 7
    invalid = {0, STAGE_ROWS - 1, STAGE_ROWS, 2 * STAGE_ROWS + 6}
    raws = [b"not json" if i in invalid else orjson.dumps(VALID | {"event_id": f"id{i}"}) for i in range(count)]
    fast = FastPredictionPath(storage, max_bytes=1_000_000)
    fast.stage(raws, [("t", 3, 1000 + i) for i in range(count)], storage.insert_arrow)
    outcome = fast.survey()
    assert outcome.deferred == sorted(invalid)
    assert outcome.stored_per_model == {"fraud": count - len(invalid)}
    FeatureColumns(storage).ensure(outcome.features)
    fast.insert_events(outcome.features)
    fast.close()
    rows = storage.rows(f"SELECT event_id, source_partition, source_offset FROM {storage.table('events')} FINAL")
    assert sorted(rows) == sorted((f"id{i}", 3, 1000 + i) for i in range(count) if i not in invalid)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"a","model":"m","timestamp":"2026-11-27T10:00:00+02:00","features":{},"prediction":1}',
        b'{"event_id":"a","event_id":"b","model":"m","timestamp":1795773600000,"features":{},"prediction":1}',
        b'{"event_id":"\\u00e9","model":"m","timestamp":1795773600000,"features":{"x":"\\ud83d\\ude00"},"prediction":1}',
        b'{"event_id":"a","model":"m","timestamp":1795773600000.5,"features":{},"prediction":1}',
    ],
)
def test_unusual_but_valid_forms_are_handed_to_python_and_stored(storage: Storage, raw: bytes) -> None:
    fast = FastPredictionPath(storage, max_bytes=1_000_000)
    fast.stage([raw], [("t", 0, 0)], storage.insert_arrow)
    assert fast.survey().deferred == [0]
    fast.close()
    BatchWriter(storage).write(Batch(raw_predictions=[raw], raw_sources=[("t", 0, 0)], messages=1))
    event = parse_prediction(raw)
    assert storage.rows(f"SELECT event_id, toUnixTimestamp64Milli(ts) FROM {storage.table('events')} FINAL") == [
        (event.event_id, event.ts_ms)
    ]


_EVENT = b'"event_id":"a","model":"m","timestamp":1795773600000,"features":{"x":1.5},"prediction":1'


@pytest.mark.parametrize(
    "raw",
    [
        b"{" + _EVENT + b"} trailing",
        b"{" + _EVENT + b"}{" + _EVENT + b"}",
        b"{" + _EVENT + b",}",
        b"{" + _EVENT.replace(b"1.5", b"01") + b"}",
        b"{" + _EVENT.replace(b"1.5", b"1.") + b"}",
        b"{" + _EVENT.replace(b"1.5", b"NaN") + b"}",
        b"{" + _EVENT.replace(b'"a"', b'"\\x"') + b"}",
        b"{" + _EVENT.replace(b'"a"', b'"\\ud800"') + b"}",
        b"{" + _EVENT.replace(b'"a"', b'"a\tb"') + b"}",
        b"{" + _EVENT,
    ],
)
def test_invalid_json_is_never_vouched_for(storage: Storage, raw: bytes) -> None:
    """ClickHouse's parse alone (no separate isValidJSON) leaves every invalid document to Python,
    which dead-letters it with its reason."""
    fast = FastPredictionPath(storage, max_bytes=1_000_000)
    fast.stage([raw], [("t", 0, 0)], storage.insert_arrow)
    assert fast.survey().deferred == [0]
    fast.close()
    with pytest.raises(InvalidMessage):
        parse_prediction(raw)


def _event(**fields: bytes) -> bytes:
    """A message with some fields' JSON text replaced verbatim (numbers orjson cannot write)."""
    parts = {"event_id": b'"a"', "model": b'"m"', "timestamp": b"1795773600000", "features": b'{"x":1.5}'}
    parts |= {"prediction": b"1"} | fields
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in parts.items()) + b"}"


BIG = b"18446744073709551616"  # 2^64: ClickHouse re-prints it as the *string* "18446744073709551616"


@pytest.mark.parametrize(
    "raw",
    [
        # RFC 3339 text outside the validator's years (the parse of ClickHouse alone accepted them)
        _event(timestamp=b'"9999-12-31T23:59:59Z"'),
        _event(timestamp=b'"0001-01-01T00:00:00Z"'),
        _event(timestamp=b'"1899-12-31T23:59:59.999Z"'),
        _event(timestamp=b'"2300-01-01T00:00:00Z"'),
        _event(timestamp=b"-5"),
        # integers beyond 64 bits, and floats ClickHouse re-prints as such integers in nested objects
        _event(features=b'{"amount":' + BIG + b"}"),
        _event(features=b'{"amount":-9223372036854775809}'),
        _event(features=b'{"amount":1e20}'),
        _event(features=b'{"amount":18446744073709551616.0}'),
        _event(features=b'{"amount":1' + b"0" * 400 + b"}"),
        _event(prediction=BIG),
        _event(prediction=b"-9223372036854775809"),
        _event(prediction=b"1" + b"0" * 400),
        _event(segment=b'{"region":' + BIG + b"}"),
        _event(segment=b'{"region":1e20}'),
        _event(event_id=BIG),
        _event(model=BIG),
        # (a string of as many digits is text for both, but ClickHouse cannot tell it apart: Python's call)
        _event(features=b'{"card":"12345678901234567890123"}', prediction=b'"-9223372036854775809"'),
        # a model_version that is a number but not an integer in JSON (ClickHouse re-prints 3.0 as 3)
        _event(model_version=b"3.0"),
        _event(model_version=b"1E2"),
        _event(model_version=b"-0.0"),
        # negative zero in a nested object (its second parse in ClickHouse reads -0 as the integer 0)
        _event(features=b'{"amount":-0.0}'),
        _event(features=b'{"amount":-1e-400,"b":1}'),
        _event(probabilities=b'{"a":-0.0,"b":1}'),
        # identifiers with control characters (escaped, or raw DEL / C1 bytes) or a model with '/'
        _event(model=b'"fr\\u0000aud"'),
        _event(model=b'"a\\nb"'),
        _event(model=b'"x\x7fy"'),
        _event(model=b'"c1\xc2\x85"'),
        _event(model=b'"a/b"'),
        _event(event_id=b'"a\\u0000b"'),
        _event(event_id=b'"x\x7fy"'),
        _event(event_id=b'"c1\xc2\x9f"'),
    ],
)
def test_what_python_reads_otherwise_is_never_vouched_for(storage: Storage, raw: bytes) -> None:
    """Forms ClickHouse alone would store with other values (a number as text, a year the validator
    refuses, a model the API cannot address) are left to Python: stored with Python's values or
    dead-lettered with its reason."""
    fast = FastPredictionPath(storage, max_bytes=1_000_000)
    fast.stage([raw], [("t", 0, 0)], storage.insert_arrow)
    assert fast.survey().deferred == [0], raw
    fast.close()
    BatchWriter(storage, retries=0).write(Batch(raw_predictions=[raw], raw_sources=[("t", 0, 0)], messages=1))
    stored = stored_events(storage)
    letters = storage.rows(f"SELECT reason FROM {storage.table('dead_letters')} FINAL")
    try:
        event = parse_prediction(raw)
    except InvalidMessage as exc:
        assert (stored, letters) == ({}, [(exc.reason,)])
        return
    assert letters == []
    row = stored[(event.model, event.event_id)]
    assert row["features"] == expected_features(event.features)
    if isinstance(event.prediction, str):
        assert row["prediction_cat"] == event.prediction
    else:
        assert row["prediction_num"] == event.prediction and row["prediction_cat"] is None
    assert row["segment"] == (event.segment or {})


@pytest.mark.parametrize(
    "raw",
    [
        _event(timestamp=b'"1900-01-01T00:00:00Z"'),
        _event(timestamp=b'"2299-12-31T23:59:59.999Z"'),
        _event(features=b'{"amount":9223372036854775807,"id":"1844674407370955161","n":-922337203685477580}'),
        _event(features=b'{"card":"1234-5678-9012-3456-7890","amount":1.5e300}', prediction=b'"184467440737"'),
        _event(model=b'"fraud.v2 (eu)"', event_id=b'"a/b c"'),
        _event(model_version=b"7", features=b'{"a":0,"b":-0,"c":0.0,"d":-0.5}'),
        _event(probabilities=b'{"a":0.0,"b":-0.25}', prediction=b"-0.0"),
    ],
)
def test_ordinary_forms_near_those_are_still_vouched_for(storage: Storage, raw: bytes) -> None:
    fast = FastPredictionPath(storage, max_bytes=1_000_000)
    fast.stage([raw], [("t", 0, 0)], storage.insert_arrow)
    assert fast.survey().deferred == [], raw
    fast.close()
    parse_prediction(raw)  # and Python agrees they are valid


def test_negative_zero_is_stored_with_its_sign(storage: Storage) -> None:
    """-0.0 is a float like any other: stored to the bit, whichever path takes the message."""
    raws = [
        _event(event_id=b'"fast"', features=b'{"x":-0.0}', probabilities=b'{"p":-0.0}', prediction=b"-0.0"),
        _event(
            event_id=b'"python"',  # a time-zone offset: validated in Python
            timestamp=b'"2026-11-27T12:00:00+02:00"',
            features=b'{"x":-0.0}',
            probabilities=b'{"p":-0.0}',
            prediction=b"-0.0",
        ),
    ]
    BatchWriter(storage, retries=0).write(
        Batch(raw_predictions=raws, raw_sources=[("t", 0, 0), ("t", 0, 1)], messages=2)
    )
    rows = storage.rows(
        f"SELECT event_id, fnum['x'], probabilities['p'], prediction_num FROM {storage.table('events')} FINAL"
    )
    assert sorted((r[0], *(math.copysign(1.0, v) for v in r[1:])) for r in rows) == [
        ("fast", -1.0, -1.0, -1.0),
        ("python", -1.0, -1.0, -1.0),
    ]
