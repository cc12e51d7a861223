"""``ddblake redrive``: Firehose's processing-failed records reach the tables once, the bad ones stay.

The error objects are built as Firehose writes them for a transform that could not run (gzip JSON
Lines of ``{attemptsMade, arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp,
rawData, lambdaArn}``, docs/raw-log.md); the records inside are Kinesis-for-DynamoDB records, the
shape of tests/events/kinesis-dynamodb-records.json.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from lake_helpers import BASE_US, TABLE, Lake

from ddblake.aws.firehose_transform import transform_batch
from ddblake.capture.redrive import failed_prefix, redrive
from ddblake.cli.main import main

pytestmark = pytest.mark.e2e

ARRIVAL_MS = BASE_US // 1000 + 5_000


def kinesis_record(name: str, pk: str, t: int, image: dict[str, Any] | None, table: str = TABLE) -> bytes:
    """One DynamoDB change as DynamoDB's Kinesis destination writes it."""
    ddb: dict[str, Any] = {
        "ApproximateCreationDateTime": BASE_US // 1000 + t * 1000,
        "Keys": {"pk": {"S": pk}},
    }
    if image is not None:
        ddb["NewImage"] = {"pk": {"S": pk}, **image}
    ddb["SizeBytes"] = 40
    record = {
        "awsRegion": "us-east-1",
        "eventID": f"{pk}-{name}-{t}",
        "eventName": name,
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": ddb,
        "eventSource": "aws:dynamodb",
    }
    return json.dumps(record, separators=(",", ":")).encode()


def error_record(raw: bytes, arrival_ms: int = ARRIVAL_MS) -> dict[str, Any]:
    """One record as Firehose writes it under processing-failed when the Lambda failed."""
    return {
        "attemptsMade": 3,
        "arrivalTimestamp": arrival_ms,
        "errorCode": "Lambda.FunctionError",
        "errorMessage": "The Lambda function was invoked but returned an error.",
        "attemptEndingTimestamp": arrival_ms + 60_000,
        "rawData": base64.b64encode(raw).decode("ascii"),
        "lambdaArn": "arn:aws:lambda:us-east-1:111122223333:function:ddblake-orders-table-transform",
    }


def put_error_object(lake: Lake, name: str, records: list[dict[str, Any]], *, compress: bool = True) -> str:
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    path = f"{failed_prefix(TABLE)}/2025/11/28/08/{name}"
    lake.storage.write_atomic(path, gzip.compress(body) if compress else body)
    return path


def valid_changes() -> list[bytes]:
    return [
        kinesis_record("INSERT", "a", 1, {"n": {"N": "1.50"}}),
        kinesis_record("INSERT", "b", 2, {"s": {"SS": ["x", "y"]}}),
        kinesis_record("MODIFY", "a", 3, {"n": {"N": "2"}, "bin": {"B": "AAE="}}),
    ]


def test_failed_batches_reach_the_tables_once_and_bad_records_stay(lake: Lake) -> None:
    bad = [
        {**error_record(b""), "rawData": "not base64 !"},
        error_record(b'{"eventName":"UPDATE"}'),
        error_record(kinesis_record("INSERT", "z", 4, {}, table="someone-elses-table")),
    ]
    source = put_error_object(
        lake,
        "ddblake-orders-table-1-2025-11-28-08-00-05-abc",
        [error_record(raw) for raw in valid_changes()] + bad,
    )
    before = lake.storage.read(source)

    stats = redrive(lake.storage, TABLE)

    assert (stats.objects, stats.records, stats.redriven, stats.files, stats.refused) == (1, 6, 3, 1, 3)
    assert "record is for table someone-elses-table, not orders-table" in stats.reasons
    assert "rawData is not base64" in stats.reasons
    assert lake.storage.read(source) == before, "the error object is left as it is"
    assert lake.apply().events == 3
    dump = lake.dump()
    assert dump == {
        "a": {"pk": {"S": "a"}, "n": {"N": "2"}, "bin": {"B": "AAE="}},
        "b": {"pk": {"S": "b"}, "s": {"SS": ["x", "y"]}},
    }
    history = len(lake.history())

    again = redrive(lake.storage, TABLE)  # a rerun, or the next alarm: nothing written twice
    assert (again.files, again.redriven, again.already, again.refused) == (0, 0, 3, 3)
    assert lake.apply().events == 0
    assert len(lake.history()) == history and lake.dump() == dump


def test_a_redriven_record_is_the_line_the_lambda_writes_so_apply_keeps_it_once(lake: Lake) -> None:
    raw = valid_changes()[0]
    answered = transform_batch(
        [{"recordId": "1", "data": base64.b64encode(raw).decode(), "approximateArrivalTimestamp": ARRIVAL_MS}]
    )
    delivered = base64.b64decode(answered.records[0]["data"])
    normal = lake.write([], lines=[delivered])  # the batch that finally went through
    put_error_object(lake, "failed-once", [error_record(raw)], compress=False)  # and its failed attempt

    assert redrive(lake.storage, TABLE).redriven == 1
    redriven = [p for p in lake.storage.list_files(f"raw/{TABLE}") if p != normal]
    assert len(redriven) == 1 and redriven[0].startswith(f"raw/{TABLE}/2025/11/28/08/")
    assert gzip.decompress(lake.storage.read(redriven[0]) or b"") == delivered
    lake.apply()
    assert len(lake.history()) == 1


def test_an_object_that_is_not_error_records_is_named_and_left(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    junk = put_error_object(lake, "junk", [])
    lake.storage.write_atomic(junk, b"\x1f\x8bnot gzip")
    put_error_object(lake, "good", [error_record(valid_changes()[1])])

    stats = redrive(lake.storage, TABLE)

    assert stats.unreadable == [junk] and stats.redriven == 1
    assert junk in caplog.text and "left as it is" in caplog.text


def test_the_command_prints_one_summary_line(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    put_error_object(lake, "one", [error_record(raw) for raw in valid_changes()])

    assert main(["redrive", "--table", TABLE, "--lake", str(lake.root)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "redrive orders-table: 3 record(s) in 1 error object(s): 3 back in the raw log (1 new file(s)); "
        "run apply to take them in"
    )
    assert main(["redrive", "--table", TABLE]) == 2
    assert "--lake" in capsys.readouterr().err
