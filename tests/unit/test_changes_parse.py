"""The reference parser: every input shape becomes the same change event; garbage is a BadRecordError.

Shapes come from tests/events/ (written after shared/formats/): the DynamoDB Streams Lambda event,
the Kinesis-for-DynamoDB payloads, and boto3's ``get_records`` shape derived from the Lambda one
(``datetime`` times, ``bytes`` binaries).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from ddblake.changes import ChangeEvent, parse_json_record, parse_record, to_micros
from ddblake.changes.parse import MAX_EVENT_TIME_US, check_image, check_keys, loads_strict
from ddblake.errors import BadRecordError

EVENTS = Path(__file__).resolve().parents[1] / "events"
TABLE = "example-ddb-table"
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def streams_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = load("dynamodb-streams-lambda-event.json")["Records"]
    return records


def kinesis_payloads() -> list[dict[str, Any]]:
    payloads: list[dict[str, Any]] = load("kinesis-dynamodb-records.json")
    return payloads


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


def boto3_record(lambda_record: dict[str, Any]) -> dict[str, Any]:
    """A Lambda-shape Streams record as boto3's get_records returns it."""
    record = copy.deepcopy(lambda_record)
    ddb = record["dynamodb"]
    ddb["ApproximateCreationDateTime"] = dt.datetime.fromtimestamp(ddb["ApproximateCreationDateTime"], dt.UTC)
    for name in ("Keys", "NewImage", "OldImage"):
        if name in ddb:
            ddb[name] = to_boto3(ddb[name])
    del record["eventSourceARN"]  # get_records names no table: the caller does
    return record


# --- every shape -------------------------------------------------------------------------------


def test_lambda_streams_record_becomes_a_streams_event() -> None:
    record = streams_records()[1]
    event = parse_record(record, ingested_us=42)
    ddb = record["dynamodb"]
    assert event == ChangeEvent(
        op="MODIFY",
        table=TABLE,  # from eventSourceARN
        keys=ddb["Keys"],
        new_image=ddb["NewImage"],
        old_image=ddb["OldImage"],
        event_id=record["eventID"],
        event_time_us=ddb["ApproximateCreationDateTime"] * 1_000_000,
        sequence=ddb["SequenceNumber"],
        source="streams",
        ttl=False,
        ingested_us=42,
    )


def test_boto3_get_records_shape_gives_the_same_event_as_the_lambda_shape() -> None:
    for record in streams_records():
        from_lambda = parse_record(record, ingested_us=7)
        from_boto3 = parse_record(boto3_record(record), table=TABLE, ingested_us=7)
        assert from_boto3 == from_lambda
        assert from_boto3.to_line() == from_lambda.to_line()


def test_boto3_binary_comes_back_as_the_exact_base64() -> None:
    record = streams_records()[0]
    event = parse_record(boto3_record(record), table=TABLE, ingested_us=1)
    image = record["dynamodb"]["NewImage"]
    assert event.new_image is not None
    assert event.new_image["photo"] == image["photo"]
    assert event.new_image["emptyBinary"] == {"B": ""}
    assert event.new_image["blobs"] == image["blobs"]
    assert event.new_image["history"]["L"][4] == image["history"]["L"][4]  # B nested in a list


def test_boto3_naive_datetime_is_utc() -> None:
    record = boto3_record(streams_records()[0])
    aware = record["dynamodb"]["ApproximateCreationDateTime"]
    record["dynamodb"]["ApproximateCreationDateTime"] = aware.replace(tzinfo=None)
    assert (
        parse_record(record, table=TABLE, ingested_us=1).event_time_us == int(aware.timestamp()) * 1_000_000
    )


@pytest.mark.parametrize("index", range(5))
def test_kinesis_payload_becomes_a_kinesis_event(index: int) -> None:
    payload = kinesis_payloads()[index]
    event = parse_json_record(json.dumps(payload).encode(), ingested_us=99)
    ddb = payload["dynamodb"]
    assert event.source == "kinesis"
    assert event.sequence is None
    assert event.table == TABLE
    assert event.event_id == payload["eventID"]
    assert (event.keys, event.new_image, event.old_image) == (
        ddb["Keys"],
        ddb.get("NewImage"),
        ddb.get("OldImage"),
    )
    assert event.ingested_us == 99


def test_kinesis_millisecond_and_microsecond_times() -> None:
    payloads = kinesis_payloads()
    assert parse_record(payloads[0], ingested_us=0).event_time_us == 1764316800123_000  # ms
    assert parse_record(payloads[2], ingested_us=0).event_time_us == 1764320400000001  # µs


