"""Crash safety: a crash anywhere, then a rerun, loses no change (duplicates of the tail are allowed)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import DDBLAKE, REPO, put_many, read_events, stream_event_ids

from ddblake.aws.clients import DynamoClients
from ddblake.capture import consumer
from ddblake.capture.checkpoint import checkpoint_path, load_checkpoint
from ddblake.capture.consumer import CaptureStats
from ddblake.lake.rawlog import list_raw_files, read_raw_file
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional


class SimulatedCrash(BaseException):
    """Not an Exception: nothing in capture may catch it and tidy up, just like a real crash."""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; the deadline is generous, as a CLI process starting on a
    loaded 2-core machine (the suite, verify and builds beside it) took more than 30 s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def capture_process(table: str, lake: str, endpoint: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(DDBLAKE), "capture", "--table", table, "--lake", lake, "--endpoint-url", endpoint, *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(storage: Storage, path: str) -> list[bytes]:
    return read_raw_file(storage, path).lines


def assert_complete(lake: str, table: str, clients: DynamoClients, duplicates_at_most: int) -> None:
    expected = stream_event_ids(clients, table)
    seen = Counter(e.event_id for e in read_events(lake, table))
    assert set(seen) == set(expected), f"lost {len(set(expected) - set(seen))} change(s)"
    assert sum(seen.values()) - len(expected) <= duplicates_at_most


def test_crash_between_raw_file_and_checkpoint_loses_nothing(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 60, pad=150)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    real_save = consumer.save_checkpoint
    saves: list[int] = []

    def crash_on_third(store: Storage, checkpoint: consumer.Checkpoint) -> None:
        saves.append(1)
        if len(saves) == 3:
            raise SimulatedCrash  # the raw file of this flush is written; its checkpoint is not
        real_save(store, checkpoint)

    monkeypatch.setattr(consumer, "save_checkpoint", crash_on_third)
    with pytest.raises(SimulatedCrash):
        capture(table, lake, buffer_bytes=3_000)
    files_before = list_raw_files(storage, table)
    last_durable = load_checkpoint(storage, table)
    assert len(files_before) == 3 and last_durable is not None
    assert last_durable.last_file == files_before[1], "the checkpoint never runs ahead of the raw files"

    orphan_records = len(_lines(storage, files_before[2]))  # written; its checkpoint was lost

    monkeypatch.setattr(consumer, "save_checkpoint", real_save)
    rerun = capture(table, lake, buffer_bytes=3_000)
    assert rerun.records < 60, "the rerun resumes from the checkpoint, not from the start"
    assert orphan_records > 0
    # Exactly the orphan file's records come again: nothing before the checkpoint is read twice.
    events = read_events(lake, table)
    assert len(events) - 60 == orphan_records
    assert_complete(lake, table, clients, duplicates_at_most=len(events) - 60)


def test_sigkill_at_an_arbitrary_point_then_rerun_loses_nothing(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 600, pad=100)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    proc = capture_process(table, lake, dynamodb_local_endpoint, "--buffer-bytes", "2000")
    try:
        wait_for(lambda: len(list_raw_files(storage, table)) >= 3 or proc.poll() is not None, "raw files")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "killed mid-run, not finished on its own"
    written = len(read_events(lake, table))
    assert written > 0
    # Only the records of raw files written after the checkpoint's last file may come again.
    files = list_raw_files(storage, table)
    durable = load_checkpoint(storage, table)
    last = None if durable is None else durable.last_file
    after = files if last is None else files[files.index(last) + 1 :]
    unchecked = sum(len(_lines(storage, f)) for f in after)

    rerun = capture(table, lake)
    assert rerun.records <= 600 - (written - unchecked), "the rerun resumes from the checkpoint"
    assert_complete(lake, table, clients, duplicates_at_most=unchecked)


def test_sigterm_stops_continuous_capture_cleanly(
    clients: DynamoClients,
    make_table: Callable[..., str],
    capture: Callable[..., CaptureStats],
    table_name: str,
    tmp_path: Path,
    dynamodb_local_endpoint: str,
) -> None:
    table = make_table(table_name)
    put_many(clients, table, 5)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    proc = capture_process(table, lake, dynamodb_local_endpoint, "--buffer-seconds", "0.2")
    try:
        wait_for(lambda: storage.read(checkpoint_path(table)) is not None, "the first checkpoint")
        put_many(clients, table, 7, prefix="while-running")  # picked up by polling, no restart
        wait_for(lambda: len(read_events(lake, table)) == 12, "the new changes")
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped by SIGTERM" in stderr
    assert capture(table, lake).records == 0, "everything written was checkpointed before exiting"
    assert [e.event_id for e in read_events(lake, table)] == stream_event_ids(clients, table)
