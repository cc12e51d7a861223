"""How attributes become the current state's columns: names, untyped values, column shapes.

The rules are in docs/types.md (Typed columns in the lake). Each is a function of one name or one
type alone, never of which other attributes a batch happens to hold, so the columns a table ends up
with do not depend on how its changes were batched (but for which of two names stored alike keeps
its own, below):

* **Names.** An attribute's column is named by :func:`column_name`, which is reversible
  (:func:`attribute_name`): a name that would shadow a metadata column (``_ddb_…``) gets an
  ``attr`` prefix, and so does any name that already looks prefixed, so ``attr_ddb_x`` the
  attribute and ``_ddb_x`` the attribute never share a column. Dots are percent-encoded in column
  and struct field names alike (:func:`field_name`): Iceberg joins nested names with dots, so a
  top-level ``x.y`` and the field ``y`` of a map ``x`` would both be ``x.y`` to it, and it refuses
  such a schema — a refusal that would stop every later batch of the table.
* **Names stored alike.** Iceberg writers store each name as an Avro name (:func:`stored_name`:
  ``1st`` as ``_1st``, ``a-b`` as ``a_x2Db``), and a schema with two names stored alike at one level
  (``1st`` beside ``_1st``) cannot be written at all. So the one name that depends on what a table
  holds: a new column or struct field whose name is stored like one its level has (or one the batch
  named before it, in the codec's order) takes the first free of ``<name>%~2``, ``<name>%~3``, …
  (:func:`other_name`; :class:`Level`), which reads back as the same attribute; once named, a column
  keeps its name.
* **Untyped values.** Iceberg (before v3) and Parquet store no column of only nulls, empty lists or
  empty maps, so those are left out (:func:`typed_only`); the attributes that held such a value
  without a column are named with the shape of what they held (:func:`shape_json`), so that the
  column added for them later is filled for every row, and so that two such shapes that conflict
  (``[]`` in one batch, ``{}`` in another) give the column they give in one batch.
* **Shapes.** Two columns are the same when their Arrow types and their text encodings (the
  codec's ``ddblake:`` doc marker) are, at every level (:func:`same_shape`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping

import pyarrow as pa
from pyiceberg.schema import make_compatible_name

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

# Names that take one more "attr" as columns, and columns that lose one "attr" as names. "_ddb_"
# (and any "attr" before it) in any case: DuckDB matches column names without regard to case, so
# an attribute "_DDB_ITEM" must not sit beside the metadata column "_ddb_item" either.
_PREFIXED = re.compile(r"^(?i:attr)*(?i:_ddb_)")
_STRIP = re.compile(r"^attr(?i:attr)*(?i:_ddb_)")
_ESCAPES = re.compile(r"%(25|2E)")
_OTHER = re.compile(r"%~[1-9][0-9]*$")  # the suffix of an other name (other_name)
_OTHER_LIKE = re.compile(r"%~[0-9]+$")  # names field_name encodes, so that none reads as an other name
UNTYPED_KEY = b"ddblake.untyped"
"""Schema metadata of typed rows (:func:`with_untyped`): the columns left out with values, as
:func:`dump_untyped` writes them."""
Shapes = dict[str, T | None]
"""Untyped columns by column name: the type of what they held (only nulls, lists, maps), or None
when unknown (a table property written by an older ddblake, which kept names alone)."""


@functools.lru_cache(maxsize=1 << 16)
def field_name(name: str) -> str:
    """The Iceberg name of an attribute or map key: without dots, reversibly.

    Names with a dot, with a ``%25`` or ``%2E`` that decoding would misread, or ending like an
    :func:`other_name` (``%~2``) have ``%`` written ``%25`` and ``.`` written ``%2E``; every other
    name is its own (so existing columns keep theirs).
    """
    if "." in name or _ESCAPES.search(name) or _OTHER_LIKE.search(name):
        return name.replace("%", "%25").replace(".", "%2E")
    return name


def other_name(name: str, n: int) -> str:
    """The ``n``-th name (``n`` ≥ 2) of a column or struct field whose own name ``name`` (a
    :func:`field_name` or :func:`column_name`) is stored like a name its level already has
    (:func:`stored_name`): ``name%~n``. It reads back as ``name`` does (:func:`key_name`)."""
    return f"{name}%~{n}"


def own_name(name: str) -> str:
    """``name`` without the suffix of an :func:`other_name` (``_1st%~2`` → ``_1st``)."""
    m = _OTHER.search(name)
    return name[: m.start()] if m else name


@functools.lru_cache(maxsize=1 << 16)
def stored_name(name: str) -> str:
    """The name Iceberg writers give ``name`` in a data file (Avro's rules, pyiceberg's
    ``make_compatible_name``; Iceberg's Java library has the same): a name that is not an Avro name
    has a leading digit ``d`` written ``_d`` and each other character outside ``[A-Za-z0-9_]``
    written ``_x`` and its code point in hex (``1st`` → ``_1st``, ``a-b`` → ``a_x2Db``)."""
    return make_compatible_name(name) if name else name


def _decoded(field: str) -> str | None:
    """The attribute or map key whose :func:`field_name` is ``field``, if any."""
    name = _ESCAPES.sub(lambda m: "%" if m[1] == "25" else ".", field) if _ESCAPES.search(field) else field
    return name if field_name(name) == field else None


@functools.lru_cache(maxsize=1 << 16)
def key_name(field: str) -> str:
    """The attribute or map key a :func:`field_name`, or an :func:`other_name` of one, stands for.

    A name that is not one these give (``x.y``, a column from before dots were encoded) stands for
    itself: the caller sees that it is not the key's name and retypes it.
    """
    own = own_name(field)
    if own != field:
        name = _decoded(own)
        if name is not None:
            return name
    name = _decoded(field)
    return field if name is None else name


def is_field_name(field: str) -> bool:
    """Whether ``field`` is a name today's rules give its map key (:func:`field_name` or an
    :func:`other_name` of it)."""
    return field_name(key_name(field)) == own_name(field)


def column_name(attr: str) -> str:
    """The column of a top-level attribute: :func:`field_name`, ``attr``-prefixed where it matches
    ``^(attr)*_ddb_`` in any case, so that no attribute shadows a metadata column (for DuckDB,
    ``_DDB_ITEM`` is ``_ddb_item``) or another attribute's column.
    """
    col = field_name(attr)
    return f"attr{col}" if _PREFIXED.match(col) else col


def attribute_name(col: str) -> str:
    """The attribute a :func:`column_name`, or an :func:`other_name` of one, stands for (the
    inverse: one ``attr`` prefix and the ``%~n`` suffix removed)."""
    return key_name(col[len("attr") :] if _STRIP.match(col) else col)


def is_column_name(col: str) -> bool:
    """Whether ``col`` is a name today's rules give its attribute (:func:`column_name` or an
    :func:`other_name` of it)."""
    return column_name(attribute_name(col)) == own_name(col)


def is_stale(field: pa.Field) -> bool:
    """Whether an attribute column ddblake wrote is named by an older rule (``x.y``, not ``x%2Ey``).

    Such a column is retyped under its attribute's current name. A column of a type ddblake never
    writes (one added by hand) is left alone, whatever its name.
    """
    return not is_column_name(field.name) and from_field(field) is not None


class Level:
    """The names at one level of a table — its columns, or the fields of one struct — and the
    names a batch gives what it adds there (:meth:`name`).

    Iceberg writers store every name as an Avro name (:func:`stored_name`) and refuse to write a
    schema in which two names of one level are stored alike (``1st`` and ``_1st``, ``a-b`` and
    ``a_x2Db``, ``2fa`` and ``_2fa``): every later write of the table would fail. So a name is
    free only while its stored form is. Of names already there that are stored alike (a table an
    older ddblake created, whose first write then failed), the first keeps its place and the later
    ones are left out, to be dropped and named again.

    Args:
        names: The names the level keeps, in order.
        key: The attribute or map key a name stands for, or None when it stands for none (a
            metadata column).
    """

    def __init__(self, names: Iterable[str], key: Callable[[str], str | None]) -> None:
        self.names: dict[str, str] = {}
        self.stored: set[str] = set()
        self.left_out: list[str] = []
        for name in names:
            stored = stored_name(name)
            if stored in self.stored:
                self.left_out.append(name)
                continue
            self.stored.add(stored)
            k = key(name)
            if k is not None:
                self.names.setdefault(k, name)

    def name(self, key: str, own: str) -> str:
        """The name of ``key`` (whose own name is ``own``) at this level: the one it has, else
        ``own`` when no name of the level is stored alike, else the first such free
        :func:`other_name` (``own%~2``, ``own%~3``, …)."""
        if key in self.names:
            return self.names[key]
        name, n = own, 1
        while stored_name(name) in self.stored:
            n += 1
            name = other_name(own, n)
        self.stored.add(stored_name(name))
        self.names[key] = name
        return name


def _column_key(name: str) -> str | None:
    return attribute_name(name) if is_column_name(name) else None


def columns_level(names: Iterable[str]) -> Level:
    """The :class:`Level` of a table's top-level columns ``names`` (metadata columns first)."""
    return Level(names, _column_key)


