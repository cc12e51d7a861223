"""The current-state table: one row per primary key, deleted items absent.

Rows are partitioned by a stable hash bucket of the key (``_ddb_bucket``, identity partition), so a
batch reads and rewrites only the buckets it touches: Iceberg drops the old files of those
partitions in metadata and adds the new ones — no per-row filter terms, no whole-table rewrite.

Every row carries the item's DynamoDB JSON (``_ddb_item``): typed columns are for querying, while
``dump`` rebuilds items from ``_ddb_item`` exactly. When a column's type must change in a way
Iceberg cannot promote (say int64 to decimal), the typed columns are recomputed from ``_ddb_item``
(:func:`evolve`; column names and the other rules that keep the table independent of how changes
were batched are in :mod:`ddblake.lake.columns`). Decimal columns are ``decimal(38, S)`` from the
start (:data:`DECIMAL_PRECISION`, the codec's ``wide_decimals``), so that numbers gaining digits
cost only the rows they touch: only a scale step changes such a column (docs/types.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.table import Table

from ddblake.changes.model import compact_json
from ddblake.changes.resolve import Keyed, key_hash
from ddblake.codec.schema import T, arrow_field, from_field
from ddblake.lake import columns, fieldadds, untypedcols

log = logging.getLogger(__name__)

MANY_COLUMNS = 1000
"""Attribute columns past which each batch that adds more is warned about (:func:`evolve`)."""

META_COLUMNS: dict[str, pa.DataType] = {
    "_ddb_key": pa.string(),
    "_ddb_bucket": pa.int32(),
    "_ddb_hash": pa.int64(),  # CRC-32 of _ddb_key: files record their range of it (lake.files)
    "_ddb_version": pa.string(),
    "_ddb_event_time": pa.timestamp("us", tz="UTC"),
    "_ddb_item": pa.string(),
}
DECIMAL_PRECISION = 38
"""Digits of every decimal column apply adds or changes: Iceberg's widest, so that a value with more
digits before the point never changes the column (the codec's ``wide_decimals``; docs/types.md)."""
DEFAULT_BUCKETS = 16
BUCKETS_PROPERTY = "ddblake.buckets"
UNTYPED_PROPERTY = "ddblake.untyped-columns"
"""The columns not in the table that some row written held an untyped value for, with the shape
of those values: a JSON object (:func:`ddblake.lake.untypedcols.dump_untyped`); an older ddblake wrote
a JSON list of names."""


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


def small_type(t: pa.DataType) -> pa.DataType:
    """``t`` with 32-bit offsets at every depth (``string``, ``binary``, ``list``), fields' names and
    metadata (text markers) kept.

    pyiceberg gives a table's schema in Arrow with 64-bit offsets (``large_string``), and the codec
    types a batch with the types it is given: rows typed against that schema would be written with
    them, files of one table then differing in their Arrow types (a table's first batch, typed
    without a schema, has 32-bit ones), which a reader putting files together must reconcile. So the
    codec is given 32-bit kinds, as it uses on its own, and every file apply writes has those.
    """
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        inner = t.value_field
        return pa.list_(inner.with_type(small_type(inner.type)))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(small_type(f.type)) for f in t])
    if pa.types.is_map(t):
        key, item = t.key_field, t.item_field
        return pa.map_(
            key.with_type(small_type(key.type)), item.with_type(small_type(item.type)), t.keys_sorted
        )
    return t


def attribute_schema(
    table_schema: pa.Schema | None, untyped: columns.Shapes | None = None
) -> pa.Schema | None:
    """The attribute part of a current-state schema, with attribute names and 32-bit offsets
    (:func:`small_type`), for the codec.

    ``untyped``: the table's untyped columns (:func:`untyped_shapes`); those of known shape are
    added as fields of their shape, so that the codec joins a batch's values with what rows written
    before held (``[]`` then ``{}`` make DynamoDB JSON text, as in one batch). The residues of the
    columns it has are joined into their types alike.
    """
    if table_schema is None:
        return None
    present = [f for f in table_schema if f.name not in META_COLUMNS]
    fields = columns.to_attributes(f.with_type(small_type(f.type)) for f in present)
    shapes = untyped or {}
    fields = [_with_residue(f, shapes.get(columns.column_name(f.name))) for f in fields]
    return pa.schema(fields + untypedcols.untyped_fields(shapes, present))


