"""A first capture, and sync's first load from an export, refuse when the stream cannot reach back.

Capture with no checkpoint reads from each shard's trim horizon, at most 24 hours back: a load (or an
export) older than that leaves the changes in between in neither. These run against DynamoDB Local
(the capture) and a real export folder (sync's check), with load states as ``ddblake load`` writes them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ddblake.capture.checkpoint import load_checkpoint
from ddblake.errors import TerminalError
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig
from ddblake.load.handoff import check_first_capture, stream_needed_from
from ddblake.load.state import LoadState, list_loads, write_state
from ddblake.sync import check_export_source

pytestmark = pytest.mark.functional

HOUR_US = 3_600_000_000


def now() -> int:
    return time.time_ns() // 1000


def state(table: str, name: str, started: int, *, finished: bool = True, **options: Any) -> LoadState:
    return LoadState(
        table=table,
        name=name,
        kind="export" if name.startswith("export") else "scan",
        load_id=name,
        started_us=started,
        version_time_us=started,
        total_parts=1,
        finished_us=started + 1 if finished else None,
        options=options,
    )


def test_the_stream_must_reach_back_to_the_newest_finished_load() -> None:
    t = now()
    old_full = state("t", "export-a", t - 48 * HOUR_US)
    window = {"incremental": True, "covers_from_us": t - 48 * HOUR_US}
    gap_filled = state("t", "export-b", t - 47 * HOUR_US, **window, covers_until_us=t - HOUR_US)
    unknown_end = state("t", "export-c", t - 47 * HOUR_US, incremental=True)
    assert stream_needed_from([old_full]) == (old_full, t - 48 * HOUR_US)
    assert stream_needed_from([old_full, gap_filled]) == (gap_filled, t - HOUR_US)
    assert stream_needed_from([old_full, unknown_end]) == (old_full, t - 48 * HOUR_US)
    resumed = state("t", "scan", t - 2 * HOUR_US, finished=False)
    assert stream_needed_from([resumed]) == (resumed, t - 2 * HOUR_US)
    assert stream_needed_from([]) is None


def test_an_incremental_export_counts_only_where_its_window_joins_on() -> None:
    """An export whose window starts after the time the lake holds leaves the changes in between in
    neither: it does not carry the time on (nor one that recorded no start, from an older ddblake)."""
    t = now()
    full = state("t", "export-a", t - 48 * HOUR_US)
    late = state("t", "export-b", t - 40 * HOUR_US, incremental=True, covers_from_us=t - 43 * HOUR_US,
                 covers_until_us=t - HOUR_US)  # fmt: skip
    no_start = state("t", "export-c", t - 40 * HOUR_US, incremental=True, covers_until_us=t - HOUR_US)
    assert stream_needed_from([full, late]) == (full, t - 48 * HOUR_US)
    assert stream_needed_from([full, no_start]) == (full, t - 48 * HOUR_US)
    # Two windows that chain (given in any order), and one that ended before the full load.
    first = state("t", "export-d", t - 30 * HOUR_US, incremental=True, covers_from_us=t - 49 * HOUR_US,
                  covers_until_us=t - 30 * HOUR_US)  # fmt: skip
    second = state("t", "export-e", t - 2 * HOUR_US, incremental=True, covers_from_us=t - 30 * HOUR_US,
                   covers_until_us=t - 2 * HOUR_US)  # fmt: skip
    before = state("t", "export-f", t - 50 * HOUR_US, incremental=True, covers_from_us=t - 60 * HOUR_US,
                   covers_until_us=t - 50 * HOUR_US)  # fmt: skip
    assert stream_needed_from([second, before, full, first]) == (second, t - 2 * HOUR_US)
    assert stream_needed_from([full, second]) == (full, t - 48 * HOUR_US)  # the first is missing


def test_a_first_capture_after_an_old_load_is_refused(
    make_table: Callable[..., str], capture: Callable[..., Any], table_name: str, tmp_path: Path
) -> None:
    table = make_table(table_name, sort_key=False)  # unique: the session's DynamoDB Local is shared
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    write_state(storage, state(table, "scan", now() - 30 * HOUR_US))
    with pytest.raises(TerminalError, match=rf"{re.escape(table)}.*more than 23 hours ago.*ddblake sync"):
        capture(table, lake)
    assert load_checkpoint(storage, table) is None  # nothing was captured

    write_state(storage, state(table, "scan", now()))  # a load the stream (older) follows on from
    capture(table, lake)
    assert load_checkpoint(storage, table) is not None
    write_state(storage, state(table, "scan", now() - 30 * HOUR_US))
    capture(table, lake)  # with a checkpoint, capture goes on from it: no question of reach


def test_check_first_capture_passes_a_lake_without_loads(tmp_path: Path) -> None:
    check_first_capture(Storage.from_uri(str(tmp_path / "lake")), "t", now())


def export_taken_at(
    tmp_path: Path, taken_us: int | None, *, incremental: bool = False, table: str = "example-ddb-table"
) -> str:
    """An export folder's manifests as AWS writes them (check_export_source reads only those)."""
    export_id = "01764316800000-a1b2c3d4"
    folder = tmp_path / "AWSDynamoDB" / export_id
    (folder / "data").mkdir(parents=True)
    data = gzip.compress(b'{"Item":{"pk":{"S":"a"}}}\n', mtime=0)
    (folder / "data" / "part.json.gz").write_bytes(data)
    entry = {
        "itemCount": 1,
        "md5Checksum": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324 - as AWS
        "etag": "x",
        "dataFileS3Key": f"AWSDynamoDB/{export_id}/data/part.json.gz",
    }
    (folder / "manifest-files.json").write_text(json.dumps(entry) + "\n")
    arn = f"arn:aws:dynamodb:us-east-1:111111111111:table/{table}"
    summary: dict[str, Any] = {
        "version": "2020-06-30",
        "exportArn": f"{arn}/export/{export_id}",
        "tableArn": arn,
        "manifestFilesS3Key": f"AWSDynamoDB/{export_id}/manifest-files.json",
        "itemCount": 1,
        "outputFormat": "DYNAMODB_JSON",
    }
    if incremental:
        summary.update(exportType="INCREMENTAL_EXPORT", exportFromTime="2026-11-27T08:00:00Z")
    else:
        # To the millisecond, as AWS writes it (and as the stream's label is): an export of the
        # stream's own second is refused when it is earlier than the label, however little.
        millis = (taken_us or 0) // 1000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
        summary["exportTime"] = f"{stamp}.{millis % 1000:03d}Z"
    (folder / "manifest-summary.json").write_text(json.dumps(summary))
    return str(folder)


