"""The Scan load: a parallel segmented Scan into the raw change log, rate limited and resumable.

Each worker thread takes one segment at a time and reads its pages in order. Rows go to the
worker's own :class:`RawLogWriter`; when its buffer is full (or the segment ends) the worker writes
the raw file, *then* records in the load state the ``LastEvaluatedKey`` of the last page that file
holds. A crash therefore loses nothing: a rerun skips finished segments and resumes the others after
their last recorded key; rows written after the last state write are written again with the same
event IDs, and ``apply`` drops the repeats.

Capacity: every worker shares one token bucket of ``read_percent`` of the table's read capacity
(provisioned RCU; for on-demand tables an assumed figure, or the table's ``MaxReadRequestUnits``
when smaller), fractions kept, and settles it with the ``ConsumedCapacity`` each page reports,
which also sizes the pages (:class:`~ddblake.load.plan.PageSizer`).
Throttling that outlasts botocore's own retries is retried here with full-jitter exponential
backoff.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ddblake.aws.clients import is_local_endpoint
from ddblake.errors import StoppedError, TerminalError, TransientError
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.storage import Storage
from ddblake.load.config import LOCAL_PAGE_ITEMS, LOCAL_WORKERS_PER_CPU, LoadConfig
from ddblake.load.plan import (
    PageSizer,
    RateLimiter,
    backoff_delay,
    plan_segments,
    plan_workers,
    read_capacity,
    scan_budget,
)
from ddblake.load.rows import (
    key_of,
    load_event,
    now_us,
    scan_event_id,
    spliced_line,
    version_time_from_us,
)
from ddblake.load.state import (
    SCAN_STATE,
    STATE_WRITE_SECONDS,
    LoadState,
    PartState,
    StateSaver,
    note_new_full_load,
    read_state,
    reload_level,
    write_state,
)
from ddblake.load.table import Page, TableInfo, TableReader, clock_ahead_us
from ddblake.progress import Progress

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
FLUSH_SECONDS = 60.0
"""A raw file (and a state write) at least this often per busy segment, so a slow, rate-limited
load still checkpoints regularly."""
FORCE_SAVE_PAGES = 2
"""A segment of this many pages or more is recorded the moment it finishes, not within the
once-a-second state write: reading it again after a kill would cost more than the write. A
one-page segment (re-read: one call, about what a state write costs) waits for the next write, so
a load of very many small segments does not spend its time writing state (3,000 one-page segments:
0.3 s, against 14 s when each finish forced a write)."""


def _units(value: float) -> str:
    """Capacity units for the log: whole above 10, else three significant digits (0.5, 1.25)."""
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def new_load_id(started_us: int) -> str:
    """``<UTC start, yyyymmddThhmmssZ>-<8 hex>``: readable, sortable, unique."""
    when = dt.datetime.fromtimestamp(started_us / 1e6, tz=dt.UTC)
    return f"{when.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


@dataclass
class LoadResult:
    """What one ``load`` run did (counts only, no item data).

    Attributes:
        kind: ``scan`` or ``export``.
        table: the table.
        load_id: the load's ID (in its event IDs).
        started_us: the load's start (Scan) or the export's time, µs.
        version_time_us: the event time of its rows (see ``ddblake.load.rows``).
        items: rows this run wrote.
        files: raw files this run wrote.
        pages: Scan pages this run read.
        parts_total: segments or export data files of the load.
        parts_skipped: parts finished by an earlier run, not read again.
        parts_read: the parts this run read (names).
        resumed: this run continued an unfinished load.
        already_loaded: the load had finished before this run, which had nothing to do (an export
            loaded again).
        consumed_rcu: read capacity consumed (Scan).
        seconds: wall time of this run.
        export_arn: the export loaded, when from an export.
    """

    kind: str
    table: str
    load_id: str
    started_us: int
    version_time_us: int
    items: int = 0
    files: int = 0
    pages: int = 0
    parts_total: int = 0
    parts_skipped: int = 0
    parts_read: list[str] = field(default_factory=list)
    resumed: bool = False
    already_loaded: bool = False
    consumed_rcu: float = 0.0
    seconds: float = 0.0
    export_arn: str | None = None

    def summary(self) -> str:
        """One line for stderr."""
        if self.already_loaded:
            return (
                f"load {self.table}: {self.kind} load {self.load_id}: already loaded, nothing to do "
                f"({self.parts_total} part(s) done before this run)"
            )
        rate = self.items / self.seconds if self.seconds > 0 else 0.0
        resumed = f", resumed ({self.parts_skipped} part(s) already done)" if self.resumed else ""
        return (
            f"load {self.table}: {self.kind} load {self.load_id}: {self.items:,} rows in {self.files} raw "
            f"file(s), {self.parts_total} part(s){resumed}, {self.seconds:.1f} s ({rate:,.0f} rows/s)"
        )


class ScanLoad:
    """One Scan load of one table (a fresh one, or the continuation of an unfinished one)."""

    def __init__(
        self,
        config: LoadConfig,
        reader: TableReader,
        storage: Storage,
        *,
        progress: Progress,
        started_at_us: int | None = None,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
        state_seconds: float = STATE_WRITE_SECONDS,
    ) -> None:
        """Prepare; nothing is read until :meth:`run`.

        ``state_seconds`` is the least time between two state writes (0: after every flush).
        """
        self.config = config
        self.table = config.table
        self.reader = reader
        self.storage = storage
        self.progress = progress
        self.started_at_us = started_at_us
        self.stop = stop or threading.Event()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self.state_seconds = state_seconds
        self.consistent = config.consistent  # the running load's, once known (see run)

    def _begin(self, info: TableInfo, answered_us: int | None = None) -> tuple[LoadState, bool]:
        state = read_state(self.storage, self.table, SCAN_STATE)
        if state is not None and state.finished_us is None:
            if self.started_at_us is not None and self.started_at_us != state.started_us:
                log.info(
                    "load %s: continuing load %s, whose rows keep their version (start %d µs)",
                    self.table,
                    state.load_id,
                    state.started_us,
                )
            if self.config.segments is not None and self.config.segments != state.total_parts:
                log.warning(
                    "load %s: continuing load %s with its %d segments (--segments %d applies to new loads)",
                    self.table,
                    state.load_id,
                    state.total_parts,
                    self.config.segments,
                )
            recorded = bool(state.options.get("consistent", False))
            if recorded != self.config.consistent:
                log.warning(
                    "load %s: continuing load %s with the reads it started with (%s; --consistent "
                    "applies to new loads)",
                    self.table,
                    state.load_id,
                    "strongly consistent" if recorded else "eventually consistent",
                )
            return state, True
        note_new_full_load(self.storage, self.table, level=reload_level(self.started_at_us))
        if state is not None:  # keep the finished load's record under its own name
            write_state(self.storage, dataclasses.replace(state, name=f"scan-{state.load_id}"))
        started = self.started_at_us if self.started_at_us is not None else now_us()
        ahead = clock_ahead_us(info.server_time_us, answered_us)
        if ahead:
            log.warning(
                "load %s: this machine's clock is %.0f s ahead of AWS's (DescribeTable's Date header): the "
                "load's start is taken that much earlier, so no change made after it ranks below its rows; "
                "set the clock right (NTP)",
                self.table,
                ahead / 1e6,
            )
            started -= ahead
        state = LoadState(
            table=self.table,
            name=SCAN_STATE,
            kind="scan",
            load_id=new_load_id(started),
            started_us=started,
            version_time_us=version_time_from_us(started),
            total_parts=plan_segments(info.item_count, info.size_bytes, self.config.segments),
            source=f"{info.arn or self.table} at {self.reader.where}",
            # The start asked for, when the clock moved it: a re-bootstrap finds its load by it.
            options={"consistent": self.config.consistent}
            | ({"asked_start_us": self.started_at_us} if ahead and self.started_at_us is not None else {}),
            updated_us=now_us(),
        )
        write_state(self.storage, state)  # lists no finished part yet, so it is never ahead of data
        return state, False

    def run(self) -> LoadResult:
        """Scan every unfinished segment into the raw log, then mark the load finished.

        Raises:
            NotFoundError, TerminalError: the table cannot be read (message names account and role).
            TransientError: throttling or the network outlasted every retry; rerun to resume.
        """
        clock = time.monotonic()
        info = self.reader.describe()
        answered_us = now_us()
        state, resumed = self._begin(info, answered_us)
        self.state = state
        self.saver = StateSaver(
            self.storage,
            state,
            self._lock,
            interval=self.state_seconds,
            write=lambda storage, st: write_state(storage, st),  # late-bound: tests replace it
        )
        self.consistent = bool(state.options.get("consistent", False))
        total = state.total_parts
        pending = state.pending_segments()  # no entry is made for a segment before it starts
        capacity, capacity_source = read_capacity(
            info.provisioned_rcu, self.config.on_demand_rcu, info.max_read_units
        )
        budget = scan_budget(capacity, self.config.read_percent)
        cap = self.config.page_items
        meta = getattr(getattr(self.reader, "client", None), "meta", None)
        local = is_local_endpoint(str(getattr(meta, "endpoint_url", "") or ""))
        if cap is None and local:
            cap = LOCAL_PAGE_ITEMS
        # The page Limit: a second of budget, from DescribeTable's item size, then from the pages' cost
        self.pages = PageSizer(budget, info.avg_item_bytes, self.consistent, cap)
        self.limiter = RateLimiter(budget, clock=time.monotonic, sleep=self.stop.wait)
        self.info = info
        self.result = LoadResult(
            kind="scan",
            table=self.table,
            load_id=state.load_id,
            started_us=state.started_us,
            version_time_us=state.version_time_us,
            parts_total=total,
            parts_skipped=total - len(pending),
            resumed=resumed,
        )
        requested = self.config.workers
        if requested is None and local:  # DynamoDB Local's JVM shares these cores: more threads only contend
            requested = LOCAL_WORKERS_PER_CPU * (os.cpu_count() or 1)
        workers = plan_workers(len(pending) or 1, requested)
        self.progress.total = info.item_count or None
        self.progress.set_parts(total)
        self.progress.resume_from(state.items, total - len(pending))
        log.info(
            "load %s: %s load %s, %d segment(s) (%d to read), %d worker(s), budget %s RCU/s "
            "(%g %% of %s RCU, %s)%s",
            self.table,
            "continuing" if resumed else "starting",
            state.load_id,
            total,
            len(pending),
            workers,
            _units(budget),
            self.config.read_percent,
            _units(capacity),
            capacity_source,
            f", page limit {self.pages.limit}" if self.pages.limit else "",
        )
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for seg in pending:
            todo.put(seg)
        threads = [
            threading.Thread(target=self._worker, args=(todo,), name=f"ddblake-load-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.result.consumed_rcu = self.limiter.consumed
        self.result.seconds = time.monotonic() - clock
        if all(isinstance(e, Exception) for e in self._errors) and (self._errors or self.stop.is_set()):
            try:  # record what the workers wrote, so that a rerun does not read it again
                self.saver.save(force=True)
            except TransientError:
                if not self._errors:
                    raise
                log.warning("load %s: could not record the load's last progress", self.table)
        if self._errors:
            raise self._errors[0]
        if self.stop.is_set() and state.done_count < total:
            raise StoppedError(
                f"load {self.table}: stopped with {total - state.done_count} segment(s) unfinished; "
                "run the same command again to resume"
            )
        with self._lock:
            state.finished_us = state.updated_us = now_us()
            write_state(self.storage, state)
        self.progress.finish(complete=True)
        return self.result

    # --- workers --------------------------------------------------------------------------------------

    def _worker(self, todo: queue.SimpleQueue[int]) -> None:
        writer = RawLogWriter(self.storage, self.table, self.config.buffer_bytes, FLUSH_SECONDS)
        while not self.stop.is_set():
            try:
                seg = todo.get_nowait()
            except queue.Empty:
                return
            try:
                self._segment(seg, writer)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread, which re-raises it
                with self._lock:
                    self._errors.append(e)
                self.stop.set()
                return

    def _checkpoint(self, seg: int, writer: RawLogWriter, done: PartState) -> None:
        """Write the buffered rows, then (only then) the segment's progress."""
        written = writer.flush()
        with self._lock:
            part = self.state.part(str(seg))
            part.items += done.items
            part.pages += done.pages
            part.last_key = None if done.done else done.last_key
            urgent = done.done and part.pages >= FORCE_SAVE_PAGES
            if done.done:
                self.state.finish_segment(str(seg))
                log.debug(
                    "load %s: segment %d finished: %d item(s), %d page(s)",
                    self.table,
                    seg,
                    part.items,
                    part.pages,
                )
            self.state.updated_us = now_us()
            generation = self.saver.changed()
            if written is not None:
                self.result.files += 1
            self.result.items += done.items
            self.result.pages += done.pages
        done.items = done.pages = 0
        # A finished segment is recorded at once (workers finishing together share the write), so a
        # kill in the next second does not read it all again; see FORCE_SAVE_PAGES.
        self.saver.save(covering=generation if urgent else None)

    def _segment(self, seg: int, writer: RawLogWriter) -> None:
        with self._lock:
            started = self.state.parts.get(str(seg))
            start_key = started.last_key if started is not None else None
            self.result.parts_read.append(str(seg))
        log.debug(
            "load %s: segment %d %s",
            self.table,
            seg,
            "resumed after its saved key" if start_key else "started",
        )
        pending = PartState(last_key=start_key)
        estimate, last = self.pages.estimate(), 0.0
        key_names = self.info.key_names
        version = self.state.version_time_us
        load_id = self.state.load_id

        def make_id(keys: dict[str, Any]) -> str:
            return scan_event_id(load_id, keys)

        while True:
            page = self._fetch(seg, pending.last_key, estimate)
            if page is None:  # stopping: keep what is read
                self._checkpoint(seg, writer, pending)
                return
            before = self.pages.limit
            if self.pages.observe(len(page.items), page.consumed) != before:
                log.debug("load %s: page limit %s (%.3g RCU an item)", self.table, self.pages.limit,
                          self.pages.unit_cost)  # fmt: skip
            last = page.consumed or last
            estimate = self.pages.estimate(last)
            ingested = now_us()
            if page.texts is not None:  # DynamoDB's own text of each item goes into the line unchanged
                for item, text in zip(page.items, page.texts, strict=True):
                    keys = key_of(item, key_names)
                    writer.add(
                        spliced_line(
                            op="LOAD",
                            table=self.table,
                            keys=keys,
                            new_text=text,
                            event_id=make_id(keys),
                            event_time_us=version,
                            source="scan",
                            ingested_us=ingested,
                        )
                    )
            else:
                for item in page.items:
                    event = load_event(
                        table=self.table,
                        item=item,
                        key_names=key_names,
                        make_id=make_id,
                        event_time_us=version,
                        ingested_us=ingested,
                        source="scan",
                    )
                    writer.add(event.to_line())
            pending.items += len(page.items)
            pending.pages += 1
            pending.last_key = page.last_key
            finished = page.last_key is None
            self.progress.add(len(page.items), part_done=finished)
            if finished:
                pending.done = True
                self._checkpoint(seg, writer, pending)
                return
            if writer.buffered_bytes >= self.config.buffer_bytes or writer.due() or self.stop.is_set():
                self._checkpoint(seg, writer, pending)
                if self.stop.is_set():
                    return

    def _fetch(self, seg: int, start_key: dict[str, Any] | None, estimate: float) -> Page | None:
        """One page, within the budget, retried with jittered backoff; None when stopping."""
        for attempt in range(MAX_ATTEMPTS):
            if not self.limiter.acquire(estimate):
                return None
            try:
                page = self.reader.scan_page(
                    segment=seg,
                    total_segments=self.state.total_parts,
                    start_key=start_key,
                    consistent=self.consistent,
                    limit=self.pages.limit,
                )
            except TransientError as e:
                self.limiter.settle(estimate, 0.0)
                if attempt == MAX_ATTEMPTS - 1:
                    raise TransientError(
                        f"load {self.table}: segment {seg} still failing after {MAX_ATTEMPTS} attempts "
                        f"({e}); the load's state is saved: run the same command again to resume. If it "
                        "was throttled, lower --read-percent or raise the table's read capacity"
                    ) from e
                delay = backoff_delay(attempt, rng=self.rng)
                log.warning(
                    "load %s: segment %d: %s; retry %d in %.1f s", self.table, seg, e, attempt + 1, delay
                )
                if self.stop.wait(delay):
                    return None
                continue
            self.limiter.settle(estimate, page.consumed)
            return page
        raise TerminalError(f"load {self.table}: segment {seg}: no page after {MAX_ATTEMPTS} attempts")
