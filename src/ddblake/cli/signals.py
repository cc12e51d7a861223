"""SIGTERM as an exception, so ``with`` blocks and cleanup handlers run (DynamoDB Local is stopped).

Python's default SIGTERM action ends the process at once: no ``finally``, no context manager exit, no
``atexit``. Commands that own a child process (``ddblake demo``, ``ddblake local start`` while it
waits for the JVM) run inside :func:`sigterm_unwinds`, which raises :class:`Terminated` instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType

from ddblake.signals import SCRATCH_DIRS, Terminated, handlers

__all__ = ["Terminated", "exit_at_once_on_stop", "forget_terminations", "sigterm_unwinds", "terminated_by"]

_received: list[int] = []  # SIGTERMs seen by sigterm_unwinds' handler, in this process


def terminated_by() -> int | None:
    """The exit code of a SIGTERM that :func:`sigterm_unwinds` turned into an exception, if one came.

    A library may catch the exception and raise its own: DuckDB, whose query loop runs Python's
    signal handlers, reports any of them as "Query interrupted" (which the query module turns into a
    KeyboardInterrupt). The CLI asks this to tell a SIGTERM's stop (143) from a Ctrl-C's (130).
    """
    return 128 + _received[-1] if _received else None


def forget_terminations() -> None:
    """Start a command with no SIGTERM on record (the CLI's tests run many commands in one process)."""
    _received.clear()


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration of the block (main thread only)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        _received.append(signum)
        raise Terminated(128 + signum)

    with handlers(handler, signal.SIGTERM):
        yield


STOP_LINES: dict[int, bytes] = {
    signal.SIGINT: b"ddblake: interrupted\n",
    signal.SIGTERM: b"ddblake: terminated (SIGTERM)\n",
}


@contextlib.contextmanager
def exit_at_once_on_stop() -> Iterator[None]:
    """For commands that only read (query, dump): Ctrl-C or SIGTERM ends the process at once, with
    its one line and 130 or 143, even while DuckDB runs a statement.

    Python runs its signal handlers in the main thread between bytecodes, and DuckDB checks for them
    only in some operators: a hash join or an aggregate ran on for a minute after SIGTERM, and a
    scheduler's grace period (30 s on ECS or Kubernetes) would then SIGKILL it with no word. The C
    handler writes the signal to a wake-up socket at once, whatever the main thread does; a thread
    waiting on it ends the process. Nothing is left half done: these commands write nothing but
    their output. Main thread only (elsewhere the block runs as is).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)

    def watch() -> None:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:  # the block ended: the writer is closed
                return
            for signum in data:
                if signum in STOP_LINES:
                    for scratch in list(SCRATCH_DIRS):  # DuckDB's spill files: no finally runs
                        shutil.rmtree(scratch, ignore_errors=True)
                    os.write(2, STOP_LINES[signum])  # not sys.stderr: the main thread may hold its lock
                    os._exit(128 + signum)

    watcher = threading.Thread(target=watch, name="ddblake-stop", daemon=True)
    watcher.start()
    previous: int | None = None
    try:
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        yield
    finally:
        if previous is not None:
            signal.set_wakeup_fd(previous)
        writer.close()
        watcher.join()
        reader.close()
