"""``ddblake sync``: load if new, then capture and apply in one process.

**Hand-off from load to stream** (the invariant; docs/load.md proves it in words, a test in
tests/functional/test_sync_handoff.py with writes during the load):

1. ``t0`` is taken before anything else; a Scan load's rows get the version
   ``floor(t0, 1 min) - 1 min - 1 µs`` (ddblake.load.rows.version_time_us); an export's rows get
   ``floor(t, 1 s) - 1 µs`` of the export's own (AWS) time t (ddblake.load.rows.export_version_from_us),
   which the stream must reach back to: checked (at most 23 hours old, not before the stream's creation).
2. Capture starts *before* the load's first Scan and keeps reading the stream while the load runs,
   from each shard's trim horizon — so every change made after ``t0`` reaches the raw log, even when
   the load outlasts the stream's 24-hour retention.
3. DynamoDB Streams round change times down to the second, so every change made after ``t0`` has a
   version above every Scan load row, even with a minute of clock skew, and every change made after
   an export's time above every row of that export (both times are AWS's): a load row never
   overwrites a newer change, and a change the load already saw simply wins with the same content.

A table is loaded when the lake has never seen it (no capture checkpoint, no load), when a load
was started and not finished (it resumes), or when an earlier sync's first load failed before it
wrote anything (the marker ``state/sync/<table>/first-load.json``, written before capture starts
and removed once a load has finished: without it, the checkpoint that capture saved on the way out
would make the next sync skip the load for good). ``--no-load`` skips this.

With ``--once`` it catches up with the stream, applies, and exits. Otherwise capture runs in a
thread, cutting raw files quickly (sub-second buffering), while the main thread applies new files
as they appear — the freshness path (bench/freshness.py measures it). Both stages keep their own
durable positions (capture's checkpoint, apply's applied-file log), so killing sync at any instant
and starting it again loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from ddblake.aws.clients import DynamoClients
from ddblake.aws.roles import Identity
from ddblake.capture.checkpoint import load_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import CaptureThread, build_capture_clients, run_capture
from ddblake.capture.streams import ENABLE_STREAM, StreamsAdapter, check_stream
from ddblake.errors import StoppedError, TerminalError
from ddblake.lake.apply import Applier, ApplyConfig, ApplyResult
from ddblake.lake.service import apply_progress, run_apply, warn_quarantined
from ddblake.lake.storage import Storage
from ddblake.load import LoadConfig, has_finished_load, list_loads, now_us, run_load_beside
from ddblake.load.handoff import (
    EXPORT_LABEL_SKEW_US,
    STREAM_SAFE_AGE_US,
    check_first_capture,
    first_load_started,
    label_skew_us,
    mark_first_load,
    settle_first_load,
    stream_created_us,
    utc_text,
)
from ddblake.load.state import EXPORT_REQUEST, state_path
from ddblake.rebootstrap import unfinished_rebootstrap

log = logging.getLogger(__name__)

SYNC_BUFFER_SECONDS = 0.2
SYNC_POLL_SECONDS = 0.2
SYNC_APPLY_POLL_SECONDS = 1.0
"""Apply's poll in sync: capture wakes it as soon as it writes a raw file, so the poll only catches
files other writers add; polling every 0.2 s cost CPU that a busy machine's commits needed."""


@dataclass(frozen=True)
class SyncConfig:
    """Capture settings plus apply settings for one table."""

    capture: CaptureConfig
    apply: ApplyConfig
    load: LoadConfig | None = None

    @property
    def once(self) -> bool:
        """Catch up, apply, exit."""
        return self.apply.once


