"""An idle continuous capture rewrites its checkpoint now and then, so ``status`` can tell a live
capture of a quiet table (a recent ``capture_checkpoint``) from a dead one (an old one)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import put_many, read_events, stream_event_ids

from ddblake.aws.clients import DynamoClients
from ddblake.capture.checkpoint import load_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.service import run_capture
from ddblake.errors import TerminalError, TransientError
from ddblake.lake.rawlog import list_raw_files
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional


def _updated_us(storage: Storage, table: str) -> int:
    checkpoint = load_checkpoint(storage, table)
    return 0 if checkpoint is None else checkpoint.updated_us


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a condition, bounded by the deadline


def _capture_thread(
    config: CaptureConfig, clients: DynamoClients, storage: Storage, stop: threading.Event
) -> tuple[threading.Thread, list[BaseException]]:
    """Continuous capture in a started thread, and the list its failure lands in."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            run_capture(config, clients=clients, storage=storage, stop=stop)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            failures.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, failures


def test_an_idle_capture_rewrites_its_checkpoint_and_nothing_else(
    clients: DynamoClients, make_table: Callable[..., str], table_name: str, tmp_path: Path
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 3)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    config = CaptureConfig(
        table=table, lake=lake, buffer_seconds=0.2, poll_seconds=0.1, heartbeat_seconds=0.5
    )
    stop = threading.Event()
    worker, failures = _capture_thread(config, clients, storage, stop)
    try:
        _wait_for(lambda: len(read_events(lake, table)) == 3, "the three changes")
        _wait_for(lambda: _updated_us(storage, table) > 0, "the first checkpoint")
        first = load_checkpoint(storage, table)
        assert first is not None
        files = list_raw_files(storage, table)
        _wait_for(lambda: _updated_us(storage, table) > first.updated_us, "a heartbeat")
        second = _updated_us(storage, table)
        _wait_for(lambda: _updated_us(storage, table) > second, "another heartbeat")
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not failures and not worker.is_alive()
    assert list_raw_files(storage, table) == files, "no raw file for an idle stream"
    last = load_checkpoint(storage, table)
    assert last is not None and last.shards == first.shards, "the same positions, a newer time"


def test_a_second_capture_of_the_table_stops_the_first_with_a_reason(
    clients: DynamoClients, make_table: Callable[..., str], table_name: str, tmp_path: Path
) -> None:
    """Overlapping runs (a cron `sync --once` still going, a second `sync`) must not both go on."""
    table = make_table(table_name)
    put_many(clients, table, 2)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    config = CaptureConfig(
        table=table, lake=lake, buffer_seconds=0.2, poll_seconds=0.1, heartbeat_seconds=0.3
    )
    stop = threading.Event()
    first, failures = _capture_thread(config, clients, storage, stop)
    try:
        _wait_for(lambda: _updated_us(storage, table) > 0, "the first capture's checkpoint")
        put_many(clients, table, 2, prefix="later")
        second = run_capture(
            CaptureConfig(table=table, lake=lake, once=True), clients=clients, storage=storage
        )
        assert second.checkpoints >= 1
        first.join(timeout=60)  # its next checkpoint (a file or a heartbeat) finds the other's
    finally:
        stop.set()
        first.join(timeout=60)
    assert not first.is_alive()
    assert len(failures) == 1 and isinstance(failures[0], TerminalError), failures
    assert f"capture {table}: its checkpoint" in str(failures[0])
    assert "run one capture or sync per table and lake" in str(failures[0])
    # nothing lost: every change is in the raw log, each at least once (apply keeps one)
    assert {e.event_id for e in read_events(lake, table)} == set(stream_event_ids(clients, table))


class _AnswerLost(Storage):
    """A lake whose checkpoint writes report failure although they may have landed: the first lands
    and fails (an S3 PUT whose answer is lost), the second fails before it lands."""

    outcomes: list[str]

    def write_atomic(self, rel: str, data: bytes) -> None:
        outcome = self.outcomes.pop(0) if rel.endswith("checkpoint.json") and self.outcomes else None
        if outcome != "lost":
            super().write_atomic(rel, data)
        if outcome is not None:
            raise TransientError(f"write {rel}: connection reset ({outcome})")


def test_a_checkpoint_write_that_landed_but_reported_failure_is_not_taken_for_another_capture(
    clients: DynamoClients, make_table: Callable[..., str], table_name: str, tmp_path: Path
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 2)
    lake = str(tmp_path / "lake")
    plain = Storage.from_uri(lake)
    storage = _AnswerLost(plain.fs, plain.root, plain.uri_root, plain.is_local)
    storage.outcomes = ["landed", "lost"]
    config = CaptureConfig(table=table, lake=lake, buffer_seconds=0.2, poll_seconds=0.1)
    stop = threading.Event()
    worker, failures = _capture_thread(config, clients, storage, stop)
    try:
        _wait_for(lambda: not storage.outcomes or bool(failures), "both failed checkpoint writes")
        assert not failures, failures  # before the fix: "changed under this capture (another capture"
        put_many(clients, table, 2, prefix="later")
        _wait_for(lambda: len(read_events(lake, table)) >= 4, "the later changes")
        _wait_for(
            lambda: (
                (cp := load_checkpoint(plain, table)) is not None and all(p.seq for p in cp.shards.values())
            ),
            "a checkpoint past them",
        )
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not failures, failures
    assert {e.event_id for e in read_events(lake, table)} == set(stream_event_ids(clients, table))