def test_sync_refuses_an_old_or_incremental_export_as_its_first_load(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    old = export_taken_at(tmp_path / "old", now() - 25 * HOUR_US)
    with pytest.raises(TerminalError, match=r"more than 23 hours ago.*newer export"):
        check_export_source(LoadConfig.build(table="example-ddb-table", lake=lake, from_export=old), now())
    inc = export_taken_at(tmp_path / "inc", None, incremental=True)
    with pytest.raises(TerminalError, match="is incremental, not the whole table"):
        check_export_source(LoadConfig.build(table="example-ddb-table", lake=lake, from_export=inc), now())
    fresh = export_taken_at(tmp_path / "fresh", now() - HOUR_US)
    check_export_source(LoadConfig.build(table="example-ddb-table", lake=lake, from_export=fresh), now())


def test_a_rebootstrap_of_a_lake_loaded_long_ago_is_not_refused(
    make_table: Callable[..., str],
    clients: Any,
    dynamodb_local_endpoint: str,
    table_name: str,
    tmp_path: Path,
) -> None:
    # The re-bootstrap's own load follows its fresh stream positions: the old load's age is moot.
    from ddblake.capture.checkpoint import load_checkpoint
    from ddblake.lake.catalog import LakeConfig
    from ddblake.rebootstrap import rebootstrap

    table = make_table(table_name, sort_key=False)
    clients.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    write_state(storage, state(table, "scan", now() - 30 * HOUR_US))  # the lake's load, 30 h ago
    result = rebootstrap(table, LakeConfig.build(lake=lake), dynamodb_local_endpoint, clients=clients)
    assert result.loaded == 1
    assert load_checkpoint(storage, table) is not None


def test_sync_resuming_an_export_load_after_capture_began_is_not_refused_for_its_age(
    make_table: Callable[..., str], clients: Any, table_name: str, tmp_path: Path
) -> None:
    # The first sync's capture checkpointed while the export loaded: the stream has been read since.
    from ddblake.capture.checkpoint import Checkpoint, ShardPosition, save_checkpoint
    from ddblake.capture.config import CaptureConfig
    from ddblake.lake.apply import ApplyConfig
    from ddblake.lake.catalog import LakeConfig
    from ddblake.load.state import export_state_name
    from ddblake.sync import SyncConfig, run_sync

    table, lake = make_table(table_name, sort_key=False), str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    old = export_taken_at(tmp_path / "old", now() - 25 * HOUR_US, table=table)
    arn = "arn:aws:dynamodb:us-east-1:1:table/x/stream/s"
    save_checkpoint(storage, Checkpoint(table=table, stream_arn=arn, shards={"s-1": ShardPosition(seq="1")}))
    write_state(storage, state(table, export_state_name("01764316800000-a1b2c3d4"), now(), finished=False))
    config = SyncConfig(
        capture=CaptureConfig.build(table=table, lake=lake, endpoint_url="http://127.0.0.1:9", once=True),
        apply=ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True),
        load=LoadConfig.build(table=table, lake=lake, from_export=old, keys="pk"),
    )
    # The age check lets the resumed load through; what refuses it is the next check, since the
    # table (and its stream) on DynamoDB Local is newer than a 25-hour-old export.
    with pytest.raises(TerminalError) as caught:
        run_sync(config, clients=clients)
    assert "hours ago" not in str(caught.value)
    assert f"export {old} holds the table as of" in str(caught.value)
    assert "before its stream" in str(caught.value) and "was enabled" in str(caught.value)


