"""``ddblake sync --once`` (the CLI) of attribute names that Iceberg writers store alike.

The audit's reproducer: an item ``{"pk", "1st", "_1st"}`` in a DynamoDB Local table, then another
item and a second sync. pyiceberg stores ``1st`` and ``_1st`` both as ``_1st`` in a data file and
refused the schema, so every later sync failed for good and no later change was applied. Now both
syncs succeed, ``dump`` equals a Scan, and ``query`` shows each value (the name added later as
``<name>%~2``, docs/types.md). Also with such names as map keys and as the table's key attributes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from workload import cli

from ddblake.aws.clients import DynamoClients
from ddblake.names import changes_identifier, table_identifier


def _wire(value: Any) -> Any:
    """Low-level client values (bytes) as DynamoDB JSON, sets sorted."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in ("S", "N", "BOOL", "NULL"):
            return value
        if tag == "B":
            return {"B": base64.b64encode(inner).decode()}
        if tag in ("SS", "NS"):
            return {tag: sorted(inner)}
        if tag == "M":
            return {"M": {k: _wire(v) for k, v in inner.items()}}
        if tag == "L":
            return {"L": [_wire(v) for v in inner]}
    return {k: _wire(v) for k, v in value.items()}


def _scan(clients: DynamoClients, table: str) -> list[dict[str, Any]]:
    items = clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted((_wire(i) for i in items), key=lambda i: json.dumps(i, sort_keys=True))


def _dump(capsys: pytest.CaptureFixture[str], table: str, lake: str) -> list[dict[str, Any]]:
    lines = cli(capsys, "dump", "--table", table, "--lake", lake).splitlines()
    return sorted(
        (_wire(json.loads(line)["Item"]) for line in lines), key=lambda i: json.dumps(i, sort_keys=True)
    )


def _query(capsys: pytest.CaptureFixture[str], lake: str, sql: str) -> list[dict[str, Any]]:
    out = cli(capsys, "query", "--lake", lake, "--format", "json", sql)
    return [json.loads(line) for line in out.splitlines()]


def test_attributes_and_map_keys_stored_alike_sync_and_later_changes_apply(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = make_table(table_name, sort_key=False)
    lake = str(tmp_path / "lake")
    sync = ["sync", "--once", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]
    put = clients.dynamodb.put_item
    put(TableName=table, Item={"pk": {"S": "1"}, "1st": {"N": "1"}, "_1st": {"N": "2"}})
    cli(capsys, *sync)
    put(TableName=table, Item={"pk": {"S": "2"}, "2fa": {"S": "x"}, "m": {"M": {"in-side": {"S": "a"}}}})
    put(TableName=table, Item={"pk": {"S": "3"}, "_2fa": {"S": "y"}, "a_x2Db": {"N": "3"}, "a-b": {"N": "4"}})
    put(TableName=table, Item={"pk": {"S": "4"}, "m": {"M": {"in_x2Dside": {"S": "b"}}}})
    cli(capsys, *sync)
    put(TableName=table, Item={"pk": {"S": "5"}, "plain": {"S": "later"}})
    cli(capsys, *sync)

    assert _dump(capsys, table, lake) == _scan(clients, table)
    name = table_identifier(table)
    columns = '"1st", "_1st%~2", "2fa", "_2fa%~2", "a-b", "a_x2Db%~2", m, plain'
    rows = _query(capsys, lake, f"SELECT pk, {columns} FROM {name} ORDER BY pk")  # noqa: S608
    assert [tuple(r.values()) for r in rows] == [
        ("1", 1, 2, None, None, None, None, None, None),
        ("2", None, None, "x", None, None, None, {"in-side": "a", "in_x2Dside%~2": None}, None),
        ("3", None, None, None, "y", 4, 3, None, None),
        ("4", None, None, None, None, None, None, {"in-side": None, "in_x2Dside%~2": "b"}, None),
        ("5", None, None, None, None, None, None, None, "later"),
    ]


def test_key_attributes_stored_alike_sync(
    clients: DynamoClients,
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clients.dynamodb.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": "1st", "KeyType": "HASH"},
            {"AttributeName": "_1st", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "1st", "AttributeType": "S"},
            {"AttributeName": "_1st", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    lake = str(tmp_path / "lake")
    sync = [
        "sync",
        "--once",
        "--table",
        table_name,
        "--lake",
        lake,
        "--endpoint-url",
        dynamodb_local_endpoint,
    ]
    put = clients.dynamodb.put_item
    put(TableName=table_name, Item={"1st": {"S": "a"}, "_1st": {"N": "1"}, "v": {"S": "x"}})
    cli(capsys, *sync)
    put(TableName=table_name, Item={"1st": {"S": "b"}, "_1st": {"N": "2"}, "OP": {"S": "y"}})
    cli(capsys, *sync)

    assert _dump(capsys, table_name, lake) == _scan(clients, table_name)
    current = table_identifier(table_name)
    sql = f'SELECT "1st", "_1st%~2", v, "OP" FROM {current} ORDER BY 1'  # noqa: S608
    rows = _query(capsys, lake, sql)
    assert [tuple(r.values()) for r in rows] == [("a", 1, "x", None), ("b", 2, None, "y")]
    # The history: the first item came by the first sync's load (LOAD) and maybe its stream too.
    sql = f'SELECT DISTINCT "1st", "_1st%~2" FROM {changes_identifier(table_name)} ORDER BY 1'  # noqa: S608
    rows = _query(capsys, lake, sql)
    assert [tuple(r.values()) for r in rows] == [("a", "1"), ("b", "2")]
