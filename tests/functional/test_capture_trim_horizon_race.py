"""A first capture rides out the trim horizon moving under it, and leaves no false gap behind.

On an old stream, GetRecords on a fresh TRIM_HORIZON iterator may answer TrimmedDataAccessException:
the oldest record was trimmed between GetShardIterator and GetRecords. No record of that shard was
ever the lake's, so nothing owed is lost: capture opens it at the new horizon again (a bounded number
of times), and a shard with no record read yet is kept "from TRIM_HORIZON" in the checkpoint
(``"horizon": true``), not as known from its start, which a rerun would report as a gap: within the
first capture's window only (``test_capture_horizon_window.py`` shows it ending). The race
cannot be made on DynamoDB Local (it never trims), so the stream is scripted.
"""

from __future__ import annotations

import json
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
from ddblake.capture.consumer import HORIZON_REOPENS, CaptureStats, StreamCapture
from ddblake.capture.streams import DataTrimmed, RecordBatch
from ddblake.errors import StreamGapError, TransientError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

SHARD = "shardId-00001"


class RacyHorizon(ScriptedStream):
    """The first ``races`` GetRecords answer trimmed, the horizon moving on by one record each time."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        if self.races:
            self.races -= 1
            self.trimmed_below = max(self.trimmed_below, 2) + 1
            raise DataTrimmed("records were trimmed")
        sid, at = iterator.split("|")
        left = sum(1 for n in self._numbers(sid) if n < self.trimmed_below)
        return super().get_records(f"{sid}|{max(int(at), left)}", limit)


def capture(stream: ScriptedStream, lake: Path) -> CaptureStats:
    config = CaptureConfig(table=TABLE, lake=str(lake), once=True, check_reach=False)
    return StreamCapture(config, stream, Storage.from_uri(str(lake))).run()  # type: ignore[arg-type]


def test_first_capture_rides_out_the_trim_horizon_moving_and_a_rerun_sees_no_gap(tmp_path: Path) -> None:
    stream = RacyHorizon(races=2)
    stream.shard_defs[SHARD] = (None, 1, None, [record(n) for n in range(1, 8)])
    assert capture(stream, tmp_path).records == 4  # 4-7: 1-3 were trimmed before any was read
    assert stream.opened == [(SHARD, None, None)] * 3  # TRIM_HORIZON each time
    stream.shard_defs[SHARD][3].append(record(8))
    assert capture(stream, tmp_path).records == 1  # the rerun: after 7, no gap
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in range(4, 9)]


def test_a_horizon_that_keeps_moving_is_retried_later_and_stays_from_trim_horizon(tmp_path: Path) -> None:
    stream = RacyHorizon(races=HORIZON_REOPENS)
    stream.shard_defs[SHARD] = (None, 1, None, [record(n) for n in range(1, 20)])
    with pytest.raises(TransientError, match="TRIM_HORIZON"):
        capture(stream, tmp_path)
    storage = Storage.from_uri(str(tmp_path))
    saved = json.loads(storage.read(checkpoint_path(TABLE)) or b"")
    assert saved["shards"][SHARD] == {"parent": None, "seq": None, "closed": False, "horizon": True}
    assert capture(stream, tmp_path).records == 19 - HORIZON_REOPENS - 1  # the rerun: no gap
    assert stream.opened[-1] == (SHARD, None, None)


def test_a_child_listed_with_its_unread_first_seen_parent_is_read_from_its_start_once_the_parent_is(
    tmp_path: Path,
) -> None:
    child = "shardId-00002"
    stream = ScriptedStream(trimmed_below=3)
    stream.shard_defs[SHARD] = (None, 1, 5, [record(n) for n in range(1, 6)])
    stream.shard_defs[child] = (SHARD, 6, None, [record(n) for n in range(6, 8)])
    assert capture(stream, tmp_path).records == 5
    assert stream.opened == [(SHARD, None, None), (child, None, seq(6))]
    checkpoint = load_checkpoint(Storage.from_uri(str(tmp_path)), TABLE)
    assert checkpoint is not None and not any(p.horizon for p in checkpoint.shards.values())


def test_a_known_unread_shard_trimmed_under_getrecords_is_a_gap_from_its_start(tmp_path: Path) -> None:
    positions = {SHARD: ShardPosition(None, None)}  # known from its start (no "horizon")
    save_checkpoint(Storage.from_uri(str(tmp_path)), Checkpoint(TABLE, ARN, positions, updated_us=1))
    stream = RacyHorizon(races=1)
    stream.shard_defs[SHARD] = (None, 1, None, [record(n) for n in range(1, 8)])
    with pytest.raises(StreamGapError) as caught:
        capture(stream, tmp_path)
    assert f"records of shard {SHARD} from its start ({seq(1)}) are past" in str(caught.value)
    assert stream.opened == [(SHARD, None, seq(1))]