def _sync_config(table: str, lake: str, **load: Any) -> Any:
    from ddblake.capture.config import CaptureConfig
    from ddblake.lake.apply import ApplyConfig
    from ddblake.lake.catalog import LakeConfig
    from ddblake.sync import SyncConfig

    return SyncConfig(
        capture=CaptureConfig.build(table=table, lake=lake, endpoint_url="http://127.0.0.1:9", once=True),
        apply=ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True),
        # the key names only for an export: a Scan load takes them from DescribeTable (--keys refused)
        load=LoadConfig.build(
            table=table, lake=lake, keys="pk" if {"from_export", "export_to"} & set(load) else None, **load
        ),
    )


def test_a_first_load_marker_without_a_checkpoint_does_not_extend_the_streams_reach(
    make_table: Callable[..., str], clients: Any, table_name: str, tmp_path: Path
) -> None:
    # An earlier sync began 5 hours ago and died before capture checkpointed: the stream will be
    # read from its trim horizon now, so an export 22 hours old is too old, though it was not then.
    from ddblake.load.handoff import first_load_started, mark_first_load
    from ddblake.sync import run_sync

    table, lake = make_table(table_name, sort_key=False), str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    mark_first_load(storage, table, now() - 5 * HOUR_US)
    export = export_taken_at(
        tmp_path / "e", now() - 26 * HOUR_US, table=table
    )  # within 23 h of the marker's time
    with pytest.raises(TerminalError, match="more than 23 hours ago"):
        run_sync(_sync_config(table, lake, from_export=export), clients=clients)
    assert first_load_started(storage, table) is not None  # still pending


def test_a_load_finished_since_the_marker_must_be_reached_by_the_stream(tmp_path: Path) -> None:
    from ddblake.capture.checkpoint import Checkpoint, ShardPosition, save_checkpoint
    from ddblake.load.handoff import first_load_started, mark_first_load, settle_first_load

    table, lake = "example-ddb-table", str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    arn = "arn:aws:dynamodb:us-east-1:1:table/x/stream/s"
    save_checkpoint(storage, Checkpoint(table=table, stream_arn=arn, shards={"s-1": ShardPosition(seq="1")}))
    began = now() - HOUR_US
    mark_first_load(storage, table, began)
    write_state(storage, state(table, "export-old", now() - 30 * HOUR_US))  # `ddblake load` of an old export
    with pytest.raises(
        TerminalError, match=r"export-old holds the table as of .* read only since .*--rebootstrap"
    ):
        from ddblake.sync import run_sync

        run_sync(_sync_config(table, lake))
    assert first_load_started(storage, table) == began  # refused: nothing settled

    write_state(storage, state(table, "scan", began - 2 * HOUR_US))  # a load the stream follows on from
    settle_first_load(storage, table, began)
    assert first_load_started(storage, table) is None


