"""The schema a set of items evolves a schema to, from their types alone, item set by item set.

:func:`~ddblake.codec.arrow.items_to_table` with ``evolve=True`` widens a schema by the batch's
*values*: a column's type joins the types the values have (an integer of three digits, a decimal
with a scale of 3), not the Arrow type an earlier batch left (``int64`` counts as 19 digits
whatever its values). Typing a large set of items part by part through Arrow schemas would widen
more than typing them at once does. So :func:`infer_types` keeps each part's value types in the
lattice (:mod:`ddblake.codec.schema`), whose join is associative, and :func:`evolved_schema` gives,
from the join over every part, the schema ``items_to_table(all the items, schema, evolve=True)``
gives, without holding all the items at once (a whole-table retype:
:mod:`ddblake.lake.retyping`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from ddblake.codec.arrow import _Converter, _whole
from ddblake.codec.parsed import load_lines, parse_items, read_jsonl
from ddblake.codec.schema import (
    DEFAULT_MAX_PRECISION,
    NULL_T,
    ListT,
    StructT,
    T,
    arrow_field,
    join,
    unify_field,
    widen,
)


def infer_types(
    items: Sequence[dict[str, Any] | None], *, max_decimal_precision: int = DEFAULT_MAX_PRECISION
) -> dict[str, T]:
    """Each attribute's type over these items' values (lattice types, by attribute name)."""
    convert = _Converter(max_decimal_precision)
    return {name: convert.slot(slot, None, name)[0] for name, slot in parse_items(list(items)).items()}


def infer_text_types(data: bytes, *, max_decimal_precision: int = DEFAULT_MAX_PRECISION) -> dict[str, T]:
    """:func:`infer_types` of items given as JSON Lines (one DynamoDB JSON item a line), read in
    C++ as :func:`~ddblake.codec.arrow.jsonl_to_table` reads them, or the exact Python way where
    it does."""
    try:
        parsed = read_jsonl(data, refuse_wide=1) if data.lstrip()[:1] in (b"{", b"") else None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, UnicodeDecodeError):
        parsed = None
    if parsed is None:
        return infer_types(load_lines(data), max_decimal_precision=max_decimal_precision)
    convert = _Converter(max_decimal_precision)
    return {name: convert.slot(_whole(parsed.column(name)), None, name)[0] for name in parsed.column_names}


def join_types(
    a: Mapping[str, T], b: Mapping[str, T], *, max_decimal_precision: int = DEFAULT_MAX_PRECISION
) -> dict[str, T]:
    """The types of two sets of items together (:func:`infer_types` of both at once).

    Typing items at once sorts a map's fields by name; a join keeps the first type's fields first
    and adds the other's after them. So the joined types have their fields sorted again, at every
    depth: otherwise a column's fields would come in the order its files happened to be read.
    """
    out = dict(a)
    for name, t in b.items():
        out[name] = _by_name(join(out.get(name, NULL_T), t, max_decimal_precision))
    return out


def _by_name(t: T) -> T:
    if isinstance(t, StructT):
        return StructT(tuple(sorted(((name, _by_name(f)) for name, f in t.fields), key=lambda nf: nf[0])))
    if isinstance(t, ListT):
        return ListT(_by_name(t.elem))
    return t


def evolved_schema(
    types: Mapping[str, T],
    schema: pa.Schema | None,
    *,
    max_decimal_precision: int = DEFAULT_MAX_PRECISION,
    wide_decimals: bool = False,
) -> pa.Schema:
    """The schema ``items_to_table(items, schema, evolve=True, ...)`` has, for items of ``types``.

    Mirrors :func:`ddblake.codec.arrow._table` with ``evolve=True`` and ``drop_untyped=False``:
    ``schema``'s columns in its order, each unified with its attribute's type (widened to a wide
    decimal when it changes, with ``wide_decimals``), then the attributes it lacks, sorted by name.
    A test holds the two to the same answers.
    """
    fields: list[pa.Field] = []
    todo = set(types)
    for field in schema if schema is not None else ():
        todo.discard(field.name)
        inferred = types.get(field.name)
        if inferred is None:
            fields.append(field)
            continue
        unified, goal = unify_field(field, inferred, max_decimal_precision)
        if wide_decimals and unified is not field:
            unified = arrow_field(field.name, widen(goal, max_decimal_precision))
        fields.append(unified)
    for name in sorted(todo):
        t = types[name]
        fields.append(arrow_field(name, widen(t, max_decimal_precision) if wide_decimals else t))
    return pa.schema(fields, metadata=schema.metadata if schema is not None else None)
