"""Property tests: valid records of every shape survive losslessly; garbage only ever raises
BadRecordError; and the Firehose fast path never accepts what the reference parser rejects, nor
says anything different about what both accept.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddblake.changes import ChangeEvent, parse_json_record, parse_record
from ddblake.changes.parse import MAX_EVENT_TIME_US
from ddblake.changes.transform import fast_line, kinesis_line, reference_line, transform_record
from ddblake.errors import BadRecordError
from ddblake.limits import range_problem

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- DynamoDB JSON ---------------------------------------------------------------------------

texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=16)  # quotes, controls, astral
names = st.one_of(  # DynamoDB refuses empty names, in maps too
    st.sampled_from(
        ["id", "name", "S", "N", "M", "L", "B", "BS", "Keys", "NewImage", "eventName", "dynamodb"]
    ),
    texts.filter(bool),
)
LIMITS = [
    "12345678901234567890123456789012345678",  # 38 significant digits
    "-99999999999999999999999999999999999999",
    "1E-130",
    "-1E-130",
    "9.99E+125",
    "-9.99E+125",
    "0.000000000000000000000000000000000001",
]
number_texts = st.one_of(
    st.sampled_from(["0", "-0", "7", ".5", "5.", "1e5", *LIMITS]),
    st.from_regex(
        r"-?(?:[0-9]{1,38}(?:\.[0-9]{0,12})?|\.[0-9]{1,6})(?:[eE][+-]?[0-9]{1,3})?", fullmatch=True
    ).filter(lambda t: range_problem(Decimal(t)) is None),  # what DynamoDB accepts
    # plain notation as DynamoDB writes it, to the limits
    st.builds(
        lambda digits, zeros: digits + "0" * zeros,
        st.from_regex(r"[1-9][0-9]{0,37}", fullmatch=True),
        st.integers(0, 88),
    ),
    st.builds(
        lambda zeros, digits: "0." + "0" * zeros + digits,
        st.integers(0, 129),
        st.from_regex(r"[1-9](?:[0-9]{0,36}[1-9])?", fullmatch=True),
    ),
)
base64s = st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode())
key_values = st.one_of(
    st.builds(lambda s: {"S": s}, texts),
    st.builds(lambda n: {"N": n}, number_texts),
    st.builds(lambda b: {"B": b}, base64s),
)
scalars = st.one_of(
    key_values,
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    # sets: 1+ members, each once as DynamoDB compares them (NS by value, BS by bytes)
    st.builds(lambda v: {"SS": v}, st.lists(texts, min_size=1, max_size=3, unique=True)),
    st.builds(lambda v: {"NS": v}, st.lists(number_texts, min_size=1, max_size=3, unique_by=Decimal)),
    st.builds(lambda v: {"BS": v}, st.lists(base64s, min_size=1, max_size=3, unique_by=base64.b64decode)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda d: {"M": d}, st.dictionaries(names, inner, max_size=3)),
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
    ),
    max_leaves=12,
)
images = st.dictionaries(names, values, max_size=6)
keys = st.dictionaries(names, key_values, min_size=1, max_size=2)
table_names = st.from_regex(r"[A-Za-z0-9_.-]{3,40}", fullmatch=True)
times = st.one_of(
    st.integers(0, 10**11 - 1),  # seconds
    st.integers(10**11, 10**14 - 1),  # milliseconds
    st.integers(10**14, MAX_EVENT_TIME_US - 1),  # microseconds
)
identities = st.one_of(
    st.none(),
    st.just({"type": "Service", "principalId": "dynamodb.amazonaws.com"}),
    st.dictionaries(st.sampled_from(["type", "principalId", "x"]), st.one_of(texts, st.none()), max_size=3),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def kinesis_records(draw: st.DrawFn) -> dict[str, Any]:
    """A Kinesis-for-DynamoDB record (sometimes with a SequenceNumber), members in any order."""
    op = draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE"]))
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": draw(times), "Keys": draw(keys)}
    for name in ("NewImage", "OldImage"):
        choice = draw(st.sampled_from(["image", "absent", "null"]))
        if choice == "image":
            ddb[name] = draw(images)
        elif choice == "null":
            ddb[name] = None
    if draw(st.booleans()):
        ddb["SequenceNumber"] = str(draw(st.integers(1, 10**30)))
    ddb["SizeBytes"] = draw(st.integers(0, 400_000))
    record: dict[str, Any] = {
        "awsRegion": "ap-northeast-1",
        "eventID": draw(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)),
        "eventName": op,
        "userIdentity": draw(identities),
        "recordFormat": "application/json",
        "tableName": draw(table_names),
        "dynamodb": dict(draw(st.permutations(list(ddb.items())))),
        "eventSource": "aws:dynamodb",
    }
    if draw(st.booleans()):
        record[draw(st.sampled_from(["eventVersion", "x-extra", "approx"]))] = draw(json_scalars)
    return dict(draw(st.permutations(list(record.items()))))


def serialize(record: Any, style: str) -> bytes:
    if style == "dynamodb":  # compact, UTF-8: what DynamoDB writes to Kinesis
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    if style == "ascii":
        return json.dumps(record, separators=(",", ":")).encode()
    if style == "spaced":
        return json.dumps(record, ensure_ascii=False).encode()
    return json.dumps(record, indent=1).encode()


styles = st.sampled_from(["dynamodb", "ascii", "spaced", "indented"])


def to_boto3(value: Any) -> Any:
    """What botocore makes of DynamoDB JSON: B and BS decoded to bytes."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "B" and isinstance(inner, str):
                return {"B": base64.b64decode(inner)}
            if tag == "BS" and isinstance(inner, list):
                return {"BS": [base64.b64decode(b) for b in inner]}
        return {k: to_boto3(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_boto3(v) for v in value]
    return value


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    """("ok", result) or ("bad", message); any other exception fails the test."""
    try:
        return "ok", fn(*args)
    except BadRecordError as e:
        return "bad", str(e)


def assert_fast_agrees(data: bytes) -> None:
    """The fast path accepts only what the reference accepts, and says the same about it."""
    ingested = 1_764_316_800_500_000
    fast = fast_line(data, ingested)
    kind, ref = outcome(reference_line, data, ingested)
    if fast is not None:
        assert kind == "ok", f"fast path accepted what the reference rejects: {ref}"
        assert json.loads(fast[0]) == json.loads(ref[0])  # from_line refuses a set holding a member twice
        assert fast[1:] == ref[1:]
        assert fast[0].endswith(b"\n") and fast[0].count(b"\n") == 1
    kind2, both = outcome(kinesis_line, data, ingested)
    assert kind2 == kind
    if kind == "ok":
        assert json.loads(both[0]) == json.loads(ref[0])


# --- valid input -----------------------------------------------------------------------------


@FUZZ
@given(kinesis_records(), styles, st.integers(0, 10**13))
def test_valid_records_become_one_lossless_line(record: dict[str, Any], style: str, arrival_ms: int) -> None:
    data = serialize(record, style)
    line, event = transform_record(data, arrival_ms)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    ddb = record["dynamodb"]
    assert (event.keys, event.new_image, event.old_image) == (
        ddb["Keys"],
        ddb.get("NewImage"),
        ddb.get("OldImage"),
    )
    assert event == parse_record(record, ingested_us=arrival_ms * 1000)
    assert event.ttl == (record["eventName"] == "REMOVE" and record["userIdentity"] == {
        "type": "Service", "principalId": "dynamodb.amazonaws.com"})  # fmt: skip
    assert event.source == ("streams" if "SequenceNumber" in ddb else "kinesis")
    if style == "dynamodb":  # the fast path splices DynamoDB's own text: byte-identical to to_line()
        assert line == event.to_line()
    assert_fast_agrees(data)


@FUZZ
@given(keys, images, images, st.datetimes(timezones=st.just(dt.UTC), min_value=dt.datetime(1970, 1, 2)))
def test_boto3_records_keep_binary_as_the_exact_base64(
    key: dict[str, Any], new: dict[str, Any], old: dict[str, Any], when: dt.datetime
) -> None:
    record = {
        "eventID": "e1",
        "eventName": "MODIFY",
        "dynamodb": {
            "ApproximateCreationDateTime": when,
            "Keys": to_boto3(key),
            "NewImage": to_boto3(new),
            "OldImage": to_boto3(old),
            "SequenceNumber": "100",
        },
    }
    event = parse_record(record, table="t_1", ingested_us=5)
    assert (event.keys, event.new_image, event.old_image) == (key, new, old)
    assert ChangeEvent.from_line(event.to_line()) == event


# --- garbage ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_bad_records(data: bytes) -> None:
    kind, _ = outcome(kinesis_line, data, 0)
    assert kind == "bad"


@FUZZ
@given(json_values)
def test_arbitrary_json_is_a_bad_record(value: Any) -> None:
    kind, _ = outcome(lambda data: parse_json_record(data, ingested_us=0), json.dumps(value).encode())
    assert kind == "bad"
    kind, _ = outcome(lambda record: parse_record(record, ingested_us=0), value)
    assert kind == "bad"


@st.composite
def broken_records(draw: st.DrawFn) -> Any:
    """A valid record with one value somewhere replaced by arbitrary JSON, or a member dropped."""
    record = copy.deepcopy(draw(kinesis_records()))  # st.just values are shared: never mutate them
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((node, i))
                walk(v)

    walk(record)
    parent, key = draw(st.sampled_from(paths))
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(json_values)
    return record


@FUZZ
@given(broken_records(), styles)
def test_broken_records_raise_only_bad_record_and_the_fast_path_agrees(record: Any, style: str) -> None:
    data = serialize(record, style)
    assert_fast_agrees(data)
    kind, _ = outcome(lambda r: parse_record(r, ingested_us=0), record)  # the decoded form too
    assert kind in {"ok", "bad"}


@st.composite
def mangled_bytes(draw: st.DrawFn) -> bytes:
    """DynamoDB-style bytes with a few bytes deleted, inserted or replaced, like a bad network or bug."""
    data = bytearray(serialize(draw(kinesis_records()), "dynamodb"))
    tokens = [
        *(bytes([c]) for c in b'"\\,:{}[] \n\x00\xff'),
        *(b"null", b'"S"', b'"N":"1"', b"\\u0000", b"\\ud800"),
        *(b'"Keys":{}', b'"eventName":"INSERT",', b'"dynamodb":{},'),
    ]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        if action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "insert":
            data[at:at] = draw(st.sampled_from(tokens))
        elif at < len(data):
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_bytes())
def test_mangled_bytes_raise_only_bad_record_and_the_fast_path_agrees(data: bytes) -> None:
    assert_fast_agrees(data)


