"""The current-state table: one row per primary key, deleted items absent.

Rows are partitioned by a stable hash bucket of the key (``_ddb_bucket``, identity partition), so a
batch reads and rewrites only the buckets it touches: Iceberg drops the old files of those
partitions in metadata and adds the new ones — no per-row filter terms, no whole-table rewrite.

Every row carries the item's DynamoDB JSON (``_ddb_item``): typed columns are for querying, while
``dump`` rebuilds items from ``_ddb_item`` exactly. When a column's type must change in a way
Iceberg cannot promote (say int64 to decimal), the typed columns are recomputed from ``_ddb_item``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.table import Table

from ddblake.changes.model import compact_json
from ddblake.changes.resolve import Keyed, key_hash
from ddblake.lake.files import with_hashes

META_COLUMNS: dict[str, pa.DataType] = {
    "_ddb_key": pa.string(),
    "_ddb_bucket": pa.int32(),
    "_ddb_hash": pa.int64(),  # CRC-32 of _ddb_key: files record their range of it (lake.files)
    "_ddb_version": pa.string(),
    "_ddb_event_time": pa.timestamp("us", tz="UTC"),
    "_ddb_item": pa.string(),
}
DEFAULT_BUCKETS = 16
BUCKETS_PROPERTY = "ddblake.buckets"


def item_text(upsert: Keyed) -> str:
    """The ``_ddb_item`` text of an upsert: its new image as compact DynamoDB JSON."""
    return compact_json(upsert.event.new_image)


def meta_table(upserts: Sequence[Keyed], buckets: int, item_texts: Sequence[str] | None = None) -> pa.Table:
    """The metadata columns of the rows that ``upserts`` produce (``item_texts``: their item_text)."""
    texts = [item_text(u) for u in upserts] if item_texts is None else item_texts
    hashes = [key_hash(u.key) for u in upserts]
    return pa.table(
        {
            "_ddb_key": pa.array([u.key for u in upserts], pa.string()),
            "_ddb_bucket": pa.array([h % buckets for h in hashes], pa.int32()),
            "_ddb_hash": pa.array(hashes, pa.int64()),
            "_ddb_version": pa.array([u.version for u in upserts], pa.string()),
            "_ddb_event_time": pa.array(
                [u.event.event_time_us for u in upserts], META_COLUMNS["_ddb_event_time"]
            ),
            "_ddb_item": pa.array(texts, pa.string()),
        }
    )


def attribute_column(attr: str) -> str:
    """Column name of an attribute: its own name, unless it would shadow a metadata column."""
    return f"attr{attr}" if attr.startswith("_ddb_") else attr


def _attr_names(columns: Sequence[str]) -> dict[str, str]:
    """Column name -> attribute name, for columns that hold attributes."""
    out: dict[str, str] = {}
    for col in columns:
        if col in META_COLUMNS:
            continue
        out[col] = col[len("attr") :] if col.startswith("attr_ddb_") else col
    return out


def attribute_schema(table_schema: pa.Schema | None) -> pa.Schema | None:
    """The attribute part of a current-state schema, with attribute names (for the codec)."""
    if table_schema is None:
        return None
    names = _attr_names(table_schema.names)
    return pa.schema([table_schema.field(col).with_name(attr) for col, attr in names.items()])


def _to_columns(typed: pa.Table) -> pa.Table:
    return typed.rename_columns([attribute_column(n) for n in typed.column_names])


def typed_items(images: Sequence[object], attr_schema: pa.Schema | None, *, evolve: bool = True) -> pa.Table:
    """Typed attribute columns for items, widened from ``attr_schema`` as the codec's rules say."""
    from ddblake.codec import items_to_table

    return _to_columns(
        items_to_table(
            list(images),  # type: ignore[arg-type]
            attr_schema,
            evolve=evolve or attr_schema is None,
            drop_untyped=True,
            max_decimal_precision=38,
        )
    )


def _typed_texts(texts: Sequence[str], attr_schema: pa.Schema | None) -> pa.Table | None:
    """:func:`typed_items` of items given as their JSON text, by the codec's C++ JSON Lines path.

    None when the texts cannot be UTF-8 (a lone surrogate): the caller takes the dict path.
    """
    from ddblake.codec import jsonl_to_table

    try:
        data = "\n".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return None
    return _to_columns(
        jsonl_to_table(
            data,
            attr_schema,
            evolve=True,
            drop_untyped=True,
            max_decimal_precision=38,
        )
    )


