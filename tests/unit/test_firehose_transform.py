"""The Firehose transform Lambda and the transform core that ``ddblake capture`` shares.

Events come from tests/events/: ``firehose-kinesis-event.json`` wraps the payloads of
``kinesis-dynamodb-records.json`` (the last record again, pretty-printed, to take the reference
parser's path), and ``firehose-mixed-event.json`` mixes some of those records with garbage of every
kind. A record of the mixed batch is good exactly when its recordId is in the first event.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import (
    KinesisFirehoseDataTransformationRecord,
    KinesisFirehoseDataTransformationRecordMetadata,
    KinesisFirehoseDataTransformationResponse,
)

from ddblake.aws import firehose_transform
from ddblake.aws.firehose_transform import handler, transform_batch, transform_records
from ddblake.changes import ChangeEvent, parse_record
from ddblake.changes import transform as core
from ddblake.changes.transform import (
    line_for_stream_record,
    partition_keys,
    raw_prefix,
    transform_record,
    transform_stream_record,
)
from ddblake.errors import BadRecordError

EVENTS = Path(__file__).resolve().parents[1] / "events"
TABLE = "example-ddb-table"
PLANTED = "PLANTED-ITEM-VALUE-4711"  # planted in the garbage records of the mixed batch


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


class FakeContext:
    """What Powertools reads from a Lambda context."""

    function_name = "ddblake-firehose-transform"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:111111111111:function:ddblake-firehose-transform"
    memory_limit_in_mb = 512
    aws_request_id = "6f2ad1d4-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/ddblake-firehose-transform"
    log_stream_name = "2025/11/28/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the Lambda's Powertools logger writes during the test."""
    stream = io.StringIO()
    log_handler = firehose_transform.logger.logger_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(stream)
    try:
        yield stream
    finally:
        log_handler.setStream(previous)


@pytest.fixture(autouse=True)
def _no_expected_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler reads DDBLAKE_TABLE; one left in a developer's shell must not decide these tests."""
    monkeypatch.delenv(firehose_transform.TABLE_ENV, raising=False)


def decoded(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["data"], validate=True)


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
    """A Lambda-shape Streams record as boto3's get_records returns it: datetime, bytes, no ARN."""
    record = copy.deepcopy(lambda_record)
    ddb = record["dynamodb"]
    ddb["ApproximateCreationDateTime"] = dt.datetime.fromtimestamp(ddb["ApproximateCreationDateTime"], dt.UTC)
    for name in ("Keys", "NewImage", "OldImage"):
        if name in ddb:
            ddb[name] = to_boto3(ddb[name])
    del record["eventSourceARN"]
    return record


def expected_partition(event_time_us: int) -> dict[str, str]:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=event_time_us)
    return {
        "table": TABLE,
        "year": f"{when:%Y}",
        "month": f"{when:%m}",
        "day": f"{when:%d}",
        "hour": f"{when:%H}",
    }


# --- a batch of good records -------------------------------------------------------------------


def test_every_record_becomes_one_lossless_line() -> None:
    event = load("firehose-kinesis-event.json")
    payloads = load("kinesis-dynamodb-records.json")
    payloads.append(payloads[1])  # the pretty-printed copy
    response = handler(event, FakeContext())
    records = response["records"]
    assert [r["recordId"] for r in records] == [r["recordId"] for r in event["records"]]
    for out, given, payload in zip(records, event["records"], payloads, strict=True):
        assert out["result"] == "Ok"
        line = decoded(out)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        change = ChangeEvent.from_line(line)
        ddb = payload["dynamodb"]
        assert change.keys == ddb["Keys"]
        assert change.new_image == ddb.get("NewImage")
        assert change.old_image == ddb.get("OldImage")
        assert change.event_id == payload["eventID"]
        assert (change.table, change.source, change.sequence) == (TABLE, "kinesis", None)
        assert change.ingested_us == given["kinesisRecordMetadata"]["approximateArrivalTimestamp"] * 1000
        assert out["metadata"] == {"partitionKeys": expected_partition(change.event_time_us)}
        assert change == parse_record(payload, ingested_us=change.ingested_us)


