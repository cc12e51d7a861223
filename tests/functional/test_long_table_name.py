"""A table with DynamoDB's longest name (255 characters) syncs to a local lake: dump equals a Scan.

Names of up to 255 characters are DynamoDB's; a local disk's file names are 255 bytes at most, and
the raw files, their quarantine files and the history table's folder all add to the table's name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from workload import cli, dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.names import changes_identifier


@pytest.mark.parametrize("length", [193, 255])
def test_longest_table_names_sync_and_dump_equal_to_scan(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    length: int,
) -> None:
    name = (table_name.replace("-", "_") + "_" + "Long.Name-" * 26)[:length]
    table = make_table(name)
    lake = str(tmp_path / "lake")
    sync = ["sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint, "--once"]
    clients.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    cli(capsys, *sync)  # the first load
    clients.dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "2"}})
    clients.dynamodb.delete_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
    cli(capsys, *sync)  # the stream
    dumped = cli(capsys, "dump", "--table", table, "--lake", lake)
    assert dump_to_items(dumped.splitlines()) == scan_items(clients, table)
    assert len(scan_items(clients, table)) == 1
    status = json.loads(cli(capsys, "status", "--lake", lake, "--format", "json"))
    assert [t["table"] for t in status["tables"]] == [table]
    sql = f'SELECT op, count(*) AS n FROM "{changes_identifier(table)}" GROUP BY op ORDER BY op'  # noqa: S608
    history = [
        json.loads(line)
        for line in cli(capsys, "query", "--lake", lake, "--format", "json", sql).splitlines()
    ]
    assert [(r["op"], r["n"]) for r in history] == [
        ("INSERT", 2),
        ("LOAD", 1),
        ("REMOVE", 1),
    ]  # "a" on the stream too