def typed_rows(
    upserts: Sequence[Keyed],
    buckets: int,
    table_schema: pa.Schema | None,
    item_texts: Sequence[str] | None = None,
) -> pa.Table:
    """The rows ``upserts`` produce: typed attribute columns (schema evolved) and metadata.

    ``item_texts[i]``, when given, is ``item_text(upserts[i])`` already rendered, and the rows come
    from the texts alone (the events' images are not read: apply keeps only their text); the typed
    columns are then read from that text in C++ (the same result as from the images, faster).
    """
    attr_schema = attribute_schema(table_schema)
    typed = _typed_texts(item_texts, attr_schema) if item_texts else None
    if typed is None:
        images = [json.loads(t) for t in item_texts] if item_texts else [u.event.new_image for u in upserts]
        typed = typed_items(images, attr_schema)
    meta = meta_table(upserts, buckets, item_texts)
    for name in meta.column_names:
        typed = typed.append_column(meta.schema.field(name), meta.column(name))
    return typed


def empty_schema() -> pa.Schema:
    """A current-state schema with no attribute yet (a table whose first changes are deletes)."""
    return pa.schema([pa.field(n, t) for n, t in META_COLUMNS.items()])


def iceberg_compatible(schema: pa.Schema) -> pa.Schema:
    """The schema to create an Iceberg table with (metadata columns present, no null types)."""
    fields = [f for f in schema if not pa.types.is_null(f.type)]
    names = {f.name for f in fields}
    fields += [pa.field(n, t) for n, t in META_COLUMNS.items() if n not in names]
    return pa.schema(fields)


@dataclass(frozen=True)
class Target:
    """The schema rows must have after :func:`evolve`, and whether every row must be retyped."""

    schema: pa.Schema
    full_rewrite: bool


def _plain(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t):
        return pa.list_(_plain(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_plain(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain(f.type)) for f in t])
    return t


def evolve(tx: Any, table: Table, wanted: pa.Schema) -> Target:
    """Bring the table's schema to ``wanted`` inside ``tx``.

    New columns are added (Iceberg schema evolution, no rewrite). A column whose type changed in a
    way Iceberg cannot promote is dropped and added again with its new type, and the caller then
    rewrites every row, recomputing typed values from ``_ddb_item``.
    """
    have = table.schema().as_arrow()
    have_types = {f.name: _plain(f.type) for f in have}
    changed = [f for f in wanted if f.name in have_types and _plain(f.type) != have_types[f.name]]
    added = [f for f in wanted if f.name not in have_types]
    if changed:
        with tx.update_schema() as upd:
            for f in changed:
                upd.delete_column(f.name)
    if changed or added:
        with tx.update_schema() as upd:
            upd.union_by_name(pa.schema(changed + added))
    return Target(wanted, bool(changed))


def conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` with exactly ``schema``'s columns: missing ones null, types cast where they differ."""
    arrays = []
    for field in schema:
        if field.name in rows.column_names:
            col = rows.column(field.name)
            arrays.append(col if col.type == field.type else col.cast(field.type))
        else:
            arrays.append(pa.nulls(rows.num_rows, field.type))
    return pa.table(arrays, schema=pa.schema([pa.field(f.name, f.type) for f in schema]))


def retype(
    keep: pa.Table,
    upserts: Sequence[Keyed],
    buckets: int,
    schema: pa.Schema,
    item_texts: Sequence[str] | None = None,
) -> pa.Table:
    """Every row of the table again, typed for ``schema``: kept rows from their ``_ddb_item``.

    ``item_texts``: as for :func:`typed_rows`.
    """
    keep = with_hashes(keep)  # rows of files written before _ddb_hash existed
    items = [json.loads(s) for s in keep.column("_ddb_item").to_pylist()]
    attr = attribute_schema(schema)
    old = typed_items(items, attr, evolve=False)
    for name in META_COLUMNS:
        old = old.append_column(name, keep.column(name).cast(META_COLUMNS[name]))
    new = typed_rows(upserts, buckets, schema, item_texts)
    return pa.concat_tables([conform(old, schema), conform(new, schema)])
