"""A deadline (the apply Lambda's timeout) bounds an ``apply --once``: no batch starts that might
not finish in time, and the next run goes on from there, exactly once."""

from __future__ import annotations

import time

from lake_helpers import Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.lake.apply import Applier, ApplyConfig, ApplyResult
from ddblake.lake.service import run_apply


def test_a_run_out_of_time_stops_between_batches_and_the_next_goes_on(lake: Lake) -> None:
    for i in range(4):
        lake.write([event("INSERT", f"k{i}", i, image={"v": {"N": str(i)}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=True, max_files=1)
    first = run_apply(config, applier=Applier(config, storage=lake.storage), deadline=time.monotonic())
    assert first.files == 1  # one batch always runs: a run makes progress however short its time
    assert len(lake.dump()) == 1

    roomy = time.monotonic() + 3600
    rest = run_apply(config, applier=Applier(config, storage=lake.storage), deadline=roomy)
    assert rest.files == 3
    assert sorted(lake.dump()) == ["k0", "k1", "k2", "k3"]
    assert len(lake.history()) == 4


def test_no_batch_starts_within_the_last_30_seconds(lake: Lake) -> None:
    """The reserve itself: 20 s left is too little for another batch however fast batches are,
    300 s is plenty for these (a batch here takes well under a second)."""
    for i in range(3):
        lake.write([event("INSERT", f"k{i}", i, image={"v": {"N": str(i)}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=True, max_files=1)
    short = run_apply(config, applier=Applier(config, storage=lake.storage), deadline=time.monotonic() + 20)
    assert short.files == 1
    rest = run_apply(config, applier=Applier(config, storage=lake.storage), deadline=time.monotonic() + 300)
    assert rest.files == 2
    assert sorted(lake.dump()) == ["k0", "k1", "k2"]


def test_a_stop_ends_a_backlog_between_batches_and_the_next_run_goes_on(lake: Lake) -> None:
    """SIGINT/SIGTERM set ``stop``: a polling apply with a load's backlog stops after the batch it
    is in, not hours later, and a rerun applies the rest exactly once."""
    import threading

    for i in range(5):
        lake.write([event("INSERT", f"k{i}", i, image={"v": {"N": str(i)}})])
    config = ApplyConfig.build(table="orders-table", lake=lake.config, once=False, max_files=1)
    stop = threading.Event()

    class StopsAfterTwo(Applier):
        def run_batch(self) -> tuple[ApplyResult, bool]:
            outcome = super().run_batch()
            if outcome[0].files and len(lake.dump()) == 2:
                stop.set()  # what the signal handler does
            return outcome

    stopped = run_apply(config, applier=StopsAfterTwo(config, storage=lake.storage), stop=stop)
    assert stopped.files == 2 and sorted(lake.dump()) == ["k0", "k1"]
    once = ApplyConfig.build(table="orders-table", lake=lake.config, once=True, max_files=1)
    rest = run_apply(once, applier=Applier(once, storage=lake.storage))
    assert rest.files == 3 and sorted(lake.dump()) == ["k0", "k1", "k2", "k3", "k4"]
    assert len(lake.history()) == 5
