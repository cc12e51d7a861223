"""Gap detection and table/stream errors against DynamoDB Local, in-process and through the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import ddblake, put_many, read_events, stream_event_ids

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import checkpoint_path, first_capture_us
from ddblake.capture.consumer import CaptureStats
from ddblake.errors import NotFoundError, StreamGapError, TerminalError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

GONE = "shardId-00000001600000000000-deadbeef"


def test_checkpointed_shard_missing_from_stream_is_a_gap(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 3)
    lake = str(tmp_path / "lake")
    capture(table, lake)
    storage = Storage.from_uri(lake)
    doc = json.loads(storage.read(checkpoint_path(table)) or b"")
    doc["shards"][GONE] = {"parent": None, "seq": "000000000000000000007", "closed": False}
    del doc["horizon_until_us"]  # past the first capture's window (within it, GONE would be dropped)
    storage.write_atomic(checkpoint_path(table), json.dumps(doc).encode())

    with pytest.raises(StreamGapError) as caught:
        capture(table, lake)
    message = str(caught.value)
    assert table in message and GONE in message and "000000000000000000007" in message
    assert "full load" in message and checkpoint_path(table) in message

    cli = ddblake(
        "capture", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint, "--once"
    )
    assert cli.returncode == 1
    [line] = [x for x in cli.stderr.splitlines() if x.startswith("ddblake: error:")]
    assert "stream gap" in line and GONE in line and table in line


def test_stream_disabled_and_reenabled_is_a_gap(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 2)
    lake = str(tmp_path / "lake")
    capture(table, lake)
    old_arn = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]

    # Disabled: a once run drains what the old stream still holds, warns, and succeeds.
    put_many(clients, table, 2, prefix="before-disable")
    clients.dynamodb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    drained = capture(table, lake)
    assert drained.records == 2
    assert [e.event_id for e in read_events(lake, table)] == stream_event_ids(clients, table)

    clients.dynamodb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    new_arn = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert new_arn != old_arn
    with pytest.raises(StreamGapError) as caught:
        capture(table, lake)
    assert old_arn in str(caught.value) and new_arn in str(caught.value) and table in str(caught.value)


def test_table_without_stream_says_how_to_enable_it(
    make_table: Callable[..., str], capture: Callable[..., CaptureStats], table_name: str, tmp_path: Path
) -> None:
    table = make_table(table_name, stream=False)
    with pytest.raises(TerminalError, match=r"has no stream; enable one with: aws dynamodb update-table"):
        capture(table, str(tmp_path / "lake"))


def test_missing_table_names_table_and_endpoint(
    capture: Callable[..., CaptureStats], dynamodb_local_endpoint: str, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError) as caught:
        capture("no-such-table", str(tmp_path / "lake"))
    assert "'no-such-table'" in str(caught.value) and dynamodb_local_endpoint in str(caught.value)


@pytest.mark.parametrize("view", ["KEYS_ONLY", "OLD_IMAGE"])
def test_a_stream_without_new_images_is_refused_before_anything_is_read(
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    view: str,
) -> None:
    from ddblake.capture.checkpoint import load_checkpoint
    from ddblake.lake.storage import Storage

    table = make_table(f"{table_name}-{view}", view=view)
    lake = str(tmp_path / "lake")
    with pytest.raises(
        TerminalError, match=rf"streams {view} records, which carry no new image.*StreamViewType"
    ):
        capture(table, lake)
    assert load_checkpoint(Storage.from_uri(lake), table) is None


def test_a_stream_enabled_after_the_lakes_load_is_refused(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
) -> None:
    # The table was loaded while it had no stream; the stream enabled afterwards misses what was
    # written in between, so a first capture from it must not pass for a hand-off.
    import time

    from ddblake.lake.storage import Storage
    from ddblake.load.handoff import stream_created_us
    from ddblake.load.state import LoadState, write_state

    table = make_table(table_name, stream=False)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    loaded_at = time.time_ns() // 1000 - 10 * 60_000_000  # ten minutes ago
    write_state(
        storage,
        LoadState(
            table=table,
            name="scan",
            kind="scan",
            load_id="scan-1",
            started_us=loaded_at,
            version_time_us=loaded_at,
            total_parts=1,
            finished_us=loaded_at + 1,
            options={},
        ),
    )
    spec = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    arn = clients.dynamodb.update_table(TableName=table, StreamSpecification=spec)["TableDescription"][
        "LatestStreamArn"
    ]
    assert stream_created_us(arn) is not None  # DynamoDB Local labels its streams with their creation time
    with pytest.raises(TerminalError, match=r"was enabled at .*after the lake's load scan-1.*--rebootstrap"):
        capture(table, lake)


def test_a_rebootstrap_rerun_after_its_positions_were_trimmed_starts_over(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
) -> None:
    """A re-bootstrap that pinned its positions and died a day ago: they are trimmed now, so its
    load would be followed by no stream. The rerun takes new positions and a new load instead of
    failing with the gap it was meant to mend, run after run."""
    from ddblake.lake.catalog import LakeConfig
    from ddblake.rebootstrap import marker_path, rebootstrap

    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    capture(table, lake)  # before any write: no event in the lake for the re-bootstrap to outrank
    put_many(clients, table, 5)
    storage = Storage.from_uri(lake)
    doc = json.loads(storage.read(checkpoint_path(table)) or b"")
    doc["shards"][GONE] = {"parent": None, "seq": "000000000000000000007", "closed": False}  # trimmed
    del doc["horizon_until_us"]  # a day ago: the first capture's window has passed
    doc["first_capture_us"] = 1  # the old checkpoint's first capture
    storage.write_atomic(checkpoint_path(table), json.dumps(doc).encode())
    storage.write_atomic(  # as the interrupted re-bootstrap left it
        marker_path(table), json.dumps({"v": 1, "table": table, "started_us": 1, "load_start_us": 2}).encode()
    )

    before = time.time_ns() // 1000
    done = rebootstrap(table, LakeConfig.build(lake=lake), dynamodb_local_endpoint, clients=clients)
    assert done.loaded == 5 and storage.read(marker_path(table)) is None
    # The new checkpoint is a first capture's: its own start, not the set-aside one's.
    started = first_capture_us(storage, table)
    assert started is not None and started >= before
    put_many(clients, table, 2, prefix="after")
    assert capture(table, lake).records == 2  # the new positions are followed


def test_sync_rebootstrap_takes_once_from_the_environment(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
) -> None:
    """``DDBLAKE_ONCE=1`` stops ``sync --rebootstrap`` after the re-bootstrap, as ``--once`` does;
    it went on into a continuous sync that never returned."""
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    capture(table, lake)
    put_many(clients, table, 4)
    argv = ["sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]
    argv.append("--rebootstrap")

    done = ddblake(*argv, env={"DDBLAKE_ONCE": "1"}, timeout=180)

    assert done.returncode == 0, done.stderr[-2000:]
    dumped = ddblake("dump", "--table", table, "--lake", lake)
    assert len(dumped.stdout.splitlines()) == 4
