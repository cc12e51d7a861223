"""TTL expiries read through boto3, and trimming of a shard the checkpoint knows but never read.

boto3's ``dynamodbstreams.get_records`` names ``userIdentity``'s members ``Type``/``PrincipalId`` (the
API model's names), Lambda and Kinesis ``type``/``principalId``: a TTL expiry must be marked as one
either way. A shard listed in the checkpoint with ``seq`` null is reopened at its starting sequence
number, so records trimmed since it was listed surface as a gap instead of being skipped.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.stub import Stubber
from capture_helpers import put_many, read_events, stream_event_ids

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import Checkpoint, ShardPosition, load_checkpoint, save_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.capture.records import record_to_line
from ddblake.capture.service import run_capture
from ddblake.capture.shards import Shard
from ddblake.capture.streams import DataTrimmed, IteratorExpired, RecordBatch, TableStream
from ddblake.changes.transform import kinesis_line
from ddblake.errors import StreamGapError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

TABLE = "ttl-trim-table"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2024-01-01T00:00:00.000"
SHARD = "shardId-00000001700000000000-aaaaaaaa"
TTL_API = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
TTL_LAMBDA = {"principalId": "dynamodb.amazonaws.com", "type": "Service"}


def seq(n: int) -> str:
    return f"{n:021d}"


def raw_lines(lake: Path) -> list[dict[str, Any]]:
    return [json.loads(e.to_line()) for e in read_events(str(lake), TABLE)]


# --- TTL through boto3 ------------------------------------------------------------------------------


def wire_record(n: int, op: str, identity: dict[str, str] | None) -> dict[str, Any]:
    """One record as GetRecords' HTTP body carries it (epoch seconds, members as AWS spells them)."""
    record: dict[str, Any] = {
        "eventID": f"event-{n}",
        "eventName": op,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1732780800 + n,
            "Keys": {"pk": {"S": f"k{n}"}},
            ("NewImage" if op == "INSERT" else "OldImage"): {"pk": {"S": f"k{n}"}, "exp": {"N": "1"}},
            "SequenceNumber": seq(n),
            "SizeBytes": 30,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    if identity is not None:
        record["userIdentity"] = identity
    return record


def parsed_by_botocore(records: list[dict[str, Any]]) -> dict[str, Any]:
    """GetRecords' answer as botocore's own parser makes it from the wire (what boto3 returns)."""
    model = botocore.session.get_session().get_service_model("dynamodbstreams")
    parser = create_parser(model.metadata["protocol"])
    body = json.dumps({"Records": records, "NextShardIterator": "it-2"}).encode()
    answer: dict[str, Any] = parser.parse(
        {"status_code": 200, "headers": {}, "body": body},
        model.operation_model("GetRecords").output_shape,
    )
    answer.pop("ResponseMetadata", None)
    return answer


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoClients, Stubber, Stubber]]:
    kw: dict[str, Any] = {
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    clients = DynamoClients(
        dynamodb=boto3.client("dynamodb", **kw), streams=boto3.client("dynamodbstreams", **kw)
    )
    ddb, streams = Stubber(clients.dynamodb), Stubber(clients.streams)
    with ddb, streams:
        yield clients, ddb, streams
    ddb.assert_no_pending_responses()
    streams.assert_no_pending_responses()


def topology(ddb: Stubber, streams: Stubber) -> None:
    ddb.add_response(
        "describe_table",
        {
            "Table": {
                "TableName": TABLE,
                "LatestStreamArn": ARN,
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            }
        },
        {"TableName": TABLE},
    )
    streams.add_response(
        "describe_stream",
        {
            "StreamDescription": {
                "StreamArn": ARN,
                "StreamStatus": "ENABLED",
                "Shards": [{"ShardId": SHARD, "SequenceNumberRange": {"StartingSequenceNumber": seq(1)}}],
            }
        },
        {"StreamArn": ARN},
    )


def test_ttl_expiry_read_through_boto3_is_marked_ttl(
    stubbed: tuple[DynamoClients, Stubber, Stubber], tmp_path: Path
) -> None:
    clients, ddb, streams = stubbed
    answer = parsed_by_botocore(
        [wire_record(1, "REMOVE", TTL_API), wire_record(2, "REMOVE", None), wire_record(3, "INSERT", None)]
    )
    # what boto3 really hands capture: the API's spelling, a datetime, no lowercase members
    first = answer["Records"][0]
    assert first["userIdentity"] == TTL_API
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], dt.datetime)
    topology(ddb, streams)
    streams.add_response(
        "get_shard_iterator",
        {"ShardIterator": "it-1"},
        {"StreamArn": ARN, "ShardId": SHARD, "ShardIteratorType": "TRIM_HORIZON"},
    )
    streams.add_response("get_records", answer, {"ShardIterator": "it-1", "Limit": 1000})
    for n in (3, 4, 5):  # three empty pages in a row: caught up
        streams.add_response("get_records", {"Records": [], "NextShardIterator": f"it-{n}"}, None)
    topology(ddb, streams)

    run_capture(CaptureConfig(table=TABLE, lake=str(tmp_path), once=True), clients=clients)
    lines = raw_lines(tmp_path)
    assert [(line["event_id"], line["op"], line["ttl"]) for line in lines] == [
        ("event-1", "REMOVE", True),  # DynamoDB's TTL process
        ("event-2", "REMOVE", False),  # a user's delete
        ("event-3", "INSERT", False),
    ]