def _named(t: pa.DataType, have: pa.DataType | None) -> pa.DataType:
    """``t`` (map keys as field names) with its struct fields named as the table's type ``have``
    names them where it has them, and as :class:`Level` names new ones."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_field
        have_inner = None
        if have is not None and (pa.types.is_list(have) or pa.types.is_large_list(have)):
            have_inner = have.value_type
        elem = inner.with_type(_named(inner.type, have_inner))
        return pa.large_list(elem) if pa.types.is_large_list(t) else pa.list_(elem)
    if pa.types.is_struct(t):
        fields = {f.name: f.type for f in have} if have is not None and pa.types.is_struct(have) else {}
        keys = {n: k for n in fields if field_name(k := key_name(n)) == own_name(n)}  # is_field_name
        level = Level(keys, keys.get)
        named = []
        for f in t:
            name = level.name(f.name, field_name(f.name))
            ft = _named(f.type, fields.get(name))
            named.append(f if name == f.name and ft is f.type else f.with_name(name).with_type(ft))
        return pa.struct(named)
    return t


def renamed(t: pa.DataType, rename: Callable[[str], str]) -> pa.DataType:
    """``t`` with every struct field, at any depth, renamed by ``rename`` (docs and ids kept)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_field
        elem = inner.with_type(renamed(inner.type, rename))
        return pa.large_list(elem) if pa.types.is_large_list(t) else pa.list_(elem)
    if pa.types.is_struct(t):
        return pa.struct([f.with_name(rename(f.name)).with_type(renamed(f.type, rename)) for f in t])
    return t


