"""Benchmark: ``ddblake query`` reading a table lazily against reading it whole first.

Side by side in one run, on this machine: a current-state table of ``--rows`` items of mixed types
(bench/_common.py's items, loaded by ddblake), then each statement below run in a fresh process,
once by ddblake (``lake.query.run_sql``: DuckDB over a lazy dataset of the table's data files,
:mod:`ddblake.lake.reading`) and once the way ``query`` worked until session 12 (pyiceberg's
``scan().to_arrow()`` of the whole table, handed to DuckDB) — the baseline. Each process reports
the time of its query call and its peak RSS; both sides must return the same rows.

Statements: ``count`` (``count(*)``), ``lookup`` (one item by key), ``aggregate`` (sum and max of
two number columns over every row), ``scan`` (a string column of every row, filtered).

``--nested-names`` gives every item a map whose key Iceberg stores under another name
(``"meta": {"content-type": ...}``, stored as ``content_x2Dtype``): until session 27 ddblake read
such a table whole through pyiceberg too (the baseline's way); now its view gives the name back.

Usage: ``python bench/query.py [--quick] [--rows N] [--repeats R] [--nested-names]``. The last
line printed is one JSON object: ``"bench": "query"``, per statement the seconds and peak RSS of
each side, ``ratio`` (the geometric mean over the statements of baseline seconds / ddblake seconds)
and ``rss_ratio`` (the same for peak RSS).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Items, peak_rss_mb, raw_line, run_child, write_raw  # noqa: E402

TABLE = "query-table"
LOAD_US = 1_764_316_800_000_000
STATEMENTS = {
    "count": "select count(*) from query_table",
    "lookup": "select pk, price, qty from query_table where pk = 'customer#{key:08d}'",
    "aggregate": "select sum(qty), max(price) from query_table",
    "scan": "select count(distinct name) from query_table where name like 'alpha%'",
}


def _with_meta(image: str, i: int) -> str:
    """``image`` (compact DynamoDB JSON text) with a map whose key is stored sanitised."""
    return image[:-1] + f',"meta":{{"M":{{"content-type":{{"S":"type/{i % 7}"}}}}}}}}'


def build(lake: Path, rows: int, nested_names: bool = False) -> float:
    """Load ``rows`` items into the lake's tables with ddblake; returns the seconds it took."""
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig
    from ddblake.lake.storage import Storage

    items = Items()
    lines = (
        raw_line(
            TABLE,
            "LOAD",
            i,
            _with_meta(items.image(i), i) if nested_names else items.image(i),
            f"load-{i:08d}",
            LOAD_US,
            source="scan",
        )
        for i in range(rows)
    )
    write_raw(Storage.from_uri(str(lake)), TABLE, lines, 100_000, level=1)
    started = time.perf_counter()
    Applier(ApplyConfig.build(table=TABLE, lake=LakeConfig.build(lake=str(lake)), once=True)).run_once()
    return time.perf_counter() - started


def child(lake: str, side: str, sql: str) -> int:
    """One statement on one side, in this (fresh) process; prints its figures as JSON."""
    import duckdb

    from ddblake.lake.catalog import LakeConfig, open_catalog
    from ddblake.lake.query import run_sql

    config = LakeConfig.build(lake=lake)
    catalog = open_catalog(config, config.storage())
    started = time.perf_counter()
    if side == "ddblake":
        _, rows = run_sql(catalog, "ddb", sql)
    else:  # the whole table in memory first, as query did before
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("query_table", catalog.load_table("ddb.query_table").scan().to_arrow())
        rows = con.execute(sql).fetchall()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rows": repr(rows)}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one repeat")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--nested-names", action="store_true", help="a map key stored sanitised")
    parser.add_argument("--child", nargs=3, metavar=("LAKE", "SIDE", "SQL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    repeats = args.repeats or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="ddblake-bench-query-"))
    try:
        lake = work / "lake"
        load_s = build(lake, rows, args.nested_names)
        print(f"loaded {rows:,} rows in {load_s:.1f} s")
        summary: dict[str, Any] = {
            "bench": "query",
            "rows": rows,
            "repeats": repeats,
            "nested_names": args.nested_names,
            "load_s": round(load_s, 1),
        }
        ratios: list[float] = []
        rss_ratios: list[float] = []
        for name, template in STATEMENTS.items():
            sql = template.format(key=rows // 2)
            figures: dict[str, dict[str, Any]] = {}
            for _ in range(repeats):  # interleaved, so that both sides share the machine's moods
                for side in ("ddblake", "baseline"):
                    out = run_child([__file__, "--child", str(lake), side, sql], timeout=900)
                    if not out.get("ok"):
                        raise SystemExit(f"{name} on {side}: {out.get('outcome')}")
                    figures.setdefault(side, {"seconds": [], "rss": [], "rows": out["rows"]})
                    figures[side]["seconds"].append(out["seconds"])
                    figures[side]["rss"].append(out["peak_rss_mb"])
            if figures["ddblake"]["rows"] != figures["baseline"]["rows"]:
                raise SystemExit(f"{name}: the two sides returned different rows")
            result = {
                side: {
                    "seconds": round(statistics.median(f["seconds"]), 3),
                    "peak_rss_mb": round(statistics.median(f["rss"])),
                }
                for side, f in figures.items()
            }
            ratio = result["baseline"]["seconds"] / result["ddblake"]["seconds"]
            rss_ratio = result["baseline"]["peak_rss_mb"] / result["ddblake"]["peak_rss_mb"]
            ratios.append(ratio)
            rss_ratios.append(rss_ratio)
            summary[name] = {**result, "ratio": round(ratio, 2), "rss_ratio": round(rss_ratio, 2)}
            ours, theirs = result["ddblake"], result["baseline"]
            print(
                f"{name:9s} ddblake {ours['seconds']:.3f} s {ours['peak_rss_mb']} MB | "
                f"whole-table baseline {theirs['seconds']:.3f} s {theirs['peak_rss_mb']} MB"
            )
        summary["ratio"] = round(math.exp(statistics.fmean(math.log(r) for r in ratios)), 2)
        summary["rss_ratio"] = round(math.exp(statistics.fmean(math.log(r) for r in rss_ratios)), 2)
        print(json.dumps(summary))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
