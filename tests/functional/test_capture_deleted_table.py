"""A deleted table's last changes are captured: DeleteTable leaves its stream readable (DISABLED) for
24 hours on AWS, and DynamoDB Local keeps it too, so capture drains it as it drains a disabled stream.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import put_many, read_events
from scripted_stream import ARN, ScriptedStream, record

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import load_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.capture.service import run_capture
from ddblake.capture.shards import Shard
from ddblake.capture.streams import TableStream
from ddblake.errors import NotFoundError, StreamGapError, TerminalError, TransientError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional


def _deleted_after_writes(clients: DynamoClients, make_table: Callable[..., str], table_name: str) -> str:
    table = make_table(table_name)
    put_many(clients, table, 2, prefix="first")
    return table


def test_once_drains_a_deleted_tables_stream_warns_and_succeeds(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = _deleted_after_writes(clients, make_table, table_name)
    lake = str(tmp_path / "lake")
    assert capture(table, lake).records == 2
    put_many(clients, table, 3, prefix="last")
    clients.dynamodb.delete_table(TableName=table)

    with caplog.at_level(logging.WARNING, logger="ddblake"):
        stats = capture(table, lake)

    assert stats.records == 3, "the changes made just before DeleteTable"
    assert sorted(e.keys["pk"]["S"] for e in read_events(lake, table)) == [
        "first-0",
        "first-1",
        "last-0",
        "last-1",
        "last-2",
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    drained = [w for w in warnings if "table deleted, stream drained" in w]
    assert len(drained) == 1, warnings
    assert f"table {table!r} is deleted" in drained[0]
    assert f"ddblake sync --table {table} --lake {shlex.quote(lake)} --rebootstrap" in drained[0]
    assert any("table not found (deleted?)" in w and "draining it" in w for w in warnings), warnings
    checkpoint = load_checkpoint(Storage.from_uri(lake), table)
    assert checkpoint is not None and all(p.closed for p in checkpoint.shards.values())

    again = capture(table, lake)  # a later run (within the 24 hours) finds nothing more and says so
    assert again.records == 0


def test_continuous_capture_drains_a_deleted_tables_stream_then_stops_with_a_clear_error(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
) -> None:
    table = _deleted_after_writes(clients, make_table, table_name)
    lake = str(tmp_path / "lake")
    capture(table, lake)
    put_many(clients, table, 3, prefix="last")
    clients.dynamodb.delete_table(TableName=table)
    config = CaptureConfig(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, poll_seconds=0.05)

    with pytest.raises(TerminalError) as caught:
        run_capture(config, clients=clients)

    message = str(caught.value)
    assert f"table {table!r} is deleted" in message and "stream drained" in message
    assert f"ddblake sync --table {table} --lake {shlex.quote(lake)} --rebootstrap" in message
    assert len(read_events(lake, table)) == 5, "drained and written before it stopped"


class _DeletedLongAgo(ScriptedStream):
    """DescribeTable and DescribeStream both answer not found (more than 24 hours after DeleteTable)."""

    def table_stream(self) -> TableStream:
        raise NotFoundError("table 'scripted-table' not found (DescribeTable) at scripted stream")

    def shards(self, arn: str) -> list[Shard]:
        raise NotFoundError(f"stream {arn} of table 'scripted-table' not found")


def test_a_deleted_table_whose_stream_is_gone_too_is_the_tables_not_found_error(tmp_path: Path) -> None:
    stream = ScriptedStream()
    stream.shard_defs["shard-1"] = (None, 1, None, [])
    storage = Storage.from_uri(str(tmp_path))
    config = CaptureConfig(table="scripted-table", lake=str(tmp_path), once=True, check_reach=False)
    StreamCapture(config, stream, storage).run()  # type: ignore[arg-type]  # the checkpoint names the stream

    with pytest.raises(NotFoundError, match=r"table 'scripted-table' not found \(DescribeTable\)"):
        StreamCapture(config, _DeletedLongAgo(), storage).run()  # type: ignore[arg-type]


def _assert_gap_from(
    caught: pytest.ExceptionInfo[StreamGapError], table: str, lake: str, old: str, new: str
) -> None:
    message = str(caught.value)
    assert f"stream gap for table {table!r}" in message
    assert f"its stream changed from {old} to {new}" in message and "the table is deleted now" in message
    assert f"ddblake sync --table {table} --lake {shlex.quote(lake)} --rebootstrap" in message


def test_a_deleted_table_whose_stream_was_re_enabled_since_the_checkpoint_is_a_gap_not_a_drain(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    """The checkpoint's stream S1 still answers DescribeStream, but the changes went to S2 (stream
    disabled and enabled again) before the delete: draining S1 read nothing and said all was captured."""
    table = _deleted_after_writes(clients, make_table, table_name)
    lake = str(tmp_path / "lake")
    assert capture(table, lake).records == 2
    old = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    clients.dynamodb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    clients.dynamodb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    new = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert new != old
    put_many(clients, table, 3, prefix="on-the-new-stream")
    clients.dynamodb.delete_table(TableName=table)

    with pytest.raises(StreamGapError) as caught:
        capture(table, lake)

    _assert_gap_from(caught, table, lake, old, new)
    assert len(read_events(lake, table)) == 2, "nothing read from the old stream, nothing claimed"


def test_a_table_created_again_and_deleted_again_since_the_checkpoint_is_a_gap_not_a_drain(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    table = _deleted_after_writes(clients, make_table, table_name)
    lake = str(tmp_path / "lake")
    assert capture(table, lake).records == 2
    old = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    clients.dynamodb.delete_table(TableName=table)
    make_table(table_name)
    new = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    put_many(clients, table, 3, prefix="second-life")
    clients.dynamodb.delete_table(TableName=table)

    with pytest.raises(StreamGapError) as caught:
        capture(table, lake)

    _assert_gap_from(caught, table, lake, old, new)
    assert len(read_events(lake, table)) == 2


class _Deleted(ScriptedStream):
    """DescribeTable answers not found; the checkpoint's stream is still there; ListStreams names
    ``listed``. DescribeTable (once a refresh) and DescribeStream calls are counted."""

    def __init__(self, listed: list[str]) -> None:
        super().__init__()
        self.listed = listed
        self.refreshes = 0
        self.described = 0

    def table_stream(self) -> TableStream:
        self.refreshes += 1
        raise NotFoundError("table 'scripted-table' not found (DescribeTable) at scripted stream")

    def shards(self, arn: str) -> list[Shard]:
        self.described += 1
        return super().shards(arn)

    def newest_stream(self) -> str | None:
        return max(self.listed, key=lambda arn: arn.rsplit("/", 1)[-1], default=None)


def test_a_deleted_tables_stream_is_described_once_per_refresh_and_not_drained_unless_listed(
    tmp_path: Path,
) -> None:
    storage = Storage.from_uri(str(tmp_path))
    config = CaptureConfig(table="scripted-table", lake=str(tmp_path), once=True, check_reach=False)
    live = ScriptedStream()
    live.shard_defs["shard-1"] = (None, 1, None, [record(1)])
    StreamCapture(config, live, storage).run()  # type: ignore[arg-type]  # the checkpoint names ARN
    live.shard_defs["shard-1"] = (None, 1, 2, [record(1), record(2)])  # one more change, then DeleteTable

    unlisted = _Deleted([])
    unlisted.shard_defs = live.shard_defs
    with pytest.raises(TransientError, match="ListStreams names no stream of it"):
        StreamCapture(config, unlisted, storage).run()  # type: ignore[arg-type]

    deleted = _Deleted([ARN])
    deleted.shard_defs = live.shard_defs
    capture = StreamCapture(config, deleted, storage)  # type: ignore[arg-type]
    assert capture.run().records == 1, "the change made just before the delete"
    assert deleted.refreshes >= 1 and deleted.described == deleted.refreshes, "one DescribeStream a refresh"