def _view(column: pa.ChunkedArray, t: pa.DataType) -> pa.ChunkedArray:
    """The same data under a type that differs only in field names (no copy)."""
    return pa.chunked_array([chunk.view(t) for chunk in column.chunks], t)


def to_columns(typed: pa.Table, have: pa.Schema | None = None, reserved: Iterable[str] = ()) -> pa.Table:
    """A codec table (attribute names, map keys as field names) with the lake's column names.

    ``have``: the table's schema (lake names), whose columns and struct fields keep their names;
    what is new is named so that no two names of one level are stored alike (:class:`Level`).
    ``reserved``: the metadata columns, which no attribute's column is stored like.
    """
    meta = list(reserved)
    fields = {f.name: f.type for f in have or [] if f.name not in meta and not is_stale(f)}
    level = columns_level([*meta, *fields])
    for i, field in enumerate(typed.schema):
        name = level.name(field.name, column_name(field.name))
        t = _named(field.type, fields.get(name))
        if name != field.name or not t.equals(field.type):
            column = typed.column(i)
            view = column if t.equals(field.type) else _view(column, t)
            typed = typed.set_column(i, field.with_name(name).with_type(t), view)
    return typed


def to_attributes(field: pa.Field) -> pa.Field:
    """An attribute column's field as the codec sees it: attribute name and map keys."""
    return field.with_name(attribute_name(field.name)).with_type(renamed(field.type, key_name))


def typed_only(typed: pa.Table) -> tuple[pa.Table, dict[str, T]]:
    """A codec table without what holds no typed value yet, and the columns left out with values.

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
        elif kept is not None and kept != t:
            pruned = arrow_field(field.name, kept)
            # The cast drops the struct fields the pruned type lacks, by name.
            typed = typed.set_column(i, pruned, typed.column(i).cast(pruned.type))
    if dropped:
        typed = typed.select([i for i in range(typed.num_columns) if i not in set(dropped)])
    return typed, dict(sorted(untyped.items()))


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


def untyped_fields(shapes: Mapping[str, T | None], present: Collection[str]) -> list[pa.Field]:
    """Codec fields (attribute names) of the known shapes of columns whose attribute has none of
    the attribute columns ``present`` (by name, metadata columns left out): given to the codec with
    a table's schema, they join the batch's values of those attributes as if the rows that held
    them were in the batch (``[]`` and ``{}`` then make DynamoDB JSON text)."""
    attributes = {attribute_name(name) for name in present}
    return [
        arrow_field(attribute_name(name), shape)
        for name, shape in shapes.items()
        if shape is not None and attribute_name(name) not in attributes
    ]


def without_columns(shapes: Mapping[str, T | None], present: Collection[str]) -> Shapes:
    """``shapes`` (untyped columns, by :func:`column_name`) without those whose attribute has one
    of the attribute columns ``present`` (metadata columns left out): such a column may be an
    :func:`other_name` (``_1st%~2``) where the untyped record says ``_1st``."""
    attributes = {attribute_name(name) for name in present}
    return {name: shape for name, shape in shapes.items() if attribute_name(name) not in attributes}


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
