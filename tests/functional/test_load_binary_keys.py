"""Scan loads of tables with binary (B) keys against DynamoDB Local: every item once, resume included.

The load keeps ``LastEvaluatedKey`` in DynamoDB JSON (binary as base64 text) and must hand it back
to botocore as bytes: given the text, botocore base64-encodes it again and DynamoDB resumes the Scan
from a key that never existed (re-reading pages forever, or skipping items).
"""

from __future__ import annotations

import base64
import copy
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import read_events

from ddblake.aws.clients import DynamoClients
from ddblake.errors import TransientError
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, run_load
from ddblake.load.rows import to_wire_item
from ddblake.load.scan import LoadResult
from ddblake.load.state import SCAN_STATE, read_state
from ddblake.load.table import TableReader
from ddblake.progress import NoProgress

pytestmark = pytest.mark.functional

HASH_KEYS = 12
PER_HASH = 5
ITEMS = HASH_KEYS * PER_HASH
DEADLINE_SECONDS = 60.0
"""A correct load of these tables takes well under a second; past this the test stops the load and
fails instead of hanging on a Scan that keeps starting over."""


def _binary_table(clients: DynamoClients, name: str) -> str:
    """``pk`` (B) hash and ``sk`` (B) range, on-demand; ITEMS items whose keys base64 to +, / and =."""
    clients.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "B"},
            {"AttributeName": "sk", "AttributeType": "B"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for h in range(HASH_KEYS):
        for r in range(PER_HASH):
            clients.dynamodb.put_item(
                TableName=name,
                Item={
                    "pk": {"B": bytes([h, 0xFB, 0xFF - h])[: 1 + h % 3]},  # 1-3 bytes: every padding
                    "sk": {"B": bytes([0xFF, r, 0x3E, 0x3F])},
                    "n": {"N": str(h * PER_HASH + r)},
                    "bs": {"BS": [b"\x00", bytes([r + 1])]},
                },
            )
    return name


def _wire_keys(clients: DynamoClients, table: str) -> set[tuple[str, str]]:
    """Every item's key as base64 text, read by a plain boto3 Scan (which handles binary itself)."""
    keys: set[tuple[str, str]] = set()
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = clients.dynamodb.scan(**kwargs)
        for item in page["Items"]:
            pk, sk = item["pk"]["B"], item["sk"]["B"]
            assert isinstance(pk, bytes) and isinstance(sk, bytes)
            keys.add((base64.b64encode(pk).decode(), base64.b64encode(sk).decode()))
        if "LastEvaluatedKey" not in page:
            return keys
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _load(config: LoadConfig, clients: DynamoClients, progress: NoProgress | None = None) -> LoadResult:
    """run_load, stopped (TransientError) if it outlasts DEADLINE_SECONDS."""
    stop = threading.Event()
    timer = threading.Timer(DEADLINE_SECONDS, stop.set)
    timer.start()
    try:
        return run_load(config, clients=clients, progress=progress or NoProgress("t"), stop=stop)
    finally:
        timer.cancel()


def _assert_every_item_once(lake: str, table: str, expected: set[tuple[str, str]]) -> None:
    events = read_events(lake, table)
    keys = Counter((e.keys["pk"]["B"], e.keys["sk"]["B"]) for e in events)
    assert set(keys) == expected, "every item of the table, and nothing else"
    assert [k for k, n in keys.items() if n > 1] == [], "no item loaded twice"
    assert len(events) == ITEMS
    images = [e.new_image for e in events]
    assert all(i is not None and "AA==" in i["bs"]["BS"] for i in images), "binary sets base64 once"
    assert sorted(int(i["n"]["N"]) for i in images if i is not None) == list(range(ITEMS))


@pytest.mark.parametrize("segments", [1, 3])
def test_a_binary_keyed_table_loads_every_item_once_in_small_pages(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str, segments: int
) -> None:
    table = _binary_table(clients, table_name)
    expected = _wire_keys(clients, table)
    assert len(expected) == ITEMS
    lake = str(tmp_path / "lake")
    config = LoadConfig.build(
        table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, segments=segments, page_items=4
    )
    result = _load(config, clients)
    assert result.items == ITEMS
    assert result.pages >= ITEMS // 4, "small pages: the load resumed from LastEvaluatedKey many times"
    _assert_every_item_once(lake, table, expected)


class _StopAfterPages(NoProgress):
    """Sets the load's stop event once ``pages`` pages are read (the load then checkpoints and ends)."""

    def __init__(self, stop: threading.Event, pages: int) -> None:
        super().__init__("t")
        self.stop, self.pages = stop, pages

    def add(self, items: int, *, part_done: bool = False) -> None:
        super().add(items, part_done=part_done)
        self.pages -= 1
        if self.pages <= 0:
            self.stop.set()


def test_a_stopped_binary_key_load_resumes_from_its_saved_key_without_repeats(
    clients: DynamoClients, table_name: str, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = _binary_table(clients, table_name)
    expected = _wire_keys(clients, table)
    lake = str(tmp_path / "lake")
    config = LoadConfig.build(
        table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, segments=1, page_items=4
    )
    stop = threading.Event()
    with pytest.raises(TransientError, match="run the same command again to resume"):
        run_load(config, clients=clients, progress=_StopAfterPages(stop, 3), stop=stop)

    saved = read_state(Storage.from_uri(lake), table, SCAN_STATE)
    assert saved is not None and saved.finished_us is None
    part = saved.parts["0"]
    assert not part.done and part.items == 12 and part.last_key is not None
    pk, sk = part.last_key["pk"]["B"], part.last_key["sk"]["B"]
    assert isinstance(pk, str) and isinstance(sk, str), "the state keeps the key in wire form"
    assert (pk, sk) in expected, "the saved key is the table's key itself, base64 once"

    resumed = _load(config, clients)
    assert resumed.resumed and resumed.load_id == saved.load_id
    assert resumed.items == ITEMS - 12, "the rerun reads only what follows the saved key"
    _assert_every_item_once(lake, table, expected)


def test_a_saved_binary_start_key_resumes_the_scan_right_after_that_key(
    clients: DynamoClients, table_name: str
) -> None:
    """TableReader, given a resume key in the load state's wire form, continues where a plain boto3
    Scan given the key's bytes continues (moved here from a Stubber test: Scan runs on DynamoDB Local)."""
    table = _binary_table(clients, table_name)
    head = clients.dynamodb.scan(TableName=table, Limit=7)
    resume = head["LastEvaluatedKey"]  # bytes, as botocore hands it over
    after = clients.dynamodb.scan(TableName=table, ExclusiveStartKey=resume)["Items"]
    expected = [
        (base64.b64encode(i["pk"]["B"]).decode(), base64.b64encode(i["sk"]["B"]).decode()) for i in after
    ]
    assert len(expected) == ITEMS - 7

    saved = to_wire_item(resume)
    assert isinstance(saved["pk"]["B"], str) and isinstance(saved["sk"]["B"], str)
    kept = copy.deepcopy(saved)
    page = TableReader(table, clients.dynamodb).scan_page(
        segment=0, total_segments=1, start_key=saved, consistent=False
    )
    assert [(i["pk"]["B"], i["sk"]["B"]) for i in page.items] == expected
    assert page.last_key is None
    assert saved == kept, "the saved key keeps its wire form"
