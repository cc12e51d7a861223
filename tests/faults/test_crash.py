"""SIGKILL at random instants of capture, load, apply and sync — real ``ddblake`` processes — then
restart: the dump equals a Scan and the history holds every stream event exactly once.

Each trial has its own seed (``DDBLAKE_VERIFY_SEED`` and the trial's index): the workload, how many
times the process is killed, and each kill instant (a random delay, or the moment a random number of
new files has appeared) all come from it, so a failing trial is replayed by its seed.
``DDBLAKE_VERIFY_TRIALS`` sets the trials per stage (1 under ``make test``; ``make verify`` runs 13
per stage: 52 crash trials here, 13 more in test_export_crash.py).
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultlib import (
    DDBLAKE,
    Verdict,
    check_lake,
    compare_history,
    compare_items,
    dump_lake,
    history_rows,
    kill_at_random_instant,
    load_argv,
    merge,
    no_traceback,
    quiet_env,
    record,
    run,
    start,
    strength,
    trial_seed,
)
from workload import Workload, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.capture.service import CaptureConfig, run_capture
from ddblake.lake.storage import Storage

pytestmark = [pytest.mark.faults, pytest.mark.functional]

TRIALS = strength("trials", 1)


def workload(clients: DynamoClients, table: str, seed: int) -> Workload:
    """The crash trials' workload: hot keys, TTL-style deletes, type conflicts, now and then a big item."""
    return Workload(
        clients, table, seed, keys=30, hot_keys=3, ttl_rate=0.04, conflict_rate=0.05, big_rate=0.01
    )


@dataclass
class Trial:
    """One crash trial's seed, randomness, DynamoDB Local table, lake and workload."""

    seed: int
    rng: random.Random
    table: str
    lake: str
    storage: Storage
    work: Workload

    @classmethod
    def start(cls, stage: str, trial: int, clients: DynamoClients, table: str, tmp_path: Path) -> Trial:
        seed = trial_seed(stage, trial)
        lake = str(tmp_path / "lake")
        return cls(
            seed, random.Random(seed), table, lake, Storage.from_uri(lake), workload(clients, table, seed)
        )


def files(storage: Storage, prefix: str) -> Callable[[], int]:
    return lambda: len(storage.list_files(prefix))


