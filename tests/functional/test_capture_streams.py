"""Capture from DynamoDB Local's stream: every attribute type, every operation, checkpoints, S3."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import put_many, read_events, stream_event_ids

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import checkpoint_path, load_checkpoint
from ddblake.capture.consumer import CaptureStats
from ddblake.changes.model import ChangeEvent
from ddblake.lake.rawlog import list_raw_files
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

BIN = bytes(range(256))
# Numbers in the form DynamoDB stores them (it normalises "1.50" to "1.5"), at DynamoDB's limits.
TINY = "0." + "0" * 129 + "1"  # 1E-130
HUGE = "9" * 38 + "0" * 88  # 9.99...E+125 with 38 significant digits
ITEM: dict[str, Any] = {
    "pk": {"S": "all-types"},
    "sk": {"S": "v1"},
    "s": {"S": 'text é ✓ "quoted" \n newline'},
    "empty": {"S": ""},
    "n_int": {"N": "12345678901234567890123456789012345678"},
    "n_dec": {"N": "-0.0001"},
    "n_tiny": {"N": TINY},
    "n_huge": {"N": HUGE},
    "b": {"B": BIN},
    "b_empty": {"B": b""},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "m": {
        "M": {
            "nested": {"L": [{"S": "x"}, {"N": "1"}, {"B": b"\x00"}]},
            "deep": {"M": {"f": {"BOOL": False}}},
        }
    },
    "m_empty": {"M": {}},
    "l": {"L": [{"NULL": True}, {"SS": ["a"]}, {"M": {"k": {"S": "v"}}}]},
    "l_empty": {"L": []},
    "ss": {"SS": ["b", "a", "ü"]},
    "ns": {"NS": ["1", "2.5", "-3"]},
    "bs": {"BS": [b"\x00", b"\xff\xfe", b"plain"]},
}


def wire(value: Any) -> Any:
    """DynamoDB JSON as the wire (and the raw log) carries it: binary base64, sets sorted for comparing."""
    if isinstance(value, dict):
        if len(value) == 1:
            tag, inner = next(iter(value.items()))
            if tag == "B":
                return {"B": base64.b64encode(inner).decode()}
            if tag == "BS":
                return {"BS": sorted(base64.b64encode(b).decode() for b in inner)}
            if tag in ("SS", "NS"):
                return {tag: sorted(inner)}
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def logged(image: dict[str, Any] | None) -> Any:
    """An image from the raw log with sets sorted (DynamoDB does not keep set order)."""
    if image is None:
        return None

    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            if len(v) == 1 and next(iter(v)) in ("SS", "NS", "BS"):
                tag = next(iter(v))
                return {tag: sorted(v[tag])}
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return norm(image)


def test_every_type_and_operation_lands_losslessly(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name)
    ddb = clients.dynamodb
    other = {"pk": {"S": "other"}, "sk": {"S": "v1"}, "n": {"N": "1"}}
    ddb.put_item(TableName=table, Item=ITEM)
    ddb.put_item(TableName=table, Item=other)
    ddb.update_item(
        TableName=table,
        Key={"pk": ITEM["pk"], "sk": ITEM["sk"]},
        UpdateExpression="SET s = :s, added = :a REMOVE n_dec",
        ExpressionAttributeValues={":s": {"S": "changed"}, ":a": {"NS": ["42"]}},
    )
    updated = copy.deepcopy(ITEM)
    updated["s"] = {"S": "changed"}
    updated["added"] = {"NS": ["42"]}
    del updated["n_dec"]
    ddb.delete_item(TableName=table, Key={"pk": ITEM["pk"], "sk": ITEM["sk"]})

    lake = str(tmp_path / "lake")
    stats = capture(table, lake)
    assert stats.records == 4 and stats.quarantined == 0

    events = read_events(lake, table)
    assert [e.op for e in events] == ["INSERT", "INSERT", "MODIFY", "REMOVE"]
    assert len({e.event_id for e in events}) == 4
    assert [int(e.sequence or 0) for e in events] == sorted(int(e.sequence or 0) for e in events)
    assert all(e.source == "streams" and e.table == table and not e.ttl for e in events)
    ins, ins_other, mod, rem = events
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    assert ins.keys == key and rem.keys == key and ins_other.keys == {"pk": other["pk"], "sk": other["sk"]}
    assert logged(ins.new_image) == wire(ITEM) and ins.old_image is None
    assert logged(ins_other.new_image) == wire(other)
    assert logged(mod.old_image) == wire(ITEM) and logged(mod.new_image) == wire(updated)
    assert logged(rem.old_image) == wire(updated) and rem.new_image is None
    # Lossless means the exact strings: the line holds DynamoDB JSON, numbers as their digits.
    assert ins.new_image is not None and ins.new_image["n_tiny"] == {"N": TINY}


def test_checkpoint_makes_reruns_incremental(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 30)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)

    first = capture(table, lake)
    assert first.records == 30
    files = list_raw_files(storage, table)
    checkpoint = storage.read(checkpoint_path(table))
    assert checkpoint is not None
    doc = json.loads(checkpoint)
    assert doc["table"] == table and doc["stream_arn"] and doc["last_file"] == files[-1]
    [(shard_id, position)] = doc["shards"].items()
    assert position["seq"] and position["closed"] is False and shard_id.startswith("shardId-")

    second = capture(table, lake)
    assert (second.records, second.files, second.checkpoints) == (0, 0, 0)
    assert list_raw_files(storage, table) == files
    assert storage.read(checkpoint_path(table)) == checkpoint, "nothing new: the checkpoint is not rewritten"

    put_many(clients, table, 5, prefix="more")
    third = capture(table, lake)
    assert third.records == 5 and third.files == 1
    events = read_events(lake, table)
    assert [e.event_id for e in events] == stream_event_ids(clients, table)
    loaded = load_checkpoint(storage, table)
    assert loaded is not None and int(loaded.shards[shard_id].seq or 0) > int(position["seq"])


def test_small_buffer_cuts_many_gzip_files(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name, sort_key=True)
    put_many(clients, table, 40, pad=200)
    lake = tmp_path / "lake"
    stats = capture(table, str(lake), buffer_bytes=2_000)
    assert stats.records == 40 and stats.files >= 5
    storage = Storage.from_uri(str(lake))
    paths = list_raw_files(storage, table)
    assert len(paths) == stats.files
    for path in paths:
        parts = path.split("/")
        assert parts[:2] == ["raw", table] and len(parts) == 7 and parts[-1].endswith(".gz")
        assert parts[-1].startswith(f"{table}-{parts[2]}-{parts[3]}-{parts[4]}-{parts[5]}-")
        lines = gzip.decompress((lake / path).read_bytes()).splitlines()
        assert all(ChangeEvent.from_line(line) for line in lines)
    assert [e.event_id for e in read_events(str(lake), table)] == stream_event_ids(clients, table)


def test_capture_to_s3_on_moto(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    moto_s3: Any,
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 12)
    lake = f"s3://{moto_s3.bucket}/lake/prefix"
    stats = capture(table, lake)
    assert stats.records == 12 and stats.files == 1
    storage = Storage.from_uri(lake)
    assert storage.read(checkpoint_path(table)) is not None
    [path] = list_raw_files(storage, table)
    assert path.startswith(f"raw/{table}/")
    assert [e.event_id for e in read_events(lake, table)] == stream_event_ids(clients, table)
    again = capture(table, lake)
    assert again.records == 0 and list_raw_files(storage, table) == [path]
