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
from ddblake.capture.gaps import (
    drop_vanished_shards,
    find_gap,
    gap_error,
    gone_gap,
    trimmed_gap,
)
from ddblake.capture.horizon import (
    end_horizon_window,
    in_horizon_window,
    open_horizon_window,
    opens_at_horizon,
    starts_at_horizon,
)
from ddblake.capture.records import made_after_start, quarantine_line, record_to_line, seq_of
from ddblake.capture.shards import Shard, order_parents_first, readable_shards
from ddblake.capture.streams import (
    DataTrimmed,
    IteratorExpired,
    RecordBatch,
    ShardGone,
    StreamsAdapter,
    check_stream,
)
from ddblake.errors import BadRecordError, NotFoundError, StreamGapError, TerminalError, TransientError
from ddblake.lake.rawlog import ERRORS_ROOT, RawLogWriter
from ddblake.lake.storage import Storage
from ddblake.load.handoff import check_first_capture, check_stream_follows_load, restamp_first_load

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 30.0
ONCE_OPEN_EMPTY_PAGES = 3
"""``--once``: empty pages in a row after which an open shard counts as read up to now. GetRecords
may return an empty page before records ("it might take multiple calls to get to a portion of the
shard that contains stream records"), so one empty page is not the end."""
HORIZON_REOPENS = 5
"""How many times in a row a shard may answer TrimmedDataAccessException within the first capture's
window (the records it was opened at trimmed before they were read) before the run retries."""
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
    ) -> None:
        """Prepare a run; nothing is read until :meth:`run`.

        ``on_file`` is called with each raw file's path once the file and the checkpoint covering
        it are written (``sync`` wakes its apply loop with it).
        """
        self.on_file = on_file
        self.config = config
        self.table = config.table
        self.adapter = adapter
        self.storage = storage
        self.stop = stop or threading.Event()
        self.writer = RawLogWriter(storage, config.table, config.buffer_bytes, config.buffer_seconds)
        self.errors = RawLogWriter(
            storage, config.table, config.buffer_bytes, config.buffer_seconds, root=ERRORS_ROOT
        )
        self.state = Checkpoint(table=config.table)
        self.stats = CaptureStats()
        self.topology: list[Shard] = []
        self.iterators: dict[str, str] = {}
        self.caught_up: set[str] = set()
        self.started_us = 0  # when run() began, µs: a --once run reads what was written before it
        self.empty_pages: dict[str, int] = {}  # empty pages in a row, per shard
        self.stream_enabled = True
        self.dirty = False
        self.need_refresh = True
        self._saved_at = time.monotonic()  # the last checkpoint write (see heartbeat_seconds)
        self._saved_us: int | None = None  # the stored checkpoint's updated_us, as this capture left it
        self._attempted_us: list[int] = []  # updated_us of writes since then that reported failure
        self._warned: set[str] = set()
        self.overtaken: dict[str, str] = {}  # shard -> its seq the stream answered trimmed past (window)
        self.gone: set[str] = set()  # shards that answered not found within the window (this run)

    # --- public ---------------------------------------------------------------------------------------

    def run(self) -> CaptureStats:
        """Capture until caught up (``once``) or until :attr:`stop` is set; flush and checkpoint.

        Raises:
            StreamGapError: the stream lost records ddblake never read.
            NotFoundError: the table or stream does not exist.
            TerminalError: the table has no stream, or another error retrying will not fix.
            TransientError: (with ``once``) AWS or the lake kept failing after retries.
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
        backoff = 0.0
        while not self.stop.is_set():
            try:
                if self.need_refresh or time.monotonic() >= next_refresh:
                    self._refresh()
                    next_refresh = time.monotonic() + self.config.refresh_seconds
                ready = readable_shards(self.topology, self._closed(), self.state.shards.keys())
                if not ready and self._drained_disabled_stream():
                    return
                pending = [s for s in ready if not (self.config.once and s.shard_id in self.caught_up)]
                if self.config.once and not pending:
                    if confirming or not ready:
                        return
                    confirming, self.need_refresh = True, True
                    continue
                confirming = False
                progressed = False
                for shard in pending:
                    if self.stop.is_set():
                        break
                    progressed = self._poll_shard(shard) > 0 or progressed
                if self.writer.due() or self.errors.due():
                    self._commit()
                elif self.dirty and not self.writer.buffered_records and not self.errors.buffered_records:
                    # A shard closed, found or pruned with nothing buffered: the positions in memory
                    # cover only what is written, so record them now. Else a kill after a quiet day
                    # would leave a closed, fully read shard recorded as open, and once the stream
                    # drops it (24 h) the rerun would report a gap that is not one.
                    self._commit()
                elif not self.config.once and self._heartbeat_due():
                    self.dirty = True  # idle and reading fine: the checkpoint's time says so
                    self._commit()
                backoff = 0.0
            except TransientError as e:
                if self.config.once:
                    raise
                backoff = min(_MAX_BACKOFF_S, max(1.0, backoff * 2))
                delay = backoff_with_jitter(backoff)
                log.warning("capture %s: %s; retrying in %.1f s", self.table, e, delay)
                self.stop.wait(delay)
                continue
            if not progressed and not self.config.once:
                until_due = self.writer.seconds_until_due()
                wait = (
                    self.config.poll_seconds
                    if until_due is None
                    else min(self.config.poll_seconds, until_due)
                )
                self.stop.wait(wait)

    def _closed(self) -> set[str]:
        return {sid for sid, pos in self.state.shards.items() if pos.closed}

    def _drained_disabled_stream(self) -> bool:
        """True (once) when a disabled stream is read to its end; raises when running on."""
        if self.stream_enabled or any(not self.state.shards[s.shard_id].closed for s in self.topology):
            return False
        message = (
            f"the stream of table {self.table!r} is disabled and every change it held is captured; "
            "changes made from now on are not captured: enable the stream again "
            "(aws dynamodb update-table --table-name "
            f"{self.table} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES) "
            "and re-bootstrap the table from a full load"
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
        stream = self.adapter.table_stream()
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
            )
        self.stream_enabled = stream.enabled
        if not stream.enabled:
            self._warn_once("disabled", "stream is disabled; reading what it still holds")
        shards = self.adapter.shards(stream.arn)
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

    def _open(self, shard: Shard) -> str:
        sid, pos = shard.shard_id, self.state.shards[shard.shard_id]
        arn = self.state.stream_arn or ""  # set by the first _refresh, before any shard is read
        # Known but never read (seq null), or a child of a known shard: from its start, not
        # TRIM_HORIZON, which would silently skip what was trimmed since (a rerun a day later meets
        # children its last run never listed). Only a shard marked so within the first capture's
        # window (ShardPosition.horizon), or trimmed past its seq within it (self.overtaken), starts at
        # what the stream still holds. DataTrimmed goes to _fetch, which tells a gap from the window's.
        horizon = opens_at_horizon(self.state, pos, self.overtaken.get(sid), _now_us())
        after, at = (None, None) if horizon else (pos.seq, None if pos.seq else shard.start_seq)
        if not horizon and after is None and at is None:  # DescribeStream always gives a start
            self._warn_once(sid, f"shard {sid} lists no starting sequence number; from TRIM_HORIZON")
        try:
            iterator = self.adapter.shard_iterator(arn, sid, after, at_seq=at)
        except NotFoundError as e:  # as GetRecords' ShardGone: _fetch drops it or reports the gap
            raise ShardGone(str(e)) from e
        how = f"after {after}" if after else f"at {at}" if at else "from TRIM_HORIZON"
        log.debug("capture %s: shard %s opened %s", self.table, sid, how)
        return iterator

    def _fetch(self, shard: Shard) -> RecordBatch | None:
        """One GetRecords on a shard, (re)opening it as needed; trims and ends raise gaps (None: gone
        within the first capture's window, and dropped)."""
        sid, expired, trimmed = shard.shard_id, 0, 0
        while True:
            try:
                iterator = self.iterators.get(sid) or self._open(shard)
                return self.adapter.get_records(iterator, self.config.max_records)
            except IteratorExpired as e:
                self.iterators.pop(sid, None)
                expired += 1
                if expired >= 3:
                    raise TransientError(f"shard {sid} of {self.table!r}: iterators keep expiring") from e
                log.info(
                    "capture %s: iterator of shard %s expired; reopening from the checkpoint", self.table, sid
                )
            except DataTrimmed as e:  # from GetShardIterator or GetRecords
                self.iterators.pop(sid, None)
                pos = self.state.shards[sid]
                if not in_horizon_window(self.state, _now_us()):
                    raise self._gap(trimmed_gap(shard, pos)) from e
                # Within the first capture's window what was trimmed (at its start, after its seq, or
                # at the horizon moving on under GetRecords) predates the lake's load.
                trimmed += 1
                if trimmed >= HORIZON_REOPENS:
                    raise TransientError(
                        f"shard {sid} of table {self.table!r}: its oldest records were trimmed each time "
                        f"it was opened at its start or TRIM_HORIZON ({trimmed} times)"
                    ) from e
                if pos.seq is not None:
                    self.overtaken[sid] = pos.seq  # for this run only: see opens_at_horizon
                elif not pos.horizon:
                    pos.horizon, self.dirty = True, True
                where = f"after {pos.seq}" if pos.seq else "at its start"
                log.info("capture %s: shard %s trimmed %s; from TRIM_HORIZON", self.table, sid, where)
            except ShardGone as e:  # from GetRecords, or GetShardIterator (_open)
                self.iterators.pop(sid, None)
                # Within the window, once: the refresh drops it if it left the shard list
                # (drop_vanished_shards); one still listed that answers so again is a gap.
                if in_horizon_window(self.state, _now_us()) and sid not in self.gone:
                    self.gone.add(sid)
                    self.need_refresh = True
                    return None
                raise self._gap(gone_gap(sid, self.state)) from e

    def _poll_shard(self, shard: Shard) -> int:
        """One GetRecords on a shard; returns how many records it gave."""
        sid = shard.shard_id
        batch = self._fetch(shard)
        if batch is None:  # gone within the window: dropped
            return 0
        ingested = _now_us()
        pos = self.state.shards[sid]
        try:
            for record in batch.records:
                self._add(record, sid, ingested)
                seq = seq_of(record)
                if seq is not None:
                    pos.seq, pos.horizon = seq, False  # its line is the lake's from here on
                if self.writer.buffered_bytes >= self.config.buffer_bytes:
                    self._commit()
        except BaseException:
            self.iterators.pop(sid, None)  # reopen after the last record buffered: no loss, no repeat
            raise
        self.stats.records += len(batch.records)
        if batch.records:
            log.debug(
                "capture %s: shard %s: %d record(s), up to %s", self.table, sid, len(batch.records), pos.seq
            )
        if batch.next_iterator is None and shard.end_seq is None:
            # The shard list says open: closed only once DescribeStream says so too (a reply can lack
            # its next iterator without the shard having ended). Reopen after the last record read.
            self.iterators.pop(sid, None)
            self.need_refresh = True
            if not batch.records:
                self.empty_pages[sid] = self.empty_pages.get(sid, 0) + 1
                if self.empty_pages[sid] >= ONCE_OPEN_EMPTY_PAGES:
                    self.caught_up.add(sid)
            log.info("capture %s: shard %s gave no next iterator; checking the shard list", self.table, sid)
        elif batch.next_iterator is None:
            pos.closed, pos.horizon, self.dirty, self.need_refresh = True, False, True, True
            self.iterators.pop(sid, None)
            self.caught_up.discard(sid)
            self.stats.shards_finished += 1
            log.info("capture %s: shard %s read to its end", self.table, sid)
        else:
            self.iterators[sid] = batch.next_iterator
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
            # the record itself goes to the lake's errors/ prefix only.
            log.warning(
                "capture %s: quarantined a record of shard %s (sequence number %s): %s",
                self.table,
                shard_id,
                seq_of(record) or "?",
                e,
            )
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
        if self.errors.flush() is not None:
            self.dirty = True
        if self.dirty:
            self.state.updated_us = _now_us()
            check_own_checkpoint(self.storage, self.table, self._saved_us, self._attempted_us)
            self._attempted_us.append(self.state.updated_us)  # it may land yet report failure
            save_checkpoint(self.storage, self.state)
            self._saved_us, self._attempted_us = self.state.updated_us, []
            self.stats.checkpoints += 1
            self.dirty = False
            self._saved_at = time.monotonic()

    def _heartbeat_due(self) -> bool:
        idle = not self.writer.buffered_records and not self.errors.buffered_records
        return idle and time.monotonic() - self._saved_at >= self.config.heartbeat_seconds

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("capture %s: %s", self.table, message)
