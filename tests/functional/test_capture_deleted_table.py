"""A deleted table's last changes are captured: DeleteTable leaves its stream readable (DISABLED) for
24 hours on AWS, and DynamoDB Local keeps it too, so capture drains it as it drains a disabled stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import put_many, read_events
from scripted_stream import ScriptedStream

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import load_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.capture.service import run_capture
from ddblake.capture.shards import Shard
from ddblake.capture.streams import TableStream
from ddblake.errors import NotFoundError, TerminalError
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
    assert "table deleted, stream drained" in caplog.text
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
    assert "--rebootstrap" in message
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
