"""Plain helpers of the functional tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from ddblake.aws.clients import DynamoClients
from ddblake.changes.model import ChangeEvent
from ddblake.lake.rawlog import iter_raw_files
from ddblake.lake.storage import Storage

REPO = Path(__file__).resolve().parents[2]
DDBLAKE = REPO / ".venv" / "bin" / "ddblake"


def read_events(lake: str, table: str) -> list[ChangeEvent]:
    """Every event in the table's raw log, in file then line order; fails on a broken file."""
    storage = Storage.from_uri(lake)
    events = []
    for content in iter_raw_files(storage, table):
        assert content.error is None, f"{content.path}: {content.error}"
        events.extend(ChangeEvent.from_line(line) for line in content.lines)
    return events


def ddblake(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real ``ddblake`` command (the venv's console script) and capture its output."""
    return subprocess.run(
        [str(DDBLAKE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        check=False,
    )


def stream_event_ids(clients: DynamoClients, table: str) -> list[str]:
    """Every event ID the table's stream holds, read straight from DynamoDB Streams (the truth)."""
    arn = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    ids: list[str] = []
    for shard in clients.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = clients.streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        ).get("ShardIterator")
        while iterator:
            page = clients.streams.get_records(ShardIterator=iterator)
            ids.extend(r["eventID"] for r in page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return ids


def put_many(clients: DynamoClients, table: str, count: int, *, prefix: str = "item", pad: int = 100) -> None:
    """Write ``count`` items with BatchWriteItem (25 at a time)."""
    for start in range(0, count, 25):
        requests: list[Any] = [
            {
                "PutRequest": {
                    "Item": {"pk": {"S": f"{prefix}-{i}"}, "sk": {"S": "0"}, "pad": {"S": "x" * pad}}
                }
            }
            for i in range(start, min(count, start + 25))
        ]
        clients.dynamodb.batch_write_item(RequestItems={table: requests})
