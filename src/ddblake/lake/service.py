"""Running apply: once, or polling until stopped; what ``ddblake apply``, ``sync`` and the Lambda call.

:class:`~ddblake.lake.apply.Applier` does one batch exactly once; this module decides when to run
it again: after a lost commit race (at once, with jitter), after a transient storage or catalog
error in continuous mode (with a growing pause, as a restart would), and when the poll interval
or a new raw file says so. Snapshot expiry and compaction ride along (:mod:`ddblake.lake.maintain`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from pyiceberg.exceptions import CommitFailedException, ValidationException

from ddblake.backoff import backoff_with_jitter
from ddblake.errors import DdblakeError, TerminalError, TransientError
from ddblake.lake import maintain
from ddblake.lake.apply import Applier
from ddblake.lake.catalog import catalog_error
from ddblake.lake.options import ApplyConfig, ApplyResult
from ddblake.lake.rawlog import quarantine_prefix
from ddblake.lake.storage import storage_error
from ddblake.progress import Progress
from ddblake.signals import insist

log = logging.getLogger(__name__)


def _stop_now(stop: threading.Event, wake: threading.Event | None) -> None:
    stop.set()
    if wake is not None:
        wake.set()


def apply_progress(table: str) -> Callable[[], Progress]:
    """A progress display for each poll, on stderr: what ``apply`` and ``sync`` show people."""
    return lambda: Progress(f"apply {table}", unit="raw files")


def _run_once_racing(
    applier: Applier,
    table: str,
    progress: Callable[[], Progress] | None,
    deadline: float | None,
    stop: threading.Event | None = None,
) -> ApplyResult:
    """:meth:`Applier.run_once`, again when another writer's commit beat this one's."""
    for attempt in range(5):
        try:
            return applier.run_once(progress() if progress is not None else None, deadline, stop)
        except (CommitFailedException, ValidationException) as e:  # the commit did not land
            if attempt == 4:
                raise TransientError(f"table {table}: another writer keeps committing; retry later") from e
            log.info("commit race on table %s, retrying", table)
            wait = backoff_with_jitter(0.25 * (attempt + 1))  # the jitter parts the racers
            if stop is not None:
                stop.wait(wait)  # a stop asked for meanwhile is seen by run_once at once
            else:
                time.sleep(wait)
        except DdblakeError:
            raise
        except OSError as e:  # pyiceberg's own file I/O (Parquet, manifests, metadata)
            from ddblake.lake.recovery import missing_metadata

            missing = missing_metadata(e)  # a lake restored from a backup older than its catalog
            if missing is not None:
                raise TerminalError(missing) from e
            gone = _missing_table_file(applier, e)  # a data file deleted: no rerun gets past it
            if gone is not None:
                raise gone from e
            raise storage_error("use", f"the tables of {applier.storage.shown()}", e) from e
        except Exception as e:  # Glue or SQLite through pyiceberg's catalog
            explained = catalog_error(e, applier.config.lake, applier.storage)
            if explained is None:
                raise
            raise explained from e
    raise AssertionError("unreachable")  # pragma: no cover


def _missing_table_file(applier: Applier, e: OSError) -> TerminalError | None:
    """:func:`ddblake.lake.reading.missing_file` for apply's two tables (None: not a file of them)."""
    from ddblake.lake.reading import missing_file

    if not isinstance(e, FileNotFoundError) and "[errno 2]" not in str(e).lower():
        return None
    tables = []
    for identifier in (applier.current_id, applier.history_id):
        with contextlib.suppress(Exception):  # a table that cannot be loaded names no file
            tables.append(applier.catalog.load_table(identifier))
    return missing_file(e, tables)


def warn_quarantined(applier: Applier, result: ApplyResult) -> None:
    """Records apply set aside want a person: said at WARNING, as capture says its own."""
    if result.quarantined:
        where = f"{quarantine_prefix(applier.config.table)}/"
        log.warning(
            "table %s: %d record(s) quarantined under %s, with reasons",
            applier.config.table,
            result.quarantined,
            applier.storage.shown(where),
        )


ONCE_ATTEMPTS = 4
"""A ``--once`` apply makes this many attempts in all when each fails transiently (waits of up to
1, 2 and 4 s between them, see :func:`retry_wait`), then raises the last error: exit 1, and the
scheduler's next run goes on."""