def finish(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = run(argv, env)
    assert done.returncode == 0, f"{what} after the crashes failed: {done.stderr[-3000:]}"
    no_traceback(done.stderr)


class Kills:
    """SIGKILLs of a trial that hit its process mid-run."""

    count = 0

    def kill(self, proc: Any, rng: random.Random, counter: Callable[[], int], **plan: Any) -> None:
        """Kill ``proc`` at a random instant (see ``kill_at_random_instant``) and count a hit."""
        killed, _plan, err = kill_at_random_instant(proc, rng, counter=counter, **plan)
        no_traceback(err)
        self.count += killed


def cycles(rng: random.Random, kills: Kills) -> Iterator[int]:
    """One to three kill cycles; more (up to four) while none has yet hit the process mid-run, so every
    trial is a crash trial. Yields the cycle's number."""
    planned = rng.randrange(1, 4)
    cycle = 0
    while cycle < planned or (kills.count == 0 and cycle < planned + 4):
        yield cycle
        cycle += 1


def load_rows_verdict(ids: list[str], items: int) -> Verdict:
    """One row per item for the load that finished, none twice.

    Load row IDs are ``load-<load id>-<key digest>`` (``export-<export id>-...``): a resumed load
    repeats its IDs, so the history holds each once. A kill that lands after a load finished, just
    before its process exits, makes the final run a second, whole load: rows of two loads, each
    complete, is right. So per load: no more rows than items (more is a row for an item the table
    does not hold), and the most complete load has them all (fewer is a loss).
    """
    history = compare_history(ids, set(ids))
    per_load = Counter(i.rsplit("-", 1)[0] for i in set(ids))
    most = max(per_load.values(), default=0)
    history.lost += max(0, items - most)
    history.duplicated += sum(max(0, n - items) for n in per_load.values())
    if most != items or any(n > items for n in per_load.values()):
        history.details.append(f"load rows per load {dict(per_load)} in the history for {items} items")
    return history


def verdict_or_fail(test: str, kills: int, verdict: Verdict, **extra: object) -> None:
    record(test, trials=1, faults=kills, verdict=verdict, **extra)
    assert verdict.ok, str(verdict)
    # A trial whose process always finished before its kill tested no crash at all.
    assert kills > 0, f"{test}: no kill landed while the process ran ({extra}); not a crash trial"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_capture_killed_at_random_instants(
    trial: int,
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    t = Trial.start("capture", trial, clients, make_table(table_name), tmp_path)
    seed, rng, table, lake, storage, work = t.seed, t.rng, t.table, t.lake, t.storage, t.work
    work.run(rng.randrange(20, 60))
    kills = Kills()
    for _ in cycles(rng, kills):
        buffer = rng.choice(["1500", "6000", "60000"])
        argv = [
            str(DDBLAKE),
            "capture",
            "--table",
            table,
            "--lake",
            lake,
            "--endpoint-url",
            dynamodb_local_endpoint,
        ]
        proc = start([*argv, "--buffer-bytes", buffer, "--buffer-seconds", "0.2"])
        work.run(rng.randrange(5, 30))  # changes while capture runs
        kills.kill(proc, rng, counter=files(storage, f"raw/{table}"), delay=(0.0, 2.0))
    finish([*argv, "--once"], "capture --once")
    finish([str(DDBLAKE), "apply", "--table", table, "--lake", lake, "--once"], "apply --once")
    verdict_or_fail("crash/capture", kills.count, check_lake(clients, table, lake), seed=seed)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_apply_killed_at_random_instants(
    trial: int,
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    t = Trial.start("apply", trial, clients, make_table(table_name), tmp_path)
    seed, rng, table, lake, storage, work = t.seed, t.rng, t.table, t.lake, t.storage, t.work
    capture = CaptureConfig.build(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, once=True)
    argv = [str(DDBLAKE), "apply", "--table", table, "--lake", lake, "--once"]
    kills = Kills()
    for _ in cycles(rng, kills):
        work.run(rng.randrange(20, 60))
        # many small raw files, applied a few per commit: many commits to land a kill between
        run_capture(
            CaptureConfig(**{**capture.__dict__, "buffer_bytes": rng.choice([1500, 4000])}), clients=clients
        )
        env = quiet_env(DDBLAKE_APPLY_MAX_FILES=str(rng.randrange(1, 4)))
        proc = start(argv, env)
        kills.kill(proc, rng, counter=files(storage, f"state/apply/{table}"), delay=(0.3, 3.0), steps=(1, 6))
    finish(argv, "apply --once")
    verdict_or_fail("crash/apply", kills.count, check_lake(clients, table, lake), seed=seed)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_sync_killed_at_random_instants(
    trial: int,
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    t = Trial.start("sync", trial, clients, make_table(table_name), tmp_path)
    seed, rng, table, lake, storage, work = t.seed, t.rng, t.table, t.lake, t.storage, t.work
    # Items before the first sync, so that sync starts with a full load (slowed down: 20 RCU) and
    # the workload changes items while it runs — the load-to-stream hand-off under fire.
    work.run(rng.randrange(0, 120))
    env = quiet_env(DDBLAKE_ON_DEMAND_RCU="20")
    argv = [str(DDBLAKE), "sync", "--table", table, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]
    kills = Kills()
    for _ in cycles(rng, kills):
        proc = start(argv, env)
        work.run(rng.randrange(10, 50))  # the writer's pace: sync is somewhere in capture or apply
        watch = rng.choice([f"raw/{table}", f"state/apply/{table}"])
        kills.kill(proc, rng, counter=files(storage, watch), delay=(0.0, 2.0))
    finish([*argv, "--once"], "sync --once", env)
    verdict_or_fail("crash/sync", kills.count, check_lake(clients, table, lake), seed=seed)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_load_killed_at_random_instants(
    trial: int,
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    t = Trial.start("load", trial, clients, make_table(table_name, stream=False), tmp_path)
    seed, rng, table, lake, storage, work = t.seed, t.rng, t.table, t.lake, t.storage, t.work
    count = rng.randrange(300, 800)
    for start_at in range(0, count, 25):
        keys = [(f"p{i % 17}", f"s{i}") for i in range(start_at, min(count, start_at + 25))]
        # padded to about 1 KB an item, so that a 20 RCU load takes seconds (a window to kill it in)
        requests: list[object] = [
            {"PutRequest": {"Item": {**work.item(k), "pad": {"S": "p" * 1000}}}} for k in keys
        ]
        clients.dynamodb.batch_write_item(RequestItems={table: requests})  # type: ignore[dict-item]
    work.run(rng.randrange(0, 20))  # some big items, TTL-style deletes, conflicts too
    argv = [
        *load_argv(),
        "--table",
        table,
        "--lake",
        lake,
        "--endpoint-url",
        dynamodb_local_endpoint,
        "--segments",
        str(rng.randrange(2, 9)),
        "--workers",
        str(rng.randrange(1, 4)),
    ]
    # a slow load (20 RCU assumed) in small files, so a kill finds it mid-way
    env = quiet_env(DDBLAKE_ON_DEMAND_RCU="20", DDBLAKE_LOAD_BUFFER_BYTES=str(rng.choice([3000, 12000])))
    kills = Kills()
    for cycle in cycles(rng, kills):
        proc = start(argv, env)
        kills.kill(
            proc, rng, counter=files(storage, f"raw/{table}"), delay=(0.5, 4.0 / (cycle + 1)), steps=(1, 8)
        )
        if not kills.count and proc.returncode == 0:  # the load finished first: a new load, killed sooner
            shutil.rmtree(lake)
    finished = run(argv, env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    finish([str(DDBLAKE), "apply", "--table", table, "--lake", lake, "--once"], "apply --once")
    source = scan_items(clients, table)
    ids = [r["event_id"] for r in history_rows(lake, table)]
    # one load row per item (its ID is deterministic per load and key), none twice
    history = load_rows_verdict(ids, len(source))
    items = compare_items(source, dump_lake(lake, table))
    verdict_or_fail("crash/load", kills.count, merge(items, history), seed=seed)
