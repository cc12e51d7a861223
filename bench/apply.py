"""Benchmark: applying a batch of changes to a current-state table — ddblake against pyiceberg's
``Table.upsert`` and delta-rs's ``MERGE``, on the same rows, on this machine, in one run.

Setup (not timed against anything): a table of ``--rows`` items of mixed types (S, N as int64 /
decimal / 38 digits, B, BOOL, NULL, SS, NS, M, L; key ``pk`` + ``sk``) is loaded by ddblake from raw
load files into its Iceberg tables (current state + history; the load time is reported). That
current-state table — its rows as Arrow — is then copied into a Delta table and into a plain
pyiceberg table, both partitioned like ddblake's (identity on ``_ddb_bucket``), same columns.

The spread batch: ``--changes`` changes, 80 % updates of random existing keys, 10 % inserts, 10 %
deletes, as DynamoDB Streams NEW_AND_OLD_IMAGES records a day after the load; 5 % of the events
appear twice (at-least-once delivery); lines shuffled (out of order). Each side gets:

* ddblake: the raw change-log files (gzip JSON Lines, as capture or Firehose writes them) and
  ``Applier.run_once()`` — reading and parsing the files, dropping duplicates, ordering by version,
  appending the change-history table, typing the images, and merging the current state (version
  checked, tombstone aware), two Iceberg commits with the applied-file records. Everything.
* delta-rs: the *net* changes, already resolved and typed by ddblake (one row per key, newest
  version, with an ``_op`` column) as an Arrow table in memory, and one ``MERGE``: matched and
  newer → delete (REMOVE) or update all columns, not matched → insert. Only the merge is timed — no
  parsing, no dedup, no history. Predicate ``t._ddb_bucket = s._ddb_bucket AND t._ddb_key =
  s._ddb_key`` (the partition column lets delta-rs prune partitions).
* pyiceberg 0.12: the same net changes; ``Table.upsert(rows, join_cols=...)`` then
  ``Table.delete(In("_ddb_key", removed))`` (upsert cannot delete). No version check. Two ways:
  joined on the DynamoDB key columns ``pk, sk`` — what upsert on a DynamoDB table means, and what
  the issue measured (pyiceberg builds one ``Or`` of ``And`` terms per row) — which gives
  ``ratio_vs_pyiceberg``; and joined on ddblake's single canonical key column ``_ddb_key``
  (pyiceberg's fastest path, one ``In`` filter), which gives ``ratio_vs_pyiceberg_single_key``.
  Each runs on the first 100, 1,000, 10,000, ... changes of the batch and then all of it (with
  ``--quick``: 1,000, then all), each in its own process with a timeout, stopping at the first
  crash or timeout (or when the last run predicts one); its throughput is taken on the largest
  batch it survives, per change.

Every timed run is a fresh child process (``python bench/apply.py --child ...``) started on a fresh
copy of the tables (data files hard-linked, catalogs copied); a child times only its
apply/merge/upsert call (imports and reading its input excluded) and reports its peak RSS (Linux
``VmHWM``: ``ru_maxrss`` of a child still holds the parent's size at fork). ddblake and delta-rs
alternate in each repeat; the figures are medians. ddblake's time is also split into its stages
(reading + parsing the raw files, the history commit, the current-state commit), and its
current-state stage alone is compared with the delta-rs MERGE (``ratio_vs_deltalake_merge_only``).
A localised batch (``--local`` changes, all on keys of two of the 16 key buckets) shows that
ddblake's cost follows the data touched (time against the spread batch, buckets rewritten).

Usage: ``python bench/apply.py [--quick] [--rows N] [--changes N] [--repeats R] [--workdir DIR]``.
The last line printed is one JSON object: ``"bench": "apply"``, ``ratio`` (= ``ratio_vs_pyiceberg``:
changes per second, ddblake on the spread batch over pyiceberg upsert on (pk, sk) on the largest
batch it survived), ``ratio_vs_deltalake`` (changes per second on the spread batch, ddblake's whole
apply over delta-rs's MERGE alone), ``peak_rss_mb`` (ddblake's apply process on the change
batches, MiB), ``load_peak_rss_mb`` (its apply of the table's first load, MiB), and the details.
The memory goal ("peak RSS under 2 GB", read as 2 GiB) holds for both: ``goals_met`` checks the
larger.

The batches, net changes and table copies come from bench/_apply_data.py; the child bodies (one
timed call each) from bench/_apply_children.py.
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

from _apply_children import run_as_child  # noqa: E402
from _apply_data import (  # noqa: E402
    BUCKETS,
    CHANGE_FILE_LINES,
    CURRENT_ID,
    LOAD_FILE_LINES,
    LOCAL_BUCKETS,
    TABLE,
    Batch,
    install_raw,
    load_lines,
    make_batch,
    net_changes,
    snapshot,
)
from _common import Items, keys_of, run_child, write_raw  # noqa: E402

from ddblake.lake.storage import Storage  # noqa: E402

SCRIPT = str(Path(__file__).resolve())


# --- the bench -------------------------------------------------------------------------------------


class Bench:
    def __init__(
        self, work: Path, rows: int, changes: int, local: int, timeout: float, smallest: int = 100
    ) -> None:
        self.work = work
        self.rows = rows
        self.changes = changes
        self.local = local
        self.timeout = timeout
        self.smallest = smallest
        self.items = Items()

    def child(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        return run_child([SCRIPT, "--child", args[0], str(self.work), *args[1:]], timeout or self.timeout)

    def must(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        out = self.child(*args, timeout=timeout)
        if not out.get("ok"):
            raise SystemExit(f"child {args[0]} failed: {out.get('outcome')}")
        return out

    # setup
    def load(self) -> dict[str, Any]:
        lake = self.work / "lake"
        started = time.perf_counter()
        write_raw(
            Storage.from_uri(str(lake)), TABLE, load_lines(self.items, self.rows), LOAD_FILE_LINES, level=1
        )
        print(f"setup: {self.rows:,} load lines written in {time.perf_counter() - started:.1f} s")
        per_batch = max(1, 200_000 // LOAD_FILE_LINES)
        out = self.must("ddblake", str(per_batch), timeout=3600)
        print(
            f"setup: ddblake loaded {self.rows:,} rows in {out['seconds']:.1f} s "
            f"({self.rows / out['seconds']:,.0f} rows/s, batches of {per_batch * LOAD_FILE_LINES:,} rows, "
            f"peak RSS {out['peak_rss_mb']:.0f} MB)"
        )
        snapshot(lake, self.work / "lake-base")
        return out

    def copies(self) -> Any:
        import pyarrow.parquet as pq
        from deltalake import write_deltalake

        from ddblake.lake.catalog import LakeConfig, open_catalog

        config = LakeConfig.build(lake=str(self.work / "lake"))
        catalog = open_catalog(config, config.storage())
        base = catalog.load_table(CURRENT_ID).scan().to_arrow()
        schema = base.schema
        pq.write_table(base, self.work / "base.parquet")
        started = time.perf_counter()
        write_deltalake(str(self.work / "delta-base"), base, partition_by=["_ddb_bucket"])
        print(f"setup: Delta copy written in {time.perf_counter() - started:.1f} s")
        del base
        started = time.perf_counter()
        self.must("pyiceberg-setup", timeout=3600)
        snapshot(self.work / "pyiceberg", self.work / "pyiceberg-base")
        print(f"setup: pyiceberg copy written in {time.perf_counter() - started:.1f} s")
        return schema

    def batch(self, batch: Batch, distinct: list[bytes], schema: Any) -> None:
        import pyarrow.parquet as pq

        raw = self.work / f"raw-{batch.name}"
        write_raw(Storage.from_uri(str(raw)), TABLE, batch.lines, CHANGE_FILE_LINES)
        pq.write_table(net_changes(distinct, schema), self.work / f"net-{batch.name}.parquet")

    def run_ddblake(self, name: str) -> dict[str, Any]:
        lake = self.work / "lake"
        shutil.rmtree(lake, ignore_errors=True)
        snapshot(self.work / "lake-base", lake)
        install_raw(lake, self.work / f"raw-{name}")
        return self.must("ddblake", "500")

    def run_delta(self, name: str) -> dict[str, Any]:
        snapshot(self.work / "delta-base", self.work / "delta")
        return self.must("delta", f"net-{name}.parquet")

    def run_pyiceberg(self, name: str, join: str) -> dict[str, Any]:
        snapshot(self.work / "pyiceberg-base", self.work / "pyiceberg")
        return self.child("pyiceberg", f"net-{name}.parquet", join)


def pyiceberg_ladder(
    b: Bench,
    join: str,
    what: str,
    spread: Batch,
    events: list[bytes],
    schema: Any,
    prefixes: set[int],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """pyiceberg upsert on growing prefixes of the spread batch (100, 1,000, ..., all of it),
    each in its own process, until a crash, a timeout, or a run that predicts the next would time out.
    """
    ladder: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    steps = (100, 1_000, 10_000, 100_000, 1_000_000) if b.smallest < 1000 else (1_000,)  # --quick: 1,000, all
    sizes = [n for n in steps if b.smallest <= n < spread.changes] + [spread.changes]
    for n in sizes:
        name = f"prefix{n}"
        if n not in prefixes:
            b.batch(Batch(name, events[:n], n, 0), events[:n], schema)
            prefixes.add(n)
        out = b.run_pyiceberg(name, join)
        out["changes"] = n
        ladder.append(out)
        if not out.get("ok"):
            print(f"pyiceberg upsert {what}, {n:,} changes: {out['outcome']}")
            break
        print(
            f"pyiceberg upsert {what} + delete, {n:,} changes: {out['seconds']:.2f} s "
            f"(upsert {out['upsert_s']:.2f} s; {_rate(n, out['seconds']):,.0f} changes/s, "
            f"peak RSS {out['peak_rss_mb']:.0f} MB)"
        )
        best = out
        # Skip a run that would only time out. On (pk, sk) pyiceberg's cost grows at least in
        # proportion to the batch (a filter term per row); on _ddb_key (one In filter) it measured
        # well below that (fixed costs dominate), hence the two growth exponents of the guess.
        growth = 1.0 if join == "key" else 0.5
        if n != sizes[-1] and out["seconds"] * (sizes[sizes.index(n) + 1] / n) ** growth > b.timeout * 1.5:
            print(f"pyiceberg {what}: the next batch would not finish within {b.timeout:.0f} s; stop")
            break
    return best, ladder


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _finite(ratio: float) -> float | None:
    """A ratio for the JSON summary: rounded, or None when the baseline finished nothing."""
    return round(ratio, 2) if math.isfinite(ratio) else None


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return run_as_child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="100,000 rows, 20,000 changes, pyiceberg on 1,000 and all"
    )
    parser.add_argument("--rows", type=int, default=None, help="rows in the table (1,000,000)")
    parser.add_argument("--changes", type=int, default=None, help="changes in the spread batch (100,000)")
    parser.add_argument("--local", type=int, default=1000, help="changes in the localised batch")
    parser.add_argument("--repeats", type=int, default=None, help="ddblake/delta-rs rounds (1 quick, 2 full)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per pyiceberg run (30/240)")
    parser.add_argument("--workdir", default=None, help="keep the tables here (default: a temp dir)")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    changes = args.changes or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 2)
    timeout = args.timeout or (30.0 if args.quick else 240.0)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="ddblake-bench-apply-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    print(f"apply bench: {rows:,} rows, spread batch {changes:,} changes, work dir {work}")
    try:
        return run(Bench(work, rows, changes, args.local, timeout, 1000 if args.quick else 100), repeats)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def run(b: Bench, repeats: int) -> int:
    from ddblake.changes.resolve import bucket_of, key_string

    load = b.load()
    schema = b.copies()

    spread, spread_events = make_batch(
        b.items, "spread", list(range(b.rows)), list(range(b.rows, b.rows + b.changes)), b.changes, 1
    )
    b.batch(spread, spread_events, schema)
    in_local = [k for k in range(b.rows) if bucket_of(key_string(keys_of(k)), BUCKETS) in LOCAL_BUCKETS]
    new_local = [
        k
        for k in range(2 * b.rows, 2 * b.rows + 40 * b.local)
        if bucket_of(key_string(keys_of(k)), BUCKETS) in LOCAL_BUCKETS
    ]
    local, local_events = make_batch(b.items, "local", in_local, new_local, b.local, 2, dup_share=0.0)
    b.batch(local, local_events, schema)
    print(
        f"batches: spread {spread.changes:,} changes + {spread.duplicates:,} duplicate lines; "
        f"localised {local.changes:,} changes in buckets {list(LOCAL_BUCKETS)} of {BUCKETS}"
    )

    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for r in range(repeats):
        d = b.run_ddblake("spread")
        x = b.run_delta("spread")
        ours.append(d)
        theirs.append(x)
        print(
            f"round {r + 1}/{repeats}: ddblake {d['seconds']:.2f} s "
            f"({_rate(spread.changes, d['seconds']):,.0f} changes/s, {d['upserts']:,} upserts, "
            f"{d['deletes']:,} deletes, {d['duplicates']:,} duplicates dropped, "
            f"{d['history_rows']:,} history rows, {d['buckets_rewritten']} buckets, "
            f"peak RSS {d['peak_rss_mb']:.0f} MB); "
            f"delta-rs MERGE {x['seconds']:.2f} s ({_rate(spread.changes, x['seconds']):,.0f} changes/s, "
            f"{x['num_target_rows_updated']:,} updated, {x['num_target_rows_inserted']:,} inserted, "
            f"{x['num_target_rows_deleted']:,} deleted, peak RSS {x['peak_rss_mb']:.0f} MB)"
        )
    ours_s = statistics.median(o["seconds"] for o in ours)
    theirs_s = statistics.median(t["seconds"] for t in theirs)
    ratio_delta = theirs_s / ours_s
    phases = {k: statistics.median(o["phases"][k] for o in ours) for k in ours[0]["phases"]}
    ratio_merge = theirs_s / phases["current"]
    print(
        "ddblake phases (median): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
        + f"; its current-state merge alone vs delta-rs MERGE: {ratio_merge:.2f}x delta-rs's speed"
    )
    peak = max(o["peak_rss_mb"] for o in ours)

    dl = b.run_ddblake("local")
    xl = b.run_delta("local")
    print(
        f"localised: ddblake {dl['seconds']:.2f} s for {local.changes:,} changes, "
        f"{dl['buckets_rewritten']} of {BUCKETS} buckets, {dl['files_rewritten']} files rewritten "
        f"({dl['seconds'] / ours_s:.2f}x the spread batch's time for {local.changes / spread.changes:.1%} "
        f"of its changes); delta-rs {xl['seconds']:.2f} s ({xl['files_rewritten']} files rewritten)"
    )

    ours_rate = _rate(spread.changes, ours_s)
    prefixes: set[int] = set()
    runs = {}
    for join, what in (("key", "on the DynamoDB key (pk, sk)"), ("canonical", "on _ddb_key")):
        runs[join] = pyiceberg_ladder(b, join, what, spread, spread_events, schema, prefixes)
    key_best, key_ladder = runs["key"]
    canon_best, canon_ladder = runs["canonical"]
    same: dict[int, float] = {}
    for best in (key_best, canon_best):
        if best is not None and best["changes"] not in same:
            if best["changes"] == spread.changes:
                same[best["changes"]] = ours_s
            else:
                same[best["changes"]] = b.run_ddblake(f"prefix{best['changes']}")["seconds"]
                print(f"ddblake on the first {best['changes']:,} changes: {same[best['changes']]:.2f} s")

    def ratios(best: dict[str, Any] | None) -> tuple[float, float | None, float]:
        if best is None:
            return float("inf"), None, 0.0
        rate = _rate(best["changes"], best["seconds"])
        return ours_rate / rate, best["seconds"] / same[best["changes"]], rate

    ratio_py, same_key, py_rate = ratios(key_best)
    ratio_canon, same_canon, canon_rate = ratios(canon_best)
    print(
        f"ddblake {ours_rate:,.0f} changes/s (spread, median); "
        f"delta-rs {_rate(spread.changes, theirs_s):,.0f}; "
        f"pyiceberg upsert on (pk, sk) {py_rate:,.0f}, on _ddb_key {canon_rate:,.0f} (each on the largest "
        f"batch it survived); ratio vs pyiceberg {ratio_py:.1f} (on _ddb_key: {ratio_canon:.1f}), "
        f"vs delta-rs {ratio_delta:.2f}; ddblake peak RSS {peak:.0f} MB"
    )

    def ladder_json(ladder: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "changes": o["changes"],
                "outcome": "ok" if o.get("ok") else o["outcome"],
                "seconds": round(o.get("seconds", 0.0), 3),
            }
            for o in ladder
        ]

    summary = {
        "bench": "apply",
        "rows": b.rows,
        "changes": spread.changes,
        "duplicate_lines": spread.duplicates,
        "repeats": repeats,
        # None (JSON null, not the non-standard Infinity) when pyiceberg survived no batch at all
        "ratio": _finite(ratio_py),
        "ratio_vs_pyiceberg": _finite(ratio_py),
        "ratio_vs_deltalake": round(ratio_delta, 3),
        "ratio_vs_pyiceberg_same_batch": None if same_key is None else round(same_key, 2),
        "ratio_vs_pyiceberg_single_key": _finite(ratio_canon),
        "ratio_vs_pyiceberg_single_key_same_batch": None if same_canon is None else round(same_canon, 2),
        "ratio_vs_deltalake_merge_only": round(ratio_merge, 3),
        "ddblake_phases_s": {k: round(v, 3) for k, v in phases.items()},
        "peak_rss_mb": round(peak),
        "ddblake_s": round(ours_s, 3),
        "ddblake_changes_per_s": round(ours_rate),
        "deltalake_s": round(theirs_s, 3),
        "deltalake_changes_per_s": round(_rate(spread.changes, theirs_s)),
        "deltalake_peak_rss_mb": round(max(t["peak_rss_mb"] for t in theirs)),
        "pyiceberg_largest_ok_changes": key_best["changes"] if key_best else 0,
        "pyiceberg_changes_per_s": round(py_rate),
        "pyiceberg_ladder": ladder_json(key_ladder),
        "pyiceberg_single_key_largest_ok_changes": canon_best["changes"] if canon_best else 0,
        "pyiceberg_single_key_changes_per_s": round(canon_rate),
        "pyiceberg_single_key_ladder": ladder_json(canon_ladder),
        "local_changes": local.changes,
        "local_s": round(dl["seconds"], 3),
        "local_vs_spread_time": round(dl["seconds"] / ours_s, 3),
        "local_buckets_rewritten": dl["buckets_rewritten"],
        "spread_buckets_rewritten": ours[0]["buckets_rewritten"],
        "local_files_rewritten": dl["files_rewritten"],
        "spread_files_rewritten": ours[0]["files_rewritten"],
        "deltalake_local_s": round(xl["seconds"], 3),
        "load_s": round(load["seconds"], 1),
        "load_peak_rss_mb": round(load["peak_rss_mb"]),
        "goals_met": ratio_py >= 50 and ratio_delta >= 1 and max(peak, load["peak_rss_mb"]) < 2048,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
