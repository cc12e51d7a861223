"""Continuous apply rides out a transient lake error (it tries again, as a restart would) and
stops at once, naming what to fix, on one no retry can help (access denied, a full disk)."""

from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Any

import pytest
from lake_helpers import Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.errors import TerminalError, TransientError
from ddblake.lake import service
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.service import run_apply
from ddblake.lake.storage import Storage, storage_error


def _failing_listing(monkeypatch: pytest.MonkeyPatch, error: OSError, times: int) -> list[int]:
    """Make the next ``times`` raw-file listings fail with ``error``; returns the call count."""
    real = Storage.list_with_times
    calls = [0]

    def listing(self: Storage, prefix: str) -> list[tuple[str, float]]:
        if prefix.startswith("raw/"):
            calls[0] += 1
            if calls[0] <= times:
                raise storage_error("list", self.uri(prefix), error)
        return real(self, prefix)

    monkeypatch.setattr(Storage, "list_with_times", listing)
    return calls


def test_continuous_apply_tries_again_after_a_transient_error(
    lake: Lake, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([event("INSERT", "k1", 1, image={"v": {"N": "1"}})])
    lake.write([event("INSERT", "k2", 2, image={"v": {"N": "2"}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=False, poll_seconds=0.05)
    applier = Applier(config, storage=lake.storage)
    _failing_listing(monkeypatch, OSError("AWS Error SLOW_DOWN during ListObjectsV2 operation"), times=1)
    stop = threading.Event()
    real_run_once = applier.run_once

    def run_once(*args: Any) -> Any:
        result = real_run_once(*args)
        if result.files:
            stop.set()
        return result

    applier.run_once = run_once  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="ddblake"):
        total = run_apply(config, applier=applier, stop=stop)
    assert total.files == 2 and sorted(lake.dump()) == ["k1", "k2"]
    assert any("SLOW_DOWN" in r.getMessage() and "trying again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "error",
    [
        OSError("AWS Error ACCESS_DENIED during ListObjectsV2 operation: Access Denied"),
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_continuous_apply_stops_at_once_on_an_error_no_retry_fixes(
    lake: Lake, error: OSError, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([event("INSERT", "k1", 1, image={"v": {"N": "1"}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=False, poll_seconds=0.05)
    applier = Applier(config, storage=lake.storage)
    calls = _failing_listing(monkeypatch, error, times=100)
    with pytest.raises(TerminalError, match=r"cannot list .*raw.*check that this process may list"):
        run_apply(config, applier=applier)
    assert calls[0] == 1  # not retried


def test_a_once_run_tries_a_transient_error_a_few_times_then_fails(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([event("INSERT", "k1", 1, image={"v": {"N": "1"}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=True)
    waits: list[float] = []
    monkeypatch.setattr(service, "retry_wait", lambda failures: waits.append(failures) or 0.0)
    calls = _failing_listing(monkeypatch, OSError("AWS Error SLOW_DOWN during ListObjectsV2"), times=100)
    with pytest.raises(TransientError, match="SLOW_DOWN"):
        run_apply(config, applier=Applier(config, storage=lake.storage))
    assert calls[0] == service.ONCE_ATTEMPTS  # every attempt listed, then the scheduler sees exit 1
    assert waits == list(range(1, service.ONCE_ATTEMPTS + 1))


def test_a_once_run_rides_out_throttling_that_passes(
    lake: Lake, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([event("INSERT", "k1", 1, image={"v": {"N": "1"}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=True)
    monkeypatch.setattr(service, "retry_wait", lambda failures: 0.0)
    _failing_listing(monkeypatch, OSError("AWS Error SLOW_DOWN during ListObjectsV2"), times=2)
    with caplog.at_level(logging.WARNING, logger="ddblake"):
        total = run_apply(config, applier=Applier(config, storage=lake.storage))
    assert total.files == 1 and sorted(lake.dump()) == ["k1"]
    tries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(tries) == 2 and tries[0].endswith(f"(attempt 2 of {service.ONCE_ATTEMPTS})")


def test_a_once_run_does_not_wait_past_its_deadline(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    lake.write([event("INSERT", "k1", 1, image={"v": {"N": "1"}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=True)
    monkeypatch.setattr(service, "retry_wait", lambda failures: 60.0)
    calls = _failing_listing(monkeypatch, OSError("AWS Error SLOW_DOWN during ListObjectsV2"), times=100)
    with pytest.raises(TransientError, match="SLOW_DOWN"):
        run_apply(config, applier=Applier(config, storage=lake.storage), deadline=time.monotonic() + 30)
    assert calls[0] == 1  # a minute's wait would end past the deadline (the Lambda's timeout)


def test_retry_waits_grow_with_jitter_and_a_ceiling() -> None:
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (50, 30.0)):
        waits = {service.retry_wait(failures) for _ in range(50)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1, "jittered"


def test_pyiceberg_io_and_catalog_errors_are_classified_and_retried(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyiceberg writes Parquet, manifests and metadata itself: its OSError is classified like ours
    lake.write([event("INSERT", "k1", 1, image={"v": {"N": "1"}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=False, poll_seconds=0.05)
    applier = Applier(config, storage=lake.storage)
    real_run_once = applier.run_once
    stop = threading.Event()
    raised = [OSError("AWS Error SLOW_DOWN during PutObject operation: Please reduce your request rate.")]

    def run_once(*args: Any) -> Any:
        if raised:
            raise raised.pop()
        result = real_run_once(*args)
        stop.set()
        return result

    applier.run_once = run_once  # type: ignore[method-assign]
    assert run_apply(config, applier=applier, stop=stop).files == 1

    def denied(*args: Any) -> Any:
        raise OSError("AWS Error ACCESS_DENIED during PutObject operation: Access Denied")

    applier.run_once = denied  # type: ignore[method-assign]
    with pytest.raises(TerminalError, match="ACCESS_DENIED.*check that this process may use"):
        run_apply(config, applier=applier)


@pytest.mark.parametrize(
    ("error", "terminal"),
    [
        (OSError("AWS Error ACCESS_DENIED during HeadObject operation: No response body."), True),
        (
            OSError(
                "AWS Error NO_SUCH_BUCKET during ListObjectsV2 operation: The specified bucket does not exist"
            ),
            True,
        ),
        (OSError("AWS Error INVALID_ACCESS_KEY_ID during PutObject operation: bad key"), True),
        (OSError("AWS Error UNKNOWN (HTTP status 301) during HeadObject operation: No response body."), True),
        (PermissionError(errno.EACCES, "Permission denied"), True),
        (OSError(errno.EROFS, "Read-only file system"), True),
        (OSError("AWS Error SLOW_DOWN during PutObject operation: Please reduce your request rate."), False),
        (
            OSError(
                "AWS Error NETWORK_CONNECTION during GetObject operation: curlCode: 28, Timeout was reached"
            ),
            False,
        ),
        (
            OSError(
                "AWS Error INTERNAL_FAILURE during PutObject operation: We encountered an internal error."
            ),
            False,
        ),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), False),
    ],
)
def test_storage_errors_are_terminal_only_when_no_retry_helps(error: OSError, terminal: bool) -> None:
    explained = storage_error("write", "s3://b/lake/x", error)
    assert isinstance(explained, TerminalError if terminal else TransientError)
    assert "s3://b/lake/x" in str(explained)


def test_cleanup_goes_on_past_a_delete_the_lake_refuses(caplog: pytest.LogCaptureFixture) -> None:
    from ddblake.lake.cleanup import delete_all

    deleted: list[str] = []

    def delete(path: str) -> None:
        if path.endswith("locked"):
            raise storage_error("delete", path, OSError("AWS Error ACCESS_DENIED during DeleteObject"))
        deleted.append(path)

    with caplog.at_level(logging.WARNING, logger="ddblake"):
        out = delete_all(delete, {"a": 1, "b-locked": 2, "c": 3})
    assert sorted(deleted) == ["a", "c"]
    assert "b-locked" in caplog.text
    assert (out.files, out.data_bytes, out.failed) == (2, 4, 1)


def test_a_batch_of_known_events_cannot_overwrite_a_record_committed_since_its_read(lake: Lake) -> None:
    """Two applies on one table: B reads the tables for a batch whose event is a repeat (so it
    changes no rows, only the applied-file records); meanwhile A applies a new file's event to the
    history and dies before the current state. B's record, built from its older read, must not
    replace A's: its commit fails and is retried from a fresh read, so the rerun appends nothing
    twice."""
    from ddblake.lake.apply import ApplyConfig

    first = event("INSERT", "a", 1, image={"v": {"N": "1"}})
    lake.write([first])
    lake.apply()
    lake.write([first])  # a re-delivery: B's batch is all repeats
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=True)

    class DiesBetweenItsCommits(Applier):
        def _commit_current(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("A killed between its two commits")

    raced: list[bool] = []

    class Slow(Applier):
        def _commit_history(self, *args: Any, **kwargs: Any) -> None:
            if not raced:  # A runs between B's read and B's first commit
                raced.append(True)
                lake.write([event("INSERT", "c", 3, image={"v": {"N": "3"}})])
                with pytest.raises(RuntimeError, match="A killed"):
                    DiesBetweenItsCommits(config, storage=lake.storage).run_once()
            super()._commit_history(*args, **kwargs)

    run_apply(config, applier=Slow(config, storage=lake.storage))
    lake.apply()
    keys = sorted(row["_ddb_key"] for row in lake.history())
    assert keys == ['{"pk":{"S":"a"}}', '{"pk":{"S":"c"}}'], "every event once in the history"
    assert sorted(lake.dump()) == ["a", "c"]
