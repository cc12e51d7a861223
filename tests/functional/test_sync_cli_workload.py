"""``ddblake sync --once`` through the CLI, with its first load, after a random workload: dump equals a Scan.

The table holds items (some written before it had a stream) when the lake has never seen it, so
the first sync loads them with a Scan; writes keep going while that sync runs and after it; a
second ``sync --once`` catches up. ``ddblake dump`` (the CLI) must then print exactly the items a
Scan of the table returns.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from workload import Workload, cli, dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients, build_dynamodb_clients
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.load import has_finished_load, list_loads
from ddblake.names import changes_identifier
from ddblake.sync import needs_load


@pytest.mark.long(30)
@pytest.mark.parametrize("seed", [7, 8])
def test_random_workload_then_cli_sync_once_with_its_first_load_gives_dump_equal_to_scan(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    seed: int,
) -> None:
    # Items written before the table had a stream reach the lake through the Scan load alone.
    table = make_table(table_name, stream=False)
    lake = str(tmp_path / "lake")
    sync = ["sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint, "--once"]

    # Before the stream: keys no later write touches ("pre..."), which only the Scan load can bring,
    # and the keys the rest of the workload goes on writing.
    unstreamed = Workload(clients, table, seed + 1000)
    unstreamed.keys = [(f"pre{i % 5}", f"s{i}") for i in range(30)]
    before = unstreamed.run(80)
    work = Workload(clients, table, seed)
    before.update(work.run(60))
    assert set(before) == {"put", "update", "delete", "batch", "transaction"}
    only_in_load = {k: v for k, v in scan_items(clients, table).items() if k.startswith("pre")}
    assert only_in_load
    clients.dynamodb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    work.run(40)  # on the stream and in the load both
    storage = LakeConfig.build(lake=lake).storage()
    assert needs_load(storage, table) and not list_loads(storage, table), "a table the lake never saw"

    # Writes while the first sync loads, captures and applies (its own client: one per thread).
    stop = threading.Event()
    during: dict[str, int] = {}
    failed: list[BaseException] = []

    def writer() -> None:
        writes = Workload(build_dynamodb_clients(dynamodb_local_endpoint), table, seed + 50)
        try:
            while not stop.is_set():
                kind = writes.step()
                during[kind] = during.get(kind, 0) + 1
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            failed.append(e)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        cli(capsys, *sync)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not failed, failed
    assert sum(during.values()) > 0, "no write overlapped the first sync"
    assert has_finished_load(storage, table), "the first sync loaded the table"
    assert [s.kind for s in list_loads(storage, table)] == ["scan"]

    after = Workload(clients, table, seed + 100).run(80)
    assert {"put", "update", "delete"} <= set(after)
    cli(capsys, *sync)

    dumped = cli(capsys, "dump", "--table", table, "--lake", lake).splitlines()
    assert all(set(json.loads(line)) == {"Item"} for line in dumped)
    items = dump_to_items(dumped)
    assert len(items) == len(dumped), "an item dumped twice"
    assert items == scan_items(clients, table)
    assert {k: v for k, v in items.items() if k.startswith("pre")} == only_in_load

    config = LakeConfig.build(lake=lake)
    history = open_catalog(config, config.storage()).load_table(f"ddb.{changes_identifier(table)}")
    ids = history.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()
    assert len(ids) == len(set(ids)), "an event landed twice in the history"
