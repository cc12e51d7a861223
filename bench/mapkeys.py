"""Benchmark: map attributes gaining keys, added in place or by retyping every row.

A map attribute is a struct column, one field per key. Until session 26 every new key retyped the
whole table (docs/types.md, Retyping): each row read, typed again and written, once per key, up to
the 200 keys of a wide map. Now the field is added to the struct in place (``ddblake.lake.fieldadds``)
and only the touched buckets are rewritten, unless rows held an untyped value at that key.

Side by side in one run, each side in a fresh child process with its own lake, built alike: a
current-state table of ``--rows`` items (a map ``m`` of two keys, a number, a string), then
``--keys`` batches of one item each, whose map has one more new key than the last. ``ddblake`` is
apply as it ships; ``retype_every_row`` is the same code with in-place adds turned off
(``fieldadds.in_place`` answering None), which is what apply did before.

Usage: ``python bench/mapkeys.py [--quick] [--rows N] [--keys K]``. The last line printed is one
JSON object: ``"bench": "mapkeys"``, ``ratio`` (the retyping side's seconds for the K batches over
ddblake's; above 1 means ddblake is faster), ``rss_ratio``, each side's seconds, per-batch seconds
and peak RSS, and ``same_rows`` (both tables hold the same items and the same typed ``m`` values).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import T0_US, built_sides, peak_rss_mb, same_digest, side_ratio, write_changes

TABLE = "mapkeys-table"


def _write(lake: Path, batch: int, images: list[dict[str, Any]]) -> None:
    write_changes(lake, TABLE, images, batch=batch, first_us=T0_US + batch * 10**9, step_us=1, op="MODIFY")


def _apply(lake: Path) -> Any:
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig

    config = ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True)
    return Applier(config).run_once()


def child_build(lake: Path, rows: int) -> None:
    images = [
        {"pk": {"S": f"k{i:08d}"}, "m": {"M": {"a": {"S": "x"}, "b": {"N": str(i)}}}, "v": {"S": "y" * 50}}
        for i in range(rows)
    ]
    _write(lake, 0, images)
    _apply(lake)
    print(json.dumps({"rows": rows}))


def child_keys(lake: Path, keys: int, retype: bool) -> None:
    from ddblake.lake import fieldadds
    from ddblake.lake.catalog import LakeConfig, open_catalog
    from ddblake.lake.storage import Storage

    if retype:
        fieldadds.in_place = lambda *_args: None  # type: ignore[assignment]
    seconds: list[float] = []
    buckets = 0
    for k in range(1, keys + 1):
        extra = {f"c{j}": {"S": f"key {j}"} for j in range(1, k + 1)}
        _write(lake, k, [{"pk": {"S": f"k{k * 7:08d}"}, "m": {"M": {"a": {"S": "x"}, **extra}}}])
        started = time.perf_counter()
        result = _apply(lake)
        seconds.append(round(time.perf_counter() - started, 2))
        buckets += result.buckets_rewritten
    peak = peak_rss_mb()  # before the check below reads the whole table
    storage = Storage.from_uri(str(lake))
    table = open_catalog(LakeConfig.build(lake=str(lake)), storage).load_table("ddb.mapkeys_table")
    rows = table.scan(selected_fields=("_ddb_key", "_ddb_item", "m")).to_arrow().sort_by("_ddb_key")
    digest = hashlib.sha256()
    columns = (rows.column(name).to_pylist() for name in ("_ddb_key", "_ddb_item", "m"))  # by name:
    for key, item, m in zip(*columns, strict=True):  # a retype puts m last
        digest.update(f"{key}\t{item}\t{json.dumps(m, sort_keys=True)}\n".encode())
    out = {"seconds": round(sum(seconds), 2), "per_batch_s": seconds, "buckets_rewritten": buckets}
    out |= {"peak_rss_mb": round(peak), "rows": rows.num_rows, "digest": digest.hexdigest()}
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 3 keys (about a minute)")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--keys", type=int, default=None)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, lake, value, side = args.child
        if kind == "build":
            child_build(Path(lake), int(value))
        else:
            child_keys(Path(lake), int(value), side == "retype_every_row")
        return
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    keys = args.keys or (3 if args.quick else 5)
    work = Path(tempfile.mkdtemp(prefix="ddblake-mapkeys-"))
    try:
        sides = built_sides(
            ("ddblake", "retype_every_row"),
            lambda name: [__file__, "--child", "build", str(work / name), str(rows), name],
            lambda name: [__file__, "--child", "keys", str(work / name), str(keys), name],
        )
        ours, theirs = sides["ddblake"], sides["retype_every_row"]
        summary = {
            "bench": "mapkeys",
            "rows": rows,
            "keys": keys,
            "ratio": side_ratio(ours, theirs, "seconds"),
            "rss_ratio": side_ratio(ours, theirs, "peak_rss_mb"),
            "same_rows": same_digest(ours, theirs),
            "ddblake": ours,
            "retype_every_row": theirs,
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
