"""A first capture's trims are skipped only within its window, never on a later run.

What the stream trimmed before a first capture read it predates the lake's load (the load check
accepts a load at most 23 hours older than the first capture's start), so a first capture skips it:
but only for as long as that holds, the window (``horizon_until_us``, 55 minutes), not for as long
as a shard happens to stay unread. A quiet table's shards, or their children, met again a day later
are known from their start, and a trim there is a gap. Within the window, a shard's trimmed start is
no gap even for the child of a shard just read. DynamoDB Local never trims, so the stream is scripted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from capture_helpers import read_events
from scripted_stream import ARN, TABLE, ScriptedStream, record, seq

from ddblake.capture.checkpoint import (
    Checkpoint,
    ShardPosition,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.capture.streams import RecordBatch
from ddblake.errors import StreamGapError, TerminalError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

A, B = "shardId-00001", "shardId-00002"
DAY_NS = 25 * 3_600_000_000_000  # more than the stream's 24 hours
HOUR_US = 3_600_000_000  # more than the window (55 minutes)


def capture(stream: ScriptedStream, lake: Path) -> CaptureStats:
    config = CaptureConfig(table=TABLE, lake=str(lake), once=True, check_reach=False)
    return StreamCapture(config, stream, Storage.from_uri(str(lake))).run()  # type: ignore[arg-type]


def later(monkeypatch: pytest.MonkeyPatch, ns: int) -> None:
    """This machine's clock moves ``ns`` on (capture reads it through ``time.time_ns``)."""
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + ns)


def stored(lake: Path) -> Checkpoint:
    checkpoint = load_checkpoint(Storage.from_uri(str(lake)), TABLE)
    assert checkpoint is not None
    return checkpoint


def test_a_quiet_table_met_a_day_later_is_known_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = ScriptedStream()
    stream.shard_defs[A] = (None, 1, None, [])  # a quiet table: the open shard has no record yet
    assert capture(stream, tmp_path).records == 0  # first capture
    assert capture(stream, tmp_path).records == 0  # a second run, within the window
    assert stored(tmp_path).shards[A].horizon
    # Capture stops for more than a day; the table is written (1-5 in A, which rolls over, 6-8 in
    # its child B) and the stream trims 1 and 2: changes made long after the lake's load.
    later(monkeypatch, DAY_NS)
    stream.shard_defs[A] = (None, 1, 5, [record(n) for n in range(1, 6)])
    stream.shard_defs[B] = (A, 6, None, [record(n) for n in range(6, 9)])
    stream.trimmed_below = 3
    with pytest.raises(StreamGapError) as caught:
        capture(stream, tmp_path)
    assert f"records of shard {A} from its start ({seq(1)}) are past" in str(caught.value)
    assert stream.opened[-1] == (A, None, seq(1))  # AT_SEQUENCE_NUMBER, not TRIM_HORIZON
    assert read_events(str(tmp_path), TABLE) == []
    after = stored(tmp_path)  # the window is dropped, and with it the mark: as before it existed
    assert after.horizon_until_us is None and not after.shards[A].horizon
    saved = json.loads(Storage.from_uri(str(tmp_path)).read(checkpoint_path(TABLE)) or b"")
    assert "horizon_until_us" not in saved and saved["shards"][A] == {
        "parent": None,
        "seq": None,
        "closed": False,
    }


def test_a_quiet_lineage_does_not_pass_the_mark_to_its_children(tmp_path: Path) -> None:
    stream = ScriptedStream()
    stream.shard_defs[A] = (None, 1, None, [])
    capture(stream, tmp_path)  # first capture, quiet
    stream.shard_defs[A] = (None, 1, 1, [])  # rolled over, still empty
    stream.shard_defs[B] = (A, 2, None, [])
    capture(stream, tmp_path)  # B first seen, its parent known and read to its end
    checkpoint = stored(tmp_path)
    assert checkpoint.shards[A].closed and not checkpoint.shards[A].horizon
    assert not checkpoint.shards[B].horizon, "B's parent was read to its end: B is owed from its start"
    assert stream.opened[-1] == (B, None, seq(2))