def test_an_old_pending_export_request_is_refused_as_the_first_load(tmp_path: Path) -> None:
    from ddblake.load.state import EXPORT_REQUEST, state_path
    from ddblake.sync import check_export_source

    table, lake = "example-ddb-table", str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    doc = {"export_arn": "arn:aws:dynamodb:us-east-1:1:table/t/export/e", "destination": "s3://b/p"}
    storage.write_atomic(
        state_path(table, EXPORT_REQUEST), json.dumps({**doc, "started_us": now() - 25 * HOUR_US}).encode()
    )
    config = LoadConfig.build(table=table, lake=lake, export_to="s3://b/p")
    with pytest.raises(
        TerminalError, match=r"export .* an earlier run started .*delete .*export-request\.json"
    ):
        check_export_source(config, now(), storage)
    storage.write_atomic(
        state_path(table, EXPORT_REQUEST), json.dumps({**doc, "started_us": now() - HOUR_US}).encode()
    )
    check_export_source(config, now(), storage)


def test_a_first_capture_moves_a_first_load_marker_forward(
    make_table: Callable[..., str], capture: Callable[..., Any], table_name: str, tmp_path: Path
) -> None:
    from ddblake.load.handoff import first_load_started, mark_first_load

    table = make_table(table_name, sort_key=False)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    mark_first_load(storage, table, 1)
    before = now()
    capture(table, lake, check_reach=False)
    started = first_load_started(storage, table)
    assert started is not None and started >= before


def test_sync_refuses_a_disabled_stream_and_an_export_older_than_the_stream(
    make_table: Callable[..., str], clients: Any, table_name: str, tmp_path: Path
) -> None:
    from ddblake.sync import run_sync

    table = make_table(table_name, sort_key=False)  # its stream is created now
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    before_stream = export_taken_at(tmp_path / "e", now() - HOUR_US, table=table)  # young, but older
    with pytest.raises(TerminalError, match=r"export .* holds the table as of .* before its stream"):
        run_sync(_sync_config(table, lake, from_export=before_stream), clients=clients)
    assert not list_loads(storage, table) and not storage.list_files("raw/")

    clients.dynamodb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    with pytest.raises(TerminalError, match="its stream is disabled"):
        run_sync(_sync_config(table, lake), clients=clients)
    assert not list_loads(storage, table) and not storage.list_files("raw/")


def _age_load(storage: Storage, table: str, hours: float, *, unfinish_from: int | None = None) -> None:
    """The table's Scan load as if started ``hours`` ago (and killed after its first parts)."""
    from ddblake.load.rows import version_time_from_us

    path = Path(storage.root) / "state" / "load" / table / "scan.json"
    doc = json.loads(path.read_text())
    doc["started_us"] = now() - int(hours * HOUR_US)
    doc["version_time_us"] = version_time_from_us(doc["started_us"])
    doc["finished_us"] = None
    for part, progress in doc["parts"].items():
        if unfinish_from is not None and int(part) >= unfinish_from:
            progress.update(done=False, items=0, pages=0, last_key=None)
    path.write_text(json.dumps(doc))


def _put(clients: Any, table: str, count: int, prefix: str) -> None:
    for i in range(count):
        clients.dynamodb.put_item(TableName=table, Item={"pk": {"S": f"{prefix}{i}"}, "v": {"N": str(i)}})


