"""A child shard first seen on a rerun whose parent the checkpoint knows is read from its start.

A rerun a day after the last meets children that run never listed. Opened at ``TRIM_HORIZON`` such
a child would skip, in silence, what the stream trimmed of it meanwhile: changes the lake owed,
since it had read their parent. Opened ``AT_SEQUENCE_NUMBER`` of its ``StartingSequenceNumber``, a
trim shows as ``TrimmedDataAccessException``: a gap. Only within a first capture's window (its first
55 minutes) does a shard start at the trim horizon. DynamoDB Local neither splits shards nor trims them,
so the stream is scripted (``scripted_stream``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from capture_helpers import read_events
from scripted_stream import ARN, TABLE, ScriptedStream, record, seq

from ddblake.capture.checkpoint import Checkpoint, ShardPosition, save_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.errors import StreamGapError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

PARENT, CHILD, GRANDCHILD = "shardId-00001-parent", "shardId-00002-child", "shardId-00003-grandchild"


def capture(stream: ScriptedStream, lake: Path) -> CaptureStats:
    config = CaptureConfig(table=TABLE, lake=str(lake), once=True, check_reach=False)
    return StreamCapture(config, stream, Storage.from_uri(str(lake))).run()  # type: ignore[arg-type]


def parent_read_to_its_end(lake: Path) -> None:
    """The last run's checkpoint: the parent read to its end (5) and closed, its child not listed."""
    positions = {PARENT: ShardPosition(None, seq(5), True)}
    save_checkpoint(Storage.from_uri(str(lake)), Checkpoint(TABLE, ARN, positions, updated_us=1))


def test_child_of_a_known_parent_trimmed_meanwhile_is_a_gap(tmp_path: Path) -> None:
    parent_read_to_its_end(tmp_path)
    stream = ScriptedStream(trimmed_below=8)  # a day on: the parent is gone, the child's 6 and 7 too
    stream.shard_defs[CHILD] = (PARENT, 6, None, [record(n) for n in range(6, 11)])
    with pytest.raises(StreamGapError) as caught:
        capture(stream, tmp_path)
    assert CHILD in str(caught.value) and f"from its start ({seq(6)})" in str(caught.value)
    assert stream.opened == [(CHILD, None, seq(6))]  # AT_SEQUENCE_NUMBER, not TRIM_HORIZON
    assert read_events(str(tmp_path), TABLE) == []  # nothing past the gap written as if complete


def test_child_of_a_known_parent_not_trimmed_is_read_whole(tmp_path: Path) -> None:
    parent_read_to_its_end(tmp_path)
    stream = ScriptedStream()
    stream.shard_defs[CHILD] = (PARENT, 6, 10, [record(n) for n in range(6, 11)])
    stream.shard_defs[GRANDCHILD] = (CHILD, 11, None, [record(n) for n in range(11, 13)])
    assert capture(stream, tmp_path).records == 7
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in range(6, 13)]
    assert stream.opened == [(CHILD, None, seq(6)), (GRANDCHILD, None, seq(11))]


def test_first_capture_starts_a_line_whose_root_was_trimmed_at_the_trim_horizon(tmp_path: Path) -> None:
    # No checkpoint: the parent's records all trimmed, the child's first too. Nothing of either was
    # ever the lake's, so both start at whatever the stream holds: no gap.
    stream = ScriptedStream(trimmed_below=8)
    stream.shard_defs[CHILD] = (PARENT, 6, 10, [record(n) for n in range(6, 11)])
    stream.shard_defs[GRANDCHILD] = (CHILD, 11, None, [record(11)])
    assert capture(stream, tmp_path).records == 4
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in (8, 9, 10, 11)]
    assert stream.opened[0] == (CHILD, None, None)  # TRIM_HORIZON
