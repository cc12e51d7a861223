"""Random workloads, each with its own seed and mix: ``ddblake dump`` equals a Scan, the history
holds every stream event once, and TTL-style deletes are recorded as TTL expiries and applied.

``DDBLAKE_VERIFY_WORKLOADS`` sets how many (2 under ``make test``, 20 or more under ``make verify``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import stream_event_ids
from faultlib import (
    DDBLAKE,
    Verdict,
    check_lake,
    compare_items,
    history_rows,
    merge,
    record,
    run,
    strength,
    trial_seed,
)
from workload import TtlStreams, Workload, dump_to_items, scan_items

from ddblake.aws.clients import DynamoClients
from ddblake.capture.config import CaptureConfig
from ddblake.lake.apply import ApplyConfig
from ddblake.lake.catalog import LakeConfig
from ddblake.sync import SyncConfig, run_sync

pytestmark = [pytest.mark.faults, pytest.mark.functional]

WORKLOADS = strength("workloads", 2)


@pytest.mark.parametrize("index", range(WORKLOADS))
def test_random_workload_lands_exactly(
    index: int,
    clients: DynamoClients,
    make_table: Callable[..., str],
    table_name: str,
    dynamodb_local_endpoint: str,
    tmp_path: Path,
) -> None:
    seed = trial_seed("workload", index)
    rng = random.Random(seed)
    table = make_table(table_name)
    lake = str(tmp_path / "lake")
    work = Workload(
        clients,
        table,
        seed,
        keys=rng.choice([10, 40, 120]),
        hot_keys=rng.randrange(0, 5),
        hot_share=rng.uniform(0.2, 0.8),
        ttl_rate=rng.uniform(0.0, 0.1),
        conflict_rate=rng.uniform(0.0, 0.1),
        big_rate=rng.choice([0.0, 0.005, 0.02]),
    )
    streams = TtlStreams(clients.streams)
    ttl_clients = DynamoClients(dynamodb=clients.dynamodb, streams=streams)
    capture = CaptureConfig.build(table=table, lake=lake, endpoint_url=dynamodb_local_endpoint, once=True)
    capture = CaptureConfig(**{**capture.__dict__, "buffer_bytes": rng.choice([4000, 64000, 5 << 20])})
    apply = ApplyConfig.build(table=table, lake=LakeConfig.build(lake=lake), once=True)
    counts: dict[str, int] = {}
    for _ in range(rng.randrange(1, 4)):
        for kind, n in work.run(rng.randrange(40, 160)).items():
            counts[kind] = counts.get(kind, 0) + n
        run_sync(SyncConfig(capture=capture, apply=apply), clients=ttl_clients)

    verdict = check_lake(clients, table, lake)
    # the command line's dump is the same as the oracle's in-process one
    dumped = run([str(DDBLAKE), "dump", "--table", table, "--lake", lake])
    assert dumped.returncode == 0, dumped.stderr
    verdict = merge(
        verdict, compare_items(scan_items(clients, table), dump_to_items(dumped.stdout.splitlines()))
    )
    # TTL-style deletes: recorded as TTL expiries (ttl=true), every other change not
    removes = {
        r["event_id"]: r["ttl"]
        for r in history_rows(lake, table, ("event_id", "op", "ttl"))
        if r["op"] == "REMOVE"
    }
    marked = set(streams.marked)
    wrong = [e for e, ttl in removes.items() if ttl != (e in marked)]
    ttl = Verdict(mismatches=len(wrong), details=[f"REMOVE {e} has the wrong ttl flag" for e in wrong[:3]])
    assert marked <= set(removes), "every TTL expiry is in the history"
    assert len(marked) == work.ttl_deletes
    verdict = merge(verdict, ttl)
    record(
        "workload",
        verdict=verdict,
        seed=seed,
        events=len(stream_event_ids(clients, table)),
        ttl=len(marked),
        big=work.big_items,
        mix=json.dumps(counts, sort_keys=True),
    )
    assert verdict.ok, str(verdict)
