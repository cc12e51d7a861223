"""The codec: DynamoDB JSON to exact Python values and to typed Arrow columns (docs/types.md).

Pure functions, no I/O. The raw change log keeps images exactly as received; this package gives
them exact Python values (``deserialize_*``), writes Python values back (``serialize_*``), and
turns batches of items into typed Arrow tables for the lake, with schema inference, widening and
conversion to an existing schema.
"""

from __future__ import annotations

from ddblake.codec.arrow import infer_schema, items_to_table, jsonl_to_table, parsed_to_table
from ddblake.codec.ddbjson import (
    AttributeValue,
    Item,
    deserialize_item,
    deserialize_value,
    dumps,
    serialize_item,
    serialize_value,
    validate_item,
)
from ddblake.codec.errors import BadValueError, SchemaMismatchError
from ddblake.codec.numbers import NumberText, canonical_number
from ddblake.codec.parsed import read_jsonl
from ddblake.codec.reverse import row_to_item, table_to_items
from ddblake.codec.schema import prune_untyped, unify_schemas

__all__ = [
    "AttributeValue",
    "BadValueError",
    "Item",
    "NumberText",
    "SchemaMismatchError",
    "canonical_number",
    "deserialize_item",
    "deserialize_value",
    "dumps",
    "infer_schema",
    "items_to_table",
    "jsonl_to_table",
    "parsed_to_table",
    "prune_untyped",
    "read_jsonl",
    "row_to_item",
    "serialize_item",
    "serialize_value",
    "table_to_items",
    "unify_schemas",
    "validate_item",
]
