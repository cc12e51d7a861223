"""sync's first load: the way out a refusal names works, and a refusal is not made for a load sync
would not resume.

An unfinished Scan older than the stream is resumed by every plain sync, so only ``--rebootstrap``
(which sets it aside) gets out; a lake holding only an old incremental export does not hold the
table, so sync's own full load must not be refused for that export's age.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_stream_coverage import HOUR_US, _age_load, _put, _sync_config, export_taken_at, now, state

from ddblake.errors import TerminalError
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.report import dump_items
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, run_load
from ddblake.load.handoff import check_first_capture
from ddblake.load.state import write_state
from ddblake.progress import NoProgress
from ddblake.rebootstrap import rebootstrap
from ddblake.sync import check_stream_older_than_load, needs_load, run_sync

pytestmark = pytest.mark.functional


def _enable_stream(clients: Any, table: str) -> str:
    clients.dynamodb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    arn = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert isinstance(arn, str)
    return arn


def _dumped_keys(lake: str, table: str) -> list[str]:
    catalog = open_catalog(LakeConfig.build(lake=lake), Storage.from_uri(lake))
    return sorted(json.loads(line)["Item"]["pk"]["S"] for line in dump_items(catalog, "ddb", table))


def test_an_unfinished_scan_older_than_the_stream_is_refused_with_rebootstrap_as_the_way_out(
    make_table: Callable[..., str],
    clients: Any,
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
) -> None:
    table, lake = make_table(table_name, sort_key=False, stream=False), str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    _put(clients, table, 40, "a")
    run_load(LoadConfig.build(table=table, lake=lake, segments=4, page_items=5), clients=clients,
             progress=NoProgress("load"))  # fmt: skip
    _age_load(storage, table, 0.05, unfinish_from=1)  # `ddblake load` killed 3 minutes ago
    arn = _enable_stream(clients, table)
    for _ in range(2):  # a plain rerun resumes the same Scan: refused the same way, and says so
        with pytest.raises(TerminalError) as refused:
            run_sync(_sync_config(table, lake, segments=4, page_items=5), clients=clients)
        assert "--rebootstrap" in str(refused.value)
        assert "without --from-export" not in str(refused.value)
    # A run loading from a new export does not resume that Scan: the Scan's age is not held against it.
    export = LoadConfig.build(table=table, lake=lake, keys="pk", export_to="s3://bucket/exports")
    check_stream_older_than_load(export, storage, arn)
    scan = LoadConfig.build(table=table, lake=lake, segments=4, page_items=5)
    with pytest.raises(TerminalError, match="--rebootstrap"):
        check_stream_older_than_load(scan, storage, arn)
    # The way out named works: the re-bootstrap loads anew, and sync then follows on.
    rebootstrap(table, LakeConfig.build(lake=lake), dynamodb_local_endpoint, clients=clients)
    _put(clients, table, 3, "b")
    run_sync(_sync_config(table, lake, segments=4, page_items=5), clients=clients)
    assert _dumped_keys(lake, table) == sorted([f"a{i}" for i in range(40)] + [f"b{i}" for i in range(3)])


def test_a_sync_from_a_new_export_is_not_refused_for_an_old_unfinished_scan_it_does_not_resume(
    make_table: Callable[..., str], clients: Any, table_name: str, tmp_path: Path
) -> None:
    table, lake = make_table(table_name, sort_key=False), str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    _put(clients, table, 12, "a")
    run_load(LoadConfig.build(table=table, lake=lake, segments=4, page_items=5), clients=clients,
             progress=NoProgress("load"))  # fmt: skip
    _age_load(storage, table, 30, unfinish_from=1)  # `ddblake load` killed 30 hours ago
    # A plain sync would resume that Scan, which the stream no longer reaches: refused; a sync from
    # a new export does not resume it, so its age is not held against it.
    with pytest.raises(TerminalError, match="more than 23 hours ago"):
        check_first_capture(storage, table, now(), full_load_follows="scan")
    fresh = export_taken_at(tmp_path / "fresh", now() + 5_000_000, table=table)  # after the stream
    run_sync(_sync_config(table, lake, from_export=fresh), clients=clients)
    assert "a" in _dumped_keys(lake, table)  # the export's one item


def test_sync_loads_a_table_whose_lake_holds_only_an_old_incremental_export(
    make_table: Callable[..., str], clients: Any, table_name: str, tmp_path: Path
) -> None:
    table, lake = make_table(table_name, sort_key=False), str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    t = now()
    window = {"covers_from_us": t - 50 * HOUR_US, "covers_until_us": t - 48 * HOUR_US}
    write_state(storage, state(table, "export-incr", t - 50 * HOUR_US, incremental=True, **window))
    _put(clients, table, 12, "a")
    assert needs_load(storage, table)
    run_sync(_sync_config(table, lake, segments=2, page_items=5), clients=clients)
    assert _dumped_keys(lake, table) == sorted(f"a{i}" for i in range(12))
