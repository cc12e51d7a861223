"""No item data in logs or one-line errors: map keys, values and key values stay out of them.

Item data here is a planted secret - an email as a map key, a key value, a bad value - sent through
the real paths (the codec, the Firehose transform handler, capture's quarantine, the command's
last-resort error line, the apply Lambda). What is logged or printed must not hold it; the lake's
errors/ prefix may, since that is the lake.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import gzip
import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ddblake.aws import firehose_transform
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import StreamCapture
from ddblake.cli.main import main
from ddblake.codec import BadValueError, items_to_table, jsonl_to_table, serialize_item, validate_item
from ddblake.codec.errors import SchemaMismatchError
from ddblake.errors import BadRecordError, TerminalError
from ddblake.lake.storage import Storage
from ddblake.redact import first_line, without_values

EVENTS = Path(__file__).parent.parent / "events"
PLANTED_KEY = "alice@example.com"  # a map key: maps keyed by user IDs or emails are item data
PLANTED = "s3cr3t-value-7731"
TABLE = "example-ddb-table"


def _conversion_error() -> pa.ArrowInvalid:
    """A real pyarrow error quoting a value, as a lake write could meet it."""
    try:
        pa.array([PLANTED], pa.int64())
    except pa.ArrowInvalid as e:
        return e
    raise AssertionError("pyarrow converted the text")


# --- the codec: paths name top-level attributes, map keys by position ----------------------------


@pytest.mark.parametrize(
    "av",
    [
        {"M": {"bob": {"S": "x"}, PLANTED_KEY: {"M": {"age": {"N": "not a number"}}}}},
        {"M": {PLANTED_KEY: {"SS": ["a", "a"]}}},
        {"M": {PLANTED_KEY: {"B": "QQ"}}},
        {"L": [{"M": {PLANTED_KEY: {"X": "y"}}}]},
        {"M": {PLANTED_KEY: {"M": {PLANTED_KEY: {"BOOL": "yes"}}}}},
    ],
)
def test_codec_errors_name_map_keys_by_position(av: dict[str, Any]) -> None:
    with pytest.raises(BadValueError) as caught:
        validate_item({"profile": av})
    message = str(caught.value)
    assert message.startswith("attribute profile")  # the top-level attribute is schema: named
    assert "<key " in message and PLANTED_KEY not in message and "age" not in message


def test_codec_error_path_counts_the_map_keys() -> None:
    with pytest.raises(BadValueError, match=r"attribute profile\.<key 2>\.<key 1>: N value"):
        validate_item({"profile": {"M": {"bob": {"S": "x"}, PLANTED_KEY: {"M": {"age": {"N": "x"}}}}}})


def test_serializing_names_map_keys_by_position() -> None:
    with pytest.raises(BadValueError, match=r"attribute m\.<key 2>\[0\]: float") as caught:
        serialize_item({"m": {"ok": Decimal(1), PLANTED_KEY: [1.5]}})
    assert PLANTED_KEY not in str(caught.value)


def test_parsed_batches_name_map_keys_by_position() -> None:
    rows = [{"pk": {"S": "a"}, "profile": {"M": {PLANTED_KEY: {"S": 5}}}}]
    with pytest.raises(BadValueError, match=r"attribute profile\.<key 1>: S value") as caught:
        items_to_table(rows)
    assert PLANTED_KEY not in str(caught.value)


def test_typed_batches_name_map_keys_by_position() -> None:
    rows = [{"pk": {"S": "a"}, "profile": {"M": {PLANTED_KEY: {"N": "not a number"}}}}]
    for convert in (lambda: items_to_table(rows), lambda: jsonl_to_table(json.dumps(rows[0]).encode())):
        with pytest.raises(BadValueError) as caught:
            convert()
        assert "profile" in str(caught.value) and PLANTED_KEY not in str(caught.value)


# --- library messages: values masked ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Could not convert 'alice@x' with type str: tried to convert to int64",
            "Could not convert '…' with type str: tried to convert to int64",
        ),
        ("Integer value 300 not in range: -128 to 127", "Integer value … not in range: -128 to 127"),
        ("Float value 1.500000 was truncated", "Float value … was truncated"),
        ("literal('S:alice", "literal('…'"),
        (
            "Failed to open local file '/lake/warehouse/x.parquet'. Detail: no such file",
            "Failed to open local file '/lake/warehouse/x.parquet'. Detail: no such file",
        ),
        ('read "s3://bucket/lake/a.parquet" failed', 'read "s3://bucket/lake/a.parquet" failed'),
        ("Couldn't deserialize thrift: bad data", "Couldn't deserialize thrift: bad data"),
        # a bytes repr, an escaped quote, a struct type named by map keys, reprs, DuckDB's echo
        ("Could not convert b'alice@x' with type bytes", "Could not convert b'…' with type bytes"),
        ("got 'it\\'s \"alice\"' here", "got '…' here"),
        (
            "Field m has incompatible types: struct<alice@x: int64> vs struct<b: list<string>>",
            "Field m has incompatible types: struct<…> vs struct<…>",
        ),
        ("bad row {'alice@x': 12345} at [1, 2]", "bad row {…} at […]"),
        ('Malformed JSON at line 1. Input: "{"a": alice@x"', "Malformed JSON at line 1. Input: …"),
        ("[Errno 28] No space left on device", "[Errno 28] No space left on device"),
        ("Detail: [errno 2] No such file", "Detail: [errno 2] No such file"),
        # a kept path keeps its brackets; DuckDB's struct types; unquoted converted values; mixed brackets
        ("cannot open '/data/lake[prod]/m.json'", "cannot open '/data/lake[prod]/m.json'"),
        ("Cannot cast STRUCT(alice_x INTEGER) to VARCHAR", "Cannot cast STRUCT(…) to VARCHAR"),
        ("Could not convert 123456789 with type int", "Could not convert … with type int"),
        ("tried {x>alice-x} here", "tried {…} here"),
    ],
)
def test_library_messages_lose_their_values(text: str, shown: str) -> None:
    assert without_values(text) == shown


def test_an_arrow_not_implemented_error_is_one_masked_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pyarrow's ArrowNotImplementedError is a RuntimeError: it passed the wrapper as a traceback,
    its message (a struct type named by map keys) unmasked."""
    from ddblake.lake import service

    def failing(*args: Any, **kwargs: Any) -> Any:
        pa.array([{PLANTED: 1}]).cast(pa.string())

    monkeypatch.setattr(service, "run_apply", failing)
    assert main(["apply", "--table", TABLE, "--lake", str(tmp_path), "--once"]) == 1
    err = capsys.readouterr().err
    assert PLANTED not in err and "ArrowNotImplementedError" in err
    assert len(err.strip().splitlines()) == 1


