"""SIGTERM as an exception, so ``with`` blocks and cleanup handlers run (DynamoDB Local is stopped).

Python's default SIGTERM action ends the process at once: no ``finally``, no context manager exit, no
``atexit``. Commands that own a child process (``ddblake demo``, ``ddblake local start`` while it
waits for the JVM) run inside :func:`sigterm_unwinds`, which raises :class:`Terminated` instead.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from ddblake.signals import Terminated, handlers

__all__ = ["Terminated", "forget_terminations", "sigterm_unwinds", "terminated_by"]

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
