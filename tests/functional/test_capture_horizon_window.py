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
    first_capture_us,
    load_checkpoint,
    save_checkpoint,
)
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import HORIZON_REOPENS, CaptureStats, StreamCapture
from ddblake.capture.horizon import (
    HORIZON_CLOCK_STEP_US,
    HORIZON_WINDOW_US,
    end_horizon_window,
    in_horizon_window,
)
from ddblake.capture.streams import DataTrimmed, RecordBatch, ShardGone
from ddblake.errors import NotFoundError, StreamGapError, TerminalError, TransientError
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

A, B = "shardId-00001", "shardId-00002"
DAY_NS = 25 * 3_600_000_000_000  # more than the stream's 24 hours
HOUR_US = 3_600_000_000  # more than the window (55 minutes)
MIN_NS = 60 * 1_000_000_000
MIN_US = 60_000_000


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


# --- review r11: false gaps within the window, and the first capture's start kept -----------------


class TrimUnderReader(ScriptedStream):
    """GetRecords on an iterator whose next record is trimmed answers TrimmedDataAccessException;
    after A's first page the horizon overtakes the reader (a busy table's oldest shard)."""

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        sid, at = iterator.split("|")
        numbers = self._numbers(sid)
        if int(at) < len(numbers) and numbers[int(at)] < self.trimmed_below:
            raise DataTrimmed("records were trimmed")
        batch = super().get_records(iterator, limit)
        if sid == A and int(at) == sum(1 for n in numbers if n < 3):  # the first page from TRIM_HORIZON
            self.trimmed_below = 8  # 6 and 7 (older than 24 h) trimmed before the next GetRecords
            self.after_first_page()
        return batch

    def after_first_page(self) -> None:
        pass


def overtaken_stream() -> TrimUnderReader:
    stream = TrimUnderReader(trimmed_below=3)
    stream.page = 3
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 12)])
    return stream


def test_first_capture_overtaken_by_the_trim_within_the_window_is_no_gap(tmp_path: Path) -> None:
    # Within the window, what is trimmed predates the load, whether or not a record of the shard was
    # read already: after seq 5, the shard is reopened at TRIM_HORIZON (past 5), not a gap.
    stream = overtaken_stream()
    capture(stream, tmp_path)
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [
        seq(n) for n in (3, 4, 5, 8, 9, 10, 11)
    ]
    assert stream.opened == [(A, None, None), (A, None, None)]
    assert stored(tmp_path).shards[A].seq == seq(11)


def test_the_same_overtaking_after_the_window_is_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = overtaken_stream()
    real = time.time_ns
    stream.after_first_page = lambda: monkeypatch.setattr(  # type: ignore[method-assign]
        time, "time_ns", lambda: real() + HOUR_US * 1000
    )
    with pytest.raises(StreamGapError, match=f"records of shard {A} after sequence number {seq(5)}"):
        capture(stream, tmp_path)
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in (3, 4, 5)]


class RacyThenGone(ScriptedStream):
    """A's horizon moves under every GetRecords (HORIZON_REOPENS times): the first capture retries later."""

    def __init__(self) -> None:
        super().__init__(trimmed_below=2)
        self.races = HORIZON_REOPENS

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        if iterator.startswith(A) and self.races:
            self.races -= 1
            self.trimmed_below += 1
            raise DataTrimmed("records were trimmed")
        return super().get_records(iterator, limit)


def test_a_transient_horizon_race_is_no_gap_on_a_rerun_minutes_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = RacyThenGone()
    stream.shard_defs[A] = (None, 1, 8, [record(n) for n in range(1, 9)])  # closed, at the 24 h edge
    stream.shard_defs[B] = (A, 9, None, [record(n) for n in range(9, 12)])
    with pytest.raises(TransientError):  # "a transient error, not a gap" (docs/capture.md)
        capture(stream, tmp_path)
    # Two minutes later (well within the window) A's last records are trimmed and A leaves the stream.
    later(monkeypatch, 2 * MIN_NS)
    del stream.shard_defs[A]
    stream.trimmed_below = 9
    capture(stream, tmp_path)
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in (9, 10, 11)]
    checkpoint = stored(tmp_path)  # A kept, as finished, while its child names it
    assert checkpoint.shards[A].closed and checkpoint.shards[A].seq is None
    assert stream.opened[-1] == (B, None, seq(9))  # the child of a known, finished parent: its start


