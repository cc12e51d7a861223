"""Benchmark: a small batch on a growing table — files of hash ranges against whole-bucket rewrites.

Side by side in one run, on this machine: a current-state table of ``--rows`` items (and one a
tenth of that size) in one bucket, laid out by ddblake as files of disjoint ``_ddb_hash`` ranges
(``lake.files``, files of ``--file-mb`` MiB of Arrow memory), against the same table as one file per
bucket — what every bucket was before hash ranges, so what a batch rewrote then. Each gets the same
batch of ``--changes`` updates of existing keys whose hashes lie close together (as a batch of
nearby keys does; random keys touch more files), applied by ``Applier.run_once()``; the time of
that call is the median of ``--repeats`` runs, each on a fresh copy of the tables.

A second batch, of ``--inserts`` keys new to the table with random hashes (a full load's, or an
application's that mostly inserts), goes through the same two layouts: with hash-range files its
rows make new files (or join the bucket's small open file) and no full file is rewritten; as one
file per bucket, the bucket is rewritten.

What it shows: with hash-range files the cost of a batch follows the rows it touches and stays
flat as the table grows; rewriting whole buckets it grows with the table.

Usage: ``python bench/layout.py [--quick] [--rows N] [--changes N] [--inserts N] [--file-mb M]
[--repeats R]``. The last line printed is one JSON object: ``"bench": "layout"``, ``ratio``
(whole-bucket seconds over hash-range seconds on the larger table), ``growth_files`` and
``growth_bucket`` (each layout's seconds on the larger table over the smaller one), the same for
the insert batch (``inserts_ratio``, ``inserts_growth_files``, ``inserts_growth_bucket``), and the
raw figures.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Items, keys_of, raw_line, write_raw  # noqa: E402

from ddblake.changes.resolve import key_hash, key_string  # noqa: E402
from ddblake.lake import files  # noqa: E402
from ddblake.lake.apply import Applier, ApplyConfig  # noqa: E402
from ddblake.lake.catalog import LakeConfig  # noqa: E402
from ddblake.lake.storage import Storage  # noqa: E402

TABLE = "layout-table"
LOAD_US = 1_764_316_800_000_000
CHANGES_US = LOAD_US + 86_400_000_000


def snapshot(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)


def apply(lake: Path, target_bytes: int) -> tuple[float, int]:
    """One ``run_once`` with files of ``target_bytes`` (seconds, files rewritten)."""
    saved = files.TARGET_FILE_BYTES
    files.TARGET_FILE_BYTES = target_bytes
    try:
        config = ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True, buckets=1)
        started = time.perf_counter()
        result = Applier(config).run_once()
        return time.perf_counter() - started, result.files_rewritten
    finally:
        files.TARGET_FILE_BYTES = saved


def build(work: Path, rows: int, target_bytes: int, items: Items) -> Path:
    """The loaded table, built at ``work/lake`` (where every run finds it again: paths are absolute
    in the catalog and the tables), then kept aside as ``work/base``."""
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    lines = (
        raw_line(TABLE, "LOAD", i, items.image(i), f"load-{i:08d}", LOAD_US, source="scan")
        for i in range(rows)
    )
    write_raw(Storage.from_uri(str(lake)), TABLE, lines, 50_000, level=1)
    apply(lake, target_bytes)
    base = work / "base"
    shutil.rmtree(base, ignore_errors=True)
    lake.rename(base)
    return base


def batch(rows: int, changes: int, items: Items) -> list[bytes]:
    """Updates of the ``changes`` keys whose hashes come first after a fixed point: nearby keys."""
    by_hash = sorted(range(rows), key=lambda i: (key_hash(key_string(keys_of(i))) - 0x80000000) % 2**32)
    chosen = by_hash[:changes]
    return [
        raw_line(TABLE, "MODIFY", i, items.image(i, 1), f"chg-{i:08d}", CHANGES_US + n, seq=str(10**20 + n))
        for n, i in enumerate(chosen)
    ]


def inserts(rows: int, count: int, items: Items) -> list[bytes]:
    """``count`` keys new to the table, with random hashes (the keys after the table's)."""
    return [
        raw_line(TABLE, "INSERT", i, items.image(i), f"ins-{i:08d}", CHANGES_US + n, seq=str(10**20 + n))
        for n, i in enumerate(range(rows, rows + count))
    ]


def measure(work: Path, base: Path, lines: list[bytes], target_bytes: int, repeats: int) -> dict[str, Any]:
    runs = []
    rewritten = 0
    for _ in range(repeats):
        lake = work / "lake"
        snapshot(base, lake)
        write_raw(Storage.from_uri(str(lake)), TABLE, lines, 10_000)
        seconds, rewritten = apply(lake, target_bytes)
        runs.append(seconds)
        shutil.rmtree(lake)
    return {"seconds": round(statistics.median(runs), 3), "files_rewritten": rewritten}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100,000 rows (and 10,000), under a minute")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--inserts", type=int, default=10_000, help="new keys in the insert batch")
    parser.add_argument("--file-mb", type=int, default=16, help="file size of the hash-range layout")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    large = args.rows or (100_000 if args.quick else 500_000)
    sizes = (large // 10, large)
    target = args.file_mb << 20
    whole = 1 << 62  # one file per bucket: the layout before hash ranges
    items = Items()
    work = Path(tempfile.mkdtemp(prefix="ddblake-bench-layout-"))
    out: dict[str, Any] = {
        "bench": "layout",
        "changes": args.changes,
        "inserts": args.inserts,
        "file_mb": args.file_mb,
    }
    try:
        for rows in sizes:
            lines = batch(rows, args.changes, items)
            new_keys = inserts(rows, args.inserts, items)
            for name, size in (("files", target), ("bucket", whole)):
                base = build(work, rows, size, items)
                for kind, batch_lines in (("", lines), ("inserts_", new_keys)):
                    got = measure(work, base, batch_lines, size, args.repeats)
                    out[f"{kind}{name}_{rows}"] = got
                    print(
                        f"{rows:,} rows, {name}, {kind or 'updates_'}batch: {got['seconds']:.2f} s, "
                        f"{got['files_rewritten']} file(s) rewritten"
                    )
                shutil.rmtree(base)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    small, big = sizes
    out["rows"] = list(sizes)
    out["ratio"] = round(out[f"bucket_{big}"]["seconds"] / out[f"files_{big}"]["seconds"], 2)
    out["growth_files"] = round(out[f"files_{big}"]["seconds"] / out[f"files_{small}"]["seconds"], 2)
    out["growth_bucket"] = round(out[f"bucket_{big}"]["seconds"] / out[f"bucket_{small}"]["seconds"], 2)
    for kind in ("inserts_",):
        f_big, f_small = out[f"{kind}files_{big}"]["seconds"], out[f"{kind}files_{small}"]["seconds"]
        b_big, b_small = out[f"{kind}bucket_{big}"]["seconds"], out[f"{kind}bucket_{small}"]["seconds"]
        out[f"{kind}ratio"] = round(b_big / f_big, 2)
        out[f"{kind}growth_files"] = round(f_big / f_small, 2)
        out[f"{kind}growth_bucket"] = round(b_big / b_small, 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
