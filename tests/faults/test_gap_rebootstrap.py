"""Records lost before capture read them stop ``sync`` with one clear line naming the table and the
way out; ``--rebootstrap`` then makes the lake equal to the table again.

The gap is a real one on DynamoDB Local: the table's stream is disabled, the table changes (those
changes are in no stream), the stream is enabled again. Items deleted, changed and created during
the gap must all come out right after the re-bootstrap.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import stream_event_ids
from faultlib import (
    DDBLAKE,
    check_lake,
    kill_at_random_instant,
    no_traceback,
    quiet_env,
    record,
    run,
    start,
    strength,
    trial_seed,
    wait_for,
)
from workload import Workload

from ddblake.aws.clients import DynamoClients
from ddblake.capture.config import CaptureConfig
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.storage import Storage
from ddblake.rebootstrap import marker_path
from ddblake.sync import SyncConfig, run_sync

pytestmark = [pytest.mark.faults, pytest.mark.functional]

TRIALS = strength("gap_trials", 1)


def sync_once(table: str, lake: str, endpoint: str) -> None:
    capture = CaptureConfig.build(table=table, lake=lake, endpoint_url=endpoint, once=True)
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    run_sync(SyncConfig(capture=capture, apply=apply))


def rebootstrap_argv(table: str, lake: str, endpoint: str) -> list[str]:
    """``ddblake sync --rebootstrap --once``, as a person runs it."""
    return [
        str(DDBLAKE),
        "sync",
        "--rebootstrap",
        "--once",
        "--table",
        table,
        "--lake",
        lake,
        "--endpoint-url",
        endpoint,
    ]


def make_gap(clients: DynamoClients, table: str, work: Workload, rng: random.Random) -> None:
    """Changes that reach no stream: the stream is off while they happen."""
    clients.dynamodb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    work.run(rng.randrange(20, 60))
    clients.dynamodb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )


@pytest.mark.long(90)
@pytest.mark.parametrize("trial", range(TRIALS))
def test_gap_stops_sync_with_one_line_and_rebootstrap_ends_equal_to_the_source(
    trial: int,
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    """Gap → one clear line → re-bootstrap, SIGKILLed once at a random instant after it pinned its
    positions → ``sync`` refuses while it is unfinished → re-bootstrap again → dump equals Scan."""
    seed = trial_seed("gap", trial)
    rng = random.Random(seed)
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    work = Workload(clients, table, seed, keys=30, hot_keys=2, ttl_rate=0.05)
    work.run(rng.randrange(40, 100))
    sync = [str(DDBLAKE), "sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]
    first = run([*sync, "--once"])
    assert first.returncode == 0, first.stderr
    old_stream = stream_event_ids(clients, table)

    make_gap(clients, table, work, rng)
    work.run(rng.randrange(10, 40))  # on the new stream, before anyone notices

    stopped = run([*sync, "--once"])
    assert stopped.returncode == 1
    errors = [line for line in stopped.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ddblake: error: stream gap"), stopped.stderr
    assert table in errors[0] and "--rebootstrap" in errors[0] and "Traceback" not in stopped.stderr

    work.run(rng.randrange(0, 20))
    argv = rebootstrap_argv(table, lake, dynamodb_local_endpoint)
    # The load is slowed down (20 RCU assumed), so there is a window to kill it in.
    env = quiet_env(DDBLAKE_ON_DEMAND_RCU="20", DDBLAKE_LOAD_BUFFER_BYTES="2000")
    proc = start(argv, env)

    def pinned() -> bool:
        data = storage.read(marker_path(table))
        return data is not None and b"load_start_us" in data

    wait_for(
        lambda: pinned() or proc.poll() is not None, "the re-bootstrap to pin its positions", timeout=150
    )
    killed, _plan, err = kill_at_random_instant(
        proc, rng, counter=lambda: len(storage.list_files(f"raw/{table}")), delay=(0.0, 1.5)
    )
    no_traceback(err)
    if storage.read(marker_path(table)) is not None:  # killed before the re-bootstrap finished
        refused = run([*sync, "--once"])
        assert refused.returncode == 1 and "did not finish" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and table in refused.stderr
        again = run(argv, env)
        assert again.returncode == 0, again.stderr
    assert storage.read(marker_path(table)) is None
    synced = run([*sync, "--once"])
    assert synced.returncode == 0, synced.stderr

    work.run(rng.randrange(10, 40))  # and the lake keeps up afterwards
    after = run([*sync, "--once"])
    assert after.returncode == 0, after.stderr
    # Every event of both streams once (load rows and re-bootstrap deletes never twice).
    verdict = check_lake(clients, table, lake, stream_ids=old_stream + stream_event_ids(clients, table))
    record("gap/rebootstrap", faults=1 + killed, verdict=verdict, seed=seed)
    assert verdict.ok, str(verdict)


def test_the_load_starts_late_enough_to_outrank_everything_the_lake_holds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ddblake.load.rows import version_time_from_us
    from ddblake.rebootstrap import wait_until_loads_rank_above

    now = [125_000_000]  # 0:02:05
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += int(seconds * 1e6)

    newest = 120_000_000  # a change stamped 0:02:00 is in the lake
    caplog.set_level(logging.INFO, logger="ddblake.rebootstrap")
    t0 = wait_until_loads_rank_above(newest, version_time_from_us, clock=lambda: now[0], sleep=sleep)
    said = re.search(r"waiting about (\d+) s \(until (\S+) UTC\)", caplog.text)
    assert said, caplog.text  # a pause of a minute or more says how long it will be
    assert abs(int(said.group(1)) - (t0 - 125_000_000) / 1e6) <= 1
    assert said.group(2) == time.strftime("%H:%M:%S", time.gmtime(t0 / 1e6))
    assert version_time_from_us(t0) > newest >= version_time_from_us(t0 - 1_000_000), (
        "waited no longer than needed"
    )
    assert slept and all(0 < s <= 1.001 for s in slept)
    # nothing newer than what a load started now would outrank, or an empty lake: no wait
    slept.clear()
    assert wait_until_loads_rank_above(None, version_time_from_us, clock=lambda: 7, sleep=sleep) == 7
    old = version_time_from_us(now[0]) - 1
    assert wait_until_loads_rank_above(old, version_time_from_us, clock=lambda: now[0], sleep=sleep) == now[0]
    assert not slept
