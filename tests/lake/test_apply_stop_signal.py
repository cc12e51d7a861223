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


def test_the_first_signal_is_said_at_once_and_a_second_stops_mid_batch(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    """A load's batch can take minutes: the operator hears the stop at once, and can insist."""
    import logging
    import os

    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.options import ApplyResult
    from ddblake.lake.service import run_apply
    from ddblake.signals import Terminated

    lake.write([event("INSERT", "a", 1)])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=False)
    said_before_second: list[str] = []

    class SignalledTwice(Applier):
        def run_batch(self) -> tuple[ApplyResult, bool]:
            os.kill(os.getpid(), signal.SIGTERM)  # first: stop after this batch, said now
            said_before_second.extend(r.getMessage() for r in caplog.records)
            os.kill(os.getpid(), signal.SIGTERM)  # second: the user insists
            raise AssertionError("the second signal did not stop the batch")

    before = signal.getsignal(signal.SIGTERM)
    with caplog.at_level(logging.INFO, logger="ddblake"), pytest.raises(Terminated) as stopped:
        run_apply(config, applier=SignalledTwice(config, storage=lake.storage))
    assert stopped.value.code == 128 + signal.SIGTERM
    first = f"apply {TABLE}: SIGTERM received; stopping after the batch in progress"
    assert f"{first} (a second signal stops at once)" in said_before_second
    assert signal.getsignal(signal.SIGTERM) is before, "the handler is put back"
    assert lake.apply().events == 1, "nothing was half applied: a rerun applies the batch"


def test_continuous_apply_warns_of_quarantined_records_when_it_sets_them_aside(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    """At WARNING (an unattended run's level) a bad record is heard of when it happens."""
    import logging
    import threading

    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.options import ApplyResult
    from ddblake.lake.service import run_apply

    lake.write([event("INSERT", "a", 1)], lines=[b"not a raw line\n"])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=False)
    stop = threading.Event()

    class OneBatch(Applier):
        def run_batch(self) -> tuple[ApplyResult, bool]:
            stop.set()  # continuous apply, ended after this batch
            return super().run_batch()

    with caplog.at_level(logging.WARNING, logger="ddblake"):
        total = run_apply(config, applier=OneBatch(config, storage=lake.storage), stop=stop)
    assert total.quarantined == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        f"table {TABLE}: 1 record(s) quarantined under {lake.storage.root}/errors/{TABLE}/apply/, "
        "with reasons"
    ]