def _with_residue(field: pa.Field, left: T | None) -> pa.Field:
    """A column's codec field joined with its residue (:func:`ddblake.lake.untypedcols.residue`),
    so that the codec types a batch's values with the untyped ones rows written before held."""
    t = None if left is None else from_field(field)
    if t is None or left is None:
        return field
    grafted = untypedcols.graft(t, left)
    return field if grafted == t else arrow_field(field.name, grafted)


def lake_columns(typed: pa.Table, have: pa.Schema | None) -> tuple[pa.Table, dict[str, T]]:
    """The codec's columns as the lake stores them (untyped parts left out, lake names), and the
    columns left out although an item held a value for them, with their shapes
    (:func:`ddblake.lake.untypedcols.typed_only`).

    The codec keeps untyped columns (``drop_untyped=False``) so that those columns are known.
    ``have``: the table's schema (lake names), whose names are kept; a new name stored like one
    there is another (:func:`ddblake.lake.columns.to_columns`).
    """
    kept, untyped = untypedcols.typed_only(typed)
    return columns.to_columns(kept, have, META_COLUMNS), untyped


def typed_dicts(
    images: Sequence[object],
    attr_schema: pa.Schema | None,
    *,
    evolve: bool = True,
    have: pa.Schema | None = None,
) -> tuple[pa.Table, dict[str, T]]:
    """:func:`lake_columns` of items given as DynamoDB JSON dicts (the codec's Python path)."""
    from ddblake.codec import items_to_table

    return lake_columns(
        items_to_table(
            list(images),  # type: ignore[arg-type]
            attr_schema,
            evolve=evolve or attr_schema is None,
            max_decimal_precision=DECIMAL_PRECISION,
            wide_decimals=True,
        ),
        have,
    )


def typed_items(
    images: Sequence[object],
    attr_schema: pa.Schema | None,
    *,
    evolve: bool = True,
    have: pa.Schema | None = None,
) -> pa.Table:
    """Typed attribute columns for items, widened from ``attr_schema`` as the codec's rules say
    (``have``: the table's schema, whose column names are kept)."""
    return typed_dicts(images, attr_schema, evolve=evolve, have=have)[0]


def typed_texts(
    texts: Sequence[str], attr_schema: pa.Schema | None, have: pa.Schema | None, *, evolve: bool = True
) -> tuple[pa.Table, dict[str, T]]:
    """:func:`typed_dicts` of items given as their JSON text, by the codec's C++ JSON Lines path
    (texts UTF-8 cannot hold, with a lone surrogate, the dict way)."""
    from ddblake.codec import jsonl_to_table

    try:
        data = "\n".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return typed_dicts([json.loads(t) for t in texts], attr_schema, evolve=evolve, have=have)
    return lake_columns(
        jsonl_to_table(
            data,
            attr_schema,
            evolve=evolve or attr_schema is None,
            max_decimal_precision=DECIMAL_PRECISION,
            wide_decimals=True,
        ),
        have,
    )


