"""Typed columns back to DynamoDB JSON, for queries and checks (``dump`` reads ``_item`` instead).

What the typed columns cannot tell apart comes back in one chosen form: sets come back as lists
(``L``), a NULL and a missing attribute both come back missing (a NULL *list element* comes back as
NULL), and numbers come back as DynamoDB writes them (plain notation, no superfluous zeros). For an
item DynamoDB returned with no sets and no NULLs, that is the item exactly. Conflict columns hold
DynamoDB JSON text and give back the value exactly as received.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ddblake.codec.ddbjson import AttributeValue, Item, encode_base64
from ddblake.codec.errors import SchemaMismatchError
from ddblake.codec.numbers import canonical_number
from ddblake.codec.schema import BinT, BoolT, JsonT, ListT, NullT, NumT, StrT, T, from_field
from ddblake.redact import shown_type


def value_to_av(t: T, value: Any) -> AttributeValue | None:
    """One typed column value back to DynamoDB JSON; None for a null (no attribute)."""
    if value is None or isinstance(t, NullT):
        return None
    if isinstance(t, StrT):
        return {"S": value}
    if isinstance(t, NumT):
        if t.kind == "text":
            return {"N": value}
        return {"N": canonical_number(value if isinstance(value, int | Decimal) else Decimal(value))}
    if isinstance(t, BinT):
        return {"B": encode_base64(value)}
    if isinstance(t, BoolT):
        return {"BOOL": value}
    if isinstance(t, JsonT):
        av: AttributeValue = json.loads(value)
        return av
    if isinstance(t, ListT):
        return {"L": [value_to_av(t.elem, v) or {"NULL": True} for v in value]}
    fields: dict[str, AttributeValue] = {}
    for name, field_t in t.fields:
        field_av = value_to_av(field_t, value.get(name))
        if field_av is not None:
            fields[name] = field_av
    return {"M": fields}


def _types(schema: pa.Schema) -> list[tuple[str, T]]:
    types = []
    for field in schema:
        t = from_field(field)
        if t is None:
            raise SchemaMismatchError(
                f"column {field.name!r} has type {shown_type(field.type)}, which ddblake does not write; "
                "select the attribute columns first"
            )
        types.append((field.name, t))
    return types


def row_to_item(row: Mapping[str, Any], schema: pa.Schema) -> Item:
    """A row of typed values (as ``Table.to_pylist`` gives) back to a DynamoDB JSON item.

    Raises:
        SchemaMismatchError: the schema has a column ddblake does not write (such as a lake's own
            bookkeeping column); select the attribute columns first.
    """
    item: Item = {}
    for name, t in _types(schema):
        av = value_to_av(t, row.get(name))
        if av is not None:
            item[name] = av
    return item


def table_to_items(table: pa.Table) -> list[Item]:
    """Every row of a typed table back to DynamoDB JSON items (see :func:`row_to_item`)."""
    types = _types(table.schema)
    items = []
    for row in table.to_pylist():
        item: Item = {}
        for name, t in types:
            av = value_to_av(t, row[name])
            if av is not None:
                item[name] = av
        items.append(item)
    return items
