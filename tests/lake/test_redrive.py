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
import logging
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import BASE_US, TABLE, Lake

from ddblake.aws.firehose_transform import transform_batch
from ddblake.capture import redrive as redrive_module
from ddblake.capture.redrive import failed_prefix, redrive, redrive_record, redriven_path
from ddblake.cli.main import main
from ddblake.errors import BadRecordError, TransientError
from ddblake.lake.report import capture_error_files
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.e2e

ARRIVAL_MS = BASE_US // 1000 + 5_000
EVENTS = Path(__file__).parents[1] / "events"


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
    assert "record is for table someone-elses-table, this stream delivers table orders-table" in stats.reasons
    assert "rawData is not base64" in stats.reasons
    assert lake.storage.read(source) == before, "the error object is left as it is"
    assert stats.moved == 0 and capture_error_files(lake.storage, TABLE) == 1
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


def test_a_redriven_record_is_the_change_the_lambda_delivers_so_apply_keeps_it_once(lake: Lake) -> None:
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
    assert "-redrive-" in redriven[0]
    lake.apply()
    assert len(lake.history()) == 1


def test_the_lambdas_own_event_redriven_gives_the_same_changes() -> None:
    """Firehose's error record keeps its own arrival time, not Kinesis' (which the Lambda prefers):
    only the ingestion time may differ, never the change."""
    event = json.loads((EVENTS / "firehose-kinesis-event.json").read_text())
    answered = transform_batch(event["records"]).records
    for record, answer in zip(event["records"], answered, strict=True):
        error = error_record(base64.b64decode(record["data"]), record["approximateArrivalTimestamp"])
        try:
            line, _ = redrive_record(error, "example-ddb-table")
        except BadRecordError:
            assert answer["result"] == "ProcessingFailed"
            continue
        assert answer["result"] == "Ok"
        lambda_line = json.loads(base64.b64decode(answer["data"]))
        redriven = json.loads(line)
        assert redriven["ingested_us"] == record["approximateArrivalTimestamp"] * 1000
        for fields in (lambda_line, redriven):
            del fields["ingested_us"]
        assert redriven == lambda_line


def test_a_record_accepted_only_on_a_rerun_reaches_the_tables(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade that accepts a record the first run refused: the rerun's file differs, not skipped."""
    first, second = valid_changes()[:2]
    put_error_object(lake, "mixed", [error_record(first), error_record(second, ARRIVAL_MS + 1)])
    real = redrive_module.redrive_record

    def older_transform(record: dict[str, Any], table: str) -> tuple[bytes, int]:
        if record["rawData"] == base64.b64encode(second).decode():
            raise BadRecordError("unknown to this version")
        return real(record, table)

    monkeypatch.setattr(redrive_module, "redrive_record", older_transform)
    assert redrive(lake.storage, TABLE).redriven == 1
    monkeypatch.setattr(redrive_module, "redrive_record", real)
    again = redrive(lake.storage, TABLE)
    assert (again.files, again.redriven) == (1, 2)
    lake.apply()
    assert sorted(lake.dump()) == ["a", "b"]
    assert len(lake.history()) == 2


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
        "1 object(s) done, moved to errors/orders-table/redriven/; run apply to take them in"
    )
    assert main(["redrive", "--table", TABLE]) == 2
    assert "--lake" in capsys.readouterr().err


def test_a_mistyped_local_lake_is_refused_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "lak"

    assert main(["redrive", "--table", TABLE, "--lake", str(typo)]) == 2
    assert f"no lake at {typo}" in capsys.readouterr().err
    assert not typo.exists()


def test_an_object_wholly_redriven_moves_out_of_processing_failed(lake: Lake) -> None:
    """Like a dead-letter queue's redrive: what stays under processing-failed/ still needs a person,
    and status counts only that; the object itself is kept, byte for byte, under redriven/."""
    done = put_error_object(lake, "all-good", [error_record(raw) for raw in valid_changes()])
    kept = put_error_object(lake, "one-bad", [error_record(valid_changes()[1]), error_record(b"{}")])
    body = lake.storage.read(done)
    assert capture_error_files(lake.storage, TABLE) == 2

    stats = redrive(lake.storage, TABLE)

    assert (stats.objects, stats.redriven, stats.refused, stats.moved) == (2, 4, 1, 1)
    assert lake.storage.list_files(failed_prefix(TABLE)) == [kept]
    moved = redriven_path(TABLE, done)
    assert moved == f"errors/{TABLE}/redriven/2025/11/28/08/all-good"
    assert lake.storage.read(moved) == body
    assert capture_error_files(lake.storage, TABLE) == 1, "only the object with a refused record counts"
    applied = lake.apply()
    assert (applied.events, applied.duplicates, applied.history_rows) == (4, 1, 3)

    again = redrive(lake.storage, TABLE)
    assert (again.objects, again.files, again.already, again.moved) == (1, 0, 1, 0)
    assert lake.apply().events == 0