def typed_rows(
    upserts: Sequence[Keyed],
    buckets: int,
    table_schema: pa.Schema | None,
    item_texts: Sequence[str] | None = None,
    untyped: columns.Shapes | None = None,
) -> pa.Table:
    """The rows ``upserts`` produce: typed attribute columns (schema evolved) and metadata.

    ``item_texts[i]``, when given, is ``item_text(upserts[i])`` already rendered, and the rows come
    from the texts alone (the events' images are not read: apply keeps only their text); the typed
    columns are then read from that text in C++ (the same result as from the images, faster).

    The schema's metadata names the columns left out although an item held an untyped value for
    them (:func:`ddblake.lake.untypedcols.untyped_columns`): :func:`evolve` records them in the table.
    ``untyped``: the table's untyped columns (:func:`untyped_shapes`), joined with the batch's.
    """
    attr_schema = attribute_schema(table_schema, untyped)
    if item_texts:
        rows, left_out = typed_texts(item_texts, attr_schema, table_schema)
    else:
        rows, left_out = typed_dicts([u.event.new_image for u in upserts], attr_schema, have=table_schema)
    meta = meta_table(upserts, buckets, item_texts)
    for name in meta.column_names:
        rows = rows.append_column(meta.schema.field(name), meta.column(name))
    return untypedcols.with_untyped(rows, left_out)


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


def untyped_shapes(table: Table | None) -> columns.Shapes:
    """The table's untyped columns and their shapes (None: unknown, an older ddblake's record)."""
    return {} if table is None else untypedcols.load_untyped(table.properties.get(UNTYPED_PROPERTY))


def _attributes_first(tx: Any, table: Table, added: list[str]) -> None:
    """Put the first attributes of a table created empty ahead of its metadata columns.

    A table whose first batch has rows is created with its attributes first (``SELECT *`` shows the
    item, then ``_ddb_*``); one created before any change (apply of a table with no change yet) has
    only ``_ddb_*``, and Iceberg adds columns at the end. While no row is written, moving them
    costs nothing and gives every table the same layout however its first changes came.
    """
    first = next(iter(META_COLUMNS))
    names = table.schema().column_names
    attributes = [n for n in added if n not in META_COLUMNS]
    if table.current_snapshot() is not None or not attributes or not names or names[0] != first:
        return
    with tx.update_schema() as upd:
        for name in attributes:
            upd.move_before(name, first)


def evolve(tx: Any, table: Table, wanted: pa.Schema, *, retyped: bool = False) -> Target:
    """Bring the table's schema to ``wanted`` (:func:`typed_rows`' schema) inside ``tx``.

    New columns are added (Iceberg schema evolution, no rewrite); numbers gaining digits within a
    ``decimal(38, S)`` column change nothing. A column whose type or text marker changed
    (:func:`ddblake.lake.untypedcols.same_shape`: Iceberg cannot promote a string of S values to one of
    DynamoDB JSON text, nor int64 to decimal, nor change a decimal's scale) is dropped and added
    again with its new type, and the caller then rewrites every row, recomputing typed values from
    ``_ddb_item``.
    The same full rewrite is asked for when:

    * a column is named as before today's rules (``x.y``: it is dropped and its attribute's column
      ``x%2Ey`` added; struct fields renamed change their column's type), or is stored like an
      earlier column (``_1st`` after ``1st``, in a table an older ddblake created but could not
      write: it is dropped and its attribute's column ``_1st%~2`` added), and
    * a column is added that rows already written may hold untyped values for (the attributes
      listed in the table property ``ddblake.untyped-columns``): those rows must read ``[]`` or
      ``{...: null}`` as they would had they been applied together with the typed value, not null.
      Any other new column is null in every row written before, and costs no rewrite.
    * a batch holds an untyped value for a column recorded without its shape (an older ddblake's
      list of names): the rows written before may hold a shape that conflicts with it (``[]``
      against ``{}``), and retyping every row finds out, and records the shape.

    The untyped columns recorded are joined with ``wanted``'s. ``retyped``: ``wanted`` is the
    schema of every row (:func:`ddblake.lake.retyping.retype_table`), so a column of unknown shape
    that no row holds any more leaves the record.
    """
    plan = _plan(table, wanted, in_place=not retyped)
    stale, changed, added, seen, full = plan.stale, plan.changed, plan.added, plan.seen, plan.full
    _warn_many_columns(table, wanted, len(added))
    if stale or changed:
        with tx.update_schema() as upd:
            for name in stale + [f.name for f in changed]:
                upd.delete_column(name)
    if changed or added or plan.grown:
        with tx.update_schema() as upd:
            _add_columns(upd, pa.schema(changed + added))
            for adds in plan.grown.values():
                fieldadds.add_fields(upd, adds)
        _attributes_first(tx, table, [f.name for f in added])
    # Once a column exists its rows are typed: only attributes still without one stay listed.
    if retyped:
        seen = {name: shape for name, shape in seen.items() if shape is not None}
    batch = untypedcols.untyped_columns(wanted)
    joined = untypedcols.join_untyped(seen, batch)
    kept = [f for f in table.schema().as_arrow() if f.name not in stale]
    level = _level(kept, wanted)
    present = attribute_columns(wanted)
    untyped = untypedcols.without_columns(joined, present, level)
    # Residues: the batch's are joined with the table's (the codec typed its values with them).
    # They hold for every row only where the table's did, or where no row was written before.
    trusted = retyped or not _has_rows(table)
    carried = {*untypedcols.only_columns(seen, present, level)}
    carried |= {*untypedcols.only_columns(batch, [f.name for f in added], level)}
    for name, left in untypedcols.only_columns(batch, present, level).items():
        if trusted or name in carried:
            untyped[name] = left
    raw = table.properties.get(UNTYPED_PROPERTY)
    if untyped and untypedcols.dump_untyped(untyped) != raw:
        tx.set_properties({UNTYPED_PROPERTY: untypedcols.dump_untyped(untyped)})
    elif not untyped and raw is not None:
        tx.remove_properties(UNTYPED_PROPERTY)
    if plan.grown:  # rows written with the struct fields in the table's order (files read straight)
        staged = {f.name: f.type for f in tx.table_metadata.schema().as_arrow()}
        grown = [fieldadds.in_order(f, staged[f.name]) if f.name in plan.grown else f for f in wanted]
        return Target(pa.schema(grown, metadata=wanted.metadata), full)
    return Target(wanted, full)


