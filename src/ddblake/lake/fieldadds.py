"""Map fields added to a struct column in place, without retyping every row (docs/types.md).

A map attribute (``profile``) is a struct column, one field per map key. When an item's map gains
a key no map of the table held a typed value for (``profile.nickname``), the column's type gains a
field. Iceberg adds a field to a struct like a column, by schema evolution alone: every data file
written before lacks it and reads null there, which is what those rows held (no value for the
key). So apply adds such fields in place and rewrites only the rows the batch touches, where it
used to retype every row of the table (:mod:`ddblake.lake.retyping`), once per new key, up to
the 200 keys of a wide map.

The one case where null is not what typing the rows with the new field gives: a row whose map
held an untyped value at that key (``[]``, ``{}``, ``[NULL]``), which no column stored. Typed
together with a later ``["a"]`` it reads ``[]``, not null; and ``{}`` then ``[]`` make DynamoDB JSON
text. So the untyped values each struct column's rows held at fields its type lacks are recorded
(:func:`ddblake.lake.untypedcols.residue`, in the table property ``ddblake.untyped-columns``),
and a field added where the record holds a shape, or to a column without a record (written by an
older ddblake, or whose record outgrew its bound), retypes every row as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ddblake.codec.schema import T
from ddblake.lake import columns
from ddblake.lake.untypedcols import holds, same_shape

ELEMENT = "element"
"""The name Iceberg gives a list's element in a field's path (``tags.element.note``)."""


@dataclass(frozen=True)
class Added:
    """A field added to a struct inside a column: its parent's path (lake names; ``element`` for a
    list's elements) and the field (lake names, text markers), and the map keys of its path."""

    parent: tuple[str, ...]
    field: pa.Field
    keys: tuple[str, ...]
    before: str | None = None
    """The existing field of its struct it goes before (the first whose map key sorts after its
    own), so that the struct's fields stay in key order, as one batch or a retype orders them; None:
    it goes last."""


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def additions(have: pa.Field, want: pa.Field) -> list[Added] | None:
    """The fields ``want`` (a batch's type of a column, lake names) adds to the maps of ``have``
    (the table's), or None when ``want`` changes anything else: a field's type or text marker, a
    map becoming text, a field gone. Every field of ``have`` must be in ``want`` with the same
    shape (:func:`ddblake.lake.untypedcols.same_shape`), at every depth."""
    found: list[Added] = []
    want_keys = columns.key_type(want.type)

    def walk(
        a: pa.Field, b: pa.Field, b_keys: pa.DataType, path: tuple[str, ...], keys: tuple[str, ...]
    ) -> bool:
        if pa.types.is_struct(a.type) and pa.types.is_struct(b.type):
            index = {f.name: i for i, f in enumerate(b.type)}
            for child in a.type:
                i = index.pop(child.name, None)
                if i is None:
                    return False
                key = b_keys.field(i).name
                if not walk(child, b.type.field(i), b_keys.field(i).type, (*path, child.name), (*keys, key)):
                    return False
            old = [
                (b_keys.field(i).name, b.type.field(i).name)
                for i, f in enumerate(b.type)
                if f.name not in index
            ]
            for i in sorted(index.values()):
                key = b_keys.field(i).name
                before = next((name for k, name in old if k > key), None)
                found.append(Added(path, b.type.field(i), (*keys, key), before))
            return True
        if _is_list(a.type) and _is_list(b.type) and pa.types.is_struct(_innermost(b.type)):
            return walk(a.type.value_field, b.type.value_field, b_keys.value_type, (*path, ELEMENT), keys)
        return same_shape(a, b)

    return found if walk(have, want, want_keys, (have.name,), ()) else None


def _innermost(t: pa.DataType) -> pa.DataType:
    while _is_list(t):
        t = t.value_type
    return t


def in_place(have: pa.Field, want: pa.Field, left: T | None) -> list[Added] | None:
    """The fields to add to column ``have`` for it to hold ``want``'s values with no row retyped,
    or None when every row must be retyped: ``want`` changes more than its maps' fields, the
    column's residue ``left`` is not known (None), or it holds a shape at a new field's place."""
    adds = additions(have, want)
    if not adds or left is None or any(holds(left, a.keys) for a in adds):
        return None
    return adds


def add_fields(upd: Any, adds: Sequence[Added]) -> None:
    """Add each field of ``adds`` to the table inside ``upd`` (pyiceberg's ``UpdateSchema``), with
    the type, nested fields and text markers a column of its type is created with."""
    from pyiceberg.catalog import Catalog

    for add in adds:
        (converted,) = Catalog._convert_schema_if_needed(pa.schema([add.field]), format_version=2).fields
        upd.add_column(
            path=(*add.parent, add.field.name),
            field_type=converted.field_type,
            required=False,
            doc=converted.doc,
        )
        if add.before is not None:  # lake names hold no dots (columns.field_name)
            upd.move_before(".".join((*add.parent, add.field.name)), ".".join((*add.parent, add.before)))


def feasible(table: Any, adds: Sequence[Added]) -> bool:
    """Whether pyiceberg takes :func:`add_fields` of ``adds`` on ``table``'s schema (a dry run,
    never committed). It refuses a path it already knows under a short name: a list of maps whose
    maps hold a key ``element`` with a map of its own under it makes ``l.element.y`` name that
    map's ``y``, so a key ``y`` cannot be added beside ``element``. Such a column is retyped."""
    try:
        upd = table.update_schema()
        add_fields(upd, adds)
        upd._apply()
    except (ValueError, KeyError, TypeError):
        return False
    return True


def in_order(field: pa.Field, like: pa.DataType | None = None) -> pa.Field:
    """``field`` with the fields of each struct, at every depth, in the order ``like`` (the table's
    type of the column, after :func:`add_fields`) gives them, by name, so that the files a batch
    writes hold the table's own schema and are read back straight; where ``like`` has no struct
    (None: a column typed anew), in key order, as typing the items in one batch orders them (a
    codec field's names are its map keys)."""

    def order(t: pa.DataType, like: pa.DataType | None) -> pa.DataType:
        if pa.types.is_struct(t):
            theirs = {f.name: f.type for f in like} if like is not None and pa.types.is_struct(like) else {}
            rank = {name: i for i, name in enumerate(theirs)}
            children = sorted(t, key=lambda f: (rank.get(f.name, len(rank)), f.name if not rank else ""))
            return pa.struct([f.with_type(order(f.type, theirs.get(f.name))) for f in children])
        if _is_list(t):
            inner = like.value_type if like is not None and _is_list(like) else None
            elem = t.value_field.with_type(order(t.value_type, inner))
            return pa.large_list(elem) if pa.types.is_large_list(t) else pa.list_(elem)
        return t

    return field.with_type(order(field.type, like))
