"""Two applies on one table at once — two processes on one file lake and SQLite catalog, or two
threads with their own catalogs — leave correct tables: the dump equals what the changes say, every
event is in the history exactly once, and the one that loses a commit race retries or exits cleanly.
"""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from faultlib import (
    DDBLAKE,
    Verdict,
    compare_history,
    merge,
    no_traceback,
    quiet_env,
    record,
    start,
    strength,
    trial_seed,
)

from ddblake.changes.model import ChangeEvent
from ddblake.changes.resolve import key_string, version_of
from ddblake.errors import DdblakeError
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import dump_items
from ddblake.lake.service import run_apply
from ddblake.lake.storage import Storage
from ddblake.names import changes_identifier

pytestmark = [pytest.mark.faults]

TABLE = "race-table"
BASE_US = 1_795_000_000_000_000
TRIALS = strength("trials", 1)


def random_events(rng: random.Random, count: int) -> list[ChangeEvent]:
    events = []
    for _ in range(count):
        op = rng.choice(["INSERT", "MODIFY", "MODIFY", "REMOVE"])
        pk = f"k{rng.randrange(30)}"
        keys = {"pk": {"S": pk}}
        t = rng.randrange(0, 10_000)
        image = {
            **keys,
            rng.choice(["n", "s", "m"]): rng.choice([{"N": str(t)}, {"S": "x" * (t % 7)}, {"M": {}}]),
        }
        events.append(
            ChangeEvent(
                op=op,  # type: ignore[arg-type]
                table=TABLE,
                keys=keys,
                new_image=None if op == "REMOVE" else image,
                old_image=None,
                event_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                event_time_us=BASE_US + t * 1000,
                sequence=str(t + 1),
                source="streams",
                ttl=False,
                ingested_us=BASE_US,
            )
        )
    return events


def write_files(storage: Storage, events: list[ChangeEvent], rng: random.Random) -> None:
    while events:
        size = rng.randrange(1, 12)
        writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 40, buffer_seconds=1e9)
        for ev in events[:size] + rng.sample(events[:size], rng.randrange(0, 2)):  # some repeats
            writer.add(ev.to_line())
        writer.flush()
        events = events[size:]


def verdict(lake: str, events: list[ChangeEvent]) -> Verdict:
    best: dict[str, ChangeEvent] = {}
    for ev in events:
        key = key_string(ev.keys)
        if key not in best or version_of(ev) > version_of(best[key]):
            best[key] = ev
    expected = {ev.keys["pk"]["S"]: ev.new_image for ev in best.values() if ev.op != "REMOVE"}
    config = LakeConfig.build(lake=lake)
    catalog = open_catalog(config, config.storage())
    import json

    got = {(item := json.loads(line)["Item"])["pk"]["S"]: item for line in dump_items(catalog, "ddb", TABLE)}
    v = Verdict()
    for key in set(expected) | set(got):
        if expected.get(key) != got.get(key):
            v.mismatches += 1
            v.details.append(f"item {key}")
    hist = catalog.load_table(f"ddb.{changes_identifier(TABLE)}")
    ids = hist.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()
    return merge(v, compare_history(ids, {ev.event_id for ev in events}))


@pytest.mark.long(40)
@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_apply_processes_at_once(trial: int, tmp_path: Path) -> None:
    seed = trial_seed("race-processes", trial)
    rng = random.Random(seed)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    events: list[ChangeEvent] = []
    races = 0
    for _ in range(rng.randrange(2, 4)):
        batch = random_events(rng, rng.randrange(30, 120))
        events += batch
        write_files(storage, batch, rng)
        argv = [str(DDBLAKE), "apply", "--table", TABLE, "--lake", lake, "--once"]
        procs = [start(argv, quiet_env(DDBLAKE_APPLY_MAX_FILES=str(rng.randrange(1, 6)))) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            text = err.decode()
            no_traceback(text)
            # the loser retries; should it give up, it says so in one line and exits 1 (never by
            # taking the table the winner just created for another catalog's: test_new_table_race.py)
            assert proc.returncode == 0 or (proc.returncode == 1 and text.count("ddblake: error:") == 1), text
            assert "is not in the catalog this command uses" not in text, text
            races += proc.returncode != 0
        races += 1
    finish = start([str(DDBLAKE), "apply", "--table", TABLE, "--lake", lake, "--once"])
    _, err = finish.communicate(timeout=300)
    assert finish.returncode == 0, err.decode()
    v = verdict(lake, events)
    record("race/processes", faults=races, verdict=v, seed=seed)
    assert v.ok, str(v)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_apply_threads_at_once(trial: int, tmp_path: Path) -> None:
    seed = trial_seed("race-threads", trial)
    rng = random.Random(seed)
    lake = str(tmp_path / "lake")
    storage = Storage.from_uri(lake)
    events = random_events(rng, rng.randrange(60, 200))
    write_files(storage, events, rng)
    config = ApplyConfig.build(
        table=TABLE, lake=LakeConfig.build(lake=lake), once=True, max_files=rng.randrange(1, 5)
    )
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def apply() -> None:
        try:
            barrier.wait(timeout=60)
            run_apply(config)
        except DdblakeError as e:  # a clean give-up is allowed; anything else is not
            errors.append(e)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "an apply still running after 10 minutes"
    unexpected = [e for e in errors if not isinstance(e, DdblakeError)]
    assert not unexpected, f"{type(unexpected[0]).__name__}: {unexpected[0]}"
    run_apply(config)
    v = verdict(lake, events)
    extra: dict[str, Any] = {"gave_up": len(errors)}
    record("race/threads", faults=1, verdict=v, seed=seed, **extra)
    assert v.ok, str(v)


def test_two_applies_opening_a_new_lakes_catalog_at_once(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    for attempt in range(10):
        lake = LakeConfig.build(lake=str(tmp_path / f"lake-{attempt}"))
        barrier = threading.Barrier(2)

        def open_it(lake: LakeConfig = lake, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=60)
                open_catalog(lake, lake.storage())
            except BaseException as e:  # noqa: BLE001 - collected for the assertion
                failures.append(e)

        threads = [threading.Thread(target=open_it) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not failures, f"{type(failures[0]).__name__}: {str(failures[0]).splitlines()[0]}"
