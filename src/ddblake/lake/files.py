"""Which data files of the current state a batch reads and rewrites.

Buckets (``_ddb_bucket``, an identity partition) bound what a batch touches to the buckets its keys
hash to, but a bucket grows with the table: with a fixed bucket count, one change in a 100 GB
table would rewrite a sixteenth of it. So each bucket is further held in files that cover disjoint
ranges of the key hash (``_ddb_hash``, the CRC-32 whose remainder is the bucket): rows are written
sorted by hash and cut into files of about :data:`TARGET_FILE_BYTES`, and the manifests record each
file's lowest and highest hash (Iceberg column bounds, exact for integers). A batch then reads and
rewrites only the files whose range holds one of its keys' hashes — plus, for a key new to the
table whose hash falls between files, the file nearest below it, which the rewrite widens to cover
it. Each such file is rewritten on its own (its rows plus the new rows it takes), so the files
written cover the same stretch of hashes as the one they replace and never reach into a
neighbour's. The cost of a batch follows the files it touches, whatever the table's size.

The rules need no more than this to be correct: a key present in the table lies in a file whose
range holds its hash, and every such file is rewritten without the batch's keys. Files without
hash bounds (written before ``_ddb_hash`` existed) hold every hash as far as this module knows,
so they are always taken, and leave the layout as soon as they are rewritten.
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


def hashes_by_bucket(keys: Iterable[str], buckets: int) -> dict[int, list[int]]:
    """The keys' hashes, sorted, per bucket (what :func:`covering` takes)."""
    out: dict[int, list[int]] = {}
    for key in keys:
        h = key_hash(key)
        out.setdefault(h % buckets, []).append(h)
    for hashes in out.values():
        hashes.sort()
    return out


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


def covering(ranges: Sequence[FileRange], hashes: Sequence[int]) -> list[FileRange]:
    """The files whose range holds one of ``hashes`` (sorted): where those keys can be."""
    return [r for r in ranges if r.holds(hashes)]


def owners(ranges: Sequence[FileRange], hashes: Sequence[int]) -> list[int] | None:
    """For each hash, the index in ``ranges`` of the file that takes its new row.

    The file whose range holds the hash, else the nearest below it (else the first): rewriting
    that file with the row widens its range to the hash, and ranges stay disjoint, since the hash
    lay between that file's end and the next file's start. None when a file has no bounds (the
    whole bucket is then rewritten as one) or the bucket has no file yet.
    """
    if not ranges or any(r.low is None or r.high is None for r in ranges):
        return None
    starts = [r.low for r in ranges if r.low is not None]
    return [max(bisect.bisect_right(starts, h) - 1, 0) for h in hashes]


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
