"""``ddblake capture``: wire config, clients, lake storage and the Streams consumer together.

The CLI calls :meth:`CaptureConfig.build` and :func:`run_capture`. Clients are built here once, unless
the caller (the demo, a test) passes its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from ddblake.aws.clients import DynamoClients
from ddblake.aws.roles import Identity, build_role_clients
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import CaptureStats, StreamCapture
from ddblake.capture.streams import StreamsAdapter
from ddblake.errors import DdblakeError
from ddblake.lake.storage import Storage
from ddblake.redact import first_line
from ddblake.signals import stop_on_signals

__all__ = ["CaptureConfig", "CaptureStats", "CaptureThread", "run_capture"]

log = logging.getLogger(__name__)

CAPTURE_SESSION_NAME = "ddblake-capture"


def build_capture_clients(config: CaptureConfig) -> tuple[DynamoClients, Callable[[], Identity]]:
    """DynamoDB and Streams clients for capture (as ``config.assume_role``, if set), and who they act as.

    Raises:
        TerminalError: the role cannot be assumed (names principal, role and accounts).
        ConfigError: no region or credentials.
    """
    return build_role_clients(
        config.endpoint_url,
        config.assume_role,
        external_id=config.external_id,
        session_name=CAPTURE_SESSION_NAME,
        table=config.table,
    )


def run_capture(
    config: CaptureConfig,
    *,
    clients: DynamoClients | None = None,
    storage: Storage | None = None,
    stop: threading.Event | None = None,
    on_file: Callable[[str], None] | None = None,
    identity: Callable[[], Identity] | None = None,
) -> CaptureStats:
    """Capture the table's stream into the lake's raw change log.

    Args:
        config: what to capture, where, and how to buffer.
        clients: DynamoDB and Streams clients; built from ``config`` (endpoint, assumed role) when
            None. Given clients are used as they are.
        storage: the lake; opened from ``config.lake`` when None.
        stop: set it to stop a continuous capture cleanly; SIGINT/SIGTERM set it too.
        on_file: called with each raw file written.
        identity: who given ``clients`` act as (for error messages).

    Returns:
        What the run did.

    Raises:
        StreamGapError, NotFoundError, TerminalError, TransientError: see
        :meth:`StreamCapture.run`.
    """
    if clients is None:
        clients, identity = build_capture_clients(config)
    elif identity is None and config.assume_role:
        # the caller's clients: ddblake assumed no role for them, so errors must not claim it did
        identity = lambda: Identity(unapplied_role=config.assume_role)  # noqa: E731
    storage = storage or Storage.from_uri(config.lake)
    adapter = StreamsAdapter(
        config.table, dynamodb=clients.dynamodb, streams=clients.streams, identity=identity
    )
    stop = stop or threading.Event()
    with stop_on_signals(stop) as received:
        stats = StreamCapture(config, adapter, storage, stop=stop, on_file=on_file).run()
    if received:
        log.info("capture %s: stopped by %s after flushing and checkpointing", config.table, received[0])
        stats.stopped_by = received[0]
    return stats


class CaptureThread:
    """Continuous capture in a thread beside a load (``sync``'s first load, a re-bootstrap's) or an
    apply loop; its failure is handed to the caller (:meth:`finish`, :meth:`error`)."""

    def __init__(
        self,
        config: CaptureConfig,
        clients: DynamoClients | None,
        storage: Storage,
        identity: Callable[[], Identity] | None = None,
    ) -> None:
        self.stop = threading.Event()
        self.wake = threading.Event()  # set when a raw file is written (and when capture ends)
        self.failure: list[BaseException] = []
        self.table = config.table

        def loop() -> None:
            try:
                run_capture(
                    replace(config, once=False),
                    clients=clients,
                    storage=storage,
                    stop=self.stop,
                    on_file=lambda _path: self.wake.set(),
                    identity=identity,
                )
            except BaseException as e:  # handed to the main thread, which re-raises it
                self.failure.append(e)
                self.stop.set()
            finally:
                self.wake.set()

        self.thread = threading.Thread(target=loop, name=f"capture-{config.table}", daemon=True)
        self.thread.start()

    def finish(self) -> None:
        """Stop (capture flushes and checkpoints), wait, and raise what capture raised."""
        self.stop.set()
        self.thread.join()
        error = self.error()
        if error is None:
            return
        if error is self.failure[0]:
            raise error
        raise error from self.failure[0]

    def fail_with(self, e: BaseException) -> None:
        """Stop after the caller's work beside capture failed with ``e``: raise capture's own failure
        instead where it had one (the caller's "stopped" followed from it); else return, for the
        caller to re-raise ``e``."""
        self.stop.set()
        self.thread.join()
        failed = self.error()
        if failed is not None and isinstance(e, Exception):
            raise failed  # its own cause kept; e is its context

    def error(self) -> BaseException | None:
        """What capture raised, as a ddblake error; None while it runs or when it ended cleanly."""
        if not self.failure:
            return None
        err = self.failure[0]
        if isinstance(err, DdblakeError):
            return err
        # not one of ours: name the table and the kind, and only the first line of the library's
        # text, values masked (it may quote item data)
        what = f"{type(err).__name__}: {first_line(err)}"
        return DdblakeError(f"capture of table {self.table!r} failed: {what}")
