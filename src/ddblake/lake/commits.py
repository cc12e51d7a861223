"""Iceberg commits the way apply needs them, beyond what pyiceberg's public API does fast enough.

* :class:`CachedTransaction`: a transaction that computes its view of the table metadata once per
  state (pyiceberg recomputes and deep-copies it on every access).
* :func:`replace_files`: an OVERWRITE snapshot that drops the parent's dead manifests.
* :func:`locate`: which file of its bucket holds each of a batch's keys, and its version.
* :func:`rewrite_buckets`: the current state's touched files rewritten file by file, read
  straight from their files where they hold the table's schema, in one snapshot.
* :func:`replace_table`: every data file replaced by new rows, in one snapshot.
* :func:`rebucket_table`: every data file rewritten into bucket files, one at a time, in one snapshot.

pyiceberg's ``overwrite`` commits a DELETE snapshot and then an APPEND snapshot, and the first is a
state no reader ever saw (``query --as-of`` a time between the two would read an empty table), so
apply never uses it: every rewrite here is one snapshot deleting the old files and adding the new.

These use pyiceberg 0.12 internals (``Transaction._updates``, ``_OverwriteFiles``, ``ArrowScan``,
and those :mod:`ddblake.lake.datafiles` uses) and fall back to public calls where those moved;
retest on upgrades.
"""

from __future__ import annotations

import functools
import itertools
import os
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata

from ddblake.changes.resolve import bucket_of, key_hash
from ddblake.lake import current, datafiles
from ddblake.lake.files import (
    HASH_COLUMN,
    FileRange,
    covering,
    file_ranges,
    layers,
    open_file,
    overlap_limit,
    place,
    split_sorted,
    with_hashes,
)
from ddblake.lake.filters import is_in


def missing_properties(table: Table, wanted: dict[str, str]) -> dict[str, str]:
    """The properties of ``wanted`` not set on ``table`` yet (a value someone set by hand is theirs)."""
    return {k: v for k, v in wanted.items() if k not in table.properties}