@pytest.mark.parametrize(
    ("identity", "ttl"),
    [
        (TTL_LAMBDA, True),
        (TTL_API, True),
        ({"type": "Service", "principalId": "lambda.amazonaws.com"}, False),
        ({"Type": "User", "PrincipalId": "dynamodb.amazonaws.com"}, False),
        ({"Type": "Service", "principalId": "dynamodb.amazonaws.com"}, False),  # one spelling, not a mix
        ({}, False),
    ],
)
def test_either_spelling_of_dynamodbs_identity_is_ttl(identity: dict[str, str], ttl: bool) -> None:
    record = wire_record(1, "REMOVE", identity)  # as a Lambda event source hands it over
    assert json.loads(record_to_line(record, table=TABLE, ingested_us=1))["ttl"] is ttl
    kinesis = {k: v for k, v in record.items() if k != "eventSourceARN"}
    kinesis["tableName"] = TABLE
    del kinesis["dynamodb"]["SequenceNumber"]
    line, _, _ = kinesis_line(json.dumps(kinesis, separators=(",", ":")).encode(), 1)
    assert json.loads(line)["ttl"] is ttl


# --- a known shard never read, trimmed since --------------------------------------------------------


def stream_record(n: int) -> dict[str, Any]:
    return {
        "eventID": f"event-{n}",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": dt.datetime(2024, 1, 1, 0, 0, n % 60, tzinfo=dt.UTC),
            "Keys": {"pk": {"S": f"k{n}"}},
            "NewImage": {"pk": {"S": f"k{n}"}},
            "SequenceNumber": seq(n),
        },
    }


class TrimmingStream:
    """A fake adapter with AWS's trimming: records before ``kept_from`` are gone, TRIM_HORIZON starts
    at the oldest kept record, and an older position is TrimmedDataAccessException (DataTrimmed)."""

    where = "fake"

    def __init__(self, first: int, last: int, kept_from: int, *, closed: bool = True) -> None:
        self.first, self.last, self.kept_from, self.closed = first, last, kept_from, closed
        self.opened: list[tuple[str | None, str | None]] = []  # (after_seq, at_seq) per open

    def table_stream(self) -> TableStream:
        return TableStream(ARN, True, "NEW_AND_OLD_IMAGES")

    def shards(self, arn: str) -> list[Shard]:
        return [Shard(SHARD, None, seq(self.first), seq(self.last) if self.closed else None)]

    def shard_iterator(
        self, arn: str, shard_id: str, after_seq: str | None, *, at_seq: str | None = None
    ) -> str:
        self.opened.append((after_seq, at_seq))
        if after_seq is not None:
            start = int(after_seq) + 1
        elif at_seq is not None:
            start = int(at_seq)
        else:
            return str(self.kept_from)  # TRIM_HORIZON
        if start < self.kept_from:
            raise DataTrimmed(f"shard {shard_id}: trimmed")
        return str(start)

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        start = int(iterator)
        end = min(self.last + 1, start + limit)
        records = [stream_record(n) for n in range(start, end)]
        done = self.closed and end > self.last
        return RecordBatch(records, None if done else str(end))


def capture_with(stream: TrimmingStream, lake: Path) -> CaptureStats:
    config = CaptureConfig(table=TABLE, lake=str(lake), once=True)
    return StreamCapture(config, stream, Storage.from_uri(str(lake))).run()  # type: ignore[arg-type]


def known_unread_shard(lake: Path) -> None:
    """A checkpoint listing the shard before its first record (``seq`` null)."""
    save_checkpoint(Storage.from_uri(str(lake)), Checkpoint(TABLE, ARN, {SHARD: ShardPosition(None, None)}))


