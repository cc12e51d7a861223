"""Random workloads on DynamoDB Local, synced into the lake: dump equals a Scan, every event once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import DDBLAKE, REPO, stream_event_ids
from workload import Workload, dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.capture.config import CaptureConfig
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.report import dump_items
from ddblake.names import changes_identifier
from ddblake.sync import SyncConfig, run_sync


def _sync_once(table: str, lake: str, endpoint: str) -> None:
    capture = CaptureConfig.build(table=table, lake=lake, endpoint_url=endpoint, once=True)
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    run_sync(SyncConfig(capture=capture, apply=apply))


def _check(clients: DynamoClients, table: str, lake: str) -> None:
    config = LakeConfig.build(lake=lake)
    catalog = open_catalog(config, config.storage())
    dumped = dump_to_items(list(dump_items(catalog, "ddb", table)))
    assert dumped == scan_items(clients, table)
    history = catalog.load_table(f"ddb.{changes_identifier(table)}").scan(selected_fields=("event_id",))
    ids = history.to_arrow().column("event_id").to_pylist()
    assert len(ids) == len(set(ids)), "an event landed twice in the history"
    # A sync killed before its first (empty) load finished loads again on restart, when the table
    # has items: their load rows are in the history too, beside every stream event (as the faults
    # oracle, tests/faults/faultlib.check_lake, counts them).
    stream = {i for i in ids if not i.startswith("load-")}
    assert stream == set(stream_event_ids(clients, table)), "history differs from the stream"


@pytest.mark.parametrize("seed", [1, 2])
def test_random_workload_then_sync_once_gives_dump_equal_to_scan(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
    seed: int,
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    counts = Workload(clients, table, seed).run(150)
    assert set(counts) == {"put", "update", "delete", "batch", "transaction"}
    _sync_once(table, lake, dynamodb_local_endpoint)
    more = Workload(clients, table, seed + 100)
    more.run(60)
    _sync_once(table, lake, dynamodb_local_endpoint)
    _check(clients, table, lake)


def test_sync_killed_at_random_instants_loses_and_duplicates_nothing(
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    rng = random.Random(11)
    work = Workload(clients, table, 11)
    env = {**os.environ, "DDBLAKE_LOG_LEVEL": "WARNING"}
    args = [str(DDBLAKE), "sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]
    for _trial in range(4):
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # The writer's own pace decides the kill instant: sync is somewhere in capture or apply.
            work.run(rng.randrange(20, 60))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert "Traceback" not in err, err
        assert proc.returncode == -signal.SIGKILL, f"sync ended before its kill: {err[-2000:]}"
    _sync_once(table, lake, dynamodb_local_endpoint)
    _check(clients, table, lake)