class GoneWhileRead(ScriptedStream):
    """Still listed, A answers ResourceNotFoundException to GetShardIterator or GetRecords."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def shard_iterator(
        self, arn: str, shard_id: str, after_seq: str | None, *, at_seq: str | None = None
    ) -> str:
        if shard_id == A and self.where == "iterator":
            raise NotFoundError(f"shard {shard_id} not found")
        return super().shard_iterator(arn, shard_id, after_seq, at_seq=at_seq)

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        if iterator.startswith(A) and self.where == "records":
            raise ShardGone("GetRecords: ResourceNotFoundException")
        return super().get_records(iterator, limit)


class GoneAndUnlisted(GoneWhileRead):
    """A answers ResourceNotFoundException, and the shard list no longer names it: it left the stream."""

    def shard_iterator(
        self, arn: str, shard_id: str, after_seq: str | None, *, at_seq: str | None = None
    ) -> str:
        try:
            return super().shard_iterator(arn, shard_id, after_seq, at_seq=at_seq)
        except NotFoundError:
            self.shard_defs.pop(A, None)
            raise

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        try:
            return super().get_records(iterator, limit)
        except ShardGone:
            self.shard_defs.pop(A, None)
            raise


@pytest.mark.parametrize("where", ["iterator", "records"])
def test_a_shard_gone_while_read_within_the_window_is_dropped_once_the_list_lacks_it(
    tmp_path: Path, where: str
) -> None:
    stream = GoneAndUnlisted(where)
    stream.shard_defs[A] = (None, 1, 3, [record(n) for n in range(1, 4)])
    stream.shard_defs[B] = (A, 4, None, [record(n) for n in range(4, 7)])
    capture(stream, tmp_path)
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in (4, 5, 6)]
    assert stored(tmp_path).shards[A].closed


@pytest.mark.parametrize("where", ["iterator", "records"])
def test_a_shard_still_listed_that_answers_not_found_is_a_gap_even_within_the_window(
    tmp_path: Path, where: str
) -> None:
    """Taken for finished, its records left unread would be lost: only the shard list says a shard
    left the stream (the refresh asked for after its first such answer)."""
    stream = GoneWhileRead(where)
    stream.shard_defs[A] = (None, 1, 3, [record(n) for n in range(1, 4)])
    stream.shard_defs[B] = (A, 4, None, [record(n) for n in range(4, 7)])
    with pytest.raises(StreamGapError, match=f"shard {A} of stream .* is gone"):
        capture(stream, tmp_path)


@pytest.mark.parametrize("where", ["iterator", "records"])
def test_a_shard_gone_while_read_after_the_window_is_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    stream = GoneWhileRead("none")
    stream.shard_defs[A] = (None, 1, None, [])
    capture(stream, tmp_path)  # first capture, quiet
    later(monkeypatch, DAY_NS)
    stream.where = where
    with pytest.raises(StreamGapError, match=f"shard {A} of stream .* is gone"):
        capture(stream, tmp_path)


def test_a_clock_read_1ms_earlier_than_the_runs_start_does_not_end_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = time.time_ns
    calls = {"n": 0}

    def stepped_back() -> int:  # NTP steps the clock back 1 ms just after the run began
        calls["n"] += 1
        return real() if calls["n"] == 1 else real() - 1_000_000

    monkeypatch.setattr(time, "time_ns", stepped_back)
    stream = ScriptedStream(trimmed_below=3)  # an old stream: its oldest records are trimmed
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 6)])
    capture(stream, tmp_path)
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in (3, 4, 5)]
    assert stored(tmp_path).horizon_until_us is not None  # kept for the runs that follow


def test_a_window_the_clock_cannot_place_is_ended_for_good() -> None:
    """A reading more than the allowance before the window's start (the clock stepped back): kept,
    the window came back when the clock reached it again, a day later, and skipped the trims of
    changes made after the load (tests below)."""
    now = 10 * HOUR_US
    within = Checkpoint(TABLE, horizon_until_us=now + HORIZON_WINDOW_US + HORIZON_CLOCK_STEP_US)
    assert in_horizon_window(within, now)  # a clock up to 5 minutes behind the first capture's start
    assert not end_horizon_window(within, now) and within.horizon_until_us is not None
    ahead = Checkpoint(
        TABLE,
        shards={A: ShardPosition(None, None, horizon=True)},
        horizon_until_us=now + HORIZON_WINDOW_US + HORIZON_CLOCK_STEP_US + 1,
    )
    assert not in_horizon_window(ahead, now)
    assert end_horizon_window(ahead, now) and ahead.horizon_until_us is None
    assert not ahead.shards[A].horizon


def test_a_clock_stepped_back_hours_does_not_bring_the_window_back_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first capture on a clock 25 h fast reads 1..5; NTP steps it back; a day later 6..8, made
    after the load, are trimmed while the clock reads inside the old window again: a gap, not a skip."""
    t0 = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: t0)
    stream = ScriptedStream()
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 6)])
    capture(stream, tmp_path)
    monkeypatch.setattr(time, "time_ns", lambda: t0 - 25 * HOUR_US * 1000 + 2 * 60_000_000_000)
    capture(stream, tmp_path)  # the clock stepped back: the window cannot be placed, and ends
    assert stored(tmp_path).horizon_until_us is None
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 12)])
    stream.trimmed_below = 9
    monkeypatch.setattr(time, "time_ns", lambda: t0 + 10 * 60_000_000_000)
    with pytest.raises(StreamGapError):
        capture(stream, tmp_path)


