"""``ddblake capture``: wire config, clients, lake storage and the Streams consumer together.

The CLI calls :meth:`CaptureConfig.build` and :func:`run_capture`. Clients are built here once, unless
the caller (the demo, a test) passes its own.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from ddblake.aws.clients import DynamoClients, build_dynamodb_clients
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.capture.streams import StreamsAdapter
from ddblake.lake.storage import Storage

__all__ = ["CaptureConfig", "CaptureStats", "run_capture"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """SIGINT/SIGTERM set ``stop`` so the consumer flushes and checkpoints before exiting.

    Yields the names of the signals received (logged by the caller, not in the handler). Only the
    main thread can install handlers; elsewhere (a test's thread) the caller's event is the only way
    to stop, which is what such callers use anyway.
    """
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        if stop.is_set():  # a second signal: the user insists
            raise KeyboardInterrupt
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_capture(
    config: CaptureConfig,
    *,
    clients: DynamoClients | None = None,
    storage: Storage | None = None,
    stop: threading.Event | None = None,
) -> CaptureStats:
    """Capture the table's stream into the lake's raw change log.

    Args:
        config: what to capture, where, and how to buffer.
        clients: DynamoDB and Streams clients; built from ``config.endpoint_url`` when None.
        storage: the lake; opened from ``config.lake`` when None.
        stop: set it to stop a continuous capture cleanly; SIGINT/SIGTERM set it too.

    Returns:
        What the run did.

    Raises:
        StreamGapError, NotFoundError, TerminalError, TransientError: see
        :meth:`StreamCapture.run`.
    """
    clients = clients or build_dynamodb_clients(config.endpoint_url)
    storage = storage or Storage.from_uri(config.lake)
    adapter = StreamsAdapter(config.table, dynamodb=clients.dynamodb, streams=clients.streams)
    stop = stop or threading.Event()
    with _stop_on_signals(stop) as received:
        stats = StreamCapture(config, adapter, storage, stop=stop).run()
    if received:
        log.info("capture %s: stopped by %s after flushing and checkpointing", config.table, received[0])
    return stats
