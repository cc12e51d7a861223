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
apply over delta-rs's MERGE alone), ``peak_rss_mb`` (ddblake's apply process), and the details.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Items, keys_of, peak_rss_mb, raw_line, run_child, write_raw  # noqa: E402

from ddblake.lake.storage import Storage  # noqa: E402

TABLE = "bench-table"
CURRENT_ID = "ddb.bench_table"
LOAD_US = 1_764_316_800_000_000  # 2025-11-28T08:00:00Z
CHANGES_US = LOAD_US + 86_400_000_000  # a day later
BUCKETS = 16
LOCAL_BUCKETS = (3, 11)
LOAD_FILE_LINES = 50_000
CHANGE_FILE_LINES = 10_000
SCRIPT = str(Path(__file__).resolve())


# --- data ------------------------------------------------------------------------------------------


def load_lines(items: Items, rows: int) -> Any:
    for i in range(rows):
        yield raw_line(TABLE, "LOAD", i, items.image(i), f"load-{i:08d}", LOAD_US, source="scan")


class Batch:
    """A batch of change events as raw lines, plus what it does per key."""

    def __init__(self, name: str, lines: list[bytes], changes: int, duplicates: int) -> None:
        self.name = name
        self.lines = lines
        self.changes = changes
        self.duplicates = duplicates


def make_batch(
    items: Items,
    name: str,
    keys_pool: list[int],
    new_keys: list[int],
    changes: int,
    seed: int,
    *,
    time_offset_us: int = 0,
    dup_share: float = 0.05,
) -> tuple[Batch, list[bytes]]:
    """80 % updates of keys drawn from ``keys_pool``, 10 % inserts of ``new_keys``, 10 % deletes.

    Returns the batch (lines shuffled, 5 % repeated) and its distinct events in event order (for
    building the same net changes for the other engines, and prefixes of it for pyiceberg).
    """
    rng = Random(seed)
    n_ins = changes // 10
    n_del = changes // 10
    n_upd = changes - n_ins - n_del
    deleted = rng.sample(keys_pool, n_del)
    gone = set(deleted)
    live = [k for k in keys_pool if k not in gone]
    ops = [("MODIFY", rng.choice(live)) for _ in range(n_upd)]
    ops += [("INSERT", k) for k in new_keys[:n_ins]]
    ops += [("REMOVE", k) for k in deleted]
    rng.shuffle(ops)
    revs: dict[int, int] = {}
    distinct: list[bytes] = []
    for idx, (op, key) in enumerate(ops):
        rev = idx + 1
        before = revs.get(key, 0)
        old = None if op == "INSERT" else items.image(key, before)
        new = None if op == "REMOVE" else items.image(key, rev)
        revs[key] = rev
        distinct.append(
            raw_line(
                TABLE,
                op,
                key,
                new,
                f"{name}-{idx:08d}",
                CHANGES_US + time_offset_us + idx * 1000,
                seq=f"{10**20 + time_offset_us + idx}",
                old=old,
            )
        )
    dups = [distinct[i] for i in rng.sample(range(len(distinct)), int(len(distinct) * dup_share))]
    lines = distinct + dups
    rng.shuffle(lines)
    return Batch(name, lines, len(distinct), len(dups)), distinct


def net_changes(lines: list[bytes], schema: Any) -> Any:
    """The batch resolved by ddblake's own rules: newest change per key, typed like the table, + _op."""
    import pyarrow as pa

    from ddblake.changes.model import ChangeEvent
    from ddblake.changes.resolve import bucket_of, keyed, winners
    from ddblake.lake import current

    best = winners(keyed(ChangeEvent.from_line(line) for line in lines))
    upserts = [c for c in best.values() if c.event.op != "REMOVE"]
    removes = [c for c in best.values() if c.event.op == "REMOVE"]
    up = current.conform(current.typed_rows(upserts, BUCKETS, schema), schema)
    rm = pa.table(
        {
            "_ddb_key": pa.array([c.key for c in removes], pa.string()),
            "_ddb_bucket": pa.array([bucket_of(c.key, BUCKETS) for c in removes], pa.int32()),
            "_ddb_version": pa.array([c.version for c in removes], pa.string()),
        }
    )
    rows = pa.concat_tables([up, current.conform(rm, schema)])
    ops = ["UPSERT"] * up.num_rows + ["REMOVE"] * rm.num_rows
    return rows.append_column("_op", pa.array(ops, pa.string()))


# --- file sets -------------------------------------------------------------------------------------


def snapshot(src: Path, dst: Path) -> None:
    """Copy a table directory: data files hard-linked (never modified in place), databases copied."""
    if dst.exists():
        shutil.rmtree(dst)

    def copy(s: str, d: str) -> None:
        if s.endswith((".db", ".db-journal", ".db-wal")):
            shutil.copy2(s, d)
        else:
            os.link(s, d)

    shutil.copytree(src, dst, copy_function=copy)


def install_raw(lake: Path, raw_src: Path) -> None:
    """Add a batch's raw files to a lake (hard links)."""
    for f in raw_src.rglob("*.gz"):
        target = lake / f.relative_to(raw_src)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, target)


# --- children: each times one thing in a fresh process ---------------------------------------------