def test_every_attribute_type_and_numbers_at_the_limits_pass_unchanged() -> None:
    payload = kinesis_payloads()[0]
    image = payload["dynamodb"]["NewImage"]
    event = parse_json_record(json.dumps(payload, ensure_ascii=False).encode(), ingested_us=0)
    assert event.new_image == image
    assert {next(iter(v)) for v in image.values()} == {
        "S",
        "N",
        "B",
        "BOOL",
        "NULL",
        "M",
        "L",
        "SS",
        "NS",
        "BS",
    }
    numbers = {v["N"] for v in image.values() if "N" in v}
    assert {"12345678901234567890123456789012345678", "1E-130", "-1E-130", "9.99E+125"} <= numbers
    back = ChangeEvent.from_line(event.to_line())
    assert back == event


def test_keys_only_record_has_no_images() -> None:
    event = parse_record(kinesis_payloads()[4], ingested_us=0)
    assert event.new_image is None and event.old_image is None
    assert event.keys == {"pk": {"N": "-1E-130"}, "sk": {"B": base64.b64encode(b"\x00key").decode()}}


def test_explicit_table_and_source_win() -> None:
    event = parse_record(kinesis_payloads()[0], table="other_table", source="streams", ingested_us=0)
    assert (event.table, event.source) == ("other_table", "streams")


# --- times -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "micros"),
    [
        (1764316800, 1764316800_000000),  # Streams: seconds
        (1764316800.5, 1764316800_500000),  # seconds with a fraction
        (1764316800123, 1764316800123_000),  # Kinesis: milliseconds
        (1764316800123456, 1764316800123456),  # Kinesis MICROSECOND precision
        (0, 0),
        (dt.datetime(2025, 11, 28, 8, 0, 0, 123456, tzinfo=dt.UTC), 1764316800123456),
        (dt.datetime(2025, 11, 28, 17, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=9))), 1764316800000001),
    ],
)
def test_to_micros_normalises_every_unit(raw: Any, micros: int) -> None:
    assert to_micros(raw) == micros


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "1764316800",
        True,
        -1,
        float("nan"),
        float("inf"),
        -float("inf"),
        10**30,
        [1],
        {"N": "1"},
        dt.datetime(1969, 12, 31, 23, 59, tzinfo=dt.UTC),
        MAX_EVENT_TIME_US,
    ],
)
def test_to_micros_rejects_what_is_not_a_time(raw: Any) -> None:
    with pytest.raises(BadRecordError):
        to_micros(raw)


# --- TTL ---------------------------------------------------------------------------------------


def test_ttl_remove_is_flagged() -> None:
    assert parse_record(kinesis_payloads()[3], ingested_us=0).ttl is True
    assert parse_record(streams_records()[3], ingested_us=0).ttl is True


def test_user_remove_is_not_ttl() -> None:
    assert parse_record(kinesis_payloads()[2], ingested_us=0).ttl is False
    assert parse_record(streams_records()[2], ingested_us=0).ttl is False


@pytest.mark.parametrize("op", ["INSERT", "MODIFY"])
def test_ttl_identity_counts_only_on_remove(op: str) -> None:
    record = {**kinesis_payloads()[1], "eventName": op, "userIdentity": TTL_IDENTITY}
    assert parse_record(record, ingested_us=0).ttl is False


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "User", "principalId": "dynamodb.amazonaws.com"},
        {"type": "Service", "principalId": "lambda.amazonaws.com"},
        {"principalId": "dynamodb.amazonaws.com"},
        {"type": "Service"},
        {},
        None,
    ],
)
def test_only_dynamodbs_service_identity_is_ttl(identity: Any) -> None:
    record = {**kinesis_payloads()[3], "userIdentity": identity}
    assert parse_record(record, ingested_us=0).ttl is False


# --- garbage -----------------------------------------------------------------------------------


def _valid() -> dict[str, Any]:
    return copy.deepcopy(kinesis_payloads()[1])


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    record = _valid()
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return record


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    record = _valid()
    target = record
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return record


