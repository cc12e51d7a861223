"""Benchmark: apply with Python's cyclic garbage collector paused during each batch, or left on.

``Applier.run_once`` pauses the collector while it builds and commits a batch
(``ddblake.lake.batch.collector_paused``) and gives Arrow's freed memory back after each batch
(``release_arrow_memory``). A batch holds hundreds of thousands of small objects until it ends,
and with the collector on, its full passes walk all of them again and again as the heap grows.

Side by side in one run, on this machine: the same load lines (``--rows``, batches of ``--batch``
events) applied to an empty lake by ``Applier.run_once``, each run a fresh child process, the two
variants alternating ``--repeats`` times:

* ``paused``: apply as it ships;
* ``collector_on``: the collector left running and Arrow's memory kept (apply before the change).

Each child reports its apply time, its peak RSS, and its resident memory once the batches are
done (what an idle ``apply`` or ``sync`` holds between polls).

Usage: ``python bench/collector.py [--quick] [--rows N] [--batch N] [--repeats R]``. The last line
printed is one JSON object: ``"bench": "collector"``, ``ratio`` (median seconds with the collector
on over paused; above 1 means pausing is faster), ``rss_after_ratio`` (resident memory after the
batches, collector on over paused), and each variant's medians and runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Items, peak_rss_mb, raw_line, run_child, write_raw  # noqa: E402

from ddblake.lake.storage import Storage  # noqa: E402

TABLE = "collector-table"
LOAD_US = 1_764_316_800_000_000
SCRIPT = str(Path(__file__).resolve())


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with Path("/proc/self/statm").open() as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def child(raw: Path, work: Path, batch: int, variant: str) -> dict[str, Any]:
    """Apply the raw files in ``raw`` to a fresh lake under ``work``; time the apply alone."""
    import pyiceberg.catalog.sql  # noqa: F401  (imported lazily by open_catalog: not part of the timing)

    import ddblake.codec  # noqa: F401
    from ddblake.lake import apply as apply_module
    from ddblake.lake.catalog import LakeConfig

    lake = work / "lake"
    shutil.copytree(raw, lake / "raw")
    if variant == "collector_on":
        apply_module.collector_paused = contextlib.nullcontext  # type: ignore[assignment]
        apply_module.release_arrow_memory = lambda: None  # type: ignore[assignment]
    config = apply_module.ApplyConfig.build(
        table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True, max_events=batch
    )
    started = time.perf_counter()
    result = apply_module.Applier(config).run_once()
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 3),
        "events": result.events,
        "peak_rss_mb": round(peak_rss_mb()),
        "rss_after_mb": round(rss_mb()),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        raw, work, batch, variant = sys.argv[2:6]
        print(json.dumps(child(Path(raw), Path(work), int(batch), variant)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="200,000 rows in batches of 50,000, once")
    parser.add_argument("--rows", type=int, default=None, help="load lines (600,000)")
    parser.add_argument("--batch", type=int, default=None, help="events per apply batch (200,000)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds of the two variants (2)")
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 600_000)
    batch = args.batch or (50_000 if args.quick else 200_000)
    repeats = args.repeats or (1 if args.quick else 2)
    work = Path(tempfile.mkdtemp(prefix="ddblake-bench-collector-"))
    out: dict[str, Any] = {"bench": "collector", "rows": rows, "batch": batch, "repeats": repeats}
    runs: dict[str, list[dict[str, Any]]] = {"paused": [], "collector_on": []}
    try:
        items = Items()
        lines = (
            raw_line(TABLE, "LOAD", i, items.image(i), f"load-{i:08d}", LOAD_US, source="scan")
            for i in range(rows)
        )
        write_raw(Storage.from_uri(str(work / "src")), TABLE, lines, 50_000, level=1)
        print(f"collector bench: {rows:,} load rows in batches of {batch:,}, {repeats} round(s)", flush=True)
        for r in range(repeats):
            for variant in ("paused", "collector_on") if r % 2 == 0 else ("collector_on", "paused"):
                target = work / f"run-{r}-{variant}"
                got = run_child(
                    [SCRIPT, "--child", str(work / "src" / "raw"), str(target), str(batch), variant], 3600
                )
                shutil.rmtree(target, ignore_errors=True)
                if not got.get("ok"):
                    raise SystemExit(f"{variant} run failed: {got.get('outcome')}")
                runs[variant].append(got)
                print(
                    f"round {r + 1}, {variant}: {got['seconds']:.1f} s for {got['events']:,} events, "
                    f"peak RSS {got['peak_rss_mb']:,} MB, {got['rss_after_mb']:,} MB after the batches",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for variant, got in runs.items():
        out[variant] = {
            "seconds": statistics.median(g["seconds"] for g in got),
            "peak_rss_mb": statistics.median(g["peak_rss_mb"] for g in got),
            "rss_after_mb": statistics.median(g["rss_after_mb"] for g in got),
            "runs": [{k: g[k] for k in ("seconds", "peak_rss_mb", "rss_after_mb")} for g in got],
        }
    out["ratio"] = round(out["collector_on"]["seconds"] / out["paused"]["seconds"], 2)
    out["rss_after_ratio"] = round(out["collector_on"]["rss_after_mb"] / out["paused"]["rss_after_mb"], 2)
    print(
        f"paused {out['paused']['seconds']:.1f} s, collector on {out['collector_on']['seconds']:.1f} s: "
        f"{out['ratio']:.2f}x; memory after the batches {out['paused']['rss_after_mb']:,} MB against "
        f"{out['collector_on']['rss_after_mb']:,} MB"
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