def child_ddblake(work: Path, max_files: int) -> dict[str, Any]:
    import pyiceberg.catalog.sql  # noqa: F401  (imported lazily by open_catalog: not part of the timing)

    import ddblake.codec  # noqa: F401
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig

    phases = _time_phases()
    lake = str(work / "lake")
    started = time.perf_counter()
    config = ApplyConfig.build(
        table=TABLE, lake=LakeConfig.build(lake=lake), once=True, buckets=BUCKETS, max_files=max_files
    )
    result = Applier(config).run_once()
    seconds = time.perf_counter() - started
    phases["other"] = seconds - sum(phases.values())
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        **result.__dict__,
    }


def _time_phases() -> dict[str, float]:
    """Wrap apply's three stages with timers (reading raw files, history commit, current lookup + commit)."""
    from ddblake.lake import apply as mod

    phases = {"read_parse": 0.0, "history": 0.0, "current": 0.0}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] += time.perf_counter() - t0

        return wrapper

    mod.read_raw = timed("read_parse", mod.read_raw)  # type: ignore[attr-defined]
    mod.Applier._commit_history = timed("history", mod.Applier._commit_history)  # type: ignore[method-assign]
    mod.Applier._commit_current = timed("current", mod.Applier._commit_current)  # type: ignore[method-assign]
    mod.Applier._lookup = timed("current", mod.Applier._lookup)  # type: ignore[method-assign]
    return phases


def child_delta(work: Path, changes: str) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    source = pq.read_table(work / changes)
    started = time.perf_counter()
    metrics = (
        DeltaTable(str(work / "delta"))
        .merge(
            source=source,
            predicate="t._ddb_bucket = s._ddb_bucket AND t._ddb_key = s._ddb_key",
            source_alias="s",
            target_alias="t",
        )
        .when_matched_delete(predicate="s._op = 'REMOVE' AND s._ddb_version > t._ddb_version")
        .when_matched_update_all(
            predicate="s._op <> 'REMOVE' AND s._ddb_version > t._ddb_version", except_cols=["_op"]
        )
        .when_not_matched_insert_all(predicate="s._op <> 'REMOVE'", except_cols=["_op"])
        .execute()
    )
    seconds = time.perf_counter() - started
    keep = ("num_target_rows_updated", "num_target_rows_inserted", "num_target_rows_deleted")
    out = {k: metrics.get(k) for k in keep}
    out["files_rewritten"] = metrics.get("num_target_files_removed")
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), **out}


def _pyiceberg_catalog(work: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    root = work / "pyiceberg"
    root.mkdir(exist_ok=True)
    catalog = SqlCatalog("bench", uri=f"sqlite:///{root}/catalog.db", warehouse=(root / "warehouse").as_uri())
    return catalog


def child_pyiceberg_setup(work: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from pyiceberg.transforms import IdentityTransform

    base = pq.read_table(work / "base.parquet")
    catalog = _pyiceberg_catalog(work)
    catalog.create_namespace("bench")
    table = catalog.create_table("bench.t", schema=base.schema)
    with table.update_spec() as spec:
        spec.add_field("_ddb_bucket", IdentityTransform(), "_ddb_bucket")
    table = catalog.load_table("bench.t")
    table.append(base)
    return {"rows": base.num_rows}


def child_pyiceberg(work: Path, changes: str, join: str) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyiceberg.expressions import In

    net = pq.read_table(work / changes)
    is_rm = pc.equal(net.column("_op"), "REMOVE")
    ups = net.filter(pc.invert(is_rm)).drop_columns(["_op"])
    removed = net.filter(is_rm).column("_ddb_key").to_pylist()
    table = _pyiceberg_catalog(work).load_table("bench.t")
    ups = ups.cast(table.schema().as_arrow())
    join_cols = ["pk", "sk"] if join == "key" else ["_ddb_key"]
    started = time.perf_counter()
    res = table.upsert(ups, join_cols=join_cols)
    upsert_s = time.perf_counter() - started
    if removed:
        table.delete(In("_ddb_key", removed))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "upsert_s": upsert_s,
        "peak_rss_mb": peak_rss_mb(),
        "rows_updated": res.rows_updated,
        "rows_inserted": res.rows_inserted,
        "rows_deleted": len(removed),
    }


def run_as_child(argv: list[str]) -> int:
    mode, work = argv[0], Path(argv[1])
    if mode == "ddblake":
        out = child_ddblake(work, int(argv[2]))
    elif mode == "delta":
        out = child_delta(work, argv[2])
    elif mode == "pyiceberg-setup":
        out = child_pyiceberg_setup(work)
    elif mode == "pyiceberg":
        out = child_pyiceberg(work, argv[2], argv[3])
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(json.dumps(out))
    return 0


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
        "ratio": round(ratio_py, 2),
        "ratio_vs_pyiceberg": round(ratio_py, 2),
        "ratio_vs_deltalake": round(ratio_delta, 3),
        "ratio_vs_pyiceberg_same_batch": None if same_key is None else round(same_key, 2),
        "ratio_vs_pyiceberg_single_key": round(ratio_canon, 2),
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
        "goals_met": ratio_py >= 50 and ratio_delta >= 1 and peak < 2048,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
