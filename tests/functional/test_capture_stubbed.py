"""What DynamoDB Local cannot do on demand — expire an iterator, trim a stream — with botocore's Stubber.

The real adapter and consumer run; only the HTTP answers are scripted, so the error translation
(ExpiredIteratorException, TrimmedDataAccessException) is exercised too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from capture_helpers import read_events

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import Checkpoint, ShardPosition, load_checkpoint, save_checkpoint
from ddblake.capture.service import CaptureConfig, run_capture
from ddblake.errors import StreamGapError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

TABLE = "stubbed-table"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2024-01-01T00:00:00.000"
SHARD = "shardId-00000001700000000000-aaaaaaaa"


def seq(n: int) -> str:
    return f"{n:021d}"


def record(n: int) -> dict[str, Any]:
    return {
        "eventID": f"event-{n}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": dt.datetime(2024, 1, 1, 0, 0, n, tzinfo=dt.UTC),
            "Keys": {"pk": {"S": f"k{n}"}},
            "NewImage": {"pk": {"S": f"k{n}"}, "n": {"N": str(n)}},
            "SequenceNumber": seq(n),
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


class Script:
    """Both stubbed clients, with helpers that queue DynamoDB/Streams answers in call order."""

    def __init__(self) -> None:
        kw: dict[str, Any] = {
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.clients = DynamoClients(
            dynamodb=boto3.client("dynamodb", **kw), streams=boto3.client("dynamodbstreams", **kw)
        )
        self.ddb = Stubber(self.clients.dynamodb)
        self.streams = Stubber(self.clients.streams)

    def topology(self, *shards: dict[str, Any]) -> None:
        self.ddb.add_response(
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
        self.streams.add_response(
            "describe_stream",
            {
                "StreamDescription": {
                    "StreamArn": ARN,
                    "StreamStatus": "ENABLED",
                    "Shards": list(shards or [shard(SHARD)]),
                }
            },
            {"StreamArn": ARN},
        )

    def iterator(self, shard_id: str, name: str, after: str | None = None, *, at: str | None = None) -> None:
        params: dict[str, Any] = {"StreamArn": ARN, "ShardId": shard_id}
        if after is not None:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        elif at is not None:
            params.update(ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=at)
        else:
            params["ShardIteratorType"] = "TRIM_HORIZON"
        self.streams.add_response("get_shard_iterator", {"ShardIterator": name}, params)

    def records(self, iterator: str, records: list[dict[str, Any]], next_iterator: str | None) -> None:
        answer: dict[str, Any] = {"Records": records}
        if next_iterator is not None:
            answer["NextShardIterator"] = next_iterator
        self.streams.add_response("get_records", answer, {"ShardIterator": iterator, "Limit": 1000})

    def error(self, method: str, code: str, params: dict[str, Any]) -> None:
        self.streams.add_client_error(
            method, service_error_code=code, service_message=code, expected_params=params
        )


def shard(shard_id: str, parent: str | None = None, start: int = 1, end: int | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "ShardId": shard_id,
        "SequenceNumberRange": {"StartingSequenceNumber": seq(start)},
    }
    if end is not None:
        answer["SequenceNumberRange"]["EndingSequenceNumber"] = seq(end)
    if parent:
        answer["ParentShardId"] = parent
    return answer


@pytest.fixture
def script() -> Iterator[Script]:
    s = Script()
    with s.ddb, s.streams:
        yield s
    s.ddb.assert_no_pending_responses()
    s.streams.assert_no_pending_responses()


def run(script: Script, lake: Path) -> Any:
    config = CaptureConfig(table=TABLE, lake=str(lake), once=True)
    return run_capture(config, clients=script.clients)


def test_expired_iterator_reopens_after_the_last_record(script: Script, tmp_path: Path) -> None:
    script.topology()
    script.iterator(SHARD, "it-1")
    script.records("it-1", [record(1), record(2)], "it-2")
    script.error("get_records", "ExpiredIteratorException", {"ShardIterator": "it-2", "Limit": 1000})
    script.iterator(SHARD, "it-3", after=seq(2))  # from the last record read, not from the start
    script.records("it-3", [record(3)], "it-4")
    script.records("it-4", [], "it-5")  # empty pages: caught up after the third in a row
    script.records("it-5", [], "it-6")
    script.records("it-6", [], "it-7")
    script.topology()  # the once-mode confirmation that no new shard appeared

    stats = run(script, tmp_path)
    assert stats.records == 3
    assert [e.event_id for e in read_events(str(tmp_path), TABLE)] == ["event-1", "event-2", "event-3"]
    checkpoint = load_checkpoint(Storage.from_uri(str(tmp_path)), TABLE)
    assert checkpoint is not None and checkpoint.shards[SHARD].seq == seq(3)


def test_trimmed_checkpoint_is_a_gap(script: Script, tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    save_checkpoint(storage, Checkpoint(TABLE, ARN, {SHARD: ShardPosition(seq=seq(5))}))
    script.topology()
    script.error(
        "get_shard_iterator",
        "TrimmedDataAccessException",
        {
            "StreamArn": ARN,
            "ShardId": SHARD,
            "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
            "SequenceNumber": seq(5),
        },
    )
    with pytest.raises(StreamGapError) as caught:
        run(script, tmp_path)
    message = str(caught.value)
    assert TABLE in message and SHARD in message and seq(5) in message and "full load" in message


def test_children_wait_for_their_closed_parent(script: Script, tmp_path: Path) -> None:
    parent, left, right = (f"shardId-00000001700000000000-{x * 8}" for x in "pqr")
    # DescribeStream lists children first: the consumer must still read the parent to its end first.
    script.topology(shard(left, parent, 10), shard(right, parent, 20), shard(parent, None, 1, 5))
    script.iterator(parent, "p-1")
    script.records("p-1", [record(1), record(2)], None)  # closed: no next iterator
    script.topology(shard(left, parent, 10), shard(right, parent, 20), shard(parent, None, 1, 5))
    script.iterator(left, "l-1", at=seq(10))  # the parent was read: children from their start
    script.records("l-1", [record(10)], "l-2")
    script.iterator(right, "r-1", at=seq(20))
    script.records("r-1", [record(20)], "r-2")
    for n in (2, 3, 4):  # three empty pages each: caught up
        script.records(f"l-{n}", [], f"l-{n + 1}")
        script.records(f"r-{n}", [], f"r-{n + 1}")
    script.topology(shard(left, parent, 10), shard(right, parent, 20), shard(parent, None, 1, 5))

    run(script, tmp_path)
    assert [e.event_id for e in read_events(str(tmp_path), TABLE)] == [
        "event-1",
        "event-2",
        "event-10",
        "event-20",
    ]
    checkpoint = load_checkpoint(Storage.from_uri(str(tmp_path)), TABLE)
    assert checkpoint is not None
    assert checkpoint.shards[parent].closed and checkpoint.shards[parent].seq == seq(2)
    assert checkpoint.shards[left] == ShardPosition(parent=parent, seq=seq(10), closed=False)


def test_unread_parent_trimmed_away_is_a_gap(script: Script, tmp_path: Path) -> None:
    known, lost, child = (f"shardId-00000001700000000000-{x * 8}" for x in "abc")
    storage = Storage.from_uri(str(tmp_path))
    save_checkpoint(storage, Checkpoint(TABLE, ARN, {known: ShardPosition(seq=seq(3), closed=True)}))
    # 'known' is gone (fine: read to its end), but 'child' descends from 'lost', which ddblake never saw.
    script.topology(shard(child, lost, 50))
    with pytest.raises(StreamGapError, match=f"{lost}.*parent of shard {child}"):
        run(script, tmp_path)


def test_finished_shards_are_pruned_once_no_child_needs_them(script: Script, tmp_path: Path) -> None:
    old, mid, new = (f"shardId-00000001700000000000-{x * 8}" for x in "xyz")
    storage = Storage.from_uri(str(tmp_path))
    positions = {
        old: ShardPosition(seq=seq(3), closed=True),
        mid: ShardPosition(parent=old, seq=seq(8), closed=True),
    }
    save_checkpoint(storage, Checkpoint(TABLE, ARN, positions))
    # 'old' and 'mid' were trimmed; 'new' still names 'mid' as parent, nothing names 'old'.
    script.topology(shard(new, mid, 10))
    script.iterator(new, "n-1", at=seq(10))  # first seen, but its parent is known: from its start
    script.records("n-1", [], "n-2")
    script.records("n-2", [], "n-3")
    script.records("n-3", [], "n-4")
    script.topology(shard(new, mid, 10))
    run(script, tmp_path)
    checkpoint = load_checkpoint(storage, TABLE)
    assert checkpoint is not None and set(checkpoint.shards) == {mid, new}


def test_a_stream_denied_to_the_role_names_the_role_the_account_and_the_permission(tmp_path: Path) -> None:
    from ddblake.aws.roles import Identity
    from ddblake.errors import TerminalError

    role = "arn:aws:iam::111111111111:role/read"
    principal = "arn:aws:sts::111111111111:assumed-role/read/ddblake-capture"
    script = Script()
    script.ddb.add_response(
        "describe_table",
        {
            "Table": {
                "TableName": TABLE,
                "LatestStreamArn": ARN.replace("123456789012", "111111111111"),
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            }
        },
        {"TableName": TABLE},
    )
    script.streams.add_client_error(
        "describe_stream",
        service_error_code="AccessDeniedException",
        service_message=f"User: {principal} is not authorized to perform: dynamodb:DescribeStream on "
        f"resource: {ARN.replace('123456789012', '111111111111')}",
    )
    config = CaptureConfig(table=TABLE, lake=str(tmp_path / "lake"), once=True, assume_role=role)
    with script.ddb, script.streams, pytest.raises(TerminalError) as denied:
        run_capture(
            config,
            clients=script.clients,
            identity=lambda: Identity("111111111111", principal, role),
        )
    text = str(denied.value)
    assert f"access denied calling DescribeStream on table {TABLE!r}" in text
    assert "account 111111111111" in text and f"using role {role}" in text
    assert "grant the role dynamodb:DescribeStream in its policy" in text
    assert "DescribeStream, GetShardIterator and GetRecords on its stream" in text


def test_once_on_a_busy_shard_ends_at_changes_made_after_it_began(script: Script, tmp_path: Path) -> None:
    """A table written to without pause never gives an empty page: ``--once`` stops at the first
    page whose last change was stamped after the run began, instead of chasing the writers for
    ever (the rest is the next run's, from the checkpoint)."""
    later = record(3)
    # past the minute allowed for this machine's clock being behind AWS's (ONCE_CLOCK_SKEW_US)
    later["dynamodb"]["ApproximateCreationDateTime"] = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=65)
    script.topology()
    script.iterator(SHARD, "it-1")
    script.records("it-1", [record(1), record(2)], "it-2")  # older than the run: read on
    script.records("it-2", [later], "it-3")  # made after it began: caught up, no empty page needed
    script.topology()  # the once-mode confirmation that no new shard appeared

    stats = run(script, tmp_path)  # the script holds no page after it-3: asking for one fails
    assert stats.records == 3
    checkpoint = load_checkpoint(Storage.from_uri(str(tmp_path)), TABLE)
    assert (
        checkpoint is not None
        and checkpoint.shards[SHARD].seq == seq(3)
        and not checkpoint.shards[SHARD].closed
    )