def test_the_first_captures_start_is_kept_for_good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = Storage.from_uri(str(tmp_path))
    assert first_capture_us(storage, TABLE) is None  # no checkpoint
    stream = ScriptedStream()
    stream.shard_defs[A] = (None, 1, None, [record(1)])
    before = time.time_ns() // 1000
    capture(stream, tmp_path)
    started = first_capture_us(storage, TABLE)
    assert started is not None and before <= started <= time.time_ns() // 1000
    assert stored(tmp_path).horizon_until_us == started + HORIZON_WINDOW_US
    later(monkeypatch, DAY_NS)  # the window ends and is dropped; the start stays
    stream.shard_defs[A] = (None, 1, None, [record(1), record(2)])
    capture(stream, tmp_path)
    data = storage.read(checkpoint_path(TABLE))
    assert first_capture_us(storage, TABLE) == started and stored(tmp_path).horizon_until_us is None
    assert storage.read(checkpoint_path(TABLE)) == data  # read only


def test_a_checkpoint_without_the_first_captures_start_reads_and_keeps_none(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    doc = json.loads(Checkpoint(TABLE, ARN, {A: ShardPosition(None, seq(1))}, updated_us=1).to_json())
    assert "first_capture_us" not in doc  # as an older ddblake wrote it
    storage.write_atomic(checkpoint_path(TABLE), json.dumps(doc).encode())
    assert first_capture_us(storage, TABLE) is None
    stream = ScriptedStream()
    stream.shard_defs[A] = (None, 1, None, [record(1), record(2)])
    capture(stream, tmp_path)  # not a first capture: no start is made up for it
    assert first_capture_us(storage, TABLE) is None
    doc["first_capture_us"] = "1"
    storage.write_atomic(checkpoint_path(TABLE), json.dumps(doc).encode())
    with pytest.raises(TerminalError, match="first_capture_us"):
        first_capture_us(storage, TABLE)