# --- the fast path's own guarantees ----------------------------------------------------------


def test_duplicated_fields_follow_json_last_one_wins() -> None:
    base = (
        b'{"eventID":"a","eventName":"INSERT","tableName":"tbl","dynamodb":{"ApproximateCreationDateTime":1,'
        b'"Keys":{"k":{"S":"1"}},"NewImage":{"x":{"S":"first"}}},'
    )
    cases = [
        base + b'"dynamodb":{"ApproximateCreationDateTime":2,"Keys":{"k":{"S":"2"}}}}',  # stale NewImage?
        base + b'"eventName":"REMOVE"}',
        base + b'"eventName":"UPDATE"}',
        base + b'"tableName":"other"}',
        b'{"eventID":"a","eventName":"INSERT","tableName":"tbl","dynamodb":{"ApproximateCreationDateTime":1,'
        b'"Keys":{"k":{"S":"1"}},"NewImage":{"x":{"S":"1"}},"NewImage":null}}',
    ]
    for data in cases:
        assert_fast_agrees(data)
    event = ChangeEvent.from_line(kinesis_line(cases[0], 0)[0])
    assert event.new_image is None and event.keys == {"k": {"S": "2"}}


def test_fast_path_stays_linear_on_hostile_input() -> None:
    # large, almost valid images whose flaw sits at the very end: no catastrophic backtracking
    slashes = "\\\\" * 20  # twenty escaped backslashes
    attributes = ",".join(f'"a{i}":{{"L":[{{"M":{{"x":{{"S":"{slashes}"}}}}}}]}}' for i in range(20_000))
    hostile = [
        b'{"eventID":"a","eventName":"INSERT","tableName":"tbl","dynamodb":{"ApproximateCreationDateTime":1,'
        b'"Keys":{"k":{"S":"1"}},"NewImage":{' + attributes.encode() + b",}}}",
        b'{"dynamodb":{"NewImage":{"a":{"S":"' + b"\\u0041" * 200_000 + b"}}}}",
        b'{"dynamodb":{"NewImage":' + b'{"a":{"L":[' * 2_000 + b"}",
        b'{"dynamodb":{"NewImage":{"a":{"N":"' + b"1" * 500_000 + b'x"}}}}',
    ]
    for data in hostile:
        start = time.perf_counter()
        assert fast_line(data, 0) is None
        assert time.perf_counter() - start < 2.0, "fast path is not linear"
        kind, _ = outcome(kinesis_line, data, 0)
        assert kind == "bad"