def test_times_ttl_and_partitions_of_the_sample_batch() -> None:
    records = transform_records(load("firehose-kinesis-event.json")["records"])
    changes = [ChangeEvent.from_line(decoded(r)) for r in records]
    assert [c.op for c in changes] == ["INSERT", "MODIFY", "REMOVE", "REMOVE", "INSERT", "INSERT", "MODIFY"]
    assert [c.ttl for c in changes] == [False, False, False, True, False, False, False]
    assert changes[0].event_time_us == 1764316800123_000  # milliseconds
    assert changes[2].event_time_us == 1764320400000001  # microseconds
    keys = [r["metadata"]["partitionKeys"] for r in records]
    assert keys[1] == {
        "table": TABLE,
        "year": "2025",
        "month": "11",
        "day": "28",
        "hour": "08",
    }  # 08:59:59.999
    assert keys[2] == {
        "table": TABLE,
        "year": "2025",
        "month": "11",
        "day": "28",
        "hour": "09",
    }  # 09:00:00.000001
    assert keys[3] == {"table": TABLE, "year": "2025", "month": "12", "day": "31", "hour": "23"}
    assert keys[4] == {"table": TABLE, "year": "2024", "month": "01", "day": "01", "hour": "00"}


def test_fast_path_and_reference_parser_write_the_same_line() -> None:
    event = load("firehose-kinesis-event.json")
    raw = [decoded(r) for r in event["records"]]
    assert [core.fast_line(d, 0) is not None for d in raw] == [True] * 5 + [False, False]  # deep; pretty
    for data in raw:
        assert core.kinesis_line(data, 5) == core.reference_line(data, 5)
    modify, pretty = records = transform_records([event["records"][1], event["records"][6]])
    lines = [ChangeEvent.from_line(decoded(r)) for r in records]
    assert lines[0].new_image == lines[1].new_image and lines[0].old_image == lines[1].old_image
    assert modify["metadata"] == pretty["metadata"]


def test_a_retried_batch_gives_byte_identical_answers() -> None:
    event = load("firehose-mixed-event.json")
    first = handler(copy.deepcopy(event), FakeContext())
    second = handler(copy.deepcopy(event), FakeContext())
    assert first == second


def test_response_matches_powertools_data_classes() -> None:
    event = load("firehose-mixed-event.json")
    response = handler(event, FakeContext())
    expected = KinesisFirehoseDataTransformationResponse()
    for out in response["records"]:
        metadata = out.get("metadata")
        expected.add_record(
            KinesisFirehoseDataTransformationRecord(
                record_id=out["recordId"],
                result=out["result"],
                data=out["data"],
                metadata=KinesisFirehoseDataTransformationRecordMetadata(
                    partition_keys=metadata["partitionKeys"]
                )
                if metadata
                else None,
            )
        )
    assert response == expected.asdict()


# --- a batch with garbage ----------------------------------------------------------------------


def test_mixed_batch_fails_only_the_bad_records() -> None:
    good_ids = {r["recordId"] for r in load("firehose-kinesis-event.json")["records"]}
    event = load("firehose-mixed-event.json")
    result = transform_batch(event["records"])
    assert [r["recordId"] for r in result.records] == [r["recordId"] for r in event["records"]]
    assert len({r["recordId"] for r in result.records}) == len(event["records"])
    for out, given in zip(result.records, event["records"], strict=True):
        if given["recordId"] in good_ids:
            assert out["result"] == "Ok"
            assert ChangeEvent.from_line(decoded(out)).table == TABLE
        else:
            assert out == {"recordId": given["recordId"], "result": "ProcessingFailed", "data": given["data"]}
    assert result.ok == len(good_ids & {r["recordId"] for r in event["records"]}) == 6
    assert result.failed == len(event["records"]) - 6 == 17
    reasons = dict(result.failures)
    assert len(reasons) == 17
    assert {"data is not base64", "record is list, not a JSON object"} <= set(reasons.values())
    assert any("unknown eventName UPDATE" in r for r in reasons.values())
    assert any("B value is not base64" in r for r in reasons.values())
    assert all(PLANTED not in r for r in reasons.values())


