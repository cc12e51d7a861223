"""Benchmark: the cost of one idle poll of a continuous ``apply`` (or ``sync``) as the raw log grows.

``sync`` and continuous ``apply`` poll every second or so. Before ``ddblake.lake.listing``, each
poll listed the whole raw log and checked every file name against both applied-file records, so
an idle table cost more CPU every hour the log grew (a day of busy capture is hundreds of
thousands of files). Now a poll lists only the recent hour folders between full listings (every
5 minutes) and skips the checks when neither the listing nor the records changed.

Side by side in one process, on one lake of ``--files`` applied raw files spread over past days'
hour folders (one change each), alternating ``--polls`` idle polls of each:

* ``ddblake``: ``Applier.run_batch`` as it ships, between full listings;
* ``full_listing``: the same applier made to list the whole log and check every name at every
  poll (the behaviour before), by listing from an unbounded threshold and forgetting the idle state.

Usage: ``python bench/idle.py [--quick] [--files N] [--polls P]``. The last line printed is one
JSON object: ``"bench": "idle"``, ``ratio`` (median seconds per poll, full listing over ddblake;
above 1 means ddblake's idle poll is cheaper), and each side's median milliseconds per poll.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ddblake.changes.model import ChangeEvent
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.listing import RawListing
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.storage import Storage

TABLE = "idle-table"


def _event(i: int, now_us: int) -> ChangeEvent:
    image = {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}
    return ChangeEvent(
        op="INSERT",
        table=TABLE,
        keys={"pk": {"S": f"k{i}"}},
        new_image=image,
        old_image=None,
        event_id=f"e{i}",
        event_time_us=now_us - 3 * 86_400_000_000 + i,
        sequence=None,
        source="streams",
        ttl=False,
        ingested_us=now_us,
    )


def build(root: Path, files: int) -> Applier:
    """A lake of ``files`` raw files over the last three days' hour folders, all applied."""
    storage = Storage.from_uri(str(root))
    now = time.time()
    now_us = int(now * 1_000_000)
    start = now - 3 * 86_400
    for i in range(files):
        when = start + i * (3 * 86_400 - 7_200) / files  # up to two hours ago
        writer = RawLogWriter(
            storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600, clock=lambda w=when: w
        )
        writer.add(_event(i, now_us).to_line())
        writer.flush()
    config = ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(root)), once=False)
    applier = Applier(config, storage=storage)
    applier.run_once()
    return applier


def poll_seconds(applier: Applier, full: bool) -> float:
    """One idle poll; ``full``: as before ``ddblake.lake.listing`` (whole listing, every check)."""
    if full:
        applier._idle = None  # noqa: SLF001  (the baseline is the applier without its idle state)
    started = time.perf_counter()
    result, _ = applier.run_batch()
    took = time.perf_counter() - started
    assert result.events == 0, "an idle poll applied something"
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 files, 20 polls a side")
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--polls", type=int, default=None)
    args = parser.parse_args()
    files = args.files or (10_000 if args.quick else 50_000)
    polls = args.polls or (20 if args.quick else 40)
    work = Path(tempfile.mkdtemp(prefix="ddblake-bench-idle-"))
    try:
        started = time.perf_counter()
        applier = build(work / "lake", files)
        print(f"lake of {files:,} applied raw files built in {time.perf_counter() - started:.1f} s")
        shipped = applier.listing
        baseline = RawListing(applier.storage, TABLE, incremental_from=sys.maxsize)
        times: dict[str, list[float]] = {"ddblake": [], "full_listing": []}
        applier.listing = shipped
        poll_seconds(applier, full=False)  # its first full listing and idle state
        for _ in range(polls):
            applier.listing = shipped
            times["ddblake"].append(poll_seconds(applier, full=False))
            applier.listing = baseline
            times["full_listing"].append(poll_seconds(applier, full=True))
            applier._idle = None  # noqa: SLF001  (ddblake's next poll starts from its own listing)
            applier.listing = shipped
            poll_seconds(applier, full=False)
        ms = {side: statistics.median(t) * 1000 for side, t in times.items()}
        for side, value in ms.items():
            print(f"{side}: {value:.2f} ms per idle poll (median of {polls})")
        summary = {
            "bench": "idle",
            "files": files,
            "polls": polls,
            "ddblake_ms": round(ms["ddblake"], 3),
            "full_listing_ms": round(ms["full_listing"], 3),
            "ratio": round(ms["full_listing"] / ms["ddblake"], 2),
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
