"""The consumer's fast path: ClickHouse parses and stores raw prediction messages itself.

Decoding JSON and building typed columns in Python costs several times what kafka-python spends to
fetch a message, and it holds the GIL. Here the poll loop only collects raw bytes; one Arrow column
of them goes into a per-consumer staging table whose MATERIALIZED columns parse each message once
(in C++, outside the GIL), and an ``INSERT ... SELECT`` writes the typed ``events`` rows.

ClickHouse only *vouches* for messages: ``fast_valid`` is a conservative test that accepts a
message only if :func:`monitor.ingest.validation.parse_prediction` would accept it with the same
values (property-tested in ``tests/ingest/test_fastpath.py``). Everything it does not vouch for (bad
messages, but also rare valid forms such as time-zone offsets or duplicated keys) is handed back to
Python, which validates it with the one authoritative validator and stores it, or dead-letters it
with the reason. Only the SQL lives here; the flow is in :class:`monitor.ingest.writer.BatchWriter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from monitor.ingest.validation import MAX_FEATURES, MAX_ID_LENGTH, MAX_KEY_LENGTH, MAX_MODEL_LENGTH
from monitor.ingest.worktables import working_table_name
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import CATEGORICAL, NUMERICAL, FeatureKind

# A JSON number (as JSONExtractKeysAndValuesRaw re-prints it) that Python also reads as a number:
# integers beyond 18 digits may overflow orjson's 64-bit integers, so those are left to Python.
_NUMBER = "(match({v}, '^-?[0-9]') AND (match({v}, '[.eE]') OR length({v}) <= 19))"
# ClickHouse re-prints an integer beyond 64 bits (>= 2^64 or < -2^63) as a JSON *string* of its
# digits, and a large float that it re-prints as such an integer (1e20) becomes one when a nested
# object is parsed again (features, segment): those quoted digits are numbers for Python (a float,
# or infinity and a dead letter), so a quoted run of digits is left to Python. The shortest such
# text, quotes included, is 22 characters ("18446744073709551616", "-9223372036854775809").
_NOT_BIG_INTEGER = "(length({v}) < 22 OR NOT match({v}, '^\"-?[0-9]+\"$'))"
_STRING = "(startsWith({v}, '\"') AND " + _NOT_BIG_INTEGER + ")"
# An identifier vouched for is a JSON string without escapes, so its text is the raw value without
# its quotes (no JSON decoding needed). Python's str.strip() never removes a printable ASCII
# character, so one of them proves it is not blank; bytes >= characters keeps the length bound safe.
# Without escapes, the only control characters it can hold are DEL and C1 (bytes 0x7F, 0xC2 0x80-0x9F):
# any 0x7F or 0xC2 byte is left to Python, as is '/' in a model name (``forbidden``).
_PLAIN_TEXT = (
    "(startsWith({v}, '\"') AND position({v}, '\\\\') = 0 AND length({v}) BETWEEN 3 AND {n} + 2 "
    "AND match(substring({v}, 2, length({v}) - 2), '[!-~]') AND position({v}, unhex('7F')) = 0 "
    "AND position({v}, unhex('C2')) = 0{forbidden} AND " + _NOT_BIG_INTEGER + ")"
)
_RFC3339_Z = r"'^\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z\"$'"
_MIN_EPOCH_MS = 100_000_000_000  # below: "looks like epoch seconds", Python's call
_MAX_EPOCH_MS = 10_413_791_999_999  # 2299-12-31T23:59:59.999Z
_MIN_YEAR, _MAX_YEAR = 1900, 2299  # the same range as RFC 3339 text (Python: "outside the years 1900-2299")


# A nested object (features, probabilities) is parsed twice: its text is the top-level parse's
# re-print, in which a float negative zero (-0.0, -0e5, -1e-400) reads "-0", and the second parse takes
# "-0" for the integer 0. So an object holding a re-printed "-0" value is left to Python (rare; every
# other number survives both parses to the bit).
_NO_NEGATIVE_ZERO = "NOT match({v}, ':-0[,}}]')"


def _no_negative_zero(v: str) -> str:
    return _NO_NEGATIVE_ZERO.format(v=v)


def _number(v: str) -> str:
    return _NUMBER.format(v=v)


def _string(v: str) -> str:
    return _STRING.format(v=v)


def _plain_text(v: str, n: int, slash: bool = True) -> str:
    """A non-blank identifier of at most ``n`` characters without control characters (nor '/' unless
    ``slash``), as the Python validator requires of event_id and model."""
    return _PLAIN_TEXT.format(v=v, n=n, forbidden="" if slash else f" AND position({v}, '/') = 0")


def _unquoted(v: str) -> str:
    """The text of a JSON string value vouched for by :func:`_plain_text` (no escapes)."""
    return f"substring({v}, 2, length({v}) - 2)"


def _optional(key: str, condition: str) -> str:
    """Absent or null, or satisfying ``condition`` (on ``top['key']``)."""
    return f"(NOT mapContains(top, '{key}') OR top['{key}'] = 'null' OR {condition})"


def _unique_keys(kv: str) -> str:
    return f"length(arrayDistinct({kv}.1)) = length({kv})"


# Rows ClickHouse parses at once when staging (see FastPredictionPath.stage).
STAGE_ROWS = 8192

# The poll loop needs one core for kafka-python; ClickHouse parses on the other one.
ONE_THREAD = {"max_threads": 1, "max_insert_threads": 1}


def one_thread(sql: str, **extra: int) -> str:
    """``sql`` with :data:`ONE_THREAD` (and ``extra``) as its own SETTINGS clause.

    Inline rather than per call: the embedded engine's client applies per-call settings with SET
    statements before and after each call, several round trips per statement.
    """
    pairs = {**ONE_THREAD, **extra}
    return f"{sql} SETTINGS " + ", ".join(f"{name} = {value}" for name, value in pairs.items())


_SECONDS = "parseDateTime64BestEffortOrNull(substring(top['timestamp'], 2, 19), 0, 'UTC')"


def fast_valid(max_features: int = MAX_FEATURES, max_key_length: int = MAX_KEY_LENGTH) -> str:
    """The condition under which ClickHouse vouches for a staged message (limits included).

    Feature names are vouched for only without control characters (ASCII ones by ``[[:cntrl:]]``;
    any byte 0xC2, which starts U+0080-U+00BF and so every C1 control, is left to Python).
    """
    no_backslash = "position(raw, '\\\\') = 0"
    conditions = [
        "notEmpty(top_kv)",  # size, UTF-8, valid JSON, an object (see top_kv)
        # surrogate escapes (orjson's rules are subtle); an escape needs a backslash, which most
        # messages lack (one scan for it, shared with the control-character test below)
        rf"({no_backslash} OR NOT match(raw, '\\\\u[dD][89a-fA-F]'))",
        _unique_keys("top_kv"),
        _plain_text("top['event_id']", MAX_ID_LENGTH),
        _plain_text("top['model']", MAX_MODEL_LENGTH, slash=False),
        # RFC 3339 text within the years the validator takes (1900-2299: a prefix comparison; the
        # pattern has made the year four digits), whose date and time exist
        "((match(top['timestamp'], '^[0-9]{12,14}$') AND toInt64OrZero(top['timestamp']) "
        f"BETWEEN {_MIN_EPOCH_MS} AND {_MAX_EPOCH_MS}) OR (match(top['timestamp'], {_RFC3339_Z}) "
        f"AND substring(top['timestamp'], 2, 4) BETWEEN '{_MIN_YEAR}' AND '{_MAX_YEAR}' "
        f"AND formatDateTime({_SECONDS}, '%Y-%m-%dT%H:%i:%S') = substring(top['timestamp'], 2, 19)))",
        "startsWith(top['features'], '{')",
        _no_negative_zero("top['features']"),
        f"length(f_kv) <= {max_features}",
        _unique_keys("f_kv"),
        f"arrayAll(k -> lengthUTF8(k) BETWEEN 1 AND {max_key_length}, f_kv.1)",
        # Valid JSON carries control characters only escaped (a backslash) or as DEL / C1 bytes:
        # a message with none of those has none in its keys; only the rest is checked key by key.
        f"({no_backslash} AND position(raw, unhex('7F')) = 0 AND position(raw, unhex('C2')) = 0 "
        "OR arrayAll(k -> NOT match(k, '[[:cntrl:]]') AND position(k, unhex('C2')) = 0, f_kv.1))",
        # Valid JSON: a value is a string, true, false, null, an object, an array or a number, and
        # only a number starts with a digit or '-'; what Python reads differently is vouched out.
        "arrayAll(v -> NOT (startsWith(v, '{') OR startsWith(v, '[')), f_kv.2)",
        f"arrayAll(v -> length(v) <= 19 OR {_string('v')} OR match(v, '[.eE]'), f_kv.2)",
        "(" + _number("top['prediction']") + " OR " + _string("top['prediction']") + ")",
        _optional(
            "model_version",
            f"(startsWith(top['model_version'], '\"') AND "
            f"lengthUTF8(JSONExtractString(top['model_version'])) <= {MAX_MODEL_LENGTH}) "
            # an integer: the re-print of 3.0 or 1E2 is integer text too, so the message says which
            "OR (match(top['model_version'], '^-?[0-9]{1,18}$') AND JSONType(raw, 'model_version') = 'Int64')",
        ),
        _optional(
            "probabilities",
            "startsWith(top['probabilities'], '{') AND "
            f"arrayAll(v -> {_number('v')}, prob_kv.2) AND {_unique_keys('prob_kv')} AND "
            + _no_negative_zero("top['probabilities']"),
        ),
        _optional(
            "segment",
            f"startsWith(top['segment'], '{{') AND arrayAll(v -> {_string('v')}, seg_kv.2) "
            f"AND {_unique_keys('seg_kv')}",
        ),
    ]
    return " AND ".join(conditions)


FAST_VALID = fast_valid()


_MODEL = _unquoted("top['model']")


_TS = (
    "if(startsWith(top['timestamp'], '\"'), "
    f"toDateTime64({_SECONDS}, 3, 'UTC') + toIntervalMillisecond("
    "toUInt32(rightPad(substring(extract(top['timestamp'], '\\\\.([0-9]+)'), 1, 3), 3, '0'))), "
    "fromUnixTimestamp64Milli(toInt64OrZero(top['timestamp']), 'UTC'))"
)


def staging_ddl(table: str, max_bytes: int, valid: str = FAST_VALID) -> str:
    """A Memory table whose MATERIALIZED columns parse each raw message exactly once, at insert.

    The message and its parsed top level are EPHEMERAL: used while inserting, never kept, so the
    table holds only what the statements after it read (a third of the bytes otherwise).
    ``top_kv`` is empty unless the message is one valid JSON document: ClickHouse's JSON functions
    parse the whole of it and return their default for anything ``isValidJSON`` rejects (trailing
    content, lone surrogates, bad escapes), so a separate ``isValidJSON`` would only parse it twice.
    ``event_id`` and ``ts`` are computed for every message, valid or not (their functions cannot fail
    on any text, and every statement after this one reads only ``valid`` rows): a default that
    referred to ``valid`` made ClickHouse analyse the validity expression again for each of them, a
    fixed cost of every insert that small batches felt most (BENCHMARKS.md).
    """
    return f"""CREATE TABLE IF NOT EXISTS {table} (
        idx UInt32,
        raw String EPHEMERAL,
        source String,
        partition Int32,
        offset Int64,
        top_kv Array(Tuple(String, String)) EPHEMERAL
            if(length(raw) <= {max_bytes} AND isValidUTF8(raw) AND startsWith(trimLeft(raw), '{{'),
               JSONExtractKeysAndValuesRaw(raw), []),
        top Map(String, String) EPHEMERAL CAST(top_kv, 'Map(String, String)'),
        model_version_raw String MATERIALIZED top['model_version'],
        prediction_raw String MATERIALIZED top['prediction'],
        f_kv Array(Tuple(String, String)) MATERIALIZED JSONExtractKeysAndValuesRaw(top['features']),
        prob_kv Array(Tuple(String, String)) MATERIALIZED
            if(mapContains(top, 'probabilities'), JSONExtractKeysAndValuesRaw(top['probabilities']), []),
        seg_kv Array(Tuple(String, String)) MATERIALIZED
            if(mapContains(top, 'segment'), JSONExtractKeysAndValuesRaw(top['segment']), []),
        model String MATERIALIZED {_MODEL},
        valid UInt8 MATERIALIZED {valid},
        event_id String MATERIALIZED {_unquoted("top['event_id']")},
        ts DateTime64(3, 'UTC') MATERIALIZED ifNull({_TS}, toDateTime64(0, 3, 'UTC'))
    ) ENGINE = Memory"""


_BASE_COLUMNS = {
    "model": "model",
    "event_id": "event_id",
    "ts": "ts",
    "model_version": "multiIf(startsWith(model_version_raw, '\"'), JSONExtractString(model_version_raw), "
    "match(model_version_raw, '^-?[0-9]'), toString(toInt64(model_version_raw)), '')",
    "prediction_num": "if(startsWith(prediction_raw, '\"'), nan, toFloat64(prediction_raw))",
    "prediction_cat": "if(startsWith(prediction_raw, '\"'), JSONExtractString(prediction_raw), NULL)",
    "probabilities": "mapFromArrays(prob_kv.1, arrayMap(v -> toFloat64(v), prob_kv.2))",
    "segment": "mapFromArrays(seg_kv.1, arrayMap(v -> JSONExtractString(v), seg_kv.2))",
    "feature_keys": "f_kv.1",
    "source": "source",
    "source_partition": "partition",
    "source_offset": "offset",
}


# Feature values into the two maps of monitor.storage.events: numbers, and strings or booleans.
_IS_NUMBER = "kv.2 NOT IN ('true', 'false', 'null') AND NOT startsWith(kv.2, '\"')"
_IS_TEXT = "startsWith(kv.2, '\"') OR kv.2 IN ('true', 'false')"
_MAP_COLUMNS = {
    "fnum": f"mapFromArrays(arrayMap(kv -> kv.1, arrayFilter(kv -> {_IS_NUMBER}, f_kv)), "
    f"arrayMap(kv -> toFloat64(kv.2), arrayFilter(kv -> {_IS_NUMBER}, f_kv)))",
    "fcat": f"mapFromArrays(arrayMap(kv -> kv.1, arrayFilter(kv -> {_IS_TEXT}, f_kv)), "
    f"arrayMap(kv -> if(startsWith(kv.2, '\"'), JSONExtractString(kv.2), kv.2), arrayFilter(kv -> {_IS_TEXT}, f_kv)))",
}
# The columns the fast path writes: the same whatever features or models a batch carries.
EVENT_COLUMNS = {**_BASE_COLUMNS, **_MAP_COLUMNS}


@dataclass(frozen=True)
class FastOutcome:
    """What the fast path vouches for (per model, and the features used) and the batch positions
    Python must validate itself."""

    stored_per_model: dict[str, int]
    deferred: list[int]
    features: set[tuple[str, str, FeatureKind]]


class FastPredictionPath:
    """Owns one staging table (unique per consumer process) and the statements that use it.

    Every statement here has a fixed text: how many features, models or messages a batch holds
    changes the data sent, never the SQL.
    """

    def __init__(self, storage: Storage, max_bytes: int, valid: str = FAST_VALID) -> None:
        self._storage = storage
        self.table_name = working_table_name("staging")
        self.table = storage.table(self.table_name)
        self.refused_name = self.table_name + "_refused"
        self.refused = storage.table(self.refused_name)
        storage.command(staging_ddl(self.table, max_bytes, valid))
        storage.command(f"CREATE TABLE IF NOT EXISTS {self.refused} (model String, feature String) ENGINE = Memory")
        self.marks = storage.table(self.table_name + "_marks")
        storage.command(f"CREATE TABLE IF NOT EXISTS {self.marks} (idx UInt32) ENGINE = Memory")

    def stage(
        self, raws: list[bytes], sources: list[tuple[str, int, int]], insert: Callable[[str, pa.Table], None]
    ) -> None:
        self._storage.command(f"TRUNCATE TABLE {self.table}")
        data = pa.table(
            {
                "idx": pa.array(range(len(raws)), pa.uint32()),
                "raw": pa.array(raws, pa.binary()),
                "source": pa.array([s[0] for s in sources], pa.string()),
                "partition": pa.array([s[1] for s in sources], pa.int32()),
                "offset": pa.array([s[2] for s in sources], pa.int64()),
            }
        )
        # One Arrow record batch is one block for the MATERIALIZED columns: parsing the batch in
        # slices keeps the parse's intermediate arrays a slice's size, not the batch's.
        insert(self.table_name, pa.Table.from_batches(data.to_batches(max_chunksize=STAGE_ROWS), schema=data.schema))

    def release(self) -> None:
        """Empty the staging table once its batch is stored: its memory is not held between batches."""
        self._storage.command(f"TRUNCATE TABLE {self.table}")

    def survey(self) -> FastOutcome:
        """One pass over the staged batch: what ClickHouse vouches for, per model, and what it does not."""
        rows = self._storage.rows(
            one_thread(
                f"""SELECT model, countIf(valid), groupArrayIf(idx, NOT valid),
                       groupUniqArrayArrayIf(arrayMap(kv -> (kv.1, if(startsWith(kv.2, '"')
                           OR kv.2 IN ('true', 'false'), 'categorical', 'numerical')),
                           arrayFilter(kv -> kv.2 != 'null', f_kv)), valid)
                FROM {self.table} GROUP BY model"""
            )
        )
        stored: dict[str, int] = {}
        deferred: list[int] = []
        features: set[tuple[str, str, FeatureKind]] = set()
        for model, vouched, rejected, pairs in rows:
            if vouched:
                stored[model] = int(vouched)
            deferred.extend(int(i) for i in rejected)
            features.update((model, f, CATEGORICAL if k == "categorical" else NUMERICAL) for f, k in pairs)
        return FastOutcome(stored, sorted(deferred), features)

    def refuse(
        self, models: list[str], features: list[tuple[str, str]], insert: Callable[[str, pa.Table], None]
    ) -> list[int]:
        """Positions of vouched messages that use a refused model or feature (left to Python, which
        dead-letters them with the reason); they are excluded from :meth:`copy_to`."""
        self._storage.command(f"TRUNCATE TABLE {self.refused}")
        pairs = [(m, "") for m in models] + features
        insert(
            self.refused_name,
            pa.table(
                {
                    "model": pa.array([p[0] for p in pairs], pa.string()),
                    "feature": pa.array([p[1] for p in pairs], pa.string()),
                }
            ),
        )
        self._storage.command(f"TRUNCATE TABLE {self.marks}")
        self._storage.command(
            one_thread(
                f"""INSERT INTO {self.marks} SELECT DISTINCT idx FROM (
                    SELECT idx, model, arrayJoin(arrayPushFront(f_kv.1, '')) AS feature FROM {self.table} WHERE valid
                ) WHERE (model, feature) IN (SELECT model, feature FROM {self.refused})"""
            )
        )
        rows = self._storage.rows(f"SELECT idx FROM {self.marks}")
        return sorted(int(r[0]) for r in rows)

    def copy_to(self, table: str, extra: dict[str, str] | None = None, exclude_refused: bool = False) -> None:
        """Write the vouched-for messages to ``table`` (``events``, or the writer's pending table)."""
        columns = {**EVENT_COLUMNS, **(extra or {})}
        names = ", ".join(quote_identifier(c) for c in columns)
        where = "valid"
        if exclude_refused:
            where += f" AND idx NOT IN (SELECT idx FROM {self.marks})"
        self._storage.command(
            one_thread(
                f"INSERT INTO {table} ({names}) SELECT {', '.join(columns.values())} FROM {self.table} WHERE {where}"
            )
        )

    def insert_events(self, features: object = None) -> None:
        """Write the vouched-for messages straight to ``events`` (no duplicate check; for tests and
        tools; the consumer goes through :class:`monitor.ingest.pending.PendingEvents`)."""
        self.copy_to(self._storage.table("events"))

    def close(self) -> None:
        self._storage.command(f"DROP TABLE IF EXISTS {self.table}")
        self._storage.command(f"DROP TABLE IF EXISTS {self.refused}")
        self._storage.command(f"DROP TABLE IF EXISTS {self.marks}")