GARBAGE: dict[str, Any] = {
    "list": [_valid()],
    "string": "INSERT",
    "number": 5,
    "null": None,
    "empty object": {},
    "unknown eventName": _with(("eventName",), "UPDATE"),
    "lower-case eventName": _with(("eventName",), "insert"),
    "eventName list": _with(("eventName",), ["INSERT"]),
    "eventName object": _with(("eventName",), {"S": "INSERT"}),
    "no eventName": _without(("eventName",)),
    "no dynamodb": _without(("dynamodb",)),
    "dynamodb list": _with(("dynamodb",), []),
    "no eventID": _without(("eventID",)),
    "empty eventID": _with(("eventID",), ""),
    "eventID number": _with(("eventID",), 7),
    "eventID lone surrogate": _with(("eventID",), "a\udfff"),
    "no table": _without(("tableName",)),
    "table number": _with(("tableName",), 7),
    "table with slash": _with(("tableName",), "../etc"),
    "table too short": _with(("tableName",), "ab"),
    "no time": _without(("dynamodb", "ApproximateCreationDateTime")),
    "time string": _with(("dynamodb", "ApproximateCreationDateTime"), "1764316800123"),
    "time negative": _with(("dynamodb", "ApproximateCreationDateTime"), -5),
    "time bool": _with(("dynamodb", "ApproximateCreationDateTime"), True),
    "sequence number int": _with(("dynamodb", "SequenceNumber"), 12),
    "sequence number words": _with(("dynamodb", "SequenceNumber"), "12ab"),
    "sequence number unicode digits": _with(("dynamodb", "SequenceNumber"), "١٢٣"),
    "sequence number of 41 digits": _with(("dynamodb", "SequenceNumber"), "1" * 41),
    "no keys": _without(("dynamodb", "Keys")),
    "empty keys": _with(("dynamodb", "Keys"), {}),
    "keys list": _with(("dynamodb", "Keys"), [{"id": {"S": "1"}}]),
    "key of type M": _with(("dynamodb", "Keys"), {"id": {"M": {}}}),
    "key of type BOOL": _with(("dynamodb", "Keys"), {"id": {"BOOL": True}}),
    "image string": _with(("dynamodb", "NewImage"), "{}"),
    "image list": _with(("dynamodb", "NewImage"), []),
    "old image number": _with(("dynamodb", "OldImage"), 1),
    "attribute not tagged": _with(("dynamodb", "NewImage"), {"a": "x"}),
    "attribute two tags": _with(("dynamodb", "NewImage"), {"a": {"S": "x", "N": "1"}}),
    "attribute no tag": _with(("dynamodb", "NewImage"), {"a": {}}),
    "unknown tag": _with(("dynamodb", "NewImage"), {"a": {"X": "1"}}),
    "S number": _with(("dynamodb", "NewImage"), {"a": {"S": 5}}),
    "N number": _with(("dynamodb", "NewImage"), {"a": {"N": 5}}),
    "N text": _with(("dynamodb", "NewImage"), {"a": {"N": "five"}}),
    "N NaN": _with(("dynamodb", "NewImage"), {"a": {"N": "NaN"}}),
    "N Infinity": _with(("dynamodb", "NewImage"), {"a": {"N": "Infinity"}}),
    "N unicode digits": _with(("dynamodb", "NewImage"), {"a": {"N": "٣"}}),
    "N empty": _with(("dynamodb", "NewImage"), {"a": {"N": ""}}),
    "B not base64": _with(("dynamodb", "NewImage"), {"a": {"B": "not base64!"}}),
    "B bad padding": _with(("dynamodb", "NewImage"), {"a": {"B": "QQ="}}),
    "B number": _with(("dynamodb", "NewImage"), {"a": {"B": 1}}),
    "BOOL string": _with(("dynamodb", "NewImage"), {"a": {"BOOL": "true"}}),
    "NULL false": _with(("dynamodb", "NewImage"), {"a": {"NULL": False}}),
    "SS string": _with(("dynamodb", "NewImage"), {"a": {"SS": "x"}}),
    "SS empty": _with(("dynamodb", "NewImage"), {"a": {"SS": []}}),
    "NS empty": _with(("dynamodb", "NewImage"), {"a": {"NS": []}}),
    "BS empty": _with(("dynamodb", "NewImage"), {"a": {"BS": []}}),
    "three key attributes": _with(("dynamodb", "Keys"), {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}),
    "SS numbers": _with(("dynamodb", "NewImage"), {"a": {"SS": [1]}}),
    "NS bad member": _with(("dynamodb", "NewImage"), {"a": {"NS": ["1", "x"]}}),
    "BS bad member": _with(("dynamodb", "NewImage"), {"a": {"BS": ["!!"]}}),
    "M list": _with(("dynamodb", "NewImage"), {"a": {"M": []}}),
    "M bad inside": _with(("dynamodb", "NewImage"), {"a": {"M": {"b": {"S": None}}}}),
    "L object": _with(("dynamodb", "NewImage"), {"a": {"L": {}}}),
    "L bad inside": _with(("dynamodb", "NewImage"), {"a": {"L": [{"N": 1}]}}),
    "lone surrogate": _with(("dynamodb", "NewImage"), {"a": {"S": "\ud800"}}),
    "lone surrogate name": _with(("dynamodb", "NewImage"), {"\udc00": {"S": "x"}}),
    "userIdentity string": _with(("userIdentity",), "dynamodb.amazonaws.com"),
    "bytes outside boto3": _with(("dynamodb", "NewImage"), {"a": {"B": b"\x00"}}),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_is_a_bad_record(name: str) -> None:
    with pytest.raises(BadRecordError):
        parse_record(GARBAGE[name], ingested_us=0)


def test_nesting_deeper_than_dynamodb_allows_is_a_bad_record() -> None:
    value: dict[str, Any] = {"S": "x"}
    for _ in range(33):
        value = {"L": [value]}
    with pytest.raises(BadRecordError, match="nested deeper"):
        parse_record(_with(("dynamodb", "NewImage"), {"a": value}), ingested_us=0)
    value = {"S": "x"}
    for _ in range(31):
        value = {"M": {"m": value}}
    assert parse_record(_with(("dynamodb", "NewImage"), {"a": value}), ingested_us=0).new_image == {
        "a": value
    }


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"{",
        b'{"eventName": "INSERT"',
        b"\xff\xfe{}",
        "\ufeff{}".encode(),
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": 1}{"b": 2}',
        b"1" * 5000,
    ],
)
def test_parse_json_record_rejects_what_is_not_json(data: bytes) -> None:
    with pytest.raises(BadRecordError):
        parse_json_record(data, ingested_us=0)