def check_export_source(load: LoadConfig, now: int, storage: Storage | None = None) -> None:
    """Refuse an export as sync's first load when the stream cannot follow on from it.

    Capture starts before the load, from the trim horizon: at most 24 hours back from ``now``. An
    export taken earlier leaves the changes in between in neither; an incremental export is not the
    whole table. With ``--export-to``, an export an earlier run started and did not load (the
    request in ``storage``) is checked the same way.

    Raises:
        TerminalError: the export cannot start this table's lake; the message says what to use.
    """
    if load.export_to and storage is not None:
        from ddblake.load.export_start import pending_request

        pending = pending_request(storage, load.table, load.export_to)
        if pending is not None and pending.started_us < now - STREAM_SAFE_AGE_US:
            raise TerminalError(
                f"table {load.table!r}: the export {pending.export_arn} an earlier run started to "
                f"{pending.destination} is more than {STREAM_SAFE_AGE_US // 3_600_000_000} hours older than "
                "the stream reaches, so changes made since would be in neither; delete "
                f"{storage.shown(state_path(load.table, EXPORT_REQUEST))} and run sync again (a new export)"
            )
    if not load.from_export:
        return
    from ddblake.load.export import ExportFolder, read_manifest

    manifest = read_manifest(ExportFolder(load.from_export))
    if manifest.incremental:
        raise TerminalError(
            f"table {load.table!r}: export {manifest.uri} is incremental, not the whole table, so it "
            "cannot be the first load of a sync; load a full export (or let sync Scan the table), then "
            "the incremental one"
        )
    taken = manifest.export_time_us or 0
    if taken < now - STREAM_SAFE_AGE_US:
        raise TerminalError(
            f"table {load.table!r}: export {manifest.uri} was taken more than "
            f"{STREAM_SAFE_AGE_US // 3_600_000_000} hours ago and DynamoDB Streams keeps 24 hours, so the "
            "changes made since would be in neither; use a newer export (--export-to starts one) or let sync "
            "Scan the table, or load this one with `ddblake load` and an incremental export up to now"
        )


def check_stream_older_than_load(load: LoadConfig, storage: Storage, stream_arn: str) -> None:
    """Refuse a first load that holds the table as of a time before the stream was enabled.

    A resumed Scan started then, or an export taken then, misses the changes made before the
    stream existed, and the stream does not have them either.

    Raises:
        TerminalError: the load's time is before the stream's creation; says what to use.
    """
    created = stream_created_us(stream_arn)
    if created is None:
        return
    # (time, how much later the stream's label may look, what): an export's time is AWS's, as the
    # label is; a Scan's start is this machine's. Only the load this run resumes counts: an
    # unfinished Scan when it Scans (an export's own state is its export's time, below).
    scanning = not (load.from_export or load.export_to)
    times: list[tuple[int, int, str]] = [
        (s.started_us, label_skew_us(s.kind), f"load {s.load_id}")
        for s in list_loads(storage, load.table)
        if s.finished_us is None and s.kind == "scan" and scanning
    ]
    if load.from_export:
        from ddblake.load.export import ExportFolder, read_manifest

        manifest = read_manifest(ExportFolder(load.from_export))
        if manifest.export_time_us:
            times.append((manifest.export_time_us, EXPORT_LABEL_SKEW_US, f"export {manifest.uri}"))
    if load.export_to:
        from ddblake.load.export_start import pending_request

        pending = pending_request(storage, load.table, load.export_to)
        if pending is not None:  # its request time is this machine's: the export's own is later
            times.append((pending.started_us, label_skew_us("scan"), f"export {pending.export_arn}"))
    before = [(when, what) for when, skew, what in times if created > when + skew]
    if before:
        when, what = min(before)
        if what.startswith("load "):  # the unfinished Scan every plain sync would resume
            way_out = (
                "set it aside and load anew: run 'ddblake sync --table "
                f"{load.table} --lake {shlex.quote(storage.shown())} --rebootstrap', or load from an export "
                "taken after the stream was enabled (--export-to starts one)"
            )
        else:
            way_out = (
                "use a load made after the stream was enabled (a Scan: run sync without --from-export or "
                "--export-to; or a new export: --export-to with a new folder)"
            )
        raise TerminalError(
            f"table {load.table!r}: {what} holds the table as of {utc_text(when)}, before its stream "
            f"{stream_arn} was enabled ({utc_text(created)}), so changes made in between would be in "
            f"neither; {way_out}"
        )


def needs_load(storage: Storage, table: str) -> bool:
    """Whether sync must (first) load the table: never seen by the lake, a load left unfinished, or
    an earlier sync's first load that failed before writing any state of its own."""
    if has_finished_load(storage, table):
        return False
    if list_loads(storage, table) or first_load_started(storage, table) is not None:
        return True
    return load_checkpoint(storage, table) is None


