"""Numbers written with a leading ``+`` reach the lake as DynamoDB Local keeps them.

DynamoDB Local returns nested numbers exactly as they were written (``{"N": "+1"}``), where AWS
normalises them; its stream and Scan both carry that text. Such an item must not be quarantined:
``dump`` equals a Scan, and ``query`` reads the number.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from workload import cli, dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.names import table_identifier


def test_plus_signed_numbers_are_kept_not_quarantined(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    sync = ["sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint, "--once"]
    first = {"pk": {"S": "a"}, "sk": {"S": "1"}, "l": {"L": [{"N": "+1"}, {"N": "+.5"}]}}
    clients.dynamodb.put_item(TableName=table, Item=first)
    cli(capsys, *sync)  # the first load (a Scan)
    later = {"pk": {"S": "b"}, "sk": {"S": "1"}, "m": {"M": {"x": {"N": "+2E+3"}}}, "n": {"N": "+7"}}
    clients.dynamodb.put_item(TableName=table, Item=later)
    out = cli(capsys, *sync)  # the stream
    assert "quarantined" not in out or " 0 quarantined" in out
    assert not list((Path(lake) / "errors").rglob("*.gz")), "nothing set aside"
    scanned = scan_items(clients, table)
    assert dump_to_items(cli(capsys, "dump", "--table", table, "--lake", lake).splitlines()) == scanned
    assert len(scanned) == 2
    sql = f'SELECT pk, n, l, m FROM "{table_identifier(table)}" ORDER BY pk'  # noqa: S608
    rows = [json.loads(r) for r in cli(capsys, "query", "--lake", lake, "--format", "json", sql).splitlines()]
    assert [r["pk"] for r in rows] == ["a", "b"]
    assert rows[0]["l"] == [1, 0.5] and rows[1]["n"] == 7 and rows[1]["m"] == {"x": 2000}
