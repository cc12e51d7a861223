"""Signal handlers for the length of a block: SIGINT and SIGTERM held while a child process is
started (DynamoDB Local), or taken as a stop request by the long-running services (capture, load)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn

Handler = Callable[[int, FrameType | None], None]

SCRATCH_DIRS: set[str] = set()
"""Folders of this process's own scratch data (DuckDB's spill files) to delete even when a stop ends
the process at once (``ddblake.cli.signals.exit_at_once_on_stop``), which runs no ``finally``."""


class Terminated(SystemExit):
    """Raised by a SIGTERM handler; its code is ``128 + signal number`` (143)."""


def insist(signum: int) -> NoReturn:
    """A second stop signal: the user insists, so stop at once (every stage is crash-safe).

    Raises:
        KeyboardInterrupt: for SIGINT (the CLI exits 130).
        Terminated: for SIGTERM (the CLI exits 143).
    """
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(128 + signum)


@contextlib.contextmanager
def handlers(handler: Handler, *signals: signal.Signals) -> Iterator[None]:
    """``handler`` for ``signals`` during the block, the previous ones back after it. Only the main
    thread can install handlers (and only it receives signals): elsewhere the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block, then act on the first that came as it would have.

    Around starting a child that must be registered for cleanup: a Ctrl-C arriving after the exec
    but before ``Popen`` returns would raise inside ``Popen`` and lose the only handle on a process
    that is already running. In the main thread only (elsewhere signals are not delivered anyway).
    """
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        del frame
        held.append(signum)

    try:
        with handlers(hold, signal.SIGINT, signal.SIGTERM):
            yield
    finally:
        if held:  # now handled as it would have been (KeyboardInterrupt, Terminated, ...)
            signal.raise_signal(held[0])


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """SIGINT/SIGTERM set ``stop``, so the service writes and records what it holds before exiting.

    A second signal raises KeyboardInterrupt: the user insists. Yields the names of the signals
    received (logged by the caller, not in the handler). Only the main thread can install handlers;
    elsewhere (a test's thread, sync's workers) the caller's event is the only way to stop, which
    is what such callers use anyway.
    """
    received: list[str] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        if stop.is_set():
            insist(signum)
        received.append(signal.Signals(signum).name)
        stop.set()

    with handlers(handler, signal.SIGINT, signal.SIGTERM):
        yield received
