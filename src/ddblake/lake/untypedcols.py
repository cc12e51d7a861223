"""Untyped columns: which attributes a batch leaves out of the typed columns, and the record of
their shapes (the table property ``ddblake.untyped-columns``, docs/types.md).

An attribute that has held only ``NULL``, an empty map or an empty list has no type yet: it gets
no column until a value with a type comes, and its shape is recorded so that a later value that
cannot share a column with it is known. Split from :mod:`ddblake.lake.columns`, whose naming rules
it uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import pyarrow as pa

from ddblake.codec.schema import (
    NULL_T,
    ListT,
    NullT,
    StructT,
    T,
    arrow_field,
    from_field,
    join,
    prune,
    same_column,
)
from ddblake.lake.columns import (
    UNTYPED_KEY,
    Shapes,
    attribute_name,
    column_attributes,
    column_name,
    name_of,
)


def typed_only(typed: pa.Table) -> tuple[pa.Table, dict[str, T]]:
    """A codec table without what holds no typed value yet, the columns left out with values, and
    the :func:`residue` of each column kept that holds maps.

    Columns and map fields of only nulls, empty lists and empty maps cannot be stored. A column
    left out although some item held a value for it (``[]``, ``{}``, ``[NULL]``) is named (by its
    column name) with its type, the shape of those values: when a typed value arrives later, the
    rows written before must be retyped, or they would read null where the same items applied
    together read ``[]`` or ``{...: null}``; and a shape that conflicts with a later one (``[]``
    then ``{}``) must make the column the two make in one batch.
    """
    untyped: dict[str, T] = {}
    dropped = []
    for i, field in enumerate(typed.schema):
        t = from_field(field)
        kept = None if t is None else prune(t)
        if t is not None and kept is None:
            dropped.append(i)
            if t != NULL_T:
                untyped[column_name(field.name)] = compact_shape(t)
            continue
        if t is not None and (left := residue(t)) is not None:
            untyped[column_name(field.name)] = left
        if kept is not None and kept != t:
            pruned = arrow_field(field.name, kept)
            # The cast drops the struct fields the pruned type lacks, by name.
            typed = typed.set_column(i, pruned, typed.column(i).cast(pruned.type))
    if dropped:
        typed = typed.select([i for i in range(typed.num_columns) if i not in set(dropped)])
    return typed, dict(sorted(untyped.items()))


def _has_map(t: T) -> bool:
    while isinstance(t, ListT):
        t = t.elem
    return isinstance(t, StructT)


def residue(t: T) -> T | None:
    """The shape of the untyped values a typed column's maps held at fields its type lacks: what a
    field added to the column in place (:mod:`ddblake.lake.fieldadds`) would leave null in rows
    written before, where typing them with it gives ``[]`` or ``{...}`` (docs/types.md).

    ``t``: the column's codec type before :func:`prune`. The residue mirrors ``t``'s maps (a struct
    for a map, ``[...]`` for a list of maps), each holding the shapes of its untyped fields and the
    residues of its typed ones that are not empty; NULL fields are left out (a NULL reads null
    either way). None for a column holding no map, or when the residue would exceed
    :data:`SHAPE_NODES_MAX` nodes: the column's residue is then not known, and a field added to it
    retypes every row, as a changed column does.
    """
    if not _has_map(t):
        return None

    def walk(t: T) -> T:
        if isinstance(t, ListT):
            return ListT(walk(t.elem))
        if not isinstance(t, StructT):
            return t
        fields: list[tuple[str, T]] = []
        for name, f in t.fields:
            if prune(f) is None:
                if not isinstance(f, NullT):
                    fields.append((name, compact_shape(f, budget=1 << 30)))
            elif _has_map(f) and not _empty(r := walk(f)):
                fields.append((name, r))
        return StructT(tuple(fields))

    left = walk(t)
    return left if compact_shape(left) == left else None


def graft(t: T, left: T) -> T:
    """A column's type ``t`` with its residue ``left``'s shapes as fields where ``t`` lacks them.

    Not :func:`ddblake.codec.schema.join`: that also turns a struct of more than 200 typed fields
    into DynamoDB JSON text, which a batch that does not hold the column must not do (the column
    changes when a batch's values of it do)."""
    if isinstance(t, ListT) and isinstance(left, ListT):
        return ListT(graft(t.elem, left.elem))
    if isinstance(t, StructT) and isinstance(left, StructT):
        fields = [(name, f if (r := left.get(name)) is None else graft(f, r)) for name, f in t.fields]
        fields += [(name, r) for name, r in left.fields if t.get(name) is None]
        return StructT(tuple(fields))
    return t


def _empty(t: T) -> bool:
    while isinstance(t, ListT):
        t = t.elem
    return isinstance(t, StructT) and not t.fields


def holds(left: T | None, path: tuple[str, ...]) -> bool:
    """Whether a :func:`residue` has a shape at ``path`` (map keys; ``None`` steps into a list's
    elements are not named: lists are passed through), or at a prefix of it."""
    t = left
    for key in path:
        while isinstance(t, ListT):
            t = t.elem
        if not isinstance(t, StructT):
            return True  # an untyped value above the path: a list of [] or a map of {} there
        t = t.get(key)
        if t is None:
            return False
    return True


SHAPE_NODES_MAX = 64
"""The most list and map nodes a recorded shape keeps (:func:`compact_shape`): the record is a
table property, rewritten by every commit that changes it and copied into Glue's table parameters
(512,000 characters at most), so it must not grow with the distinct map keys of a map keyed by
user IDs."""


def compact_shape(t: T, budget: int = SHAPE_NODES_MAX) -> T:
    """The part of an untyped column's shape that can conflict with a later value, bounded.

    What a shape is kept for is a list meeting a map at the same place (``[]`` then ``{}``), which
    makes DynamoDB JSON text there. A NULL field of a map never conflicts (and a retype reads every
    row's item again anyway), so such fields are left out; and past ``budget`` list and map nodes
    the remaining fields are left out too: a conflict under one of them is then typed as the batches
    met it, as a conflict inside an existing struct column is (docs/types.md).
    """
    left = [budget]

    def walk(t: T) -> T:
        left[0] -= 1
        if isinstance(t, ListT):
            return ListT(walk(t.elem)) if left[0] > 0 and not isinstance(t.elem, NullT) else ListT(NULL_T)
        if isinstance(t, StructT):
            fields = []
            for name, f in t.fields:
                if isinstance(f, NullT):
                    continue
                if left[0] <= 0:
                    break
                fields.append((name, walk(f)))
            return StructT(tuple(fields))
        return t

    return walk(t)


def shape_json(t: T | None) -> object:
    """A shape (the type of an untyped column) as JSON: ``null`` for NULL, ``[elem]`` for a list,
    ``{field: shape}`` for a map (fields under their map keys). An unknown shape (None) is ``null``
    too: no untyped column is NULL alone, so at the top ``null`` means unknown.
    """
    if isinstance(t, ListT):
        return [shape_json(t.elem)]
    if isinstance(t, StructT):
        return {name: shape_json(f) for name, f in t.fields}
    if t is None or isinstance(t, NullT):
        return None
    raise ValueError(f"not the type of an untyped value: {t}")


def _shape_type(value: object) -> T:
    if value is None:
        return NULL_T
    if isinstance(value, list) and len(value) == 1:
        return ListT(_shape_type(value[0]))
    if isinstance(value, dict):
        return StructT(tuple((str(name), _shape_type(v)) for name, v in value.items()))
    raise ValueError(f"not a shape: {value!r}")


def load_untyped(raw: str | bytes | None) -> Shapes:
    """Untyped columns as :func:`dump_untyped` wrote them, or as a JSON list of names (an older
    ddblake's format: their shapes are unknown, None). Anything unreadable counts as unknown."""
    if not raw:
        return {}
    value = json.loads(raw)
    if isinstance(value, list):
        return {str(name): None for name in value}
    if not isinstance(value, dict):
        return {}
    shapes: Shapes = {}
    for name, shape in value.items():
        try:
            shapes[name] = None if shape is None else compact_shape(_shape_type(shape))
        except ValueError:
            shapes[name] = None
    return shapes


def dump_untyped(shapes: Mapping[str, T | None]) -> str:
    """Untyped columns as JSON: an object of shapes by column name, sorted. An older ddblake, which
    wrote and read a list of names (``set(json.loads(...))``), reads the names from it alike."""
    return json.dumps({name: shape_json(shapes[name]) for name in sorted(shapes)}, separators=(",", ":"))


def join_untyped(a: Mapping[str, T | None], b: Mapping[str, T | None]) -> Shapes:
    """Both sets of untyped columns; a column in both has the join of its shapes (unknown when
    either is: an older table's rows may hold anything untyped for it).

    Two shapes that join into a typed column (``[]`` and ``{}``) were typed together before they
    got here (:func:`untyped_fields`); were they not, the column counts as unknown, which retypes
    every row the next time a batch holds an untyped value for it.
    """
    joined: Shapes = dict(a)
    for name, shape in b.items():
        if name not in joined:
            joined[name] = shape
        else:
            old = joined[name]
            both = None if old is None or shape is None else join(old, shape)
            joined[name] = compact_shape(both) if both is not None and prune(both) is None else None
    return joined


def untyped_fields(shapes: Mapping[str, T | None], present: Iterable[str | pa.Field]) -> list[pa.Field]:
    """Codec fields (attribute names) of the known shapes of columns whose attribute has none of
    the attribute columns ``present`` (all of a table's, names or fields: each is read in its level,
    :func:`column_attributes`; metadata columns left out): given to the codec with a table's schema,
    they join the batch's values of those attributes as if the rows that held them were in the batch
    (``[]`` and ``{}`` then make DynamoDB JSON text). The record names each attribute's own column
    (:func:`typed_only`), never an other name, so ``a%~2`` there is attribute ``a%~2``'s."""
    attributes = set(column_attributes(present).values())
    fields: dict[str, pa.Field] = {}
    for name, shape in shapes.items():
        attr = attribute_name(name, False)
        if shape is not None and attr not in attributes and attr not in fields:
            fields[attr] = arrow_field(attr, shape)
    return list(fields.values())


def only_columns(
    shapes: Mapping[str, T | None],
    present: Iterable[str | pa.Field],
    level: Iterable[str | pa.Field] | None = None,
) -> Shapes:
    """The entries of ``shapes`` that :func:`without_columns` leaves out: the :func:`residue` of
    columns the table has."""
    rest = without_columns(shapes, present, level)
    return {name: shape for name, shape in shapes.items() if name not in rest}


def without_columns(
    shapes: Mapping[str, T | None],
    present: Iterable[str | pa.Field],
    level: Iterable[str | pa.Field] | None = None,
) -> Shapes:
    """``shapes`` (untyped columns, by :func:`column_name`) without those whose attribute has one
    of the attribute columns ``present`` (metadata columns left out): such a column may be an
    :func:`other_name` (``_1st%~2``) where the untyped record says ``_1st``. ``level``: all the
    attribute columns of the table, ``present`` among them, in which each is read
    (:func:`column_attributes`; ``present`` by default)."""
    items = list(present)
    names = {name_of(c) for c in items}
    everything = items if level is None else list(level)
    known = {name_of(c) for c in everything}
    read = column_attributes([*everything, *(c for c in items if name_of(c) not in known)])
    attributes = {attr for name, attr in read.items() if name in names}
    return {name: shape for name, shape in shapes.items() if attribute_name(name, False) not in attributes}


def with_untyped(rows: pa.Table, untyped: Mapping[str, T | None]) -> pa.Table:
    """``rows`` whose schema names the columns :func:`typed_only` left out with values."""
    metadata = dict(rows.schema.metadata or {})
    metadata[UNTYPED_KEY] = dump_untyped(untyped).encode()
    return rows.replace_schema_metadata(metadata)


def untyped_columns(schema: pa.Schema) -> Shapes:
    """The columns :func:`with_untyped` named in ``schema``, with their shapes (none for any other
    schema)."""
    return load_untyped((schema.metadata or {}).get(UNTYPED_KEY))


def _plain(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_plain(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain(f.type)) for f in t])
    return t


def same_shape(a: pa.Field, b: pa.Field) -> bool:
    """Whether rows typed for ``a`` read the same typed for ``b``: type and text marker alike.

    The marker matters as much as the type: a ``string`` of S values and a ``string`` of DynamoDB
    JSON text (or of number text) hold different things for the same item. Fields ddblake does not
    write (a metadata timestamp) compare by type.
    """
    ta, tb = from_field(a), from_field(b)
    if ta is None or tb is None:
        return bool(_plain(a.type) == _plain(b.type))
    return same_column(ta, tb)
