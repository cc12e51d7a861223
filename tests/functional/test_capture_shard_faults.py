"""One shard's faults cost that shard only; quarantined records are held to the buffer like the rest.

A shard whose GetRecords keeps failing transiently (throttled, 5xx) backs off on its own while the
other shards are read, flushed on time and checkpointed; ``--once`` reads the others, flushes,
checkpoints, then ends with the shard's error. The stream is the scripted one (DynamoDB Local does
not throttle on demand); waits go through the stop event, which moves an injected clock instead of
sleeping, so the buffer ages and back-offs play out in no real time.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import read_events
from scripted_stream import TABLE, ScriptedStream, record, seq

from ddblake.capture import consumer
from ddblake.capture.checkpoint import Checkpoint, load_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import StreamCapture
from ddblake.capture.streams import RecordBatch
from ddblake.cli.main import main
from ddblake.errors import TerminalError, TransientError
from ddblake.lake.report import capture_summary
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

A, B = "shardId-A", "shardId-B"
MAX_WAITS = 2000  # a bound on the loop's waits, so that a broken loop ends (and the test fails)


class Clock:
    """A monotonic clock that moves only when the capture waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ClockedStop(threading.Event):
    """The capture's stop event: ``wait(t)`` moves the clock ``t`` on at once instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        self.clock.now += timeout or 0.0
        if self.waits >= MAX_WAITS:
            self.set()
        return self.is_set()


class Throttled(ScriptedStream):
    """``failing``'s GetRecords answer a transient error ``failures`` times (None: for ever); every
    GetRecords is recorded as ``(shard, clock reading)``."""

    def __init__(self, clock: Clock, failing: str, failures: int | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.failing = failing
        self.failures_left = failures
        self.failed = 0
        self.calls: list[tuple[str, float]] = []
        self.on_failure = lambda: None

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        sid = iterator.split("|")[0]
        self.calls.append((sid, self.clock.now))
        if sid == self.failing and self.failures_left != 0:
            if self.failures_left is not None:
                self.failures_left -= 1
            self.failed += 1
            self.on_failure()
            raise TransientError(f"GetRecords of table {TABLE!r}: LimitExceededException, after retries")
        return super().get_records(iterator, limit)


def _config(lake: Path, *, once: bool = False, **overrides: float) -> CaptureConfig:
    settings = {"buffer_seconds": 0.2, "poll_seconds": 0.1, **overrides}
    return CaptureConfig(table=TABLE, lake=str(lake), once=once, check_reach=False, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("failing_sorts", ["first", "last"])
def test_a_shard_that_keeps_failing_holds_back_neither_the_others_nor_their_files(
    tmp_path: Path, failing_sorts: str
) -> None:
    """Sorting first it used to starve the others (each pass began with it, and ended at it); sorting
    last, their records waited in memory: the time-based flush came only after a clean pass."""
    clock = Clock()
    stop = ClockedStop(clock)
    stream = Throttled(clock, B)
    stream.shard_defs[A] = (None, 10, None, [record(n) for n in range(10, 15)])
    stream.shard_defs[B] = (None, 0 if failing_sorts == "first" else 100, None, [])
    stream.on_failure = lambda: stop.set() if stream.failed >= 4 else None  # B kept failing a while
    files: list[tuple[str, bool, float]] = []  # (path, stop already set, clock reading)
    began = clock.now
    storage = Storage.from_uri(str(tmp_path))
    capture = StreamCapture(
        _config(tmp_path),
        stream,  # type: ignore[arg-type]
        storage,
        stop=stop,
        on_file=lambda path: files.append((path, stop.is_set(), clock.now)),
        monotonic=clock,
    )

    capture.run()

    assert stream.failed == 4
    assert files, "A's records reached a raw file"
    path, stopped, at = files[0]
    assert not stopped, "A's file was written while B was failing, not only at the stop"
    assert at - began <= 0.2 + 0.1 + 1e-6, "on time: buffer_seconds, plus at most one poll"
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in range(10, 15)]
    checkpoint = load_checkpoint(storage, TABLE)
    assert checkpoint is not None and checkpoint.shards[A].seq == seq(14)
    assert checkpoint.shards[B].seq is None, "B's position stays where its last written record left it"
    assert [o for o in stream.opened if o[0] == B] == [(B, None, None)], (
        "B's iterator is kept: a failed GetRecords is retried with it, not with a new GetShardIterator"
    )


def test_a_failing_shard_backs_off_on_its_own_and_reads_on_once_it_recovers(tmp_path: Path) -> None:
    clock = Clock()
    stop = ClockedStop(clock)
    stream = Throttled(clock, B, failures=3)
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 4)])
    stream.shard_defs[B] = (None, 100, None, [record(n) for n in range(100, 103)])
    storage = Storage.from_uri(str(tmp_path))

    def on_file(path: str) -> None:
        if len(read_events(str(tmp_path), TABLE)) == 6:
            stop.set()

    capture = StreamCapture(
        _config(tmp_path),
        stream,
        storage,
        stop=stop,
        on_file=on_file,
        monotonic=clock,  # type: ignore[arg-type]
    )

    capture.run()

    assert sorted(e.sequence for e in read_events(str(tmp_path), TABLE)) == [
        seq(n) for n in (1, 2, 3, 100, 101, 102)
    ]
    b_calls = [at for sid, at in stream.calls if sid == B][:4]  # three failures, then the records
    gaps = [later - earlier for earlier, later in zip(b_calls, b_calls[1:], strict=False)]
    for gap, ceiling in zip(gaps, (1.0, 2.0, 4.0), strict=True):  # 1 s doubling, with equal jitter
        assert ceiling / 2 <= gap <= ceiling + 0.1 + 1e-6, gaps
    a_between = [at for sid, at in stream.calls if sid == A and b_calls[0] < at < b_calls[-1]]
    assert len(a_between) > 3, "A was read on while B backed off"
    assert [o for o in stream.opened if o[0] == B] == [(B, None, None)]


def test_once_reads_flushes_and_checkpoints_the_other_shards_then_ends_with_the_failing_ones_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    stream = Throttled(clock, B)
    stream.shard_defs[B] = (None, 0, None, [record(n) for n in range(1, 3)])  # sorts first
    stream.shard_defs[A] = (None, 10, None, [record(n) for n in range(10, 15)])
    storage = Storage.from_uri(str(tmp_path))
    capture = StreamCapture(_config(tmp_path, once=True), stream, storage, monotonic=clock)  # type: ignore[arg-type]

    with (
        caplog.at_level(logging.WARNING, logger="ddblake"),
        pytest.raises(TransientError, match="after retries"),
    ):
        capture.run()

    assert stream.failed == 1, "boto3 retried already: a --once run sets the shard aside, no waiting"
    assert f"shard {B}" in caplog.text and "set aside for this run" in caplog.text
    assert [e.sequence for e in read_events(str(tmp_path), TABLE)] == [seq(n) for n in range(10, 15)]
    checkpoint = load_checkpoint(storage, TABLE)
    assert checkpoint is not None and checkpoint.shards[A].seq == seq(14) and checkpoint.shards[B].seq is None
    assert checkpoint.shards[B].failing_since_us is None, "the run's exit code says it: no mark"

    stream.failures_left = 0  # B answers again: the rerun reads it from where it was
    StreamCapture(_config(tmp_path, once=True), stream, storage, monotonic=clock).run()  # type: ignore[arg-type]
    assert sorted(e.sequence for e in read_events(str(tmp_path), TABLE)) == [
        seq(n) for n in (1, 2, 10, 11, 12, 13, 14)
    ]


def test_no_heartbeat_while_a_shard_backs_off_and_heartbeats_again_once_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat says "reading fine": on an idle table a shard that cannot be read lets the
    checkpoint age, as status expects of a capture that cannot read the stream."""
    clock = Clock()
    stop = ClockedStop(clock)
    stream = Throttled(clock, B, failures=5)  # back-offs of about 1, 2, 4, 8 and 16 s
    stream.shard_defs[A] = (None, 1, None, [])
    stream.shard_defs[B] = (None, 100, None, [])
    saves: list[float] = []
    real_save = consumer.save_checkpoint

    def recovered() -> float | None:
        """When B first answered (its sixth GetRecords), if it has."""
        b_calls = [at for sid, at in stream.calls if sid == B]
        return b_calls[5] if len(b_calls) > 5 else None

    def recording(storage: Storage, checkpoint: Checkpoint) -> None:
        real_save(storage, checkpoint)
        saves.append(clock.now)
        since = recovered()
        if since is not None and clock.now - since > 5:
            stop.set()

    monkeypatch.setattr(consumer, "save_checkpoint", recording)
    capture = StreamCapture(
        _config(tmp_path, heartbeat_seconds=1.0),
        stream,  # type: ignore[arg-type]
        Storage.from_uri(str(tmp_path)),
        stop=stop,
        monotonic=clock,
    )

    capture.run()

    back = recovered()
    assert back is not None and stream.failed == 5
    began = saves[0]  # the shards found
    assert back - began > 15, "B backed off for a while"
    assert not [t for t in saves if began < t < back], "no heartbeat while B backed off"
    assert len([t for t in saves if t > back]) >= 3, "heartbeats again once B reads"


