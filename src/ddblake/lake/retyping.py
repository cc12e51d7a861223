"""Retyping a whole current-state table, one data file at a time (docs/types.md, Retyping).

When a batch changes a column in a way the rows already written cannot follow (int64 to decimal,
a decimal's scale step, a type conflict, a map gaining a key where rows held an untyped value:
:mod:`ddblake.lake.fieldadds`), every row's typed columns are
computed again from its ``_ddb_item`` and the table is replaced in one snapshot. That used to read
the whole table into memory and parse every item at once: 2.7 GB at the peak for a million small
items, so a table of a few million would stop apply for good with out-of-memory, each retry
failing the same way. Here the work goes file by file, in two passes, and memory holds one file:

1. the schema every row needs: each file's items typed by their values, the types joined over
   every file and the batch's own items (:mod:`ddblake.codec.evolve`), which gives the schema
   typing them all at once gives;
2. each file's rows typed for that schema and written, then the batch's rows; one snapshot
   replaces every data file with what was written (:func:`ddblake.lake.commits.commit_replace`).

The rows of the batch's changed keys are left out of both passes (the batch's rows replace them).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table

from ddblake.changes.model import compact_json
from ddblake.changes.resolve import Keyed
from ddblake.codec.evolve import evolved_schema, infer_text_types, join_types
from ddblake.lake import current, fieldadds, untypedcols
from ddblake.lake.commits import bucket_files, commit_replace
from ddblake.lake.current import META_COLUMNS
from ddblake.lake.files import with_hashes


def retype_table(
    tx: Any,
    cur: Table,
    changed: set[str],
    upserts: Sequence[Keyed],
    buckets: int,
    wanted: pa.Schema,
    item_texts: Sequence[str],
    snapshot_properties: dict[str, str],
) -> int:
    """Every row of ``cur`` again, with the batch's: one snapshot; returns the data files replaced.

    For a column whose type changed beyond what Iceberg can promote (:func:`current.rewrites_all`):
    the rows of keys not ``changed`` are retyped from their items under the schema all rows need,
    the table evolves to it, and one snapshot replaces every data file with them and the batch's
    ``upserts`` (``wanted``: their typed rows' schema, whose changed columns are typed again from
    the values of every item, kept and upserted together).
    """
    from pyiceberg.io.pyarrow import ArrowScan, _check_pyarrow_schema_compatible

    tasks = list(cur.scan().plan_files()) if cur.current_snapshot() is not None else []
    drop = pa.array(sorted(changed), pa.string())
    precision = current.DECIMAL_PRECISION

    def kept(task: Any, names: Sequence[str] | None = None) -> pa.Table:
        schema = cur.schema() if names is None else cur.schema().select(*names)
        rows = ArrowScan(cur.metadata, cur.io, schema, AlwaysTrue()).to_table([task])
        return rows.filter(pc.invert(pc.is_in(rows.column("_ddb_key"), value_set=drop)))

    def texts_of(rows: pa.Table) -> list[str]:
        return [str(t) for t in rows.column("_ddb_item").to_pylist()]

    def types_of(texts: Sequence[str]) -> dict[str, Any]:
        """The texts' value types, read in C++ (``_ddb_item`` read from Parquet is always UTF-8)."""
        return infer_text_types("\n".join(texts).encode("utf-8"), max_decimal_precision=precision)

    # Pass 1: the schema every row needs. Each file's items are typed by their values, and those
    # types joined (as typing them all at once does: an int64 column read back from a file counts
    # 19 digits, whatever its values), then the batch's items.
    stored = cur.schema().as_arrow()
    retyped = {f.name for f in current.changed_columns({f.name: f for f in stored}, wanted)}
    kept_columns = pa.schema([f for f in wanted if f.name not in retyped])
    # The untyped columns' shapes, not the residues: every row is typed again here, which gives
    # each column's residue anew (and grafted residue fields would come first in the joint order).
    absent = untypedcols.without_columns(current.untyped_shapes(cur), current.attribute_columns(stored))
    base = current.attribute_schema(kept_columns, absent)
    news = list(item_texts) if item_texts else [compact_json(u.event.new_image) for u in upserts]
    parts: Iterator[list[str]] = (texts_of(kept(t, ["_ddb_key", "_ddb_item"])) for t in tasks)
    types: dict[str, Any] = {}
    for texts in itertools.chain(parts, [news]):  # one file's items at a time
        if texts:
            types = join_types(types, types_of(texts), max_decimal_precision=precision)
    joint = evolved_schema(types, base, max_decimal_precision=precision, wide_decimals=True)
    # Columns typed anew here get their struct fields in key order, as one batch gives (a column
    # known before only by its untyped shape would have that shape's keys first).
    # The table's columns kept as they are, by attribute name; every other column is typed anew.
    existing = pa.schema([f for f in kept_columns if f.name in stored.names])
    kept_names = set((current.attribute_schema(existing) or pa.schema([])).names)
    joint = pa.schema(
        [f if f.name in kept_names else fieldadds.in_order(f) for f in joint], metadata=joint.metadata
    )
    so_far, left_out = current.lake_columns(joint.empty_table(), wanted)
    old_schema = pa.schema([*so_far.schema, *(pa.field(n, t) for n, t in META_COLUMNS.items())])
    new = current.typed_rows(upserts, buckets, old_schema, item_texts)
    final = new.schema
    joined = untypedcols.join_untyped(left_out, untypedcols.untyped_columns(final))
    present = current.attribute_columns(final)
    untyped_left = untypedcols.without_columns(joined, present)
    untyped_left.update(untypedcols.only_columns(left_out, present))  # residues, over every row
    plain = final.remove_metadata()  # the fields' text markers stay; the untyped record is set below
    target = current.evolve(
        tx, cur, untypedcols.with_untyped(plain.empty_table(), untyped_left).schema, retyped=True
    )

    # Pass 2: each file's rows typed for ``final``, written; then the batch's rows.
    metadata = tx.table_metadata
    _check_pyarrow_schema_compatible(
        metadata.schema(),
        provided_schema=current.conform(plain.empty_table(), target.schema).schema,
        format_version=metadata.format_version,
    )
    write_uuid, counter = uuid.uuid4(), itertools.count(0)  # one counter: file names never repeat
    attributes = current.attribute_schema(final)
    added: list[Any] = []
    for task in tasks:
        rows = with_hashes(kept(task))
        if rows.num_rows == 0:
            continue
        typed = current.typed_texts(texts_of(rows), attributes, final, evolve=False)[0]
        for name in META_COLUMNS:
            typed = typed.append_column(name, rows.column(name).cast(META_COLUMNS[name]))
        del rows
        part = current.conform(current.conform(typed, final), target.schema)
        added += bucket_files(metadata, cur.io, part, write_uuid, counter)
    part = current.conform(current.conform(new, final), target.schema)
    added += bucket_files(metadata, cur.io, part, write_uuid, counter)
    commit_replace(tx, cur, write_uuid, snapshot_properties, AlwaysTrue(), [t.file for t in tasks], added)
    return len(tasks)
