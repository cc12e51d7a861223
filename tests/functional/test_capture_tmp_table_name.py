"""A table named like a temp file (``.tmp-orders``) reaches the lake: its raw files are listed.

DynamoDB allows names of A-Z a-z 0-9 ``_ . -``, so ``.tmp-orders`` is a table like any other. Every
raw file capture writes for it is named ``.tmp-orders-<stamp>-<id>.gz``; lake listings once skipped
every file whose name starts ``.tmp-`` (meaning :meth:`Storage.write_atomic`'s own temp files), so
capture wrote the table's changes and apply never saw one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import read_events
from workload import cli, dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.lake.rawlog import list_raw_files
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional


def test_table_named_like_a_temp_file_is_captured_listed_and_applied(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = make_table(f".tmp-{table_name}")
    lake = str(tmp_path / "lake")
    sync = ["sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint, "--once"]
    clients.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}})
    cli(capsys, *sync)  # the first load
    clients.dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}})
    clients.dynamodb.delete_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
    cli(capsys, *sync)  # the stream: capture writes raw files, apply must find them

    on_disk = sorted(str(p.relative_to(tmp_path / "lake")) for p in (tmp_path / "lake" / "raw").rglob("*.gz"))
    assert on_disk, "capture wrote no raw file"
    assert list_raw_files(Storage.from_uri(lake), table) == on_disk
    assert [e.op for e in read_events(lake, table)][-2:] == ["INSERT", "REMOVE"]
    dumped = cli(capsys, "dump", "--table", table, "--lake", lake)
    assert dump_to_items(dumped.splitlines()) == scan_items(clients, table)
    assert list(scan_items(clients, table)) == ["b/1"]
