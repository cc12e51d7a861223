"""An export's data files turned into raw-log files, one data file per task, in worker processes.

Turning export lines into raw-log lines is Python work (a JSON parse, the key, the event ID, the
line spliced together), about 30 µs an item on this machine, so threads would share one core: a
large export is spread over processes instead, one data file per task. Only counts come back
from the workers (:class:`Flushed`, after each raw file they write); the process that runs the
load owns the load's state and the progress display, and records each count as it arrives.

A crash can only repeat work, never lose it: a worker writes a raw file, then reports it; state
is written after the report. A raw file written but not yet recorded is written again by the
rerun, with the same event IDs, and apply keeps one of each event. Workers ignore Ctrl-C (the
load's own stop handling asks them to stop after their current raw file) and stop when the
process that started them is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ddblake.errors import BadRecordError, TerminalError, TransientError
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.storage import Storage
from ddblake.load.export import DataFile, ExportFolder, ExportManifest, iter_lines
from ddblake.load.export_rows import RowMaker
from ddblake.load.ion import ion_line_to_json
from ddblake.load.rows import now_us

#: An export smaller than this many pending items is loaded in the calling process: starting a
#: worker (a fresh interpreter importing pyarrow) costs about as much as 30,000 items.
PARALLEL_MIN_ITEMS = 100_000

#: At most this many processes unless asked: each holds an interpreter with pyarrow (75 MB at
#: start, plus its raw-file buffer, 5 MiB by default).
DEFAULT_MAX_WORKERS = 8

#: How long the reports of workers that have all returned may take to arrive before they count as
#: lost (a worker killed between returning and its queue's flush): the load then stops, resumable.
LOST_REPORT_SECONDS = 60.0


class ParallelUnavailable(Exception):
    """Worker processes cannot be started here; nothing was written (load in this process)."""


@dataclass(frozen=True)
class PartJob:
    """One data file to turn into raw-log files (everything a worker process needs, picklable)."""

    table: str
    folder: ExportFolder
    storage: Storage
    manifest: ExportManifest
    key_names: tuple[str, ...] | None
    entry: DataFile
    skip: int  # non-blank lines of the file already in raw files (a resumed load)
    buffer_bytes: int
    versions: str = "second"  # the rows' version rule (ddblake.load.rows.export_version_from_us)


@dataclass(frozen=True)
class Flushed:
    """Lines of one data file that are now in raw files (reported after each raw file)."""

    rel: str
    items: int
    files: int
    done: bool


def plan_workers(pending: Sequence[DataFile], requested: int | None, cpus: int | None = None) -> int:
    """Processes for the pending data files: ``requested``, else one per CPU for a large export.

    Never more than the files (one file is one task); unless asked, 1 for an export under
    :data:`PARALLEL_MIN_ITEMS` pending items and at most :data:`DEFAULT_MAX_WORKERS`.
    """
    if requested is not None:
        return max(1, min(requested, len(pending)))
    if sum(f.item_count for f in pending) < PARALLEL_MIN_ITEMS:
        return 1
    return max(1, min(cpus or os.cpu_count() or 1, len(pending), DEFAULT_MAX_WORKERS))


def write_part(job: PartJob, report: Callable[[Flushed], None], stopped: Callable[[], bool]) -> bool:
    """Write one data file's lines after ``job.skip`` to raw files, reporting after each.

    Returns:
        True when the file is done, False when ``stopped()`` said to stop after a raw file.

    Raises:
        TerminalError: a line is not an export line (names the file and the line).
        TransientError: the lake or the export could not be read or written.
    """
    manifest, entry = job.manifest, job.entry
    maker = RowMaker(manifest, job.table, job.key_names, job.versions)
    writer = RawLogWriter(job.storage, job.table, job.buffer_bytes, 3600.0)
    ion = manifest.output_format == "ION"
    pending = 0

    def flush(done: bool) -> None:
        nonlocal pending
        files = 0 if writer.flush() is None else 1
        report(Flushed(entry.rel, pending, files, done))
        pending = 0

    ingested = now_us()
    seen = 0  # non-blank lines: the unit of job.skip, so a rerun skips exactly what is written
    for number, raw in enumerate(iter_lines(job.folder, entry), start=1):
        if not raw.strip():
            continue
        seen += 1
        if seen <= job.skip:
            continue
        try:
            if ion:
                line = maker.item_to_event(ion_line_to_json(raw), ingested).to_line()
            else:
                line = maker.line_for(raw.decode("utf-8"), ingested)
        except RecursionError:  # no table nests this deep: DynamoDB stops at 32 levels
            raise TerminalError(
                f"export {manifest.uri}: {job.folder.where(entry.rel)} line {number} nests too deep to "
                "be a DynamoDB item (DynamoDB allows 32 levels): the export is damaged; export the "
                "table again"
            ) from None
        except (ValueError, BadRecordError) as e:
            if "has no key attribute" in str(e) and maker.key_names:
                raise TerminalError(
                    f"export {manifest.uri}: {job.folder.where(entry.rel)} line {number}: {e}, but the key "
                    f"is taken to be {','.join(maker.key_names)}: if that is not the table's key, rerun "
                    "with --keys hash[,range] naming its key attributes (or let DescribeTable find them)"
                ) from e
            raise TerminalError(
                f"export {manifest.uri}: {job.folder.where(entry.rel)} line {number} is not an export "
                f"line ({e}): the export is damaged although its checksums match, and a rerun stops "
                "here again; export the table again and load that export (rows written before this "
                "line stay in the raw log, at this export's time)"
            ) from e
        writer.add(line)
        pending += 1
        if writer.buffered_bytes >= job.buffer_bytes:
            flush(False)
            if stopped():
                return False
            ingested = now_us()
    flush(True)
    return True


# --- worker processes ------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_reports: Any = None  # the worker's end of the report queue (set by _start_worker)
_halt: Any = None
_parent = 0


def _start_worker(reports: Any, halt: Any, parent: int) -> None:
    global _reports, _halt, _parent
    _reports, _halt, _parent = reports, halt, parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    if sys.platform == "linux":  # killed with the parent (elsewhere: at the next raw file, by getppid)
        with contextlib.suppress(OSError, AttributeError):  # no libc prctl: the getppid check remains
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the call: no signal will come
            os._exit(1)


_Outcome = tuple[int, BaseException | None]  # reports sent, and the error that ended the job


def _run_in_worker(job: PartJob) -> _Outcome:
    """One job in a worker: (reports sent, the error that ended it, if any)."""
    sent = 0

    def report(flushed: Flushed) -> None:
        nonlocal sent
        _reports.put(flushed)
        sent += 1

    def stopped() -> bool:
        return bool(_halt.is_set()) or os.getppid() != _parent

    if stopped():  # a job that starts after the load was told to stop
        return 0, None
    try:
        write_part(job, report, stopped)
    except Exception as e:  # returned, not raised: the parent records the reports first
        return sent, e
    return sent, None


def run_parallel(
    jobs: Sequence[PartJob], workers: int, record: Callable[[Flushed], None], stop: threading.Event
) -> None:
    """Run ``jobs`` in ``workers`` processes, calling ``record`` here for each report, in order.

    Every report a worker sent is recorded before this returns or raises, whatever happened.

    Raises:
        ParallelUnavailable: this platform cannot share a queue between processes (before any work).
        TerminalError, TransientError: the first error a job ended with (the others stop after
            their current raw file); TransientError when a worker died. A set ``stop`` is not an
            error here: the jobs stop after their current raw file and this returns.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads and clients
    try:
        reports = ctx.Queue()
        halt = ctx.Event()
    except (OSError, ImportError) as e:  # no POSIX semaphores here (AWS Lambda has no /dev/shm)
        raise ParallelUnavailable(str(e)) from e
    expected = 0
    received = 0
    errors: list[BaseException] = []

    def take(block: bool) -> bool:
        nonlocal received
        try:
            flushed = reports.get(timeout=0.5) if block else reports.get_nowait()
        except queue_module.Empty:
            return False
        received += 1
        record(flushed)
        return True

    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_start_worker, initargs=(reports, halt, os.getpid())
    ) as pool:
        waiting: list[Future[_Outcome]] = [pool.submit(_run_in_worker, job) for job in jobs]
        try:
            while waiting:
                if stop.is_set() or errors:
                    halt.set()
                    for future in waiting:
                        future.cancel()  # those not started yet
                take(block=True)
                still = []
                for future in waiting:
                    if not future.done():
                        still.append(future)
                    elif not future.cancelled():
                        try:
                            sent, error = future.result()
                        except BrokenProcessPool as e:
                            while take(block=False):  # what did arrive is recorded
                                pass
                            raise TransientError(
                                f"load {jobs[0].table}: a worker process died ({e}); "
                                "run the same command again to resume"
                            ) from e
                        expected += sent
                        if error is not None:
                            errors.append(error)
                waiting = still
            quiet_since = time.monotonic()
            while received < expected:  # reports still in the queue's pipe when their job returned
                if take(block=True):
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > LOST_REPORT_SECONDS:  # a worker died mid-send
                    raise TransientError(
                        f"load {jobs[0].table}: {expected - received} report(s) of finished workers never "
                        "arrived; run the same command again to resume (their raw files are written again)"
                    )
            while take(block=False):
                pass
        finally:  # on any way out (a failed state write, a second Ctrl-C) the workers stop too
            halt.set()
            for future in waiting:
                future.cancel()
    if errors:
        raise errors[0]