def test_sync_finishes_an_old_load_that_capture_has_followed_since(
    make_table: Callable[..., str],
    clients: Any,
    capture: Callable[..., Any],
    table_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ddblake load` killed, `ddblake capture` running since (a checkpoint, no sync marker); 25 h
    later sync resumes the load: the stream has been read since before it began, so no gap."""
    from ddblake import sync
    from ddblake.lake.catalog import LakeConfig, open_catalog
    from ddblake.lake.report import dump_items
    from ddblake.load import handoff, run_load
    from ddblake.progress import NoProgress

    for module in (sync, handoff):  # an AWS stream enabled long ago (DynamoDB Local's is new)
        monkeypatch.setattr(module, "stream_created_us", lambda arn: None)
    table, lake = make_table(table_name, sort_key=False), str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    _put(clients, table, 40, "a")
    config = LoadConfig.build(table=table, lake=lake, segments=4, page_items=5)
    run_load(config, clients=clients, progress=NoProgress("load"))
    _age_load(storage, table, 0.1, unfinish_from=1)  # killed after its first segment
    capture(table, lake)  # started right after it: its reach check passes, and it checkpoints
    _put(clients, table, 5, "b")
    capture(table, lake)
    _age_load(storage, table, 25)  # a day has gone by; capture has kept up all along

    sync.run_sync(_sync_config(table, lake, segments=4, page_items=5), clients=clients)
    catalog = open_catalog(LakeConfig.build(lake=lake), storage)
    assert sorted(
        item["Item"]["pk"]["S"] for item in map(json.loads, dump_items(catalog, "ddb", table))
    ) == sorted([f"a{i}" for i in range(40)] + [f"b{i}" for i in range(5)])


def test_sync_refuses_an_old_unfinished_load_before_it_scans(
    make_table: Callable[..., str],
    clients: Any,
    table_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No checkpoint and a load begun 72 h ago: capture would refuse it, so sync does, before any Scan."""
    from ddblake import sync
    from ddblake.load import run_load
    from ddblake.progress import NoProgress

    monkeypatch.setattr(sync, "stream_created_us", lambda arn: None)
    table, lake = make_table(table_name, sort_key=False), str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    _put(clients, table, 40, "a")
    run_load(LoadConfig.build(table=table, lake=lake, segments=4, page_items=5), clients=clients,
             progress=NoProgress("load"))  # fmt: skip
    _age_load(storage, table, 72, unfinish_from=1)
    raw_before = storage.list_files("raw/")
    scans: list[str] = []
    clients.dynamodb.meta.events.register("before-call.dynamodb.Scan", lambda **_: scans.append("scan"))
    with pytest.raises(TerminalError, match="more than 23 hours ago"):
        sync.run_sync(_sync_config(table, lake, segments=4, page_items=5), clients=clients)
    assert scans == [] and storage.list_files("raw/") == raw_before
    assert load_checkpoint(storage, table) is None


def test_one_window_exported_twice_counts_once() -> None:
    t = now()
    full = state("t", "export-a", t - 48 * HOUR_US)
    window = {"incremental": True, "covers_from_us": t - 48 * HOUR_US, "covers_until_us": t - HOUR_US}
    first, again = (
        state("t", "export-b", t - 2 * HOUR_US, **window),
        state("t", "export-c", t - HOUR_US, **window),
    )
    needed = stream_needed_from([full, first, again])  # the sort compared the two states: a TypeError
    assert needed is not None and needed[1] == t - HOUR_US


def test_a_load_of_an_export_older_than_the_lakes_capture_can_follow_is_refused(
    make_table: Callable[..., str], clients: Any, dynamodb_local_endpoint: str, tmp_path: Path, capsys: Any
) -> None:
    """``ddblake capture`` first, then ``ddblake load --from-export`` of an export taken more than
    23 hours before that capture began: the changes in between were in neither, and its rows could
    bring back items deleted since. A recent export loads."""
    from ddblake.capture.checkpoint import first_capture_us
    from ddblake.cli.main import main

    table = make_table("example-ddb-table")
    lake = str(tmp_path / "lake")
    assert (
        main(
            ["capture", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint, "--once"]
        )
        == 0
    )
    began = first_capture_us(Storage.from_uri(lake), table)
    assert began is not None and abs(began - now()) < HOUR_US
    old = export_taken_at(tmp_path / "old", began - 24 * HOUR_US, table=table)
    capsys.readouterr()
    assert main(["load", "--table", table, "--lake", lake, "--from-export", old, "--keys", "pk"]) == 1
    err = capsys.readouterr().err
    assert (
        "more than 23 hours before this lake began capturing the table's stream" in err
        and "--rebootstrap" in err
    )
    assert list_loads(Storage.from_uri(lake), table) == []  # nothing loaded
    fresh = export_taken_at(tmp_path / "fresh", began - 22 * HOUR_US, table=table)
    assert main(["load", "--table", table, "--lake", lake, "--from-export", fresh, "--keys", "pk"]) == 0