def test_a_foreign_nested_column_type_is_named_without_its_fields() -> None:
    """Another engine added a field to a struct column whose fields are map keys."""
    from ddblake.codec.schema import StrT, unify_field

    foreign = pa.field("profile", pa.struct([(PLANTED_KEY, pa.int64()), ("score", pa.float32())]))
    with pytest.raises(SchemaMismatchError) as caught:
        unify_field(foreign, StrT())
    assert "'profile' has type struct<…>" in str(caught.value) and PLANTED_KEY not in str(caught.value)


def test_first_line_masks_before_cutting() -> None:
    error = ValueError("x" * 290 + f" '{PLANTED}' and more\nsecond line {PLANTED}")
    assert PLANTED not in first_line(error) and "second line" not in first_line(error)


def test_the_last_resort_error_line_masks_library_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ddblake.lake import service

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise _conversion_error()

    monkeypatch.setattr(service, "run_apply", failing)
    assert main(["apply", "--table", TABLE, "--lake", str(tmp_path), "--once"]) == 1
    err = capsys.readouterr().err
    assert PLANTED not in err
    assert err.startswith("ddblake: error: cannot read the lake's tables: Could not convert '…'")
    assert "ArrowInvalid" in err and len(err.strip().splitlines()) == 1


class _Context:
    function_name = "ddblake-apply"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:ddblake-apply"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def test_the_apply_lambda_raises_and_logs_no_library_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ddblake.aws import apply_handler

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise _conversion_error()

    monkeypatch.setenv("DDBLAKE_LAKE", str(tmp_path))
    monkeypatch.setattr(apply_handler, "run_apply", failing)
    # Powertools' own handler holds the stdout of the moment the module was first imported (another
    # test's, under xdist): read the log through a handler of this test, with Powertools' JSON format.
    out = io.StringIO()
    mine = logging.StreamHandler(out)
    mine.setFormatter(apply_handler.logger.registered_formatter)
    apply_handler.logger._logger.addHandler(mine)
    try:
        with pytest.raises(TerminalError) as caught:
            apply_handler.handler({"table": TABLE}, _Context())  # type: ignore[arg-type]
    finally:
        apply_handler.logger._logger.removeHandler(mine)
    message = str(caught.value)
    assert message.startswith(f"apply of table {TABLE} failed: ArrowInvalid: Could not convert '…'")
    assert caught.value.__suppress_context__  # the runtime shows no chained message either
    written = out.getvalue()
    assert PLANTED not in message and PLANTED not in written
    assert '"apply failed"' in written and "apply_handler.py" in written  # the frames, for a person


# --- Firehose: the transform handler on a sample batch with bad records ------------------------------


def _kinesis_payload() -> dict[str, Any]:
    event = json.loads((EVENTS / "firehose-kinesis-event.json").read_text())
    payload: dict[str, Any] = json.loads(base64.b64decode(event["records"][0]["data"]))
    return payload


