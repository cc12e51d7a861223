"""What bench/apply.py feeds each side: its constants, the load and change batches, net changes.

Split from bench/apply.py so that the entry point holds only the run and its report. Here: the
raw load lines, the change batches (raw lines and their distinct events), the same batch resolved
to net changes for delta-rs and pyiceberg, and the copies of table directories each timed run
starts from. Nothing here is timed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import Any

from _common import Items, raw_line

TABLE = "bench-table"
CURRENT_ID = "ddb.bench_table"
LOAD_US = 1_764_316_800_000_000  # 2025-11-28T08:00:00Z
CHANGES_US = LOAD_US + 86_400_000_000  # a day later
BUCKETS = 16
LOCAL_BUCKETS = (3, 11)
LOAD_FILE_LINES = 50_000
CHANGE_FILE_LINES = 10_000


# --- data ------------------------------------------------------------------------------------------


def load_lines(items: Items, rows: int) -> Iterator[bytes]:
    """The raw load lines of items ``0 .. rows - 1``, as a table scan writes them.

    Args:
        items: The item generator.
        rows: How many items.

    Yields:
        One raw-log line per item.
    """
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