def test_known_unread_shard_trimmed_since_is_a_gap(tmp_path: Path) -> None:
    known_unread_shard(tmp_path)
    stream = TrimmingStream(first=100, last=109, kept_from=103)
    with pytest.raises(StreamGapError) as caught:
        capture_with(stream, tmp_path)
    message = str(caught.value)
    assert SHARD in message and seq(100) in message and "--rebootstrap" in message
    assert stream.opened == [(None, seq(100))]  # AT_SEQUENCE_NUMBER at the shard's start
    assert read_events(str(tmp_path), TABLE) == []  # nothing after the gap was written as if complete
    checkpoint = load_checkpoint(Storage.from_uri(str(tmp_path)), TABLE)
    assert checkpoint is not None and checkpoint.shards[SHARD] == ShardPosition(None, None, False)


def test_known_unread_shard_not_trimmed_is_read_from_its_start(tmp_path: Path) -> None:
    known_unread_shard(tmp_path)
    stream = TrimmingStream(first=100, last=104, kept_from=100)
    stats = capture_with(stream, tmp_path)
    assert stats.records == 5
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in range(100, 105)]
    assert stream.opened == [(None, seq(100))]


def test_shard_seen_for_the_first_time_starts_at_trim_horizon(tmp_path: Path) -> None:
    stream = TrimmingStream(first=100, last=109, kept_from=103)
    stats = capture_with(stream, tmp_path)  # a first capture accepts what was trimmed before it
    assert stats.records == 7
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in range(103, 110)]
    assert stream.opened == [(None, None)]  # TRIM_HORIZON


def test_reopening_a_first_seen_shard_before_its_first_record_starts_at_trim_horizon_again(
    tmp_path: Path,
) -> None:
    # First seen by a first capture (TRIM_HORIZON); its iterator expires before a record is read and
    # the stream trims meanwhile. No record of it was ever the lake's, so the reopen is at the new
    # horizon too: what was trimmed was not owed (a known shard's reopen is a gap, above).
    stream = TrimmingStream(first=100, last=109, kept_from=100)
    original = stream.get_records

    def get_records(iterator: str, limit: int) -> RecordBatch:
        if stream.kept_from == 100:
            stream.kept_from = 105
            raise IteratorExpired("expired")
        return original(iterator, limit)

    stream.get_records = get_records  # type: ignore[method-assign]
    assert capture_with(stream, tmp_path).records == 5
    assert stream.opened == [(None, None), (None, None)]
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in range(105, 110)]


def test_read_shard_resumes_after_its_sequence_number(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    save_checkpoint(storage, Checkpoint(TABLE, ARN, {SHARD: ShardPosition(None, seq(102))}))
    stream = TrimmingStream(first=100, last=104, kept_from=101)
    assert capture_with(stream, tmp_path).records == 2
    assert stream.opened == [(seq(102), None)]


def test_real_adapter_opens_a_known_unread_shard_at_its_start(
    stubbed: tuple[DynamoClients, Stubber, Stubber], tmp_path: Path
) -> None:
    clients, ddb, streams = stubbed
    known_unread_shard(tmp_path)
    topology(ddb, streams)
    at_start = {
        "StreamArn": ARN,
        "ShardId": SHARD,
        "ShardIteratorType": "AT_SEQUENCE_NUMBER",
        "SequenceNumber": seq(1),
    }
    streams.add_client_error(
        "get_shard_iterator",
        service_error_code="TrimmedDataAccessException",
        service_message="trimmed",
        expected_params=at_start,
    )
    with pytest.raises(StreamGapError) as caught:
        run_capture(CaptureConfig(table=TABLE, lake=str(tmp_path), once=True), clients=clients)
    assert SHARD in str(caught.value) and "its start" in str(caught.value)


def test_dynamodb_local_reads_a_known_unread_shard_from_its_start(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    capture(table, lake)  # nothing written yet: the checkpoint lists the shard with seq null
    storage = Storage.from_uri(lake)
    checkpoint = load_checkpoint(storage, table)
    assert checkpoint is not None and checkpoint.shards
    assert all(pos.seq is None and pos.horizon for pos in checkpoint.shards.values())  # a first capture's
    for pos in checkpoint.shards.values():  # known from its start, as a read parent's child is
        pos.horizon = False
    save_checkpoint(storage, checkpoint)

    put_many(clients, table, 5)
    assert capture(table, lake).records == 5  # AT_SEQUENCE_NUMBER at the start: DynamoDB Local takes it
    assert sorted(e.event_id for e in read_events(lake, table)) == sorted(stream_event_ids(clients, table))
