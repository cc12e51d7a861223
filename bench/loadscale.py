"""Benchmark: applying a large load batch by batch — does a batch's cost grow with the table?

A full load arrives as many apply batches of new keys with random hashes (200,000 events each by
default, ``DDBLAKE_APPLY_MAX_EVENTS``). Side by side in one run, on this machine: the same
``--rows`` load lines applied by ``Applier`` batch after batch, once with ddblake's file layout
(``lake.files``: new keys go to a small open file or new files, merged into the bucket's base now
and then) and once as one file per bucket (every file "open": each batch rewrites every bucket
whole — what a batch of random new keys cost when it had to rewrite every file its hashes fell
in). Each batch's current-state work (lookup and commit) and history commit are timed on their own.
A third run repeats the first with the history's duplicate screen (``ddblake.lake.seen``) off, so
that every batch reads the event IDs of all earlier rows of the load, as before the screen.

What it shows: with ddblake's layout the current-state time per batch stays about flat as the
table grows, so a load costs linear time; rewriting whole buckets it grows with the table, so a
load costs quadratic time. Likewise the history's time per batch stays flat with the screen and
grows with the load without it.

Usage: ``python bench/loadscale.py [--quick] [--rows N] [--batch N]``. The last line printed is
one JSON object: ``"bench": "loadscale"``, ``growth_files`` and ``growth_bucket`` (each layout's
last-batch current-state seconds over its second batch's), ``ratio`` (whole-bucket over ddblake
total current-state seconds), ``history_growth_files`` and ``history_growth_files_plain_dedup``
(the same for the history commit, with and without the screen), ``history_ratio`` (history
seconds without the screen over with it), per-batch seconds, and totals.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Items, raw_line, write_raw  # noqa: E402

from ddblake.lake import apply as apply_module  # noqa: E402
from ddblake.lake import files, seen  # noqa: E402
from ddblake.lake.catalog import LakeConfig  # noqa: E402
from ddblake.lake.storage import Storage  # noqa: E402

TABLE = "loadscale-table"
LOAD_US = 1_764_316_800_000_000


def run(work: Path, lines: list[bytes], target_bytes: int, batch: int, screen: bool = True) -> dict[str, Any]:
    """Apply the load lines batch by batch with files of ``target_bytes``; per-batch timings.

    ``screen=False`` turns off the history's duplicate screen (``ddblake.lake.seen``): every batch
    then reads the event IDs of all history rows at the load's event time, as before the screen.
    """
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    write_raw(Storage.from_uri(str(lake)), TABLE, lines, 50_000, level=1)
    applier_class = apply_module.Applier
    saved = files.TARGET_FILE_BYTES
    originals = {
        name: getattr(applier_class, name) for name in ("_commit_current", "_lookup", "_commit_history")
    }
    saved_screen = seen.screen
    spent = {"current": 0.0, "history": 0.0}
    current: list[float] = []
    history: list[float] = []

    def timed(name: str, phase: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - started

        return wrapper

    files.TARGET_FILE_BYTES = target_bytes
    applier_class._commit_current = timed("_commit_current", "current")  # type: ignore[method-assign]
    applier_class._lookup = timed("_lookup", "current")  # type: ignore[method-assign]
    applier_class._commit_history = timed("_commit_history", "history")  # type: ignore[method-assign]
    if not screen:
        seen.screen = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        config = apply_module.ApplyConfig.build(
            table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True, max_events=batch
        )
        applier = applier_class(config)
        started = time.perf_counter()
        rewritten = 0
        more = True
        while more:
            spent.update(current=0.0, history=0.0)
            result, more = applier.run_batch()
            rewritten += result.files_rewritten
            current.append(spent["current"])
            history.append(spent["history"])
            print(
                f"  batch {len(current)}: current state {current[-1]:.2f} s, history {history[-1]:.2f} s",
                flush=True,
            )
        total = time.perf_counter() - started
    finally:
        files.TARGET_FILE_BYTES = saved
        for name, fn in originals.items():
            setattr(applier_class, name, fn)
        seen.screen = saved_screen
    shutil.rmtree(lake)
    return {
        "total_s": round(total, 2),
        "current_s": round(sum(current), 2),
        "history_s": round(sum(history), 2),
        "per_batch_current_s": [round(c, 2) for c in current],
        "per_batch_history_s": [round(h, 2) for h in history],
        "files_rewritten": rewritten,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="400,000 rows in batches of 50,000")
    parser.add_argument("--rows", type=int, default=None, help="load lines (2,000,000)")
    parser.add_argument("--batch", type=int, default=None, help="events per apply batch (200,000)")
    args = parser.parse_args()
    rows = args.rows or (400_000 if args.quick else 2_000_000)
    batch = args.batch or (50_000 if args.quick else 200_000)
    items = Items()
    lines = [
        raw_line(TABLE, "LOAD", i, items.image(i), f"load-{i:08d}", LOAD_US, source="scan")
        for i in range(rows)
    ]
    work = Path(tempfile.mkdtemp(prefix="ddblake-bench-loadscale-"))
    out: dict[str, Any] = {"bench": "loadscale", "rows": rows, "batch": batch}
    variants = (
        ("files", files.TARGET_FILE_BYTES, True),
        ("bucket", 1 << 62, True),
        ("files_plain_dedup", files.TARGET_FILE_BYTES, False),
    )
    try:
        for name, size, screen in variants:
            print(f"{name}: {rows:,} load rows in batches of {batch:,}", flush=True)
            got = run(work, lines, size, batch, screen)
            out[name] = got
            print(
                f"{name}: {got['total_s']:.1f} s in all, current state {got['current_s']:.1f} s, "
                f"history {got['history_s']:.1f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in ("files", "bucket"):
        per = out[name]["per_batch_current_s"]
        out[f"growth_{name}"] = round(per[-1] / per[1], 2) if len(per) > 1 and per[1] else None
    out["ratio"] = round(out["bucket"]["current_s"] / out["files"]["current_s"], 2)
    for name in ("files", "files_plain_dedup"):
        per = out[name]["per_batch_history_s"]
        out[f"history_growth_{name}"] = round(per[-1] / per[1], 2) if len(per) > 1 and per[1] else None
    out["history_ratio"] = round(out["files_plain_dedup"]["history_s"] / out["files"]["history_s"], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
