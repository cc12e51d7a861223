"""One shard's read step: its iterator, GetShardIterator and GetRecords, and its own back-off.

Kept apart from the consumer's loop (:mod:`ddblake.capture.consumer`), which decides *which* shards
to read and when to flush; this module reads *one* shard once and says what came of it.

A transient error of one shard (GetRecords or GetShardIterator throttled, a 5xx, iterators that keep
expiring, a trim horizon that keeps moving) costs that shard only: it is retried on its own back-off
(1 s doubling to 30 s, with jitter) while the others are read, flushed and checkpointed as usual.
A ``--once`` run does not wait for it: boto3 has retried the call already, so the shard is set aside
for the run, the others are read until caught up, flushed and checkpointed, and the run then ends
with the shard's error (:meth:`ShardReader.raise_set_aside`). Nothing is lost: the shard's
checkpoint position is where its last record written left it, and the next run reads on from there.

An iterator from GetShardIterator is kept before GetRecords is called, so a GetRecords that fails
transiently is retried with the same iterator (valid for 15 minutes); only an expired one, a trim or
a gone shard (or a failure while its records are buffered) opens the shard again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from ddblake.backoff import backoff_with_jitter
from ddblake.capture.checkpoint import Checkpoint
from ddblake.capture.gaps import gap_error, gone_gap, trimmed_gap
from ddblake.capture.horizon import in_horizon_window, opens_at_horizon
from ddblake.capture.shards import Shard
from ddblake.capture.streams import DataTrimmed, IteratorExpired, RecordBatch, ShardGone, StreamsAdapter
from ddblake.errors import NotFoundError, StreamGapError, TransientError
from ddblake.lake.storage import Storage

log = logging.getLogger(__name__)

MAX_BACKOFF_S: Final = 30.0
"""The longest a failing shard (or, for a failing shard list or lake, the whole capture) waits."""
HORIZON_REOPENS: Final = 5
"""How many times in a row a shard may answer TrimmedDataAccessException within the first capture's
window (the records it was opened at trimmed before they were read) before the run retries."""
EXPIRED_REOPENS: Final = 3
"""How many expired iterators in a row one read of a shard rides out before it counts as failing."""
FAILING_ALARM_US: Final = 3600 * 1_000_000
"""How long (µs) a shard fails before an ERROR line says so, and again each time as long passes."""


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1_000_000, tz=dt.UTC).isoformat(timespec="seconds")


def next_backoff(previous: float) -> float:
    """The back-off ceiling after one more failure: 1 s, then doubling, at most :data:`MAX_BACKOFF_S`."""
    return min(MAX_BACKOFF_S, max(1.0, previous * 2))


@dataclass
class _Failing:
    """A shard whose last read failed transiently: not read again before ``next_try``."""

    backoff: float
    next_try: float


class ShardReader:
    """Reads shards one GetRecords at a time for one capture run, each on its own back-off."""

    def __init__(
        self,
        adapter: StreamsAdapter,
        storage: Storage,
        table: str,
        *,
        max_records: int,
        once: bool,
        monotonic: Callable[[], float],
        now_us: Callable[[], int],
    ) -> None:
        self.adapter = adapter
        self.storage = storage
        self.table = table
        self.max_records = max_records
        self.once = once
        self.monotonic = monotonic
        self.now_us = now_us
        self.iterators: dict[str, str] = {}
        self.overtaken: dict[str, str] = {}  # shard -> its seq the stream answered trimmed past (window)
        self.gone: set[str] = set()  # shards that answered not found within the window (this run)
        self.failing: dict[str, _Failing] = {}  # continuous: shards backing off
        self.set_aside: dict[str, TransientError] = {}  # once: shards that failed, not read again
        self.first_error: dict[str, str] = {}  # shard -> its first error since it began to fail (this run)
        self.alarmed: dict[str, int] = {}  # shard -> when its last ERROR line was logged (µs)
        self.marked = False  # a shard's horizon mark was set: the checkpoint must be written
        self.refresh = False  # a shard answered not found within the window: read the shard list
        self._warned: set[str] = set()

    # --- which shards may be read --------------------------------------------------------------------

    def waiting(self, shard_id: str) -> bool:
        """Whether the shard is set aside (once) or backing off (continuous): not to be read now."""
        if shard_id in self.set_aside:
            return True
        failing = self.failing.get(shard_id)
        return failing is not None and self.monotonic() < failing.next_try

    def seconds_until_retry(self, shard_ids: Collection[str]) -> float | None:
        """Seconds until the first of ``shard_ids`` that is backing off may be read; None if none is."""
        tries = [f.next_try for sid, f in self.failing.items() if sid in shard_ids]
        return None if not tries else max(0.0, min(tries) - self.monotonic())

    def forget(self, shard_id: str) -> None:
        """The shard left the checkpoint (pruned): drop what is kept for it."""
        self.iterators.pop(shard_id, None)
        self.failing.pop(shard_id, None)
        self.first_error.pop(shard_id, None)
        self.alarmed.pop(shard_id, None)

    def raise_set_aside(self) -> None:
        """Once: end the run with the first set-aside shard's error, if any (the caller has read,
        and is about to flush and checkpoint, every other shard).

        Raises:
            TransientError: a shard kept failing after retries.
        """
        if not self.set_aside:
            return
        shards = ", ".join(self.set_aside)
        log.warning(
            "capture %s: %d shard(s) not read to now, as they kept failing (%s); the other shards are "
            "read and checkpointed; rerun to read them",
            self.table,
            len(self.set_aside),
            shards,
        )
        raise next(iter(self.set_aside.values()))

    # --- one read --------------------------------------------------------------------------------------

    def read(self, shard: Shard, state: Checkpoint) -> RecordBatch | None:
        """One GetRecords on ``shard``, (re)opening it as needed.

        Returns:
            The page; None when there is nothing to take now: the shard failed transiently (it backs
            off, or with ``once`` is set aside), or answered not found within the first capture's
            window (:attr:`refresh` is set: the shard list decides).

        Raises:
            StreamGapError: the stream lost records of the shard that ddblake never read.
        """
        sid = shard.shard_id
        try:
            batch = self._fetch(shard, state)
        except TransientError as e:
            self._failing_since(sid, e, state)
            self._failed(sid, e)
            return None
        pos = state.shards.get(sid)
        since = None if pos is None else pos.failing_since_us
        if self.failing.pop(sid, None) is not None or since is not None:
            again = f" (it had failed since {_iso(since)})" if since is not None else ""
            log.info("capture %s: shard %s reads again%s", self.table, sid, again)
        if pos is not None:
            pos.failing_since_us = None  # recorded with the next checkpoint write
        self.first_error.pop(sid, None)
        self.alarmed.pop(sid, None)
        return batch

    def _failing_since(self, sid: str, e: TransientError, state: Checkpoint) -> None:
        """Record when the shard began to fail (kept in the checkpoint, across runs: ``status``
        shows it); once that is more than :data:`FAILING_ALARM_US` ago, an ERROR line, once per as
        long: other shards read on and keep the checkpoint fresh, so nothing else says that this
        one is not read, and its records stay in the stream 24 hours only. Not with ``once``: the run
        ends with the shard's error (exit 1), the signal of a scheduled run."""
        pos, now = state.shards.get(sid), self.now_us()
        if pos is None or self.once:
            return
        if sid not in self.first_error:  # "this run": it may have begun to fail in an earlier one
            began_here = pos.failing_since_us is None
            self.first_error[sid] = f"its first error{'' if began_here else ' this run'}: {e}"
        if pos.failing_since_us is None:
            pos.failing_since_us = now  # recorded with the next checkpoint write
        since, last = pos.failing_since_us, self.alarmed.get(sid)
        if now - since <= FAILING_ALARM_US or (last is not None and now - last < FAILING_ALARM_US):
            return
        self.alarmed[sid] = now
        log.error(
            "capture %s: shard %s has failed to read for %.1f hour(s), since %s, while the others read "
            "on; %s; its unread records stay in the stream 24 hours only, then the lake has a gap: fix "
            "the cause before that",
            self.table,
            sid,
            (now - since) / 3_600_000_000,
            _iso(since),
            self.first_error[sid],
        )

    def _failed(self, sid: str, e: TransientError) -> None:
        if self.once:
            self.set_aside[sid] = e
            log.warning(
                "capture %s: shard %s: %s; set aside for this run, the other shards read on",
                self.table,
                sid,
                e,
            )
            return
        previous = self.failing.get(sid)
        backoff = next_backoff(0.0 if previous is None else previous.backoff)
        delay = backoff_with_jitter(backoff)
        self.failing[sid] = _Failing(backoff, self.monotonic() + delay)
        log.warning(
            "capture %s: shard %s: %s; retrying in %.1f s (the other shards read on)",
            self.table,
            sid,
            e,
            delay,
        )

    def _gap(self, what: str) -> StreamGapError:
        return gap_error(self.storage, self.table, what)

    def _open(self, shard: Shard, state: Checkpoint) -> str:
        sid, pos = shard.shard_id, state.shards[shard.shard_id]
        arn = state.stream_arn or ""  # set by the first refresh, before any shard is read
        # Known but never read (seq null), or a child of a known shard: from its start, not
        # TRIM_HORIZON, which would silently skip what was trimmed since (a rerun a day later meets
        # children its last run never listed). Only a shard marked so within the first capture's
        # window (ShardPosition.horizon), or trimmed past its seq within it (self.overtaken), starts at
        # what the stream still holds. DataTrimmed goes to _fetch, which tells a gap from the window's.
        horizon = opens_at_horizon(state, pos, self.overtaken.get(sid), self.now_us())
        after, at = (None, None) if horizon else (pos.seq, None if pos.seq else shard.start_seq)
        if not horizon and after is None and at is None and sid not in self._warned:
            self._warned.add(sid)  # DescribeStream always gives a start
            log.warning(
                "capture %s: shard %s lists no starting sequence number; from TRIM_HORIZON", self.table, sid
            )
        try:
            iterator = self.adapter.shard_iterator(arn, sid, after, at_seq=at)
        except NotFoundError as e:  # as GetRecords' ShardGone: _fetch drops it or reports the gap
            raise ShardGone(str(e)) from e
        how = f"after {after}" if after else f"at {at}" if at else "from TRIM_HORIZON"
        log.debug("capture %s: shard %s opened %s", self.table, sid, how)
        return iterator

    def _fetch(self, shard: Shard, state: Checkpoint) -> RecordBatch | None:
        """One GetRecords on a shard, (re)opening it as needed; trims and ends raise gaps (None: gone
        within the first capture's window, and dropped)."""
        sid, expired, trimmed = shard.shard_id, 0, 0
        while True:
            try:
                if sid not in self.iterators:  # kept before GetRecords: a failed call reuses it
                    self.iterators[sid] = self._open(shard, state)
                return self.adapter.get_records(self.iterators[sid], self.max_records)
            except IteratorExpired as e:
                self.iterators.pop(sid, None)
                expired += 1
                if expired >= EXPIRED_REOPENS:
                    raise TransientError(f"shard {sid} of {self.table!r}: iterators keep expiring") from e
                log.info(
                    "capture %s: iterator of shard %s expired; reopening from the checkpoint", self.table, sid
                )
            except DataTrimmed as e:  # from GetShardIterator or GetRecords
                self.iterators.pop(sid, None)
                pos = state.shards[sid]
                if not in_horizon_window(state, self.now_us()):
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
                    pos.horizon, self.marked = True, True
                where = f"after {pos.seq}" if pos.seq else "at its start"
                log.info("capture %s: shard %s trimmed %s; from TRIM_HORIZON", self.table, sid, where)
            except ShardGone as e:  # from GetRecords, or GetShardIterator (_open)
                self.iterators.pop(sid, None)
                # Within the window, once: the refresh drops it if it left the shard list
                # (drop_vanished_shards); one still listed that answers so again is a gap.
                if in_horizon_window(state, self.now_us()) and sid not in self.gone:
                    self.gone.add(sid)
                    self.refresh = True
                    return None
                raise self._gap(gone_gap(sid, state)) from e
