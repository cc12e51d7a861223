"""``ddblake sync``: capture and apply in one process.

With ``--once`` it catches up with the stream, applies, and exits. Otherwise capture runs in a
thread, cutting raw files quickly (sub-second buffering), while the main thread applies new files
as they appear — the freshness path (bench/freshness.py measures it). Both stages keep their own
durable positions (capture's checkpoint, apply's applied-file log), so killing sync at any instant
and starting it again loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from ddblake.aws.clients import DynamoClients, build_dynamodb_clients
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import run_capture
from ddblake.errors import DdblakeError, TerminalError
from ddblake.lake.apply import Applier, ApplyConfig, ApplyResult, run_apply
from ddblake.rebootstrap import unfinished_rebootstrap

log = logging.getLogger(__name__)

SYNC_BUFFER_SECONDS = 0.2
SYNC_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class SyncConfig:
    """Capture settings plus apply settings for one table."""

    capture: CaptureConfig
    apply: ApplyConfig

    @property
    def once(self) -> bool:
        """Catch up, apply, exit."""
        return self.apply.once


def run_sync(
    config: SyncConfig, *, clients: DynamoClients | None = None, stop: threading.Event | None = None
) -> ApplyResult:
    """Run capture and apply until caught up (``once``) or until stopped (SIGINT/SIGTERM/``stop``).

    Raises:
        TerminalError: a re-bootstrap of the table was interrupted (run it again first).
        DdblakeError: from capture (a stream gap, a missing table) or from apply.
    """
    storage = config.apply.lake.storage()
    interrupted = unfinished_rebootstrap(storage, config.capture.table)
    if interrupted:
        raise TerminalError(interrupted)
    clients = clients or build_dynamodb_clients(config.capture.endpoint_url)
    if config.once:
        run_capture(replace(config.capture, once=True), clients=clients, storage=storage)
        return run_apply(config.apply)

    stop = stop or threading.Event()
    failure: list[BaseException] = []

    def capture_loop() -> None:
        try:
            run_capture(replace(config.capture, once=False), clients=clients, storage=storage, stop=stop)
        except BaseException as e:  # handed to the main thread, which re-raises it
            failure.append(e)
            stop.set()

    thread = threading.Thread(target=capture_loop, name=f"capture-{config.capture.table}", daemon=True)
    thread.start()
    applier = Applier(config.apply, storage=storage)
    total = ApplyResult()
    try:
        total.add(run_apply(config.apply, stop=stop, applier=applier))
    finally:
        stop.set()
        thread.join()
    # One last pass: capture flushed its buffer on the way out; apply what it wrote.
    if not failure:
        total.add(applier.run_once())
    if failure:
        err = failure[0]
        if isinstance(err, DdblakeError):
            raise err
        raise DdblakeError(f"capture of table {config.capture.table} failed: {err}") from err
    return total
