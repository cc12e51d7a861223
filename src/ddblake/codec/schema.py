"""Column types: the lattice that infers, widens and unifies typed columns (docs/types.md).

Every *slot* (a top-level attribute, a map field, the elements of a list or set) gets one type. The
types form a lattice: ``null`` (nothing seen yet) is below everything; numbers widen
int64 -> decimal -> number text; lists widen by their elements, structs by the union of their
fields (up to :data:`MAX_MAP_FIELDS`); and where two types cannot share one column the slot becomes
DynamoDB JSON text, the top.
Inferring a batch joins the types of its values; evolving a table joins the table's types with the
batch's. The same join does both, so the rules cannot drift apart.

Two kinds of string columns mean something other than a DynamoDB ``S``: DynamoDB JSON text (a type
conflict) and number text (too many digits for a decimal). Arrow's ``string`` cannot tell them
apart, so the field carries a ``doc`` in its metadata, which pyiceberg keeps as the Iceberg field
doc; a list of such strings is marked on the nearest named field (``ddblake:[]ddb-json``), because
Iceberg keeps no doc on list elements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

import pyarrow as pa

from ddblake.codec.errors import SchemaMismatchError
from ddblake.codec.numbers import INT64_DIGITS, NumStats
from ddblake.redact import shown_type

DEFAULT_MAX_PRECISION: Final = 76
"""Widest decimal (decimal256); pass 38 for Iceberg, whose decimals stop at 38 digits."""
DOC_KEY: Final = b"doc"
DDB_JSON: Final = "ddb-json"
NUMBER_TEXT: Final = "number-text"
MAX_MAP_FIELDS: Final = 200
"""Most fields a map slot is typed with: a slot whose maps hold more distinct keys than this with a
typed value (not only NULLs or empty values), over every value it has held, is DynamoDB JSON text.
Maps keyed by data (user IDs, dates, emails) would otherwise grow a struct field per key: a schema,
a Parquet column and a Glue type string that grow with the table, and an apply whose every batch
slows down. It bounds the fields of one map, not the columns of a table (top-level attributes keep
a column each)."""
_DOCS: Final = {
    DDB_JSON: "each value is its DynamoDB JSON text; this attribute's type differs between items",
    NUMBER_TEXT: "each value is the exact DynamoDB number text; too many digits for a decimal",
}


@dataclass(frozen=True, slots=True)
class NullT:
    """Only NULL or missing values so far."""


@dataclass(frozen=True, slots=True)
class StrT:
    """S values."""


@dataclass(frozen=True, slots=True)
class BinT:
    """B values, decoded to bytes."""


@dataclass(frozen=True, slots=True)
class BoolT:
    """BOOL values."""


@dataclass(frozen=True, slots=True)
class JsonT:
    """DynamoDB JSON text of each value: the top of the lattice, where types conflict."""


@dataclass(frozen=True, slots=True)
class NumT:
    """N values: ``int`` (int64), ``dec`` (decimal(int_digits + scale, scale)) or ``text``.

    For ``int`` the digits are those actually seen in a batch (19 when read from a schema): they
    matter only when an int column widens to a decimal.
    """

    kind: Literal["int", "dec", "text"]
    int_digits: int
    scale: int


@dataclass(frozen=True, slots=True)
class ListT:
    """SS, NS, BS and L values: a list of one element type."""

    elem: T


@dataclass(frozen=True, slots=True)
class StructT:
    """M values: one slot per field name."""

    fields: tuple[tuple[str, T], ...]

    def get(self, name: str) -> T | None:
        for field_name, field_type in self.fields:
            if field_name == name:
                return field_type
        return None


T = NullT | StrT | BinT | BoolT | JsonT | NumT | ListT | StructT

NULL_T: Final = NullT()
STR_T: Final = StrT()
BIN_T: Final = BinT()
BOOL_T: Final = BoolT()
JSON_T: Final = JsonT()
TEXT_T: Final = NumT("text", 0, 0)


def number_type(stats: NumStats, max_precision: int) -> T:
    """The narrowest exact number type for measured values (``null`` when there are none)."""
    if stats.count == 0:
        return NULL_T
    if stats.all_int64:
        return NumT("int", stats.int_digits, 0)
    return _decimal_or_text(stats.int_digits, stats.scale, max_precision)


def check_precision(max_precision: int) -> int:
    """The widest decimal allowed, checked: 1..76 (decimal256's limit)."""
    if not 1 <= max_precision <= DEFAULT_MAX_PRECISION:
        raise ValueError(f"max_decimal_precision must be 1..{DEFAULT_MAX_PRECISION}, not {max_precision}")
    return max_precision


def _decimal_or_text(int_digits: int, scale: int, max_precision: int) -> NumT:
    if max(int_digits + scale, 1) > max_precision:
        return TEXT_T
    return NumT("dec", int_digits, scale)


SCALE_STEPS: Final = (2, 4, 9, 18)
"""Scales a wide decimal column takes (:func:`widen`): a scale needed is rounded up to the next of
these (as far as the digits before the point leave room), so a column's scale, which Iceberg cannot
change in place, changes at most a few times however its values' digits grow."""


def wide_scale(int_digits: int, scale: int, max_precision: int) -> int:
    """The scale of a wide decimal for values of ``int_digits`` and ``scale``: ``scale`` rounded up
    to the next of :data:`SCALE_STEPS` (``scale`` itself past the last), but never leaving fewer
    than ``int_digits`` digits before the point (nor less than ``scale``)."""
    step = next((s for s in SCALE_STEPS if s >= scale), scale) if scale else 0
    return max(scale, min(step, max_precision - int_digits))


def widen(t: T, max_precision: int) -> T:
    """``t`` with every decimal, at any depth, as wide as ``max_precision`` allows.

    A measured decimal (digits before the point + scale) becomes ``decimal(max_precision, S)``,
    ``S`` by :func:`wide_scale`, so that later values with more digits before the point still fit
    the column: its precision never has to change, and its scale rarely. Every value that fits the
    measured type fits the wide one exactly. Other types are unchanged.
    """
    if isinstance(t, NumT) and t.kind == "dec":
        scale = wide_scale(t.int_digits, t.scale, max_precision)
        return NumT("dec", max_precision - scale, scale)
    if isinstance(t, ListT):
        return ListT(widen(t.elem, max_precision))
    if isinstance(t, StructT):
        return StructT(tuple((name, widen(f, max_precision)) for name, f in t.fields))
    return t


def join(a: T, b: T, max_precision: int = DEFAULT_MAX_PRECISION) -> T:
    """The narrowest type that holds every value of both types exactly."""
    if a == b or isinstance(b, NullT):
        return a
    if isinstance(a, NullT):
        return b
    if isinstance(a, NumT) and isinstance(b, NumT):
        if a.kind == "text" or b.kind == "text":
            return TEXT_T
        if a.kind == "int" and b.kind == "int":
            return NumT("int", max(a.int_digits, b.int_digits), 0)
        return _decimal_or_text(max(a.int_digits, b.int_digits), max(a.scale, b.scale), max_precision)
    if isinstance(a, ListT) and isinstance(b, ListT):
        return ListT(join(a.elem, b.elem, max_precision))
    if isinstance(a, StructT) and isinstance(b, StructT):
        fields = [(name, join(t, _or_null(b.get(name)), max_precision)) for name, t in a.fields]
        known = {name for name, _ in a.fields}
        fields += [(name, t) for name, t in b.fields if name not in known]
        return StructT(tuple(fields)) if typed_fields(fields) <= MAX_MAP_FIELDS else JSON_T
    return JSON_T


def typed_fields(fields: Iterable[tuple[str, T]]) -> int:
    """How many of a struct's fields hold a typed value (:func:`prune` keeps them): what
    :data:`MAX_MAP_FIELDS` counts, since fields of only NULLs or empty values leave no column and
    are not remembered between batches."""
    return sum(prune(t) is not None for _, t in fields)


def _or_null(t: T | None) -> T:
    return NULL_T if t is None else t


def fits(value: T, target: T) -> bool:
    """Whether every value of type ``value`` converts exactly into a column of type ``target``.

    Map fields missing from a target struct do not count: a target schema selects what it holds.
    """
    if isinstance(value, NullT) or isinstance(target, JsonT) or value == target:
        return True
    if isinstance(value, NumT) and isinstance(target, NumT):
        if target.kind == "text":
            return True
        if target.kind == "int":
            return value.kind == "int"
        return value.kind != "text" and value.int_digits <= target.int_digits and value.scale <= target.scale
    if isinstance(value, ListT) and isinstance(target, ListT):
        return fits(value.elem, target.elem)
    if isinstance(value, StructT) and isinstance(target, StructT):
        return all(fits(t, field) for name, t in value.fields if (field := target.get(name)) is not None)
    return False


def prune(t: T) -> T | None:
    """The type without parts that hold no typed value yet (None when nothing is left).

    Iceberg has no column type for "only nulls" (before format v3) and Parquet cannot store an empty
    struct; the raw ``_item`` keeps those values, and the column comes back once a typed value does.
    """
    if isinstance(t, NullT):
        return None
    if isinstance(t, ListT):
        elem = prune(t.elem)
        return None if elem is None else ListT(elem)
    if isinstance(t, StructT):
        kept = tuple((name, p) for name, f in t.fields if (p := prune(f)) is not None)
        return StructT(kept) if kept else None
    return t


# --- Arrow ---------------------------------------------------------------------------------------


def _encoding(t: T) -> str | None:
    depth = ""
    while isinstance(t, ListT):
        depth, t = depth + "[]", t.elem
    if isinstance(t, JsonT):
        return depth + DDB_JSON
    if isinstance(t, NumT) and t.kind == "text":
        return depth + NUMBER_TEXT
    return None


def arrow_type(t: T) -> pa.DataType:
    """The Arrow type of a column of type ``t``."""
    if isinstance(t, StrT | JsonT):
        return pa.string()
    if isinstance(t, NumT):
        if t.kind == "int":
            return pa.int64()
        if t.kind == "text":
            return pa.string()
        precision = max(t.int_digits + t.scale, 1)
        return pa.decimal128(precision, t.scale) if precision <= 38 else pa.decimal256(precision, t.scale)
    if isinstance(t, BinT):
        return pa.binary()
    if isinstance(t, BoolT):
        return pa.bool_()
    if isinstance(t, NullT):
        return pa.null()
    if isinstance(t, ListT):
        return pa.list_(arrow_type(t.elem))
    return pa.struct([arrow_field(name, f) for name, f in t.fields])


def arrow_field(name: str, t: T) -> pa.Field:
    """The Arrow field of a column of type ``t``, with the doc that marks text encodings."""
    encoding = _encoding(t)
    metadata = None if encoding is None else {DOC_KEY: f"ddblake:{encoding} — {_DOCS[encoding.lstrip('[]')]}"}
    return pa.field(name, arrow_type(t), metadata=metadata)


def _doc_encoding(field: pa.Field) -> str | None:
    doc = (field.metadata or {}).get(DOC_KEY)
    if doc is None or not doc.startswith(b"ddblake:"):
        return None
    return str(doc[len(b"ddblake:") :].split()[0].decode())


def _from_type(type_: pa.DataType, encoding: str | None) -> T | None:
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        inner = encoding[2:] if encoding and encoding.startswith("[]") else None
        elem = _from_type(type_.value_type, inner)
        return None if elem is None else ListT(elem)
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return JSON_T if encoding == DDB_JSON else TEXT_T if encoding == NUMBER_TEXT else STR_T
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_binary_view(type_):
        return BIN_T
    if pa.types.is_boolean(type_):
        return BOOL_T
    if pa.types.is_int64(type_):
        return NumT("int", INT64_DIGITS, 0)
    if pa.types.is_decimal(type_):
        return NumT("dec", type_.precision - type_.scale, type_.scale)
    if pa.types.is_null(type_):
        return NULL_T
    if pa.types.is_struct(type_):
        fields = []
        for i in range(type_.num_fields):
            child = type_.field(i)
            child_t = from_field(child)
            if child_t is None:
                return None
            fields.append((child.name, child_t))
        return StructT(tuple(fields))
    return None


def from_field(field: pa.Field) -> T | None:
    """The lattice type of an Arrow field, or None for a type ddblake never writes (a float, say)."""
    return _from_type(field.type, _doc_encoding(field))


def same_column(a: T, b: T) -> bool:
    """Whether two types give the same Arrow column (int digits of an int64 do not matter)."""
    return bool(arrow_field("_", a).equals(arrow_field("_", b), check_metadata=True))


def unify_field(old: pa.Field, new: T, max_precision: int = DEFAULT_MAX_PRECISION) -> tuple[pa.Field, T]:
    """The field that holds an existing column's values and a batch's: ``old`` itself when it can.

    Raises:
        SchemaMismatchError: the existing column has a type ddblake does not write.
    """
    old_t = from_field(old)
    if old_t is None:
        raise SchemaMismatchError(
            f"column {old.name!r} has type {shown_type(old.type)}, which ddblake does not write; "
            "its attribute values cannot be added to it"
        )
    joined = join(old_t, new, max_precision)
    if same_column(joined, old_t):
        return old, old_t
    return arrow_field(old.name, joined), joined


def unify_schemas(
    old: pa.Schema, new: pa.Schema, *, max_decimal_precision: int = DEFAULT_MAX_PRECISION
) -> pa.Schema:
    """The schema that holds the values of both: existing columns first, widened where needed.

    Args:
        old: the existing schema (a previous batch's, or the lake table's as Arrow).
        new: a new batch's inferred schema.
        max_decimal_precision: widest decimal before number text (38 for Iceberg).

    A column of ``old`` that the batch does not have is kept as it is, even if ddblake did not write
    it. New attributes come last, in ``new``'s order. A field that does not change is ``old``'s own
    field object, so its metadata (Iceberg field ids) survives.

    Raises:
        SchemaMismatchError: a column in both has a type ddblake never writes.
    """
    check_precision(max_decimal_precision)
    new_by_name = {f.name: f for f in new}
    fields = []
    for field in old:
        other = new_by_name.pop(field.name, None)
        if other is None:
            fields.append(field)
            continue
        other_t = from_field(other)
        if other_t is None:
            raise SchemaMismatchError(
                f"column {other.name!r} of the new schema has type {shown_type(other.type)}"
            )
        fields.append(unify_field(field, other_t, max_decimal_precision)[0])
    fields.extend(new_by_name.values())
    return pa.schema(fields, metadata=old.metadata)


def prune_untyped(schema: pa.Schema) -> pa.Schema:
    """The schema without columns and fields that hold no typed value yet (see :func:`prune`).

    Columns whose type ddblake does not write are kept as they are.
    """
    fields = []
    for field in schema:
        t = from_field(field)
        if t is None:
            fields.append(field)
            continue
        kept = prune(t)
        if kept is not None:
            fields.append(field if kept == t else arrow_field(field.name, kept))
    return pa.schema(fields, metadata=schema.metadata)
