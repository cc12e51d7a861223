"""Continuous apply rides out a transient lake error (it tries again, as a restart would) and
stops at once, naming what to fix, on one no retry can help (access denied, a full disk)."""

from __future__ import annotations

import errno
import logging
import threading
from typing import Any

import pytest
from lake_helpers import Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.errors import TerminalError, TransientError
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


def test_a_transient_error_still_ends_a_once_run() -> None:
    assert isinstance(storage_error("read", "s3://b/x", OSError("connection reset")), TransientError)