@pytest.mark.parametrize("data", [None, 5, "", "=", "YQ", "YQ==YQ==", "ÿÿÿÿ", "a b c d", "YWJj\nZGVm"])
def test_data_that_is_not_base64_json_fails_and_comes_back_unchanged(data: Any) -> None:
    record = {"recordId": "r1", "approximateArrivalTimestamp": 1, "data": data}
    assert transform_records([record]) == [{"recordId": "r1", "result": "ProcessingFailed", "data": data}]


def test_a_record_without_record_id_fails_the_invocation() -> None:
    event = load("firehose-kinesis-event.json")
    del event["records"][2]["recordId"]
    with pytest.raises(BadRecordError, match="recordId"):
        handler(event, FakeContext())


def test_empty_batch() -> None:
    event = {**load("firehose-kinesis-event.json"), "records": []}
    assert handler(event, FakeContext()) == {"records": []}


def test_an_unexpected_error_fails_the_record_not_the_batch(
    monkeypatch: pytest.MonkeyPatch, logs: io.StringIO
) -> None:
    def broken(data: bytes, ingested_us: int) -> None:
        if b"INSERT" in data:
            raise RuntimeError(PLANTED)

    monkeypatch.setattr(firehose_transform, "fast_line", broken)
    event = load("firehose-kinesis-event.json")
    response = handler(event, FakeContext())
    results = [r["result"] for r in response["records"]]
    assert results == ["ProcessingFailed", "Ok", "Ok", "Ok", "ProcessingFailed", "ProcessingFailed", "Ok"]
    assert "internal error RuntimeError" in logs.getvalue()
    assert PLANTED not in logs.getvalue()


# --- records of another table ------------------------------------------------------------------

OTHER = "other-table"


def for_table(record: dict[str, Any], table: str) -> dict[str, Any]:
    """``record`` with the change's ``tableName`` rewritten, leaving its layout (and path) alone."""
    data = re.sub(rb'("tableName":\s*)"[^"]*"', rb'\1"' + table.encode() + b'"', decoded(record))
    return {**record, "data": base64.b64encode(data).decode("ascii")}


def test_with_its_table_set_the_batch_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    event = load("firehose-kinesis-event.json")
    unset = handler(copy.deepcopy(event), FakeContext())
    monkeypatch.setenv("DDBLAKE_TABLE", TABLE)
    assert handler(copy.deepcopy(event), FakeContext()) == unset
    assert {r["result"] for r in unset["records"]} == {"Ok"}