def _bad(n: int) -> dict[str, object]:
    """A record the transform refuses (quarantined), carrying 1,000 bytes of item data."""
    bad = record(n)
    bad["eventName"] = "BOGUS"
    bad["dynamodb"]["NewImage"]["pad"] = {"S": "secret-" + "x" * 993}  # type: ignore[index]
    return bad


def test_quarantined_records_are_held_to_buffer_bytes_and_logged_once_per_shard_and_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Many shards of bad records used to grow the errors buffer far past --buffer-bytes (it was
    looked at only after a whole pass) and log a WARNING per record."""
    shards, per_shard, limit = 16, 100, 32 * 1024
    stream = ScriptedStream()
    for i in range(shards):
        first = i * 10_000 + 1
        stream.shard_defs[f"shard-{i:03d}"] = (None, first, None, [_bad(first + k) for k in range(per_shard)])
    storage = Storage.from_uri(str(tmp_path))
    config = CaptureConfig(table=TABLE, lake=str(tmp_path), once=True, check_reach=False, buffer_bytes=limit)

    with caplog.at_level(logging.WARNING, logger="ddblake"):
        stats = StreamCapture(config, stream, storage).run()  # type: ignore[arg-type]

    assert stats.quarantined == shards * per_shard
    files = storage.list_files(f"errors/{TABLE}")
    contents = [gzip.decompress(storage.read(f) or b"") for f in files]
    longest = max(len(line) + 1 for c in contents for line in c.splitlines())
    assert all(len(c) < limit + longest for c in contents), "each file cut at the limit, as raw files are"
    assert sum(len(c.splitlines()) for c in contents) == shards * per_shard
    counts = [
        int(m.group(1))
        for r in caplog.records
        if (m := re.search(r"quarantined (\d+) record\(s\) of shard ", r.getMessage()))
    ]
    assert sum(counts) == shards * per_shard
    assert len(counts) <= len(files) + shards, "one line per shard and file, not one per record"
    assert "unknown eventName BOGUS" in caplog.text, "with the first reason"
    assert "secret-" not in caplog.text, "no item data in the log"


WALL_US = 1_796_083_200_000_000  # 2026-12-01T00:00:00Z: the reader's wall clock at the clock's start


class Ticking(Throttled):
    """Each GetRecords takes a second of the clock, so a busy shard moves time on without waits."""

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        self.clock.now += 1.0
        return super().get_records(iterator, limit)


def _wall(clock: Clock) -> Callable[[], int]:
    start = clock.now
    return lambda: WALL_US + int((clock.now - start) * 1_000_000)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_shard_failing_for_hours_beside_a_busy_one_is_an_error_each_hour_and_shown_by_status(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kept the checkpoint fresh while B failed: nothing said B was unread until its records were
    trimmed, a day later, as a gap."""
    clock = Clock()
    stop = ClockedStop(clock)
    stream = Ticking(clock, B)
    stream.shard_defs[A] = (None, 1, None, [record(n) for n in range(1, 12_000)])
    stream.shard_defs[B] = (None, 100_000, None, [record(100_000)])
    stream.page = 1  # one record a GetRecords: A is busy all along
    began = clock.now
    stream.on_failure = lambda: stop.set() if clock.now - began > 2.5 * 3600 else None
    storage = Storage.from_uri(str(tmp_path))
    capture = StreamCapture(
        _config(tmp_path, buffer_seconds=60.0), stream, storage, stop=stop, monotonic=clock
    )  # type: ignore[arg-type]
    capture.reader.now_us = _wall(clock)

    with caplog.at_level(logging.INFO, logger="ddblake"):
        capture.run()

    errors = _errors(caplog)
    assert len(errors) == 2, "after an hour of failing, then once an hour"
    first_failure = next(at for sid, at in stream.calls if sid == B)
    since = WALL_US + int((first_failure - began) * 1_000_000)  # (recorded after its second passed)
    for message in errors:
        assert f"shard {B} has failed to read for" in message
        assert (
            f"since {dt.datetime.fromtimestamp(since / 1e6, tz=dt.UTC).isoformat(timespec='seconds')}"
            in message
        )
        assert "its first error: GetRecords of table 'scripted-table': LimitExceededException" in message
        assert "k100000" not in message and "NewImage" not in message, "no item data"
    assert "failed to read for 1.0 hour(s)" in errors[0] and "failed to read for 2.0 hour(s)" in errors[1]
    checkpoint = load_checkpoint(storage, TABLE)
    assert checkpoint is not None and checkpoint.shards[B].failing_since_us == since
    assert checkpoint.shards[A].failing_since_us is None and checkpoint.shards[A].seq is not None
    checkpointed, failing = capture_summary(storage, TABLE)
    assert checkpointed is not None
    when = dt.datetime.fromtimestamp(since / 1e6, tz=dt.UTC).isoformat(timespec="seconds")
    assert failing == f"1 shard(s) failing since {when} (the oldest): {B}"
    assert main(["status", "--lake", str(tmp_path), "--format", "json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["tables"]
    assert shown["table"] == TABLE and shown["failing_shards"] == failing

    # A restart keeps the time it began to fail: the first failure of the new run is past the hour.
    caplog.clear()
    stop2 = ClockedStop(clock)
    stream.on_failure = stop2.set
    again = StreamCapture(_config(tmp_path), stream, storage, stop=stop2, monotonic=clock)  # type: ignore[arg-type]
    again.reader.now_us = lambda: since + int(3 * 3600 * 1e6)
    with caplog.at_level(logging.ERROR, logger="ddblake"):
        again.run()
    (restarted,) = _errors(caplog)
    assert (
        f"shard {B} has failed to read for 3.0 hour(s)" in restarted
        and "its first error this run:" in restarted
    )

    # Once B answers, the mark goes with the next checkpoint, and status shows no failing shard.
    stream.failures_left, stream.page = 0, 1000
    StreamCapture(_config(tmp_path, once=True), stream, storage, monotonic=clock).run()  # type: ignore[arg-type]
    checkpoint = load_checkpoint(storage, TABLE)
    assert checkpoint is not None and checkpoint.shards[B].seq == seq(100_000)
    assert checkpoint.shards[B].failing_since_us is None
    assert capture_summary(storage, TABLE)[1] is None


def test_failing_since_is_kept_in_the_checkpoint_and_an_older_checkpoint_reads_without_it() -> None:
    old = (
        b'{"v": 1, "table": "t", "stream_arn": "s", "updated_us": 5, '
        b'"shards": {"x": {"parent": null, "seq": null, "closed": false}}}'
    )
    checkpoint = Checkpoint.from_json(old, table="t", where="here")
    assert checkpoint.shards["x"].failing_since_us is None
    assert b"failing_since_us" not in checkpoint.to_json(), (
        "written only when set: older ddblakes read the same"
    )
    checkpoint.shards["x"].failing_since_us = 7
    again = Checkpoint.from_json(checkpoint.copy().to_json(), table="t", where="here")
    assert again.shards["x"].failing_since_us == 7
    with pytest.raises(TerminalError, match="failing_since_us 'soon'"):
        Checkpoint.from_json(
            old.replace(b'"closed": false', b'"closed": false, "failing_since_us": "soon"'),
            table="t",
            where="here",
        )