def run_sync(
    config: SyncConfig, *, clients: DynamoClients | None = None, stop: threading.Event | None = None
) -> ApplyResult:
    """Run load (if new), capture and apply until caught up (``once``) or until stopped.

    With ``config.capture.assume_role`` the stream is read, and the first load made, as that role;
    ``clients``, when given, are used as they are.

    Raises:
        TerminalError: a re-bootstrap of the table was interrupted (run it again first).
        DdblakeError: from capture (a stream gap, a missing table), load or apply.
    """
    storage = config.apply.lake.storage()
    interrupted = unfinished_rebootstrap(storage, config.capture.table)
    if interrupted:
        raise TerminalError(interrupted)
    identity: Callable[[], Identity] | None = None
    if clients is None:
        clients, identity = build_capture_clients(config.capture)
    stop = stop or threading.Event()
    capture: CaptureThread | None = None
    table = config.capture.table
    began = first_load_started(storage, table)
    if began is not None and has_finished_load(storage, table):
        settle_first_load(storage, table, began)  # a load finished since: the stream must follow on
        began = None
    if config.load is not None and needs_load(storage, table):
        # Before hours of Scan: a table whose stream cannot follow the load is refused now.
        adapter = StreamsAdapter(table, dynamodb=clients.dynamodb, streams=clients.streams, identity=identity)
        stream = adapter.table_stream()
        check_stream(stream, table, adapter.where)
        if not stream.enabled:
            raise TerminalError(
                f"table {table!r} at {adapter.where}: its stream is disabled, so no change made after the "
                f"load would reach the lake; enable one with: {ENABLE_STREAM.format(table=table)}"
            )
        t0 = now_us()
        reach = t0  # the stream is (or will be) read from 24 hours before this
        first = load_checkpoint(storage, table) is None  # capture will start at the trim horizon now
        if first:
            # An unfinished load the stream no longer reaches back to: capture's first run would
            # refuse it at once, after which hours of Scan would be thrown away.
            check_first_capture(storage, table, t0, full_load_follows=config.load.kind)
            check_export_source(config.load, t0, storage)
        elif began is not None:  # capture has read the stream since an earlier attempt began
            reach = began
            check_export_source(config.load, began, storage)
        check_stream_older_than_load(config.load, storage, stream.arn or "")
        if first:
            # Before capture's first checkpoint: a load failing before it writes a state of its
            # own must not leave a lake that looks loaded.
            mark_first_load(storage, table, t0)
        # A first capture's own reach checks are the ones above, made knowing a full load follows
        # (a lake holding only an old incremental export must not refuse the load that covers it).
        capture = CaptureThread(replace(config.capture, check_reach=not first), clients, storage, identity)
        # The load reads with sync's clients (and says who they act as) unless it names a role
        # of its own that they were not built with.
        own_role = config.load.assume_role is not None and (
            config.load.assume_role,
            config.load.external_id,
        ) != (config.capture.assume_role, config.capture.external_id)
        try:
            # capture.stop: a capture that fails (or is stopped) stops the Scan too.
            result = run_load_beside(
                config.load, clients, storage, t0, identity=None if own_role else identity, stop=capture.stop
            )
            log.info("sync %s: %s", table, result.summary())
            if first or began is not None:
                settle_first_load(storage, table, reach)
            # else capture's checkpoint came first: its first run checked the stream reaches the
            # load (check_first_capture), and it has read the stream since.
        except BaseException as e:
            capture.fail_with(e)
            raise
    if config.once:
        if capture is not None:
            capture.finish()
        stats = run_capture(
            replace(config.capture, once=True), clients=clients, storage=storage, identity=identity
        )
        if stats.stopped_by is not None:  # what capture read is saved; apply waits for the next run
            raise StoppedError(
                f"sync {table}: stopped by {stats.stopped_by} before applying (what capture read is "
                "saved); run the same command again to apply it"
            )
        return run_apply(config.apply, progress=apply_progress(config.apply.table))

    capture = capture or CaptureThread(config.capture, clients, storage, identity)
    applier = Applier(config.apply, storage=storage)
    total = ApplyResult()

    def watch() -> None:  # stop applying as soon as capture dies (or is told to stop)
        capture.stop.wait()
        stop.set()

    def relay() -> None:  # a stop from the caller wakes the apply loop too
        stop.wait()
        capture.wake.set()

    threading.Thread(target=watch, daemon=True).start()
    threading.Thread(target=relay, daemon=True).start()
    try:
        progress = apply_progress(config.apply.table)
        total.add(run_apply(config.apply, stop=stop, applier=applier, wake=capture.wake, progress=progress))
    finally:
        stop.set()
        capture.finish()
    # One last pass: capture flushed its buffer on the way out; apply what it wrote (one batch
    # only when a backlog remains: the rest waits in the raw log for the next run).
    last = applier.run_once(stop=stop)
    warn_quarantined(applier, last)
    total.add(last)
    return total