class CachedTransaction(Transaction):
    """pyiceberg's transaction, computing its view of the table metadata once per state.

    pyiceberg rebuilds and deep-copies the whole table metadata on every access to
    ``Transaction.table_metadata`` — some forty times per commit here — so the cost of a commit grew
    with the table's snapshot count: at 170 snapshots a one-row batch spent seconds copying. The
    metadata models are immutable (frozen), so one copy per (base metadata, staged updates) serves
    every access; a new update or a refreshed table makes a new one.
    """

    _view: tuple[object, object, TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates, view = self._table.metadata, self._updates, self._view
        if not updates:
            return base  # nothing staged: the table's own (immutable) metadata
        if view is None or view[0] is not base or view[1] is not updates:
            view = self._view = (base, updates, super().table_metadata)
        return view[2]


def bucket_tasks(cur: Table, rewrite: list[int]) -> dict[int, list[Any]] | None:
    """The data files of each bucket to rewrite, from one scan plan; None if the layout is unexpected.

    Every file of a current-state table lies in one bucket (identity partition), so a bucket's
    files hold exactly its rows and are read without a row filter.
    """
    spec = cur.spec()
    if len(spec.fields) != 1 or spec.fields[0].name != "_ddb_bucket":
        return None
    out: dict[int, list[Any]] = {b: [] for b in rewrite}
    for task in cur.scan(row_filter=is_in("_ddb_bucket", rewrite)).plan_files():
        file = task.file
        bucket = file.partition[0] if file.spec_id == spec.spec_id and len(file.partition) == 1 else None
        if bucket not in out or task.delete_files or task.residual != AlwaysTrue():
            return None
        out[bucket].append(task)
    return out


def replace_files(tx: Any, cur: Table, commit_uuid: uuid.UUID, snapshot_properties: dict[str, str]) -> Any:
    """An OVERWRITE snapshot producer that drops the parent's manifests holding no live file.

    pyiceberg's own overwrite carries every manifest of the parent snapshot forward, including
    those left with nothing but DELETED entries, so a table rewritten batch after batch gained one
    dead manifest per commit, and every scan plan read them all. Its fast append already drops them
    by the same rule (no added and no existing file), as Java Iceberg does.
    """
    producer = tx.update_snapshot(snapshot_properties=snapshot_properties).overwrite(commit_uuid=commit_uuid)
    replace = _replace_class()
    if replace is not None and type(producer) is replace.__base__:
        producer.__class__ = replace
    return producer


@functools.cache
def _replace_class() -> type | None:
    try:
        from pyiceberg.table.update.snapshot import _OverwriteFiles
    except ImportError:  # pragma: no cover - a pyiceberg that moved its internals
        return None

    class _ReplaceFiles(_OverwriteFiles):
        def _existing_manifests(self) -> list[Any]:
            manifests = super()._existing_manifests()
            return [m for m in manifests if m.has_added_files() or m.has_existing_files()]

    return _ReplaceFiles


def bucket_files(
    metadata: TableMetadata,
    io: Any,
    rows: pa.Table,
    write_uuid: uuid.UUID,
    counter: itertools.count[int] | None = None,
) -> list[Any]:
    """``rows`` written as data files of the table ``metadata`` describes, bucket by bucket, each
    bucket's rows sorted by hash and cut by :func:`ddblake.lake.files.split_sorted` (the layout
    :func:`rewrite_buckets` keeps). Files are named by ``write_uuid`` and ``counter``'s numbers:
    calls that share a ``write_uuid`` must share a counter, or a later file would overwrite an
    earlier one of the same name."""
    if rows.num_rows == 0:
        return []
    hashed = HASH_COLUMN in rows.column_names
    rows = rows.sort_by([("_ddb_bucket", "ascending")] + ([(HASH_COLUMN, "ascending")] if hashed else []))
    counter = itertools.count(0) if counter is None else counter
    out: list[Any] = []
    start = 0
    for count in pc.value_counts(rows.column("_ddb_bucket")).field("counts").to_pylist():  # sorted runs
        part = rows.slice(start, count)
        start += count
        for piece in split_sorted(part) if hashed else [part]:
            out += datafiles.data_files(metadata, io, piece, write_uuid, counter)
    return out


def commit_replace(
    tx: Any,
    cur: Table,
    write_uuid: uuid.UUID,
    snapshot_properties: dict[str, str],
    scope: BooleanExpression,
    deleted: Iterable[Any],
    added: Iterable[Any],
    relabel: Callable[[type], type] | None = None,
) -> None:
    """One snapshot (:func:`replace_files`) deleting the ``deleted`` data files and adding ``added``.

    ``scope`` bounds the rows the commit's conflict checks cover; ``relabel`` (see
    :func:`ddblake.lake.compact.replace_operation`) changes the snapshot's class.
    """
    producer = replace_files(tx, cur, write_uuid, snapshot_properties)
    if relabel is not None:
        producer.__class__ = relabel(producer.__class__)
    with producer as overwrite:
        overwrite.delete_by_predicate(scope)
        for data_file in deleted:
            overwrite.delete_data_file(data_file)
        for data_file in added:
            overwrite.append_data_file(data_file)


def replace_table(
    tx: Any,
    cur: Table,
    rows: pa.Table,
    snapshot_properties: dict[str, str],
    *,
    relabel: Callable[[type], type] | None = None,
) -> int:
    """Every data file of ``cur`` replaced by ``rows``, in one snapshot; returns the files replaced.

    What ``tx.overwrite(rows)`` does, without its DELETE snapshot (an empty table no reader saw):
    the rows are written against the schema and partition spec ``tx`` stages, bucket by bucket
    (:func:`bucket_files`).
    """
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible

    metadata = tx.table_metadata
    _check_pyarrow_schema_compatible(
        metadata.schema(), provided_schema=rows.schema, format_version=metadata.format_version
    )
    old = [task.file for task in cur.scan().plan_files()] if cur.current_snapshot() is not None else []
    write_uuid = uuid.uuid4()
    added = bucket_files(metadata, cur.io, rows, write_uuid)
    commit_replace(tx, cur, write_uuid, snapshot_properties, AlwaysTrue(), old, added, relabel)
    return len(old)


def rebucket_table(
    tx: Any,
    cur: Table,
    snapshot_properties: dict[str, str],
    *,
    relabel: Callable[[type], type] | None = None,
) -> int:
    """Every data file of ``cur`` read and written again as bucket files (:func:`bucket_files`),
    one file at a time, and all replaced in one snapshot; returns the files replaced.

    For a table whose rows stay the same but whose files must follow the partition spec ``tx``
    stages (:func:`ddblake.lake.layout.partitioned`). Memory holds one data file, not the table:
    reading the table whole (:func:`replace_table` of ``scan().to_arrow()``) needed its whole size.
    Each bucket gets a file per file read; apply's merges fold them as the bucket is rewritten.
    """
    from pyiceberg.io.pyarrow import ArrowScan

    if cur.current_snapshot() is None:
        return 0
    tasks = list(cur.scan().plan_files())
    metadata = tx.table_metadata
    reader = ArrowScan(cur.metadata, cur.io, cur.schema(), AlwaysTrue())
    write_uuid, counter = uuid.uuid4(), itertools.count(0)  # one counter: file names never repeat
    added: list[Any] = []
    for task in tasks:
        added += bucket_files(metadata, cur.io, reader.to_table([task]), write_uuid, counter)
    commit_replace(
        tx, cur, write_uuid, snapshot_properties, AlwaysTrue(), [t.file for t in tasks], added, relabel
    )
    return len(tasks)


def small_field(field: pa.Field) -> pa.Field:
    """``field`` with large strings, binaries and lists as their 32-bit-offset kinds, as files hold them."""
    t = field.type
    if pa.types.is_large_string(t):
        t = pa.string()
    elif pa.types.is_large_binary(t):
        t = pa.binary()
    elif pa.types.is_large_list(t) or pa.types.is_list(t):
        t = pa.list_(small_field(t.value_field))
    elif pa.types.is_struct(t):
        t = pa.struct([small_field(f) for f in t])
    elif pa.types.is_map(t):
        t = pa.map_(small_field(t.key_field), small_field(t.item_field), t.keys_sorted)
    return pa.field(field.name, t, field.nullable)


def read_files(
    cur: Table, tasks: list[Any], *, expected: pa.Schema | None = None, columns: list[str] | None = None
) -> pa.Table | None:
    """Files read straight with pyarrow: whole when each holds exactly ``expected``, else ``columns``.

    pyiceberg's ``ArrowScan`` reads through per-batch schema projection and its own thread pool,
    several times slower than reading the files; it is needed only where a file predates a schema
    change. None when any file differs, or when there is no file (the caller then reads through
    pyiceberg).

    Files keep the Arrow types they were written from, 64-bit offsets (``large_string``) or 32-bit
    ones (``string``): the same data, and one table holds both (rows an older ddblake typed against
    pyiceberg's Arrow schema were written with 64-bit ones). Every file's columns are given 32-bit
    offsets (:func:`small_field`) before the files are put together, which needs one schema.
    """
    parts = []
    for task in tasks:
        with cur.io.new_input(task.file.file_path).open() as f:
            try:
                part = pq.read_table(f, columns=columns)
            except (pa.ArrowInvalid, KeyError):  # a column this file does not hold
                return None
        small = pa.schema([small_field(f) for f in part.schema])
        fits = small.equals(expected) if expected is not None else part.column_names == columns
        if not fits or part.num_rows != task.file.record_count:
            return None
        parts.append(part if part.schema.equals(small) else part.cast(small))
    return pa.concat_tables(parts) if parts else None


def plan_buckets(cur: Table, buckets: list[int]) -> dict[int, list[FileRange]] | None:
    """Every data file of the ``buckets`` with its hash range (:mod:`ddblake.lake.files`).

    None when the layout is not apply's own (see :func:`bucket_tasks`); the caller then works on
    whole buckets through pyiceberg's scans.
    """
    tasks = bucket_tasks(cur, buckets)
    if tasks is None:
        return None
    schema = cur.schema()
    field_id = schema.find_field(HASH_COLUMN).field_id if HASH_COLUMN in schema.column_names else None
    return {b: file_ranges(t, field_id) for b, t in tasks.items()}


def _read_columns(cur: Table, task: Any, columns: list[str]) -> pa.Table:
    """Some columns of one data file: straight with pyarrow, else through pyiceberg's projection."""
    part = read_files(cur, [task], columns=columns)
    if part is None:
        from pyiceberg.io.pyarrow import ArrowScan

        part = ArrowScan(cur.metadata, cur.io, cur.schema().select(*columns), AlwaysTrue()).to_table([task])
    return part


def locate(
    cur: Table, plan: dict[int, list[FileRange]], keys: Iterable[str], buckets: int
) -> dict[str, tuple[int, str]]:
    """For each of ``keys`` the table holds: the index of its file in ``plan[bucket]``, and its version.

    Only keys are read, from the files whose hash range holds one of the keys' hashes, and then
    versions from the files holding one of the keys (for a batch of new keys, none). Reads run a
    few at a time (object stores answer each with some latency).
    """
    by_bucket: dict[int, tuple[list[str], list[int]]] = {}
    for key in keys:
        h = key_hash(key)  # once per key: the bucket is its remainder (resolve.bucket_of)
        mine, hashes = by_bucket.setdefault(h % buckets, ([], []))
        mine.append(key)
        hashes.append(h)
    reads: list[tuple[int, pa.Array, Any]] = []
    for bucket, (mine, hashes) in by_bucket.items():
        hashes.sort()
        wanted = pa.array(mine, pa.string())
        ranges = plan.get(bucket, [])
        reads += [(i, wanted, ranges[i].task) for i in covering(ranges, hashes)]

    def read(item: tuple[int, pa.Array, Any]) -> tuple[int, pa.Table]:
        index, wanted, task = item
        keys = _read_columns(cur, task, ["_ddb_key"]).column(0)
        mask = pc.is_in(keys, value_set=wanted)
        if not pc.any(mask).as_py():  # the usual case for new keys: versions are never read
            return index, pa.table(
                {"_ddb_key": pa.array([], pa.string()), "_ddb_version": pa.array([], pa.string())}
            )
        versions = _read_columns(cur, task, ["_ddb_version"]).column(0)
        return index, pa.table({"_ddb_key": keys.filter(mask), "_ddb_version": versions.filter(mask)})

    out: dict[str, tuple[int, str]] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(reads)))) as pool:
        for index, found in pool.map(read, reads):
            for key, version in zip(
                found.column("_ddb_key").to_pylist(), found.column("_ddb_version").to_pylist(), strict=True
            ):
                out[key] = (index, version)
    return out