def test_fast_path_leaves_the_unusual_to_the_reference_parser() -> None:
    head = (
        b'{"eventID":"a","eventName":"INSERT","tableName":"tbl","dynamodb":{"ApproximateCreationDateTime":1,'
    )
    deep = b'{"L":[{"L":[{"L":[{"L":[{"S":"x"}]}]}]}]}'
    cases = {
        b'"Keys":{"a":{"S":"1"},"b":{"S":"2"},"c":{"S":"3"}}}}': "bad",  # three key attributes
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"s":{"SS":[]}}}}': "bad",  # an empty set
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"d":' + deep + b"}}}": "ok",  # deeper than the fast path
        b'"Keys":{"a":{"S":"1"}}, "NewImage":{"s":{"S":"x"}}}}': "ok",  # whitespace
        b'"Keys":{"a":{"S":"\\ud83d\\ude00"}}}}': "ok",  # an escaped surrogate pair
        b'"Keys":{"a":{"N":"10E+3"}}}}': "ok",  # exponent notation, mantissa not in 1..9.99
        b'"Keys":{"a":{"N":"1' + b"0" * 126 + b'"}}}}': "bad",  # past 9.99...E+125
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"n":{"N":"1E+126"}}}}': "bad",
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"n":{"NS":["1","0.' + b"0" * 130 + b'1"]}}}}': "bad",  # < 1E-130
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"n":{"N":"' + b"1" * 39 + b'"}}}}': "bad",  # 39 digits
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"n":{"N":"1E+99999999999999999999"}}}}': "bad",
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"":{"S":"x"}}}}': "bad",  # an empty attribute name
        b'"Keys":{"a":{"S":"1"}},"NewImage":{"m":{"M":{"":{"S":"x"}}}}}}': "bad",  # an empty map key
        b'"Keys":{"":{"S":"1"}}}}': "bad",
    }
    for tail, expected in cases.items():
        data = head + tail
        assert fast_line(data, 0) is None
        kind, _ = outcome(kinesis_line, data, 0)
        assert kind == expected, tail
        assert_fast_agrees(data)