def retry_wait(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` transient failures in a row: 1 s doubling
    to 30 s at most, with half of it random (:func:`ddblake.backoff.backoff_with_jitter`), so
    applies that failed together (S3 throttling a busy prefix) do not all try again at once."""
    return backoff_with_jitter(min(30.0, 0.5 * 2.0 ** min(failures, 6)))


def run_apply(
    config: ApplyConfig,
    *,
    stop: threading.Event | None = None,
    applier: Applier | None = None,
    wake: threading.Event | None = None,
    progress: Callable[[], Progress] | None = None,
    deadline: float | None = None,
) -> ApplyResult:
    """Apply once (``--once``) or keep polling until SIGINT/SIGTERM or ``stop`` is set.

    ``progress`` makes a fresh progress display for each poll, and ``deadline`` bounds a ``--once``
    run (see :meth:`Applier.run_once`).

    ``wake``, set by a writer in the same process (``sync``'s capture, when it wrote a raw file),
    starts the next poll at once instead of at the end of the interval; whoever sets ``stop``
    should set it too.

    A lost commit race (another apply on the same table) is retried from the top: the loser
    re-reads the applied-file records and finds its work done or still to do, never half done.
    """
    stop = stop or threading.Event()
    applier = applier or Applier(config)
    maintainer = maintain.Maintainer(applier)
    total = ApplyResult()
    previous: dict[signal.Signals, Any] = {}
    received: list[str] = []  # the signals that stopped it, logged on the way out (not in the handler)

    def on_signal(signum: int, frame: Any) -> None:
        del frame
        if received:  # the second: stop at once, mid-batch (a crash anywhere loses nothing)
            insist(signum)
        received.append(signal.Signals(signum).name)
        # Said now, not at the end: a load's batch can take minutes, and a silent wait looks hung.
        log.info(
            "apply %s: %s received; stopping after the batch in progress (a second signal stops at once)",
            config.table,
            received[0],
        )
        _stop_now(stop, wake)

    if not config.once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    if not config.once and wake is None:  # said once: a continuous apply with nothing new says nothing
        log.info(
            "apply %s: applying new raw files under %s every %g s until stopped (Ctrl-C or SIGTERM)",
            config.table,
            applier.storage.shown(f"raw/{config.table}/"),
            config.poll_seconds,
        )
    failures = 0
    try:
        while True:
            started = time.monotonic()
            try:
                result = _run_once_racing(applier, config.table, progress, deadline, stop)
            except TransientError as e:
                # Apply outlives a storage or catalog hiccup (S3 SlowDown, a 5xx, a network blip):
                # each batch reloads the tables and the applied-file record, so trying again is the
                # same as a restart. A --once run (a cron job, the scheduled Lambda) tries a few
                # times within its deadline, then fails for its scheduler to see.
                failures += 1
                wait = retry_wait(failures)
                late = deadline is not None and time.monotonic() + wait >= deadline
                if config.once and (failures >= ONCE_ATTEMPTS or late):
                    raise
                tries = f" (attempt {failures + 1} of {ONCE_ATTEMPTS})" if config.once else ""
                log.warning("table %s: %s; trying again in %.1f s%s", config.table, e, wait, tries)
                if stop.wait(wait):
                    return total
                continue
            failures = 0
            total.add(result)
            warn_quarantined(applier, result)
            if stop.is_set():
                return total
            if result.files and not config.once:
                log.info("table %s: %s", config.table, result.summary())

            # Snapshot expiry and history compaction: every so many commits, and at the end of
            # --once; each pass checks its thresholds and never raises.
            if config.once:
                if total.files and (deadline is None or time.monotonic() + 60 < deadline):
                    report = maintainer.run()
                    total.maintenance_failures = 2 if report is None else len(report.failures)
                elif total.files:
                    total.maintenance_skipped = 1
                return total
            maintainer.after_cycle(bool(result.files))
            # The poll interval is the period between polls, not a pause after each: when a batch
            # took longer, files have been landing meanwhile and the next poll starts at once.
            pause = max(0.0, config.poll_seconds - (time.monotonic() - started))
            if wake is None:
                if stop.wait(pause):
                    return total
                continue
            wake.wait(pause)
            wake.clear()  # before the next poll lists files: a file written after this wakes again
            if stop.is_set():
                return total
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # As capture says it: the user sees why it ended, and that nothing is half done; not when
        # an error ends it (that error is what the user sees).
        if received and sys.exc_info()[1] is None:
            log.info("apply %s: stopped by %s (every batch it began is committed)", config.table, received[0])