def _add_columns(upd: Any, new: pa.Schema) -> None:
    """Add ``new``'s columns, none of which the table has, as ``upd.union_by_name(new)`` would.

    ``union_by_name`` looks each new column up in a struct of all the table's columns that it
    builds again per column: a batch adding 1,000 columns to a table of 3,000 spent 3 s there.
    Every column here is new (``_plan`` keeps only those, and dropped ones are dropped by then),
    so each is added at the top level, with the type, doc and nullability it would give.
    """
    from pyiceberg.catalog import Catalog

    converted = Catalog._convert_schema_if_needed(new, format_version=2)
    for f in converted.fields:
        upd.add_column(path=(f.name,), field_type=f.field_type, required=f.required, doc=f.doc)


def _warn_many_columns(table: Table, wanted: pa.Schema, added: int) -> None:
    """Warn when a batch adds columns to a table that has more than :data:`MANY_COLUMNS` already.

    Attribute names that are data (one per day, per user) give a column each: every batch that
    adds some evolves the schema (Iceberg keeps each schema in every metadata file) and writes
    wider files, so apply slows with each one. Counts only: such names are item data.
    """
    count = len(attribute_columns(wanted))
    if added and count > MANY_COLUMNS:
        log.warning(
            "current-state table %s has %d attribute columns, %d of them added by this batch: attribute "
            "names that are data (one per day or per user) give a column each and slow every batch; "
            "keep such values in a map, which past 200 keys is one JSON text column (docs/types.md, "
            '"Wide maps")',
            ".".join(table.name()),
            count,
            added,
        )


def attribute_columns(schema: pa.Schema | Sequence[pa.Field]) -> list[str]:
    """The names of the attribute columns (metadata columns left out) of a schema or fields."""
    return [f.name for f in schema if f.name not in META_COLUMNS]


