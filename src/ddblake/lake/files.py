"""Which data files of the current state a batch reads and rewrites.

Buckets (``_ddb_bucket``, an identity partition) bound what a batch touches to the buckets its keys
hash to, but a bucket grows with the table: with a fixed bucket count, one change in a 100 GB
table would rewrite a sixteenth of it. So a bucket is held in several files, and the manifests
record each file's lowest and highest key hash (``_ddb_hash``, the CRC-32 whose remainder is the
bucket; Iceberg column bounds, exact for integers). Rows are written sorted by hash and cut into
files of about :data:`TARGET_FILE_BYTES`, so the files one rewrite writes cover disjoint ranges.

A bucket's files are a **base** of disjoint ranges plus files that **overlap** it
(:func:`layers`), and a batch works file by file:

* **Lookup.** It reads keys, and then versions, only from the files whose range holds one of its
  keys' hashes, and learns which file holds each key already in the table.
* **Changed keys.** Each file holding an updated or deleted key is rewritten on its own: its other
  rows plus the new versions of its keys. Files holding none of the batch's keys stay as they are.
* **New keys** (:func:`place`). A new key's row joins the base file its hash falls in (or the
  nearest below) when that file is rewritten anyway; otherwise it goes to the bucket's *open* file
  (its smallest, while under :func:`open_file_bytes`), or else to a new file, which overlaps the
  base. Rewriting the base file of every new key instead would rewrite every file of the table
  for a batch of random new keys (a full load's batches, or an application that mostly inserts).
* **Merge.** Once the overlapping files of a bucket pass :func:`overlap_limit` (a quarter of the
  base, 32 to 64 MiB of Parquet), the batch touching the bucket moves their rows into the base
  files their hashes fall in, and the bucket is disjoint again.

So a batch of inserts costs its own rows plus at most an open file per bucket, and each row is
rewritten a few times as a bucket grows, not once per batch; a lookup reads at most the overlap
limit besides the base files its hashes fall in.

Correctness needs only this: a key present in the table lies in exactly one file, whose range
holds its hash — so the lookup finds it — and every file holding a changed key is rewritten
without its old row. Files without hash bounds (written before ``_ddb_hash`` existed) overlap
everything, so the lookup always reads them, and they leave the layout when first rewritten or
merged.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from ddblake.changes.resolve import key_hash

TARGET_FILE_BYTES: Final = 128 << 20  # of Arrow memory per written file (Parquet is some 3-5x smaller)
HASH_COLUMN: Final = "_ddb_hash"


@dataclass(frozen=True)
class FileRange:
    """One data file of a bucket and the hashes it may hold (None: unknown, so any)."""

    task: Any  # pyiceberg FileScanTask
    low: int | None
    high: int | None

    def holds(self, hashes: Sequence[int]) -> bool:
        """Whether one of ``hashes`` (sorted) lies in this file's range."""
        if self.low is None or self.high is None:
            return bool(hashes)
        i = bisect.bisect_left(hashes, self.low)
        return i < len(hashes) and hashes[i] <= self.high


def file_ranges(tasks: Iterable[Any], field_id: int | None) -> list[FileRange]:
    """Each file with its hash range from the manifest's column bounds, sorted by range start."""
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import LongType

    out = []
    for task in tasks:
        low = high = None
        file = task.file
        if field_id is not None and file.lower_bounds and file.upper_bounds:
            lo_b, hi_b = file.lower_bounds.get(field_id), file.upper_bounds.get(field_id)
            if lo_b is not None and hi_b is not None and not (file.null_value_counts or {}).get(field_id):
                low, high = int(from_bytes(LongType(), lo_b)), int(from_bytes(LongType(), hi_b))
        out.append(FileRange(task, low, high))
    return sorted(out, key=lambda r: (-1 if r.low is None else r.low, r.task.file.file_path))


def covering(ranges: Sequence[FileRange], hashes: Sequence[int]) -> list[int]:
    """The indexes of the files whose range holds one of ``hashes`` (sorted): where those keys can be."""
    return [i for i, r in enumerate(ranges) if r.holds(hashes)]


