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
  keeps its name. Whether a name ``X%~n`` is such a name depends on its level (:func:`other_names`):
  an older ddblake named an attribute ``a%~2`` so, which today's rules name ``a%25~2``.
* **Untyped values.** Iceberg (before v3) and Parquet store no column of only nulls, empty lists or
  empty maps, so those are left out; the attributes that held such a value without a column are
  named with the shape of what they held, so that the column added for them later is filled for
  every row, and so that two such shapes that conflict (``[]`` in one batch, ``{}`` in another)
  give the column they give in one batch (:mod:`ddblake.lake.untypedcols`).
* **Shapes.** Two columns are the same when their Arrow types and their text encodings (the
  codec's ``ddblake:`` doc marker) are, at every level (:func:`ddblake.lake.untypedcols.same_shape`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

import pyarrow as pa
from pyiceberg.schema import make_compatible_name

from ddblake.codec.schema import (
    T,
    from_field,
)

# Names that take one more "attr" as columns, and columns that lose one "attr" as names. "_ddb_"
# (and any "attr" before it) in any case: DuckDB matches column names without regard to case, so
# an attribute "_DDB_ITEM" must not sit beside the metadata column "_ddb_item" either.
_PREFIXED = re.compile(r"^(?i:attr)*(?i:_ddb_)")
_STRIP = re.compile(r"^attr(?i:attr)*(?i:_ddb_)")
_ESCAPES = re.compile(r"%(25|2E)")
_OTHER = re.compile(r"%~([2-9]|[1-9][0-9]+)$")  # the suffix of an other name (other_name: n >= 2)
_SUFFIXED = re.compile(r"%~[1-9][0-9]*$")  # key attributes the history prefixes (ends_like_other_name)
_OTHER_LIKE = re.compile(r"%~[0-9]+$")  # names field_name encodes, so that none reads as an other name
UNTYPED_KEY = b"ddblake.untyped"
"""Schema metadata of typed rows (:func:`ddblake.lake.untypedcols.with_untyped`): the columns left
out with values, as :func:`ddblake.lake.untypedcols.dump_untyped` writes them."""
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
    (:func:`stored_name`): ``name%~n``. It reads back as ``name`` does where :func:`other_names`
    says it is one (:func:`key_name`)."""
    return f"{name}%~{n}"


def own_name(name: str) -> str:
    """``name`` without the suffix of an :func:`other_name` (``_1st%~2`` → ``_1st``). Whether
    ``name`` *is* an other name depends on its level (:func:`other_names`)."""
    m = _OTHER.search(name)
    return name[: m.start()] if m else name


def ends_like_other_name(name: str) -> bool:
    """Whether ``name`` ends in ``%~`` and digits not starting with 0 (``x%~2``, ``x%~1``): the key
    attributes the history prefixes (:func:`ddblake.lake.history.key_column`)."""
    return _SUFFIXED.search(name) is not None


@functools.lru_cache(maxsize=1 << 16)
def stored_name(name: str) -> str:
    """The name Iceberg writers give ``name`` in a data file (Avro's rules, pyiceberg's
    ``make_compatible_name``; Iceberg's Java library has the same): a name that is not an Avro name
    has a leading digit ``d`` written ``_d`` and each other character outside ``[A-Za-z0-9_]``
    written ``_x`` and its code point in hex (``1st`` → ``_1st``, ``a-b`` → ``a_x2Db``)."""
    return make_compatible_name(name) if name else name


def other_names(
    names: Iterable[str],
    own: Callable[[str], bool],
    counts: Callable[[str], bool],
    *,
    ordered: bool = False,
) -> set[str]:
    """The names of one level (a table's columns, or the fields of one struct) that are other names
    (:func:`other_name`), each its own name's (docs/types.md, Names stored alike).

    A name ``X%~n`` (``n`` ≥ 2) is ``X``'s other name only if ``X`` is a name today's rules give
    (``own``), no name of the level is ``X`` itself, and another name of the level that counts
    (``counts``: a name apply keeps, not one named by an older rule, which it drops; nor an
    ``X%~n`` read as its own) is stored like ``X`` (:func:`stored_name`): only then could ddblake
    have given it, for ``X`` was taken. Every other ``X%~n`` is the attribute or map key of that
    very name, as an older ddblake named it (today's is ``X%25~n``: :func:`field_name`).

    ``ordered``: the names are in the order they were added, none ever dropped or moved (the
    history's key columns), and the name stored like ``X`` must come before ``X%~n``.
    """
    names = list(names)
    present = set(names)
    candidates = {
        name: stored_name(x)
        for name in names
        if (x := own_name(name)) != name and x not in present and own(x)
    }
    if not candidates:
        return set()
    position = {name: i for i, name in enumerate(names)}
    others = set(candidates)
    while True:  # a suffixed name read as its own does not count: drop such ones until none is left
        first: dict[str, int] = {}
        for name in names:
            if name in others or (name not in candidates and counts(name)):
                first.setdefault(stored_name(name), position[name])
        found = {
            name
            for name, stored in candidates.items()
            if name in others and (i := first.get(stored)) is not None and (not ordered or i < position[name])
        }
        if found == others:
            return found
        others = found


def _decoded(field: str) -> str | None:
    """The attribute or map key whose :func:`field_name` is ``field``, if any."""
    name = _ESCAPES.sub(lambda m: "%" if m[1] == "25" else ".", field) if _ESCAPES.search(field) else field
    return name if field_name(name) == field else None


@functools.lru_cache(maxsize=1 << 16)
def key_name(field: str, other: bool = True) -> str:
    """The attribute or map key a :func:`field_name`, or an :func:`other_name` of one, stands for.

    ``other``: whether ``field`` is an other name when it ends like one (:func:`other_names` says,
    for a name of a level; True for a name ddblake has just given); else such a suffix is part of
    the key (``a%~2`` of an older ddblake). A name that is not one these give (``x.y``, a column
    from before dots were encoded) stands for itself: the caller sees that it is not the key's name
    and retypes it.
    """
    if other:
        own = own_name(field)
        if own != field:
            name = _decoded(own)
            if name is not None:
                return name
    name = _decoded(field)
    return field if name is None else name


def is_field_name(field: str, other: bool = True) -> bool:
    """Whether ``field`` is a name today's rules give its map key (:func:`field_name`, or an
    :func:`other_name` of it when ``other``)."""
    return field_name(key_name(field, other)) == (own_name(field) if other else field)


def _is_own_field(field: str) -> bool:
    return is_field_name(field, False)


def field_others(names: Iterable[str]) -> set[str]:
    """The :func:`other_names` of the fields of one struct."""
    return other_names(names, _is_own_field, _is_own_field)


def column_name(attr: str) -> str:
    """The column of a top-level attribute: :func:`field_name`, ``attr``-prefixed where it matches
    ``^(attr)*_ddb_`` in any case, so that no attribute shadows a metadata column (for DuckDB,
    ``_DDB_ITEM`` is ``_ddb_item``) or another attribute's column.
    """
    col = field_name(attr)
    return f"attr{col}" if _PREFIXED.match(col) else col


def attribute_name(col: str, other: bool = True) -> str:
    """The attribute a :func:`column_name`, or an :func:`other_name` of one, stands for (the
    inverse: one ``attr`` prefix and, when ``other`` (as for :func:`key_name`), the ``%~n`` suffix
    removed). A column of a table is read with :func:`column_attributes`, which knows its level."""
    return key_name(col[len("attr") :] if _STRIP.match(col) else col, other)


def is_column_name(col: str, other: bool = True) -> bool:
    """Whether ``col`` is a name today's rules give its attribute (:func:`column_name`, or an
    :func:`other_name` of it when ``other``)."""
    return column_name(attribute_name(col, other)) == (own_name(col) if other else col)


def _is_own_column(col: str) -> bool:
    return is_column_name(col, False)


def name_of(col: str | pa.Field) -> str:
    """A column's name, given the name or the field (levels are read from either)."""
    return col if isinstance(col, str) else col.name


def column_others(cols: Iterable[str | pa.Field]) -> set[str]:
    """The :func:`other_names` of a table's columns ``cols`` (names, or fields: a column of a type
    ddblake never writes, added by hand, is kept whatever its name, so it counts)."""
    items = list(cols)
    names = [name_of(c) for c in items]
    foreign = {c.name for c in items if not isinstance(c, str) and from_field(c) is None}
    return other_names(names, _is_own_column, lambda n: n in foreign or _is_own_column(n))


def column_attributes(cols: Iterable[str | pa.Field]) -> dict[str, str]:
    """The attribute each of a table's columns ``cols`` (all those of its level) stands for."""
    items = list(cols)
    others = column_others(items)
    names = [name_of(c) for c in items]
    return {n: attribute_name(n, n in others) for n in names}


def is_stale(field: pa.Field, other: bool = True) -> bool:
    """Whether an attribute column ddblake wrote is named by an older rule (``x.y``, not ``x%2Ey``;
    ``a%~2`` that is not an other name, not ``a%25~2``). ``other``: as for :func:`attribute_name`.

    Such a column is retyped under its attribute's current name. A column of a type ddblake never
    writes (one added by hand) is left alone, whatever its name.
    """
    return not is_column_name(field.name, other) and from_field(field) is not None


def stale_columns(fields: Iterable[pa.Field]) -> list[str]:
    """The attribute columns (``fields``: all those of a table) named by an older rule
    (:func:`is_stale`, each read in its level)."""
    items = list(fields)
    others = column_others(items)
    return [f.name for f in items if is_stale(f, f.name in others)]


class Level:
    """The names at one level of a table — its columns, or the fields of one struct — and the
    names a batch gives what it adds there (:meth:`name`).

    Iceberg writers store every name as an Avro name (:func:`stored_name`) and refuse to write a
    schema in which two names of one level are stored alike (``1st`` and ``_1st``, ``a-b`` and
    ``a_x2Db``, ``2fa`` and ``_2fa``): every later write of the table would fail. So a name is
    free only while its stored form is. Of names already there that are stored alike (a table an
    older ddblake created, whose first write then failed), the first keeps its place and the later
    ones are left out, to be dropped and named again.

    A name :meth:`name` gives reads back as its key (:func:`other_names`): its own name when that is
    stored like no other; else ``own%~n``, which the level's name stored like ``own`` makes an other
    name, and no name ``own`` is there (``own`` of another key would be that key's column).

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


def column_keys(cols: Iterable[str | pa.Field]) -> dict[str, str | None]:
    """The attribute each of a table's columns stands for, None for a column named by no rule of
    today (a metadata column, ``x.y``, an older ``a%~2``)."""
    items = list(cols)
    others = column_others(items)
    names = [name_of(c) for c in items]
    return {n: attribute_name(n, True) if n in others or _is_own_column(n) else None for n in names}


def columns_level(cols: Iterable[str | pa.Field], kept: Callable[[str], bool] = lambda _: True) -> Level:
    """The :class:`Level` of a table's top-level columns ``cols`` (metadata columns first; names
    read in their level, :func:`column_keys`), of those ``kept``."""
    keys = column_keys(cols)
    return Level([n for n in keys if kept(n)], keys.get)


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
        others = field_others(fields)
        keys = {n: key_name(n, True) for n in fields if n in others or _is_own_field(n)}
        level = Level(keys, keys.get)
        named = []
        for f in t:
            name = level.name(f.name, field_name(f.name))
            ft = _named(f.type, fields.get(name))
            named.append(f if name == f.name and ft is f.type else f.with_name(name).with_type(ft))
        return pa.struct(named)
    return t


def _keys(t: pa.DataType) -> pa.DataType:
    """``t`` (a column's type) with every struct field, at any depth, named by the map key it stands
    for in its struct (:func:`field_others`; docs and ids kept)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_field
        elem = inner.with_type(_keys(inner.type))
        return pa.large_list(elem) if pa.types.is_large_list(t) else pa.list_(elem)
    if pa.types.is_struct(t):
        others = field_others(f.name for f in t)
        return pa.struct(
            [f.with_name(key_name(f.name, f.name in others)).with_type(_keys(f.type)) for f in t]
        )
    return t


def key_type(t: pa.DataType) -> pa.DataType:
    """A column's type with every struct field, at any depth, named by its map key (field
    positions kept)."""
    return _keys(t)


def _view(column: pa.ChunkedArray, t: pa.DataType) -> pa.ChunkedArray:
    """The same data under a type that differs only in field names (no copy)."""
    return pa.chunked_array([chunk.view(t) for chunk in column.chunks], t)


def to_columns(typed: pa.Table, have: pa.Schema | None = None, reserved: Iterable[str] = ()) -> pa.Table:
    """A codec table (attribute names, map keys as field names) with the lake's column names.

    ``have``: the table's schema (lake names, each read in its level: :func:`column_keys`), whose
    columns and struct fields keep their names but those named by an older rule (:func:`is_stale`);
    what is new is named so that no two names of one level are stored alike (:class:`Level`).
    ``reserved``: the metadata columns, which no attribute's column is stored like.
    """
    meta = list(reserved)
    attributes = [f for f in have or [] if f.name not in meta]
    stale = set(stale_columns(attributes))
    fields = {f.name: f.type for f in attributes if f.name not in stale}
    level = columns_level([*meta, *attributes], lambda n: n not in stale)
    for i, field in enumerate(typed.schema):
        name = level.name(field.name, column_name(field.name))
        t = _named(field.type, fields.get(name))
        if name != field.name or not t.equals(field.type):
            column = typed.column(i)
            view = column if t.equals(field.type) else _view(column, t)
            typed = typed.set_column(i, field.with_name(name).with_type(t), view)
    return typed


def to_attributes(fields: Iterable[pa.Field]) -> list[pa.Field]:
    """A table's attribute columns ``fields`` (all of them: each is read in its level) as the codec
    sees them: attribute names and map keys."""
    items = list(fields)
    others = column_others(items)
    return [f.with_name(attribute_name(f.name, f.name in others)).with_type(_keys(f.type)) for f in items]
