"""Compaction: a partition's small files rewritten into one, in one ``replace`` commit.

Every apply cycle adds a small file to a history day, and deletes leave a current-state bucket's
files small; scans slow down as they pile up. The commit deletes exactly the files read and adds
files holding exactly their rows, so no reader sees a row change. :mod:`ddblake.lake.maintain`
decides when it runs.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Summary

from ddblake.lake.commits import CachedTransaction, replace_files
from ddblake.lake.files import HASH_COLUMN

SMALL_FILE_BYTES = 16 << 20  # history files below this size are compacted
COMPACT_BUDGET_BYTES = 128 << 20  # at most this much Parquet is rewritten (and held) per commit


@dataclass
class Compaction:
    """What one compaction commit did (counts only)."""

    partitions: int = 0
    files_removed: int = 0
    files_added: int = 0
    rows: int = 0


def compact_small_files(
    table: Table,
    min_files: int,
    *,
    small_bytes: int = SMALL_FILE_BYTES,
    budget_bytes: int = COMPACT_BUDGET_BYTES,
) -> Compaction | None:
    """Rewrite each partition holding more than ``min_files`` small files into one file.

    The history's partitions are event days (files under :data:`SMALL_FILE_BYTES`); the current
    state's are key buckets (files under :func:`ddblake.lake.files.open_file_bytes`, whose rows are
    written sorted by key hash, so each file written records a tight hash range).

    One ``replace`` snapshot deletes exactly the files read and adds files written from exactly
    their rows (sorted by event time; counts checked before the commit). It asserts main is still
    the snapshot read, so a concurrent apply makes it fail rather than race it. None when nothing
    was due; never touches a table with delete files.
    """
    snap = table.current_snapshot()
    if min_files <= 0 or snap is None or snap.summary is None:
        return None
    if int(snap.summary.get("total-data-files") or 0) <= min_files:
        return None  # cheap: no partition can be over the threshold
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for task in table.scan(snapshot_id=snap.snapshot_id).plan_files():
        if task.delete_files:
            return None
        if task.file.spec_id == table.spec().spec_id and task.file.file_size_in_bytes < small_bytes:
            groups.setdefault(_values(task.file.partition), []).append(task)
    tasks: list[Any] = []
    spent = 0
    for group in sorted(groups.values(), key=len, reverse=True):
        for task in sorted(group, key=lambda t: t.file.file_path) if len(group) > min_files else ():
            if spent >= budget_bytes:
                break
            tasks.append(task)
            spent += task.file.file_size_in_bytes
    return _rewrite(table, tasks) if len(tasks) > 1 else None


def _rewrite(table: Table, tasks: list[Any]) -> Compaction:
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(tasks)
    by = ("_ddb_bucket", HASH_COLUMN) if HASH_COLUMN in rows.column_names else ("event_time", "_ddb_version")
    order = [(c, "ascending") for c in by if c in rows.column_names]
    rows = rows.sort_by(order) if order else rows  # tight row-group statistics for time filters
    write_uuid = uuid.uuid4()
    added = list(
        _dataframe_to_data_files(table_metadata=table.metadata, df=rows, io=table.io, write_uuid=write_uuid)
    )
    expected = sum(t.file.record_count for t in tasks)
    partitions = {_values(t.file.partition) for t in tasks}
    if rows.num_rows != expected or sum(f.record_count for f in added) != expected:
        raise RuntimeError(f"compaction read {rows.num_rows} rows, wrote other counts; expected {expected}")
    if {_values(f.partition) for f in added} - partitions:
        raise RuntimeError("compaction would move rows to another partition")
    props = {"ddblake.maintenance": "compact", "ddblake.compacted-files": str(len(tasks))}
    with CachedTransaction(table) as tx:
        producer = replace_files(tx, table, write_uuid, props)  # apply's: drops dead manifests
        producer.__class__ = replace_operation(producer.__class__)
        with producer as rewrite:
            for task in tasks:
                rewrite.delete_data_file(task.file)
            for data_file in added:
                rewrite.append_data_file(data_file)
    return Compaction(len(partitions), len(tasks), len(added), expected)


def _values(record: Any) -> tuple[Any, ...]:
    return tuple(record[i] for i in range(len(record)))


@functools.cache
def replace_operation(base: Any) -> type:
    """``base`` (an overwrite producer) committing as Iceberg's ``replace``: files moved, no data changed.

    Incremental readers (Spark or Flink streaming the history) skip ``replace`` snapshots, where an
    ``overwrite`` looks like changed data. pyiceberg 0.12 only sums up overwrites, so the summary
    is computed as one and relabelled.
    """

    def _summary(self: Any, snapshot_properties: dict[str, str] = {}) -> Summary:  # noqa: B006 - read only
        summary: Summary = base._summary(self, snapshot_properties)
        return Summary(Operation.REPLACE, **summary.additional_properties)

    return type(f"_Replace{base.__name__}", (base,), {"_summary": _summary})