def test_a_record_of_another_table_fails_naming_both_tables(
    monkeypatch: pytest.MonkeyPatch, logs: io.StringIO
) -> None:
    records = load("firehose-kinesis-event.json")["records"]
    assert core.fast_line(decoded(records[0]), 0) and not core.fast_line(decoded(records[6]), 0)
    stray = [for_table(records[0], OTHER), for_table(records[6], OTHER)]  # fast path; reference path
    event = {**load("firehose-kinesis-event.json"), "records": [records[1], *stray, records[2]]}
    monkeypatch.setenv("DDBLAKE_TABLE", TABLE)
    out = handler(event, FakeContext())["records"]
    assert [r["result"] for r in out] == ["Ok", "ProcessingFailed", "ProcessingFailed", "Ok"]
    assert out[1:3] == [
        {"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]} for r in stray
    ]
    assert {r["metadata"]["partitionKeys"]["table"] for r in (out[0], out[3])} == {TABLE}
    reason = f"record is for table {OTHER}, this stream delivers table {TABLE}"
    assert transform_batch(stray, TABLE).failures == [(r["recordId"], reason) for r in stray]
    warning = json.loads(logs.getvalue().splitlines()[-1])
    assert [f["reason"] for f in warning["failures"]] == [reason, reason]


@pytest.mark.parametrize("setting", [None, ""])
def test_without_its_table_any_table_passes_as_before(
    monkeypatch: pytest.MonkeyPatch, setting: str | None
) -> None:
    if setting is not None:
        monkeypatch.setenv("DDBLAKE_TABLE", setting)
    records = load("firehose-kinesis-event.json")["records"]
    stray = [for_table(records[0], OTHER), for_table(records[6], OTHER)]
    out = handler({**load("firehose-kinesis-event.json"), "records": stray}, FakeContext())["records"]
    assert [r["result"] for r in out] == ["Ok", "Ok"]
    assert [r["metadata"]["partitionKeys"]["table"] for r in out] == [OTHER, OTHER]
    assert [ChangeEvent.from_line(decoded(r)).table for r in out] == [OTHER, OTHER]


# --- arrival time ------------------------------------------------------------------------------


def test_ingested_us_prefers_kinesis_arrival_then_the_record_then_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = load("firehose-kinesis-event.json")["records"][0]
    with_kinesis = copy.deepcopy(given)
    record_only = copy.deepcopy(given)
    del record_only["kinesisRecordMetadata"]
    neither = copy.deepcopy(record_only)
    del neither["approximateArrivalTimestamp"]
    bad = copy.deepcopy(given)
    bad["kinesisRecordMetadata"]["approximateArrivalTimestamp"] = "soon"
    bad["approximateArrivalTimestamp"] = True
    monkeypatch.setattr(firehose_transform.time, "time_ns", lambda: 1_800_000_000_123_456_789)
    out = transform_records([with_kinesis, record_only, neither, bad])
    ingested = [ChangeEvent.from_line(decoded(r)).ingested_us for r in out]
    assert ingested == [
        given["kinesisRecordMetadata"]["approximateArrivalTimestamp"] * 1000,
        given["approximateArrivalTimestamp"] * 1000,
        1_800_000_000_123_456,
        1_800_000_000_123_456,
    ]


# --- logs --------------------------------------------------------------------------------------


def _item_strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _item_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _item_strings(v)
    elif isinstance(value, str):
        yield value


def test_logs_hold_counts_and_ids_never_item_data(
    logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load("firehose-mixed-event.json")
    firehose_transform.logger.setLevel("DEBUG")
    try:
        handler(event, FakeContext())
        handler(load("firehose-kinesis-event.json"), FakeContext())
    finally:
        firehose_transform.logger.setLevel("INFO")
    written = logs.getvalue() + capsys.readouterr().out  # the logger, and Metrics' EMF on stdout
    entries = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert entries, "the handler logs one entry per batch"
    warning = next(e for e in entries if e["level"] == "WARNING")
    assert (warning["records"], warning["ok"], warning["failed"]) == (23, 6, 17)
    assert {f["recordId"] for f in warning["failures"]} <= {r["recordId"] for r in event["records"]}
    assert warning["function_request_id"] == FakeContext.aws_request_id
    info = next(e for e in entries if e["level"] == "INFO")
    assert (info["records"], info["ok"], info["failed"]) == (7, 7, 0)
    payloads = load("kinesis-dynamodb-records.json")
    values = {
        s
        for p in payloads
        for n in ("Keys", "NewImage", "OldImage")
        for s in _item_strings(p["dynamodb"].get(n))
    }
    values = {v for v in values if len(v) >= 5 and v not in {"False", "level"}} | {PLANTED}
    leaked = sorted(v for v in values if v in written or json.dumps(v)[1:-1] in written)
    assert leaked == []
    assert "RecordsFailed" in written  # the metrics did go out


# --- the core capture shares -------------------------------------------------------------------


def test_transform_record_returns_the_line_and_its_event() -> None:
    given = load("firehose-kinesis-event.json")["records"][3]
    line, change = transform_record(
        decoded(given), given["kinesisRecordMetadata"]["approximateArrivalTimestamp"]
    )
    assert decoded(transform_records([given])[0]) == line
    assert ChangeEvent.from_line(line) == change
    assert change.ttl is True


def test_transform_record_raises_bad_record_error_for_garbage() -> None:
    with pytest.raises(BadRecordError):
        transform_record(b'{"eventName":"UPDATE"}', 1)
    with pytest.raises(TypeError):
        transform_record(b"{}", -1)


def test_capture_gets_the_same_line_from_boto3_records() -> None:
    lambda_event = load("dynamodb-streams-lambda-event.json")
    for record in lambda_event["Records"]:
        line, change = transform_stream_record(boto3_record(record), TABLE, 1_764_316_900_000_000)
        assert line == line_for_stream_record(boto3_record(record), TABLE, 1_764_316_900_000_000)
        assert line == change.to_line() and line.count(b"\n") == 1 and line.endswith(b"\n")
        assert change == parse_record(record, ingested_us=1_764_316_900_000_000)  # Lambda shape: same event
        assert (change.source, change.sequence) == ("streams", record["dynamodb"]["SequenceNumber"])
        ddb = record["dynamodb"]
        assert (change.keys, change.new_image, change.old_image) == (
            ddb["Keys"], ddb.get("NewImage"), ddb.get("OldImage"))  # fmt: skip
    ttl = transform_stream_record(boto3_record(lambda_event["Records"][3]), TABLE, 1)[1]
    assert ttl.ttl is True


def test_capture_and_firehose_write_the_same_images_for_the_same_change() -> None:
    stream = load("dynamodb-streams-lambda-event.json")["Records"][0]  # INSERT of the every-type item
    from_capture = ChangeEvent.from_line(line_for_stream_record(boto3_record(stream), TABLE, 1))
    from_firehose = ChangeEvent.from_line(
        decoded(transform_records([load("firehose-kinesis-event.json")["records"][0]])[0])
    )
    assert from_capture.new_image == from_firehose.new_image
    assert from_capture.keys == from_firehose.keys


def test_capture_quarantines_garbage_with_bad_record_error() -> None:
    with pytest.raises(BadRecordError):
        line_for_stream_record({"eventName": "INSERT"}, TABLE, 1)
    with pytest.raises(BadRecordError):
        transform_stream_record({"eventName": "INSERT", "eventID": "1", "dynamodb": {}}, "bad/table", 1)


def test_partition_keys_and_prefix_are_zero_padded_utc() -> None:
    assert partition_keys("t_1", 0) == {
        "table": "t_1",
        "year": "1970",
        "month": "01",
        "day": "01",
        "hour": "00",
    }
    us = int(dt.datetime(2026, 2, 3, 4, 59, 59, 999999, tzinfo=dt.UTC).timestamp()) * 1_000_000 + 999_999
    assert partition_keys("t_1", us) == {
        "table": "t_1",
        "year": "2026",
        "month": "02",
        "day": "03",
        "hour": "04",
    }
    assert raw_prefix("t_1", us) == "raw/t_1/2026/02/03/04/"
    first = partition_keys("t_1", us)
    first["table"] = "changed"
    assert partition_keys("t_1", us)["table"] == "t_1"  # every call gets its own dict


def test_lambda_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, ddblake.aws.firehose_transform as m; "
        "heavy = {'pyarrow', 'aws_cdk', 'pyiceberg', 'duckdb', 'boto3', 'pandas', 'numpy', 'moto'}; "
        "print(sorted({n.split('.')[0] for n in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