def open_file_bytes() -> int:
    """Parquet bytes under which a file still takes in new keys' rows (a sixteenth of the target).

    Parquet is some 3-6x smaller than the Arrow memory :data:`TARGET_FILE_BYTES` counts, so an
    open file is a fraction of a full one: rewriting it with each batch's new rows stays cheap,
    and a bucket fed only inserts gains one file per this many bytes rather than one per batch.
    """
    return max(1, TARGET_FILE_BYTES // 16)


def open_file(ranges: Sequence[FileRange]) -> int | None:
    """The index in ``ranges`` of the bucket's open file (its smallest, if small enough), else None."""
    limit = open_file_bytes()
    sizes = [(r.task.file.file_size_in_bytes, i) for i, r in enumerate(ranges)]
    size, index = min(sizes, default=(limit, -1))
    return index if size < limit else None


def layers(ranges: Sequence[FileRange]) -> tuple[list[int], list[int]]:
    """The bucket's files split into a base of disjoint ranges and the files overlapping it.

    The base is picked largest file first, each file joining it if its range meets none already
    picked; files without bounds overlap everything. Returns (base, overlapping), as indexes.
    """
    base: list[int] = []
    taken: list[tuple[int, int]] = []  # sorted disjoint (low, high) of the base
    order = sorted(range(len(ranges)), key=lambda i: (-ranges[i].task.file.file_size_in_bytes, i))
    for i in order:
        low, high = ranges[i].low, ranges[i].high
        if low is None or high is None:
            continue
        at = bisect.bisect_left(taken, (low, high))
        if (at > 0 and taken[at - 1][1] >= low) or (at < len(taken) and taken[at][0] <= high):
            continue
        taken.insert(at, (low, high))
        base.append(i)
    chosen = set(base)
    return sorted(base, key=lambda i: ranges[i].low or 0), [i for i in range(len(ranges)) if i not in chosen]


def overlap_limit(base_bytes: int) -> int:
    """Parquet bytes of overlapping files a bucket may hold before they are merged into its base.

    A quarter of the base, within 4 to 8 open files' worth: each row is then rewritten a few times
    as the bucket grows, not once per batch, and a lookup reads at most this much besides the
    files its hashes fall in.
    """
    return min(max(base_bytes // 4, 4 * open_file_bytes()), 8 * open_file_bytes())


def place(
    ranges: Sequence[FileRange],
    base: Sequence[int],
    hashes: Sequence[int],
    homes: Sequence[int | None],
    rewritten: set[int],
    spare: int | None,
) -> dict[int | None, list[int]]:
    """Which file takes each new row (index in ``ranges``; None: a new file), as row lists.

    A row whose key the table holds goes back to its file (``homes``). A new key goes to the base
    file whose range holds its hash, else the base file nearest below it (else the first), when that
    file is ``rewritten`` anyway, so the base stays disjoint for free; else to ``spare`` (the open
    file, or None for a new file).
    """
    starts = [ranges[i].low or 0 for i in base]
    out: dict[int | None, list[int]] = {}
    for row, (h, home) in enumerate(zip(hashes, homes, strict=True)):
        if home is None:
            owner = base[max(bisect.bisect_right(starts, h) - 1, 0)] if base else None
            home = owner if owner is not None and owner in rewritten else spare
        out.setdefault(home, []).append(row)
    return out


def with_hashes(rows: pa.Table) -> pa.Table:
    """``rows`` with ``_ddb_hash`` filled in where it is missing or null (rows of older files)."""
    if HASH_COLUMN in rows.column_names and rows.column(HASH_COLUMN).null_count == 0:
        return rows
    hashes = pa.array([key_hash(k) for k in rows.column("_ddb_key").to_pylist()], pa.int64())
    if HASH_COLUMN in rows.column_names:
        i = rows.column_names.index(HASH_COLUMN)
        return rows.set_column(i, rows.schema.field(i), hashes)
    return rows.append_column(pa.field(HASH_COLUMN, pa.int64()), hashes)


def split_sorted(rows: pa.Table, target_bytes: int | None = None) -> list[pa.Table]:
    """``rows`` cut into parts of about ``target_bytes`` by hash order, never inside one hash.

    Parts cover disjoint hash ranges, which is what :func:`covering` relies on to skip files.
    ``target_bytes`` defaults to :data:`TARGET_FILE_BYTES` (read at each call).
    """
    if rows.num_rows == 0:
        return []
    per_row = max(1, rows.nbytes // rows.num_rows)
    step = max(1, (target_bytes or TARGET_FILE_BYTES) // per_row)
    if rows.num_rows <= step:
        return [rows]  # one file: its range is its min and max, whatever the order (no sort, no copy)
    rows = rows.take(pc.sort_indices(rows.column(HASH_COLUMN)))
    hashes = rows.column(HASH_COLUMN)
    parts, start = [], 0
    while start < rows.num_rows:
        end = min(rows.num_rows, start + step)
        while end < rows.num_rows and hashes[end].as_py() == hashes[end - 1].as_py():
            end += 1  # equal hashes stay in one file
        parts.append(rows.slice(start, end - start))
        start = end
    return parts
