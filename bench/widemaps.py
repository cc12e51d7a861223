"""Benchmark: apply on items whose map is keyed by data (user IDs), one field per key or not.

DynamoDB items often hold a map keyed by data: scores by user ID, counters by day. Typed as a
struct, such a map gets a field per distinct key: every batch evolves the schema (and Iceberg keeps
every schema in each metadata file), each key is a Parquet column, and the JSON reader spreads a
full-length array per key, so a batch costs keys times rows. ddblake types a map slot with more
than ``MAX_MAP_FIELDS`` (200) distinct keys as DynamoDB JSON text instead (docs/types.md, "Wide maps").

Side by side in one run, each side in a fresh child process (its own peak RSS), the same raw log of
``--batches`` files of ``--items`` items, each item with a small typed map and a map of three fresh
user-ID keys, applied batch by batch:

* ``ddblake``: apply as it ships;
* ``field_per_key``: the same apply with the limit lifted (``MAX_MAP_FIELDS`` = 10**9), which is
  how every earlier ddblake typed such maps.

Usage: ``python bench/widemaps.py [--quick] [--batches B] [--items N]``. The last line printed is
one JSON object: ``"bench": "widemaps"``, ``ratio`` (the field-per-key side's seconds over
ddblake's; above 1 means ddblake is faster), ``last_batch_ratio`` (the same for the last batch
alone: how the cost grows), each side's seconds, last batch, peak RSS and schemas kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import T0_US, peak_rss_mb, run_side, side_ratio, write_changes

TABLE = "scores-table"
LIMIT_LIFTED = 10**9


def _items(batch: int, count: int) -> list[str]:
    lines = []
    for i in range(count):
        n = batch * count + i
        image = {
            "pk": {"S": f"game#{n:07d}"},
            "profile": {"M": {"city": {"S": "Oslo"}, "level": {"N": str(n % 90)}}},
            "scores": {"M": {f"user-{n:07d}-{k}": {"N": f"{k}.5"} for k in range(3)}},
        }
        lines.append(json.dumps(image))
    return lines


def child(lake: Path, batches: int, items: int, limit: int | None) -> None:
    """One side: write the raw log, apply it batch by batch, print a JSON line."""
    from ddblake.codec import schema as lattice
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig
    from ddblake.lake.storage import Storage

    if limit is not None:
        lattice.MAX_MAP_FIELDS = limit  # type: ignore[misc]
    storage = Storage.from_uri(str(lake))
    config = ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True)
    seconds = []
    for b in range(batches):
        images = [json.loads(text) for text in _items(b, items)]
        write_changes(lake, TABLE, images, batch=b, first_us=T0_US + b * items * 1000)
        started = time.perf_counter()
        Applier(config, storage=storage).run_once()
        seconds.append(time.perf_counter() - started)
    meta = max(
        lake.glob("warehouse/**/scores_table/metadata/*.metadata.json"), key=lambda p: p.stat().st_mtime
    )
    document = json.loads(meta.read_text())
    print(
        json.dumps(
            {
                "seconds": round(sum(seconds), 3),
                "last_batch_s": round(seconds[-1], 3),
                "peak_rss_mb": round(peak_rss_mb()),
                "schemas_kept": len(document["schemas"]),
                "metadata_kb": round(meta.stat().st_size / 1024),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (4 batches of 300 items)")
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        lake, batches, items, limit = args.child
        child(Path(lake), int(batches), int(items), None if limit == "default" else int(limit))
        return
    batches = args.batches or (4 if args.quick else 8)
    items = args.items or (300 if args.quick else 500)
    work = Path(tempfile.mkdtemp(prefix="ddblake-widemaps-"))
    try:
        sides = {}
        for name, limit in (("ddblake", "default"), ("field_per_key", str(LIMIT_LIFTED))):
            lake = work / name
            argv = [__file__, "--child", str(lake), str(batches), str(items), limit]
            sides[name] = run_side(name, argv)
        ours, theirs = sides["ddblake"], sides["field_per_key"]
        summary = {
            "bench": "widemaps",
            "batches": batches,
            "items_per_batch": items,
            "fresh_keys_per_item": 3,
            "ratio": side_ratio(ours, theirs, "seconds"),
            "last_batch_ratio": side_ratio(ours, theirs, "last_batch_s"),
            "ddblake": ours,
            "field_per_key": theirs,
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
