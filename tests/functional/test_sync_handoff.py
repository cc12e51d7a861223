"""The load-to-stream hand-off: writes made while sync's first load runs all end up in the lake."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import put_many
from workload import dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import run_capture
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.report import dump_items
from ddblake.load import LoadConfig, list_loads
from ddblake.sync import SyncConfig, needs_load, run_sync


def _sync_once(table: str, lake: str, endpoint: str) -> None:
    capture = CaptureConfig.build(table=table, lake=lake, endpoint_url=endpoint, once=True)
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    load = LoadConfig.build(table=table, lake=lake, endpoint_url=endpoint, segments=4, page_items=50)
    run_sync(SyncConfig(capture=capture, apply=apply, load=load))


@pytest.mark.long(25)
def test_writes_during_the_first_load_end_in_dump_equal_to_scan(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    put_many(clients, table, 1500, prefix="old", pad=50)
    assert needs_load(LakeConfig.build(lake=lake).storage(), table)

    stop = threading.Event()
    write_times: list[int] = []
    rng = random.Random(5)

    def writer() -> None:
        while not stop.is_set():
            i = rng.randrange(1800)
            key = {"pk": {"S": f"old-{i}"}, "sk": {"S": "0"}}
            if rng.random() < 0.3:
                clients.dynamodb.delete_item(TableName=table, Key=key)
            else:
                clients.dynamodb.put_item(
                    TableName=table, Item={**key, "v": {"N": str(rng.randrange(10**6))}}
                )
            write_times.append(time.time_ns() // 1000)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        _sync_once(table, lake, dynamodb_local_endpoint)
    finally:
        stop.set()
        thread.join()
    (state,) = list_loads(LakeConfig.build(lake=lake).storage(), table)
    assert state.finished_us is not None
    during = [t for t in write_times if state.started_us <= t <= state.finished_us]
    assert len(during) >= 5, "the writer did not overlap the load; the test proves nothing"

    # Catch up with the writes made after that run; the table is loaded, so no second load.
    assert not needs_load(LakeConfig.build(lake=lake).storage(), table)
    _sync_once(table, lake, dynamodb_local_endpoint)
    assert len(list_loads(LakeConfig.build(lake=lake).storage(), table)) == 1
    config = LakeConfig.build(lake=lake)
    dumped = dump_to_items(list(dump_items(open_catalog(config, config.storage()), "ddb", table)))
    assert dumped == scan_items(clients, table)


def test_a_first_load_failing_before_its_first_state_is_run_again_by_the_next_sync(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    # The first sync's load fails (an export whose data file does not match its manifest) after
    # capture began and before the load wrote any state; capture checkpoints on the way out.
    # Without the first-load marker the next sync would see a checkpoint and no load: never loaded.
    from test_stream_coverage import export_taken_at

    from ddblake.capture.checkpoint import load_checkpoint
    from ddblake.errors import DdblakeError
    from ddblake.load.handoff import first_load_path

    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    storage = LakeConfig.build(lake=lake).storage()
    put_many(clients, table, 40, prefix="old", pad=10)
    capture = CaptureConfig.build(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, once=True)
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    folder = export_taken_at(tmp_path / "export", time.time_ns() // 1000, table=table)  # after the stream
    (Path(folder) / "data" / "part.json.gz").write_bytes(b"not the bytes the manifest names")
    corrupt = LoadConfig.build(table=table, lake=lake, from_export=folder, keys="pk,sk")
    with pytest.raises(DdblakeError):
        run_sync(SyncConfig(capture=capture, apply=apply, load=corrupt), clients=clients)
    assert not list_loads(storage, table)  # the load wrote nothing
    if load_checkpoint(storage, table) is None:
        # capture was stopped before its first read of the stream (a race with the failing load):
        # a capture --once makes the worst case, a lake with positions and no load, certain
        run_capture(capture, clients=clients, storage=storage)
    assert load_checkpoint(storage, table) is not None
    assert storage.read(first_load_path(table)) is not None
    assert needs_load(storage, table)

    put_many(clients, table, 5, prefix="new", pad=10)  # captured since: applied after the load
    _sync_once(table, lake, dynamodb_local_endpoint)
    assert storage.read(first_load_path(table)) is None
    assert not needs_load(storage, table)
    catalog = open_catalog(LakeConfig.build(lake=lake), storage)
    assert dump_to_items(list(dump_items(catalog, "ddb", table))) == scan_items(clients, table)


def test_sync_refuses_a_table_without_a_stream_before_loading_it(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    # A load made without a stream could never be followed: refused before hours of Scan.
    from ddblake.errors import TerminalError

    table = make_table(table_name, stream=False)
    put_many(clients, table, 5, prefix="old", pad=10)
    lake = str(tmp_path / "lake")
    with pytest.raises(TerminalError, match="has no stream; enable one with"):
        _sync_once(table, lake, dynamodb_local_endpoint)
    storage = LakeConfig.build(lake=lake).storage()
    assert not list_loads(storage, table) and not storage.list_files("raw/")