def test_a_quiet_lineage_trimmed_a_day_later_is_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = ScriptedStream()
    stream.shard_defs[A] = (None, 1, 1, [])
    stream.shard_defs[B] = (A, 2, None, [])  # listed with its parent: both unread, first capture
    capture(stream, tmp_path)
    later(monkeypatch, DAY_NS)
    stream.shard_defs[B] = (A, 2, None, [record(n) for n in range(2, 6)])
    stream.trimmed_below = 4
    with pytest.raises(StreamGapError, match=f"shard {B} from its start"):
        capture(stream, tmp_path)


class TrimAfterParentRead(ScriptedStream):
    """The horizon moves past the child's first record once the parent's last page is served."""

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        batch = super().get_records(iterator, limit)
        if iterator.startswith(A) and batch.next_iterator is None:
            self.trimmed_below = 5  # 1-4 (the parent's all, and the child's first) now > 24 h old
        return batch


def test_first_capture_child_of_a_just_read_parent_trimmed_at_its_start_is_no_gap(tmp_path: Path) -> None:
    stream = TrimAfterParentRead()
    stream.shard_defs[A] = (None, 1, 3, [record(n) for n in range(1, 4)])
    stream.shard_defs[B] = (A, 4, None, [record(n) for n in range(4, 9)])
    # Record 4 is more than 24 hours old when B is opened, so older than any load the first capture
    # accepted: skipped, within the window. Opened at its start first, then at TRIM_HORIZON.
    assert capture(stream, tmp_path).records == 7
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in (1, 2, 3, 5, 6, 7, 8)]
    assert stream.opened == [(A, None, None), (B, None, seq(4)), (B, None, None)]


def test_the_same_trim_after_the_window_is_a_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = TrimAfterParentRead()
    stream.shard_defs[A] = (None, 1, 3, [record(n) for n in range(1, 4)])
    stream.shard_defs[B] = (A, 4, None, [record(n) for n in range(4, 9)])
    real = time.time_ns
    original = stream.get_records

    def slow_parent(iterator: str, limit: int) -> RecordBatch:
        batch = original(iterator, limit)
        if iterator.startswith(A) and batch.next_iterator is None:  # B is reached after the window
            monkeypatch.setattr(time, "time_ns", lambda: real() + HOUR_US * 1000)
        return batch

    stream.get_records = slow_parent  # type: ignore[method-assign]
    with pytest.raises(StreamGapError, match=f"shard {B} from its start"):
        capture(stream, tmp_path)
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in (1, 2, 3)]


def test_a_checkpoint_marked_without_a_window_reads_as_known_from_the_start(tmp_path: Path) -> None:
    # Written by the version that had the mark and no window: when its first capture ran is unknown.
    positions = {A: ShardPosition(None, None, horizon=True)}
    save_checkpoint(Storage.from_uri(str(tmp_path)), Checkpoint(TABLE, ARN, positions, updated_us=1))
    stream = ScriptedStream(trimmed_below=3)
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 6)])
    with pytest.raises(StreamGapError, match=f"shard {A} from its start"):
        capture(stream, tmp_path)
    assert stream.opened == [(A, None, seq(1))]


def test_a_window_far_beyond_now_counts_as_ended(tmp_path: Path) -> None:
    # A clock reading earlier than the first capture's start (or an edited file): past the window.
    until = time.time_ns() // 1000 + 2 * HOUR_US
    positions = {A: ShardPosition(None, None, horizon=True)}
    checkpoint = Checkpoint(TABLE, ARN, positions, updated_us=1, horizon_until_us=until)
    save_checkpoint(Storage.from_uri(str(tmp_path)), checkpoint)
    stream = ScriptedStream(trimmed_below=3)
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 6)])
    with pytest.raises(StreamGapError):
        capture(stream, tmp_path)


def test_the_window_field_is_checked_and_ignored_by_the_keys_an_older_parser_reads(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    checkpoint = Checkpoint(TABLE, ARN, {A: ShardPosition(None, None, horizon=True)}, horizon_until_us=7)
    doc = json.loads(checkpoint.to_json())
    assert doc["horizon_until_us"] == 7 and doc["v"] == 1  # same version: an older ddblake reads it
    assert Checkpoint.from_json(checkpoint.to_json(), table=TABLE, where="x").horizon_until_us == 7
    doc["horizon_until_us"] = "7"
    storage.write_atomic(checkpoint_path(TABLE), json.dumps(doc).encode())
    with pytest.raises(TerminalError, match="horizon_until_us"):
        load_checkpoint(storage, TABLE)