def rewrite_buckets(
    tx: Any,
    cur: Table,
    new_rows: pa.Table,
    rewrite: list[int],
    changed: pa.Array,
    schema: pa.Schema,
    snapshot_properties: dict[str, str],
    buckets: int,
    plan: dict[int, list[FileRange]] | None = None,
    located: dict[str, tuple[int, str]] | None = None,
) -> int:
    """Replace the files of the ``rewrite`` buckets that the change touches, in one snapshot.

    In each bucket (see :mod:`ddblake.lake.files`), each file holding a ``changed`` key becomes,
    on its own, its other rows plus the new versions of its keys; the rows of keys new to the table
    join a base file rewritten anyway, or the bucket's open file, or else new files. Once a
    bucket's files overlapping its base pass :func:`ddblake.lake.files.overlap_limit`, their rows
    move into the base files too. Rows are sorted by hash and cut into files of the target size.
    Other files stay as they are. ``plan`` is
    :func:`plan_buckets` of ``rewrite`` and ``located`` is :func:`locate` of (at least) the
    ``changed`` keys, when the caller has them. Returns how many files were replaced.

    What ``tx.overwrite(kept + new_rows, overwrite_filter=_ddb_bucket IN rewrite)`` does, done
    differently where it matters:

    * only the touched files of a bucket are read and written, not the whole bucket, so the cost
      of a batch follows the rows it touches, not the table's size;
    * each file is read, merged and written on its own (two at a time), so memory holds a few
      files rather than every touched row, and rows are split by bucket with one cheap mask each
      — pyiceberg's overwrite splits a table with one filter pass over *all* its rows per partition;
    * one OVERWRITE snapshot replaces the files with the new ones, where ``overwrite``
      commits a delete snapshot then an append snapshot: half the snapshots (each one makes every
      later commit slower, since pyiceberg copies the whole metadata many times per commit) and no
      intermediate snapshot in which the touched buckets are empty.

    When a file is not in exactly one bucket (a layout apply did not write), every file the
    buckets' filter reaches is replaced whole instead: its rows but the changed keys', plus the new
    rows, written bucket by bucket, in one snapshot too.
    """
    from pyiceberg.io.pyarrow import ArrowScan, _check_pyarrow_schema_compatible

    overwrite_filter = is_in("_ddb_bucket", rewrite)
    plan = plan if plan is not None else plan_buckets(cur, rewrite)
    metadata = tx.table_metadata
    _check_pyarrow_schema_compatible(
        metadata.schema(), provided_schema=new_rows.schema, format_version=metadata.format_version
    )
    write_uuid = uuid.uuid4()

    def merged(old: pa.Table | None, mine: pa.Table, drop: pa.Array) -> pa.Table:
        if old is None or old.num_rows == 0:
            return mine
        kept = old.filter(pc.invert(pc.is_in(old.column("_ddb_key"), value_set=drop)))
        return pa.concat_tables([current.conform(with_hashes(kept), schema), mine])

    if plan is None:
        # Whole files, whatever their layout: every file the filter may reach is replaced by its
        # rows but the changed keys', the new rows joining them, written bucket by bucket.
        tasks = list(cur.scan(row_filter=overwrite_filter).plan_files())
        old_rows = (
            ArrowScan(cur.metadata, cur.io, cur.schema(), AlwaysTrue()).to_table(tasks) if tasks else None
        )
        added = bucket_files(metadata, cur.io, merged(old_rows, new_rows, changed), write_uuid)
        old_files = [task.file for task in tasks]
        commit_replace(tx, cur, write_uuid, snapshot_properties, overwrite_filter, old_files, added)
        return len(tasks)

    counter = itertools.count(0)
    reader = ArrowScan(cur.metadata, cur.io, cur.schema(), AlwaysTrue())
    expected = pa.schema([small_field(f) for f in cur.schema().as_arrow()])
    changed_keys = changed.to_pylist()
    if located is None:
        located = locate(cur, plan, changed_keys, buckets)
    dropped: dict[int, list[str]] = {}
    for key in changed_keys:
        dropped.setdefault(bucket_of(key, buckets), []).append(key)
    bucket_column = new_rows.column("_ddb_bucket")

    def whole(tasks: list[Any]) -> pa.Table:
        return read_files(cur, tasks, expected=expected) or reader.to_table(tasks)

    # Work items: (files replaced, their new rows, keys their old rows lose). A file holding a
    # changed key is rewritten with its keys' new rows; new keys' rows go to a base file rewritten
    # anyway, else to the open file, else to new files (no file replaced). Files whose rows all
    # moved elsewhere (overlapping files merged into the base) are replaced without a work item.
    work: list[tuple[list[Any], pa.Table, pa.Array]] = []
    absorbed: list[Any] = []
    for bucket in rewrite:
        ranges = plan.get(bucket, [])
        mine = new_rows.filter(pc.equal(bucket_column, pa.scalar(bucket, pa.int32())))
        drop = pa.array(dropped.get(bucket, []), pa.string())
        held = {located[k][0] for k in dropped.get(bucket, []) if k in located}
        homes = [where[0] if (where := located.get(k)) else None for k in mine.column("_ddb_key").to_pylist()]
        base, over = layers(ranges)
        size = sum(ranges[i].task.file.file_size_in_bytes for i in over)
        if over and size > overlap_limit(sum(ranges[i].task.file.file_size_in_bytes for i in base)):
            # Merge: the overlapping files' rows join the new ones, and every row goes to the
            # base file its hash falls in (or near), so the bucket is disjoint again.
            moved = [ranges[i].task for i in over]
            pooled = merged(whole(moved), mine, drop)  # their kept rows, then the new ones
            moved_homes: list[int | None] = [None] * (pooled.num_rows - mine.num_rows)
            homes = moved_homes + [None if h in over else h for h in homes]
            mine = pooled
            absorbed += moved
            held -= set(over)
            groups = place(ranges, base, mine.column(HASH_COLUMN).to_pylist(), homes, set(base), None)
        else:
            spare = open_file(ranges)
            groups = place(ranges, base, mine.column(HASH_COLUMN).to_pylist(), homes, held, spare)
        for index in sorted(held | {i for i in groups if i is not None}):
            rows_in = mine.take(pa.array(groups.get(index, []), pa.int64()))
            work.append(([ranges[index].task], rows_in, drop))
        if None in groups:
            work.append(([], mine.take(pa.array(groups[None], pa.int64())), drop))

    def write(item: tuple[list[Any], pa.Table, pa.Array]) -> list[Any]:
        tasks, mine, drop = item
        old = whole(tasks) if tasks else None
        return [
            f
            for part in split_sorted(merged(old, mine, drop))
            for f in datafiles.data_files(metadata, cur.io, part, write_uuid, counter)
        ]

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        data_files = [f for files in pool.map(write, work) for f in files]
    replaced = absorbed + [t for tasks, _, _ in work for t in tasks]
    commit_replace(
        tx, cur, write_uuid, snapshot_properties, overwrite_filter, [t.file for t in replaced], data_files
    )
    return len(replaced)