def _bad_payloads() -> Iterator[dict[str, Any]]:
    base = _kinesis_payload()
    bad_values: list[Any] = [
        {"M": {PLANTED_KEY: {"N": PLANTED}}},
        {"M": {PLANTED_KEY: {"M": {PLANTED: {"S": 5}}}}},
        {"L": [{"M": {PLANTED_KEY: {"SS": []}}}]},
        {"M": {PLANTED_KEY: {"N": "1E+200"}}},
        {"M": {PLANTED_KEY: PLANTED}},
        {"M": {"": {"S": PLANTED}}},
    ]
    for image in ("NewImage", "OldImage"):
        for value in bad_values:
            payload = copy.deepcopy(base)
            payload["dynamodb"][image] = {**payload["dynamodb"]["Keys"], "profile": value}
            yield payload
    for key_value in ({"S": 5}, {"N": PLANTED}, {"BOOL": True}, {"M": {PLANTED_KEY: {"S": PLANTED}}}):
        payload = copy.deepcopy(base)
        payload["dynamodb"]["Keys"] = {"id": key_value}
        yield payload


@pytest.fixture
def powertools_logs() -> Iterator[io.StringIO]:
    """Everything the Lambda's Powertools logger writes (at DEBUG) during the test."""
    stream = io.StringIO()
    log_handler = firehose_transform.logger.logger_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(stream)
    firehose_transform.logger.setLevel("DEBUG")
    try:
        yield stream
    finally:
        log_handler.setStream(previous)
        firehose_transform.logger.setLevel("INFO")


def test_firehose_handler_logs_reasons_without_map_keys_or_values(
    powertools_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    event = json.loads((EVENTS / "firehose-kinesis-event.json").read_text())
    good = event["records"][0]
    event["records"] = [good] + [
        {**good, "recordId": f"bad-{i}", "data": base64.b64encode(json.dumps(p).encode()).decode()}
        for i, p in enumerate(_bad_payloads())
    ]
    out = firehose_transform.handler(event, _Context())  # type: ignore[arg-type]
    failed = [r for r in out["records"] if r["result"] == "ProcessingFailed"]
    assert len(failed) == len(event["records"]) - 1
    written = powertools_logs.getvalue() + capsys.readouterr().out  # the log, and the metrics on stdout
    lines = powertools_logs.getvalue().splitlines()
    entry = next(json.loads(line) for line in lines if "records failed" in line)
    reasons = {f["reason"] for f in entry["failures"]}
    assert all(r.split(":")[0] in {"NewImage", "OldImage", "Keys"} for r in reasons), reasons
    assert PLANTED_KEY not in written and PLANTED not in written
    sent = {r["recordId"]: r["data"] for r in event["records"]}
    for record in failed:  # the record itself goes back unchanged: Firehose keeps it under errors/
        assert record["data"] == sent[record["recordId"]]


# --- capture: the quarantine keeps the record, the log only the reason -------------------------------


def test_capture_logs_a_quarantined_record_without_its_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = Storage.from_uri(str(tmp_path))
    config = CaptureConfig.build(table=TABLE, lake=str(tmp_path), endpoint_url="http://127.0.0.1:9")
    capture = StreamCapture(config, adapter=None, storage=storage)  # type: ignore[arg-type]
    record = {
        "eventID": "event-1",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            "Keys": {"pk": {"S": PLANTED}},
            "NewImage": {"pk": {"S": PLANTED}, "profile": {"M": {PLANTED_KEY: {"N": PLANTED}}}},
            "SequenceNumber": "000000000000000000042",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    with caplog.at_level(logging.DEBUG, logger="ddblake"):
        capture._add(record, "shardId-1", 1_700_000_000_000_000)
        capture._commit()
    logged = caplog.text
    assert "quarantined 1 record(s) of shard shardId-1 into errors/" in logged  # one line per shard and file
    assert "the first (sequence number 000000000000000000042)" in logged
    assert "NewImage: N value is not a number string" in logged
    assert PLANTED not in logged and PLANTED_KEY not in logged
    (error_file,) = [p for p in tmp_path.rglob("*") if p.is_file() and "errors" in p.parts]
    (quarantined,) = [json.loads(line) for line in gzip.decompress(error_file.read_bytes()).splitlines()]
    assert quarantined["reason"] == "NewImage: N value is not a number string"
    assert quarantined["record"]["dynamodb"]["NewImage"]["profile"]["M"][PLANTED_KEY] == {"N": PLANTED}


def test_bad_record_reasons_of_the_transform_hold_no_values() -> None:
    from ddblake.changes.transform import line_for_stream_record

    record = {"eventID": "e", "eventName": PLANTED, "dynamodb": {}}
    with pytest.raises(BadRecordError) as caught:
        line_for_stream_record(record, TABLE, 1)
    assert PLANTED not in str(caught.value)
