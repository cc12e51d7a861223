"""The DynamoDB Streams consumer: shards in order, records into raw files, checkpoints after them.

Crash safety rests on one ordering: a record's position reaches the checkpoint only after the raw
file holding the record is written (atomically), and the checkpoint itself is written atomically.
So at any instant the lake's checkpoint is at or behind its raw files. A crash loses only what was
buffered in memory — which the stream still holds, and a rerun reads again from the checkpoint. The
price is duplicates: records written to a raw file whose checkpoint was not written yet are written
again on rerun. ``apply`` drops them by event ID.

Gaps are the one thing a rerun cannot repair, so they stop capture with :class:`StreamGapError`:

1. a shard in the checkpoint, not read to its end, is gone from the stream (trimmed after 24 h),
   unless within the first capture's window (:mod:`ddblake.capture.horizon`: then it is dropped);
2. the stream refuses a position as trimmed (``TrimmedDataAccessException``) — the position after a
   shard's last record read, or, for a shard with no record read yet, its start — unless that comes
   within the first capture's window (reopened at ``TRIM_HORIZON``)
   (cases 1 and 3 are :func:`ddblake.capture.gaps.find_gap`'s);
3. a new shard's parent is neither in the stream nor in the checkpoint, on a stream ddblake has
   read before (a whole generation of shards came and went unread);
4. the table's stream ARN differs from the checkpoint's (stream disabled and re-enabled, or the
   table re-created): changes made in between were in no stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ddblake.backoff import backoff_with_jitter
from ddblake.capture.checkpoint import (
    Checkpoint,
    ShardPosition,
    check_own_checkpoint,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from ddblake.capture.config import CaptureConfig
from ddblake.capture.gaps import drop_vanished_shards, find_gap, gap_error
from ddblake.capture.horizon import end_horizon_window, open_horizon_window, starts_at_horizon
from ddblake.capture.reading import HORIZON_REOPENS, ShardReader, next_backoff
from ddblake.capture.records import made_after_start, quarantine_line, record_to_line, seq_of
from ddblake.capture.shards import Shard, order_parents_first, readable_shards
from ddblake.capture.streams import StreamsAdapter, check_stream, drained_message, table_or_kept_stream
from ddblake.errors import BadRecordError, StreamGapError, TerminalError, TransientError
from ddblake.lake.rawlog import ERRORS_ROOT, RawLogWriter
from ddblake.lake.storage import Storage
from ddblake.load.handoff import check_first_capture, check_stream_follows_load, restamp_first_load

__all__ = ["HORIZON_REOPENS", "CaptureStats", "StreamCapture"]

log = logging.getLogger(__name__)

ONCE_OPEN_EMPTY_PAGES = 3
"""``--once``: empty pages in a row after which an open shard counts as read up to now. GetRecords
may return an empty page before records ("it might take multiple calls to get to a portion of the
shard that contains stream records"), so one empty page is not the end."""
ONCE_CLOSED_EMPTY_PAGES = 1000
"""``--once``: a closed shard is read until GetRecords returns no next iterator (its end: then its
children are read); only this many empty pages in a row stop a run short of it, with a warning."""


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class CaptureStats:
    """What one capture run did (logged at the end; no item data)."""

    records: int = 0
    files: int = 0
    quarantined: int = 0
    shards_finished: int = 0
    checkpoints: int = 0
    stopped_by: str | None = None  # the signal that stopped the run (set by run_capture)


class StreamCapture:
    """Reads one table's stream into the raw change log until caught up (once) or stopped."""

    def __init__(
        self,
        config: CaptureConfig,
        adapter: StreamsAdapter,
        storage: Storage,
        *,
        stop: threading.Event | None = None,
        on_file: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare a run; nothing is read until :meth:`run`.

        ``on_file`` is called with each raw file's path once the file and the checkpoint covering
        it are written (``sync`` wakes its apply loop with it). ``monotonic`` is the clock of buffer
        ages, back-offs, refreshes and heartbeats (injectable for tests; waits go through ``stop``).
        """
        self.on_file = on_file
        self.config = config
        self.table = config.table
        self.adapter = adapter
        self.storage = storage
        self.stop = stop or threading.Event()
        self.monotonic = monotonic
        self.writer = RawLogWriter(
            storage, config.table, config.buffer_bytes, config.buffer_seconds, monotonic=monotonic
        )
        self.errors = RawLogWriter(
            storage,
            config.table,
            config.buffer_bytes,
            config.buffer_seconds,
            root=ERRORS_ROOT,
            monotonic=monotonic,
        )
        self.reader = ShardReader(
            adapter,
            storage,
            config.table,
            max_records=config.max_records,
            once=config.once,
            monotonic=monotonic,
            now_us=_now_us,
        )
        self.state = Checkpoint(table=config.table)
        self.stats = CaptureStats()
        self.topology: list[Shard] = []
        self.caught_up: set[str] = set()
        self.started_us = 0  # when run() began, µs: a --once run reads what was written before it
        self.empty_pages: dict[str, int] = {}  # empty pages in a row, per shard
        self.stream_enabled = True
        self.table_deleted = False  # DescribeTable: not found, while the checkpoint's stream still is
        self.dirty = False
        self.need_refresh = True
        self._saved_at = monotonic()  # the last checkpoint write (see heartbeat_seconds)
        self._saved_us: int | None = None  # the stored checkpoint's updated_us, as this capture left it
        self._attempted_us: list[int] = []  # updated_us of writes since then that reported failure
        self._warned: set[str] = set()
        self._quarantined: dict[str, tuple[int, str, str]] = {}  # shard -> (count, first seq, reason)

    # --- public ---------------------------------------------------------------------------------------

    def run(self) -> CaptureStats:
        """Capture until caught up (``once``) or until :attr:`stop` is set; flush and checkpoint.

        Raises:
            StreamGapError: the stream lost records ddblake never read.
            NotFoundError: the table does not exist (nor, for a table deleted since the checkpoint
                named its stream, that stream: :func:`ddblake.capture.streams.table_or_kept_stream`).
            TerminalError: the table has no stream, or another error retrying will not fix (with
                ``once`` off: a disabled stream or a deleted table's, read to its end).
            TransientError: (with ``once``) AWS or the lake kept failing after retries: the shard
                list or the lake at once, a shard after the others are read (it was set aside).
        """
        self.started_us = now = _now_us()  # one clock for this, the load check and the window
        loaded = load_checkpoint(self.storage, self.table)
        self._saved_us = None if loaded is None else loaded.updated_us  # what must still be stored
        if loaded is not None:
            self.state = loaded
        else:
            if self.config.check_reach:  # from the trim horizon: it must reach back to the lake's load
                check_first_capture(self.storage, self.table, now)
            restamp_first_load(self.storage, self.table, now)  # the stream is read from now on
            open_horizon_window(self.state, now)  # trims skipped until its end only; start kept for good
        log.info(
            "capture %s: %s, lake %s",
            self.table,
            f"resuming {len(self.state.shards)} shard(s) from checkpoint" if loaded else "first run",
            self.storage.shown(),
        )
        try:
            self._loop()
        except Exception:
            try:  # keep what was read before the error; the checkpoint still never passes the data
                self._commit()
            except Exception as e:  # the original error matters more
                log.warning("capture %s: could not flush after an error: %s", self.table, e)
            raise
        self._commit()
        log.info(
            "capture %s: %d record(s) in %d file(s), %d quarantined, %d shard(s) finished; checkpoint %s",
            self.table,
            self.stats.records,
            self.stats.files,
            self.stats.quarantined,
            self.stats.shards_finished,
            self.storage.shown(checkpoint_path(self.table)),
        )
        return self.stats

    # --- loop -----------------------------------------------------------------------------------------

    def _loop(self) -> None:
        next_refresh = 0.0
        confirming = False  # once: every shard looked caught up; one more topology check before exit
        backoff = 0.0  # the whole capture's, while the shard list or the lake fails (a shard has its own)
        while not self.stop.is_set():
            idle: float | None = None
            try:
                if self.need_refresh or self.monotonic() >= next_refresh:
                    self._refresh()
                    next_refresh = self.monotonic() + self.config.refresh_seconds
                ready = readable_shards(self.topology, self._closed(), self.state.shards.keys())
                if not ready and self._drained_disabled_stream():
                    return
                pending = [s for s in ready if not self._done_for_now(s.shard_id)]
                if self.config.once and not pending:
                    if confirming or not ready:
                        self.reader.raise_set_aside()  # the rest is read; run() flushes first
                        return
                    confirming, self.need_refresh = True, True
                    continue
                confirming = False
                progressed = self._read_pass(pending)
                self._flush_step(pending)  # after every pass, whatever a shard answered
                backoff = 0.0
                if not progressed and not self.config.once:
                    idle = self._idle_wait(pending)
            except TransientError as e:
                if self.config.once:
                    raise
                backoff = next_backoff(backoff)
                delay = backoff_with_jitter(backoff)
                log.warning("capture %s: %s; retrying in %.1f s", self.table, e, delay)
                self.stop.wait(delay)
                continue
            if idle is not None:
                self.stop.wait(idle)

    def _done_for_now(self, shard_id: str) -> bool:
        """Once: caught up, or set aside after failing (:mod:`ddblake.capture.reading`)."""
        return self.config.once and (shard_id in self.caught_up or shard_id in self.reader.set_aside)

    def _read_pass(self, pending: list[Shard]) -> bool:
        """One GetRecords on each pending shard not backing off; whether any gave records."""
        progressed = False
        for shard in pending:
            if self.stop.is_set():
                break
            if not self.reader.waiting(shard.shard_id):
                progressed = self._poll_shard(shard) > 0 or progressed
        return progressed

    def _flush_step(self, pending: list[Shard]) -> None:
        """After a pass: a file when a buffer is due, else the checkpoint when it changed or a
        heartbeat is due."""
        if self.writer.due() or self.errors.due():
            self._commit()
        elif self.dirty and not self.writer.buffered_records and not self.errors.buffered_records:
            # A shard closed, found or pruned with nothing buffered: the positions in memory
            # cover only what is written, so record them now. Else a kill after a quiet day
            # would leave a closed, fully read shard recorded as open, and once the stream
            # drops it (24 h) the rerun would report a gap that is not one.
            self._commit()
        elif not self.config.once and self._heartbeat_due(pending):
            self.dirty = True  # idle and reading fine: the checkpoint's time says so
            self._commit()

    def _idle_wait(self, pending: list[Shard]) -> float:
        """How long a pass that read nothing waits: the poll interval, or less until a buffer is
        due or a shard backing off may be read again."""
        untils = (
            self.writer.seconds_until_due(),
            self.errors.seconds_until_due(),
            self.reader.seconds_until_retry({s.shard_id for s in pending}),
        )
        return min([self.config.poll_seconds, *(u for u in untils if u is not None)])

    def _closed(self) -> set[str]:
        return {sid for sid, pos in self.state.shards.items() if pos.closed}

    def _drained_disabled_stream(self) -> bool:
        """True (once) when a disabled stream is read to its end; raises when running on."""
        if self.stream_enabled or any(not self.state.shards[s.shard_id].closed for s in self.topology):
            return False
        message = drained_message(
            self.table, self.adapter.where, self.state.stream_arn, self.table_deleted, self.storage.shown()
        )
        if self.config.once:
            log.warning("capture %s: %s", self.table, message)
            return True
        raise TerminalError(message)

    # --- topology and gaps ------------------------------------------------------------------------------

    def _gap(self, what: str) -> StreamGapError:
        return gap_error(self.storage, self.table, what)

    def _refresh(self) -> None:
        self.need_refresh = False
        found = table_or_kept_stream(self.adapter, self.table, self.state.stream_arn)
        stream, self.table_deleted = found.stream, found.deleted
        check_stream(stream, self.table, self.adapter.where)
        assert stream.arn is not None  # noqa: S101 - check_stream refuses a table without one
        if self.state.stream_arn is None:
            if self.config.check_reach:  # (a re-bootstrap reloads after this: no load to follow)
                check_stream_follows_load(self.storage, self.table, stream.arn)
            self.state.stream_arn, self.dirty = stream.arn, True
        elif stream.arn != self.state.stream_arn:
            raise self._gap(
                f"its stream changed from {self.state.stream_arn} to {stream.arn} (stream disabled and "
                "re-enabled, or table re-created); changes made between the two streams are in neither"
                + ("; the table is deleted now" if self.table_deleted else "")
            )
        self.stream_enabled = stream.enabled
        if self.table_deleted:
            self._warn_once("deleted", f"table not found (deleted?), its stream {stream.arn} is: draining it")
        elif not stream.enabled:
            self._warn_once("disabled", "stream is disabled; reading what it still holds")
        shards = found.shards if found.shards is not None else self.adapter.shards(stream.arn)
        now = _now_us()
        self.dirty = drop_vanished_shards(self.state, shards, now) or self.dirty  # within the window
        lost = find_gap(shards, stream.arn, self.state.shards)
        if lost is not None:
            raise self._gap(lost)
        self.dirty = end_horizon_window(self.state, now) or self.dirty  # from now on, trims may be owed
        for shard in order_parents_first(shards):  # parents first: a listed parent is a known one
            if shard.shard_id not in self.state.shards:
                # Its parent unknown, within the first capture's window: what the stream trimmed of
                # it was never owed (capture/horizon.py). Else it is known from its start.
                horizon = starts_at_horizon(self.state, shard.parent_id, now)
                self.state.shards[shard.shard_id] = ShardPosition(shard.parent_id, horizon=horizon)
                self.dirty = True
        in_stream = {s.shard_id for s in shards}
        parents = {s.parent_id for s in shards if s.parent_id}
        for sid, pos in list(self.state.shards.items()):
            if pos.closed and sid not in in_stream and sid not in parents:
                del self.state.shards[sid]  # trimmed after we read it all, and no child needs it
                self.caught_up.discard(sid)
                self.reader.forget(sid)
                self.dirty = True
        if not self.topology:
            log.info(
                "capture %s: stream %s, %d shard(s), %d open",
                self.table,
                stream.arn,
                len(shards),
                sum(1 for s in shards if not s.closed),
            )
        self.topology = shards

    # --- reading --------------------------------------------------------------------------------------

    def _poll_shard(self, shard: Shard) -> int:
        """One GetRecords on a shard; returns how many records it gave."""
        sid, reader = shard.shard_id, self.reader
        batch = reader.read(shard, self.state)
        self.dirty, self.need_refresh = self.dirty or reader.marked, self.need_refresh or reader.refresh
        reader.marked = reader.refresh = False
        if batch is None:  # failed (it backs off), or gone within the window (the shard list decides)
            return 0
        ingested = _now_us()
        pos = self.state.shards[sid]
        try:
            for record in batch.records:
                self._add(record, sid, ingested)
                seq = seq_of(record)
                if seq is not None:
                    pos.seq, pos.horizon = seq, False  # its line is the lake's from here on
                if max(self.writer.buffered_bytes, self.errors.buffered_bytes) >= self.config.buffer_bytes:
                    self._commit()  # either buffer: quarantined records are held to the limit too
        except BaseException:
            reader.iterators.pop(sid, None)  # reopen after the last record buffered: no loss, no repeat
            raise
        self.stats.records += len(batch.records)
        if batch.records:
            log.debug(
                "capture %s: shard %s: %d record(s), up to %s", self.table, sid, len(batch.records), pos.seq
            )
        if batch.next_iterator is None and shard.end_seq is None:
            # The shard list says open: closed only once DescribeStream says so too (a reply can lack
            # its next iterator without the shard having ended). Reopen after the last record read.
            reader.iterators.pop(sid, None)
            self.need_refresh = True
            if not batch.records:
                self.empty_pages[sid] = self.empty_pages.get(sid, 0) + 1
                if self.empty_pages[sid] >= ONCE_OPEN_EMPTY_PAGES:
                    self.caught_up.add(sid)
            log.info("capture %s: shard %s gave no next iterator; checking the shard list", self.table, sid)
        elif batch.next_iterator is None:
            pos.closed, pos.horizon, self.dirty, self.need_refresh = True, False, True, True
            reader.iterators.pop(sid, None)
            self.caught_up.discard(sid)
            self.stats.shards_finished += 1
            log.info("capture %s: shard %s read to its end", self.table, sid)
        else:
            reader.iterators[sid] = batch.next_iterator
            if batch.records:
                self.caught_up.discard(sid)
                self.empty_pages.pop(sid, None)
            else:
                empty = self.empty_pages[sid] = self.empty_pages.get(sid, 0) + 1
                limit = ONCE_CLOSED_EMPTY_PAGES if shard.end_seq else ONCE_OPEN_EMPTY_PAGES
                if empty >= limit:
                    self.caught_up.add(sid)
                    if shard.end_seq and f"empty:{sid}" not in self._warned:
                        self._warned.add(f"empty:{sid}")
                        log.warning(
                            "capture %s: closed shard %s gave %d empty pages without reaching its end; "
                            "the next run goes on reading it (its children wait until then)",
                            self.table,
                            sid,
                            empty,
                        )
        if self.config.once and shard.end_seq is None and made_after_start(batch.records, self.started_us):
            # A busy table may never give an empty page: an open shard read up to changes made
            # after the run began is caught up with "now"; the rest is the next run's.
            self.caught_up.add(sid)
        return len(batch.records)

    def _add(self, record: Any, shard_id: str, ingested_us: int) -> None:
        try:
            line = record_to_line(record, table=self.table, ingested_us=ingested_us)
        except BadRecordError as e:
            self.stats.quarantined += 1
            # The reason names the field and the kind of problem, never a value (ddblake.changes.parse);
            # the record itself goes to the lake's errors/ prefix only, the log one line per shard and
            # file (_commit): a shard of bad records must not give a line each.
            count, first, reason = self._quarantined.get(shard_id, (0, seq_of(record) or "?", str(e)))
            self._quarantined[shard_id] = (count + 1, first, reason)
            self.errors.add(quarantine_line(record, str(e), self.table, shard_id, ingested_us))
            return
        self.writer.add(line)

    def _commit(self) -> None:
        """Write buffered lines, then (only then) the checkpoint covering them."""
        written = self.writer.flush()
        if written is not None:
            self.dirty = True
            self.stats.files += 1
            self.state.last_file = written.path
            log.info("capture %s: wrote %s (%d records)", self.table, written.path, written.records)
            if self.on_file is not None:  # now: a failing write below must not leave apply unwoken
                self.on_file(written.path)
        quarantined = self.errors.flush()
        if quarantined is not None:
            self.dirty = True
            for shard_id, (count, first, reason) in self._quarantined.items():
                log.warning(
                    "capture %s: quarantined %d record(s) of shard %s into %s; the first (sequence "
                    "number %s): %s",
                    self.table,
                    count,
                    shard_id,
                    quarantined.path,
                    first,
                    reason,
                )
            self._quarantined.clear()
        if self.dirty:
            self.state.updated_us = _now_us()
            check_own_checkpoint(self.storage, self.table, self._saved_us, self._attempted_us)
            self._attempted_us.append(self.state.updated_us)  # it may land yet report failure
            save_checkpoint(self.storage, self.state)
            self._saved_us, self._attempted_us = self.state.updated_us, []
            self.stats.checkpoints += 1
            self.dirty = False
            self._saved_at = self.monotonic()

    def _heartbeat_due(self, pending: list[Shard]) -> bool:
        """Idle, and every shard reading fine (a shard backing off is not: ``status`` shows the age)."""
        idle = not self.writer.buffered_records and not self.errors.buffered_records
        reading = self.reader.seconds_until_retry({s.shard_id for s in pending}) is None
        return idle and reading and self.monotonic() - self._saved_at >= self.config.heartbeat_seconds

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("capture %s: %s", self.table, message)
