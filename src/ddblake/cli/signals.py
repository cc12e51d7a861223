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

__all__ = ["Terminated", "sigterm_unwinds"]


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration of the block (main thread only)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        raise Terminated(128 + signum)

    with handlers(handler, signal.SIGTERM):
        yield