def _level(kept: Iterable[pa.Field], wanted: pa.Schema) -> list[pa.Field]:
    """The attribute columns the table has once :func:`evolve` brought it to ``wanted`` (``kept``:
    its columns not dropped): the level each column's name is read in
    (:func:`ddblake.lake.columns.column_attributes`)."""
    names = set(wanted.names)
    return [
        *(f for f in kept if f.name not in names and f.name not in META_COLUMNS),
        *(f for f in wanted if f.name not in META_COLUMNS),
    ]


def changed_columns(have: Mapping[str, pa.Field], wanted: pa.Schema) -> list[pa.Field]:
    """The columns of ``wanted`` that ``have`` holds in another shape (type or text marker)."""
    return [f for f in wanted if f.name in have and not untypedcols.same_shape(have[f.name], f)]


@dataclass(frozen=True)
class _Plan:
    """What :func:`evolve` changes: stale and changed columns (dropped; changed ones added again),
    added ones, struct columns gaining map fields in place, the untyped columns recorded, and
    whether every row must be retyped."""

    stale: list[str]
    changed: list[pa.Field]
    added: list[pa.Field]
    grown: dict[str, list[fieldadds.Added]]
    seen: columns.Shapes
    full: bool


def _has_rows(table: Table) -> bool:
    snap = table.current_snapshot()
    if snap is None or snap.summary is None:
        return False
    return int(snap.summary.additional_properties.get("total-records", "1")) > 0


def _plan(table: Table, wanted: pa.Schema, *, in_place: bool = True) -> _Plan:
    """What :func:`evolve` changes (:class:`_Plan`). ``in_place``: struct columns gaining fields
    may gain them in place; a retype of every row (``False``) types them again with the rest, which
    orders their fields as one batch does."""
    have = table.schema().as_arrow()
    attributes = [f for f in have if f.name not in META_COLUMNS]
    stale = columns.stale_columns(attributes)  # each name read in its level (``a%~2``: docs/types.md)
    # Columns stored like an earlier one (``_1st`` after ``1st``: a table whose first write failed
    # on them) are dropped too; their attributes have other names (columns.to_columns).
    stale += columns.columns_level([*META_COLUMNS, *attributes], lambda n: n not in stale).left_out
    kept = {f.name: f for f in have if f.name not in stale}
    changed = changed_columns(kept, wanted)
    added = [f for f in wanted if f.name not in kept]
    seen = untyped_shapes(table)
    grown: dict[str, list[fieldadds.Added]] = {}
    if changed and in_place:
        attrs = columns.column_attributes([f for f in kept.values() if f.name not in META_COLUMNS])
        for f in changed:
            left = seen.get(columns.column_name(attrs[f.name])) if f.name in attrs else None
            if (adds := fieldadds.in_place(kept[f.name], f, left)) is not None and fieldadds.feasible(
                table, adds
            ):
                grown[f.name] = adds
        changed = [f for f in changed if f.name not in grown]
    unknown = {name for name, shape in seen.items() if shape is None}
    full = bool(
        stale
        or changed
        or untypedcols.without_columns(seen, attribute_columns(added), _level(kept.values(), wanted)) != seen
        or unknown & set(untypedcols.untyped_columns(wanted))
    )
    return _Plan(stale, changed, added, grown, seen, full)


def rewrites_all(table: Table, wanted: pa.Schema) -> bool:
    """Whether :func:`evolve` to ``wanted`` would retype every row (decided before it changes anything,
    since the rows' final schema is then :func:`ddblake.lake.retyping.retype_table`'s)."""
    return _plan(table, wanted).full


def conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` with exactly ``schema``'s columns: missing ones null, types cast where they differ."""
    arrays = []
    have = {name: i for i, name in enumerate(rows.column_names)}  # once: a table may have thousands
    for field in schema:
        if (index := have.get(field.name)) is not None:
            col = rows.column(index)
            arrays.append(col if col.type == field.type else col.cast(field.type))
        else:
            arrays.append(pa.nulls(rows.num_rows, field.type))
    return pa.table(arrays, schema=pa.schema([pa.field(f.name, f.type) for f in schema]))
