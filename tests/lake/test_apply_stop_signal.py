"""Continuous ``ddblake apply`` stopped by Ctrl-C or SIGTERM: exit 0, and a line saying why it ended.

Capture said so already; apply (and ``sync``, whose apply loop this is) ended silently after its
batch, which read like a hang and then a plain exit.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.errors import DdblakeError

pytestmark = pytest.mark.e2e

DDBLAKE = Path(sys.executable).parent / "ddblake"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_continuous_apply_cleanly_and_says_so(lake: Lake, sig: signal.Signals) -> None:
    lake.write([event("INSERT", "a", 1), event("INSERT", "b", 2)])
    proc = subprocess.Popen(
        [str(DDBLAKE), "apply", "--table", TABLE, "--lake", str(lake.root), "--poll-seconds", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def applied() -> bool:
        if not (lake.root / "catalog.db").exists():  # read the catalog only once apply made it
            return False
        try:
            return sorted(lake.dump()) == ["a", "b"]
        except DdblakeError:  # the current state's table is not committed yet
            return False

    try:
        deadline = time.monotonic() + 120
        while not applied():
            assert proc.poll() is None, "apply ended by itself"
            assert time.monotonic() < deadline, "the batch was not applied"
            time.sleep(0.05)  # polling a condition, bounded by the deadline
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"apply {TABLE}: stopped by {sig.name} (every batch it began is committed)" in err
    assert "Traceback" not in err
    assert sorted(lake.dump()) == ["a", "b"]


@pytest.mark.parametrize("fails", [False, True])
def test_the_stop_line_is_said_only_when_apply_ends_cleanly(
    lake: Lake, caplog: pytest.LogCaptureFixture, fails: bool
) -> None:
    """A signal during a batch that then fails: the error is the story, not "every batch committed"."""
    import logging
    import os

    from ddblake.errors import TerminalError
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.options import ApplyResult
    from ddblake.lake.service import run_apply

    lake.write([event("INSERT", "a", 1)])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=False)

    class SignalledInBatch(Applier):
        def run_batch(self) -> tuple[ApplyResult, bool]:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler run_apply installed takes it
            if fails:
                raise TerminalError("the batch failed")
            return super().run_batch()

    with caplog.at_level(logging.INFO, logger="ddblake"):
        if fails:
            with pytest.raises(TerminalError, match="the batch failed"):
                run_apply(config, applier=SignalledInBatch(config, storage=lake.storage))
        else:
            run_apply(config, applier=SignalledInBatch(config, storage=lake.storage))
    said = [r.getMessage() for r in caplog.records if "stopped by" in r.getMessage()]
    assert said == (
        [] if fails else [f"apply {TABLE}: stopped by SIGTERM (every batch it began is committed)"]
    )