def test_error_messages_never_quote_item_data() -> None:
    planted = "SECRET-4711"
    cases = [
        _with(("dynamodb", "NewImage"), {"a": {"N": planted}}),
        _with(("dynamodb", "NewImage"), {"a": {"B": planted}}),
        _with(("dynamodb", "NewImage"), {planted: {"Q": planted}}),
        _with(("dynamodb", "Keys"), {planted: {"M": {}}}),
        _with(("eventName",), planted),
        _with(("eventName",), "INSERTX" + "A" * 40),
        _with(("tableName",), planted + "/x"),
    ]
    for record in cases:
        with pytest.raises(BadRecordError) as err:
            parse_record(record, ingested_us=0)
        assert planted not in str(err.value)
        assert "A" * 30 not in str(err.value)


def test_check_helpers_return_their_input_unchanged() -> None:
    image = kinesis_payloads()[0]["dynamodb"]["NewImage"]
    assert check_image(image, "NewImage") is image
    assert check_image(None, "OldImage") is None
    keys = {"id": {"S": "1"}}
    assert check_keys(keys) is keys


def test_loads_strict_reads_bytes_and_text() -> None:
    assert loads_strict(b'{"a": [1, "\\u00e9"]}') == {"a": [1, "é"]}
    assert loads_strict('{"a": true}') == {"a": True}


def test_ingested_us_must_be_an_int() -> None:
    with pytest.raises(TypeError):
        parse_record(_valid(), ingested_us=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["firehose-kinesis-event.json", "firehose-mixed-event.json"])
def test_a_firehose_record_parses_to_the_event_the_transform_writes(name: str) -> None:
    """The parser's Firehose shape and the Lambda's answer agree record by record: an Ok record is
    the raw line the Lambda wrote (as JSON: the Lambda keeps images' bytes), and the parser refuses
    a ProcessingFailed one too."""
    from ddblake.aws.firehose_transform import transform_records
    from ddblake.changes.parse import parse_firehose_record

    records = load(name)["records"]
    answers = transform_records(records)
    assert [a["recordId"] for a in answers] == [r["recordId"] for r in records]
    ok = failed = 0
    for record, answer in zip(records, answers, strict=True):
        if answer["result"] == "Ok":
            written = json.loads(base64.b64decode(answer["data"]))
            assert json.loads(parse_firehose_record(record).to_line()) == written
            ok += 1
        else:
            with pytest.raises(BadRecordError):
                parse_firehose_record(record, now_us=1)
            failed += 1
    assert ok > 0
    assert failed > 0 or name == "firehose-kinesis-event.json"


def test_a_firehose_record_without_an_arrival_time_takes_the_clock_given() -> None:
    from ddblake.changes.parse import firehose_arrival_us, parse_firehose_record

    (record, *_) = load("firehose-kinesis-event.json")["records"]
    record = copy.deepcopy(record)
    assert firehose_arrival_us(record) is not None
    record.pop("approximateArrivalTimestamp", None)
    record.pop("kinesisRecordMetadata", None)
    assert firehose_arrival_us(record) is None
    assert parse_firehose_record(record, now_us=1_700_000_000_000_000).ingested_us == 1_700_000_000_000_000
    with pytest.raises(BadRecordError, match="not base64"):
        parse_firehose_record({**record, "data": "not base64!"})