@pytest.mark.parametrize("step", ["copy", "delete"])
def test_a_crash_during_the_move_is_finished_by_the_rerun(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The raw file is written before the copy, the copy before the delete: a stop between any two
    leaves the object somewhere, and the rerun completes the move without a change twice."""
    source = put_error_object(lake, "all-good", [error_record(raw) for raw in valid_changes()])
    body = lake.storage.read(source)
    real_write, real_delete = Storage.write_atomic, Storage.delete

    def failing_write(self: Storage, rel: str, data: bytes) -> None:
        if "/redriven/" in rel:
            raise TransientError("the lake stopped answering")
        real_write(self, rel, data)

    def failing_delete(self: Storage, rel: str) -> None:
        raise TransientError("the lake stopped answering")

    if step == "copy":
        monkeypatch.setattr(Storage, "write_atomic", failing_write)
    else:
        monkeypatch.setattr(Storage, "delete", failing_delete)
    with pytest.raises(TransientError):
        redrive(lake.storage, TABLE)
    monkeypatch.setattr(Storage, "write_atomic", real_write)
    monkeypatch.setattr(Storage, "delete", real_delete)
    assert lake.storage.read(source) == body, "the object is still where Firehose put it"

    again = redrive(lake.storage, TABLE)

    assert (again.files, again.already, again.moved) == (0, 3, 1)
    assert lake.storage.list_files(failed_prefix(TABLE)) == []
    assert lake.storage.read(redriven_path(TABLE, source)) == body
    assert lake.apply().events == 3
    assert len(lake.history()) == 3


def test_the_move_on_an_s3_lake(moto_s3: Any) -> None:
    """One code path for file:// and s3://: on S3 the object is copied, then deleted, the same way."""
    storage = Storage.from_uri(f"s3://{moto_s3.bucket}/lake")
    source = f"{failed_prefix(TABLE)}/2025/11/28/08/on-s3"
    body = gzip.compress(b"".join(json.dumps(error_record(raw)).encode() + b"\n" for raw in valid_changes()))
    storage.write_atomic(source, body)

    stats = redrive(storage, TABLE)

    assert (stats.redriven, stats.files, stats.moved) == (3, 1, 1)
    assert storage.list_files(failed_prefix(TABLE)) == []
    assert storage.read(redriven_path(TABLE, source)) == body
    assert capture_error_files(storage, TABLE) == 0
    assert len(storage.list_files(f"raw/{TABLE}")) == 1


def test_records_refused_again_are_a_warning_heard_at_warning_level(
    lake: Lake,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cron at DDBLAKE_LOG_LEVEL=WARNING stays quiet when all went back, not when some did not."""
    put_error_object(
        lake, "mixed", [error_record(valid_changes()[1]), error_record(b'{"eventName":"UPDATE"}')]
    )
    monkeypatch.setenv("DDBLAKE_LOG_LEVEL", "WARNING")
    with caplog.at_level(logging.WARNING, logger="ddblake"):
        assert main(["redrive", "--table", TABLE, "--lake", str(lake.root)]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1 refused again, left under errors/" in m for m in warned), warned
    assert capsys.readouterr().err == ""  # in the log (stderr from the CLI), not a second line


def test_an_arrival_past_year_9999_is_refused_and_the_other_objects_are_redriven(lake: Lake) -> None:
    """Bad metadata in one record (year 10000 has no hour folder) costs that record, not the run."""
    put_error_object(lake, "good", [error_record(raw) for raw in valid_changes()])
    bad = put_error_object(
        lake, "a-far-future", [error_record(valid_changes()[0], arrival_ms=253_402_300_800_000)]
    )

    stats = redrive(lake.storage, TABLE)

    assert (stats.objects, stats.redriven, stats.refused, stats.moved) == (2, 3, 1, 1)
    assert stats.reasons == {"arrivalTimestamp past year 9999": 1}
    assert lake.storage.list_files(failed_prefix(TABLE)) == [bad]
    with pytest.raises(BadRecordError, match="past year 9999"):
        redrive_record(error_record(valid_changes()[0], arrival_ms=253_402_300_800_000), TABLE)
    assert redrive_record(error_record(valid_changes()[0], arrival_ms=253_402_300_799_999), TABLE)


def test_an_object_with_no_raw_file_path_is_named_and_the_loop_goes_on(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A time the path cannot hold (a ValueError/OverflowError from the calendar) leaves that object."""
    odd = put_error_object(lake, "a-odd", [error_record(valid_changes()[0])])
    put_error_object(lake, "b-good", [error_record(valid_changes()[1])])
    real = redrive_module.target_path

    def failing_path(table: str, source: str, lines: list[bytes], oldest_us: int) -> str:
        if source == odd:
            raise OverflowError("timestamp out of range for platform time_t")
        return real(table, source, lines, oldest_us)

    monkeypatch.setattr(redrive_module, "target_path", failing_path)
    stats = redrive(lake.storage, TABLE)

    assert stats.unreadable == [odd] and (stats.redriven, stats.moved) == (1, 1)
    assert lake.storage.list_files(failed_prefix(TABLE)) == [odd]
    assert odd in caplog.text and "left as it is" in caplog.text
