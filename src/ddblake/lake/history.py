"""The change-history table: one row per distinct change, append-only, partitioned by event day.

Images stay DynamoDB JSON text (lossless; DuckDB, Athena and Spark read them with their JSON
functions); the key is there three ways — typed key columns for people, ``keys`` as DynamoDB
JSON, and the canonical ``_ddb_key`` that apply joins on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import BooleanType, NestedField, StringType, TimestamptzType

from ddblake.changes.model import compact_json
from ddblake.changes.resolve import Keyed

_FIXED: list[tuple[str, pa.DataType]] = [
    ("op", pa.string()),
    ("ttl", pa.bool_()),
    ("event_time", pa.timestamp("us", tz="UTC")),
    ("event_id", pa.string()),
    ("seq", pa.string()),
    ("source", pa.string()),
    ("ingested_at", pa.timestamp("us", tz="UTC")),
    ("keys", pa.string()),
    ("new_image", pa.string()),
    ("old_image", pa.string()),
    ("_ddb_key", pa.string()),
    ("_ddb_version", pa.string()),
    ("_ddb_raw_file", pa.string()),
]
FIXED_NAMES = frozenset(name for name, _ in _FIXED)


def iceberg_schema() -> Schema:
    """The history table's schema (key columns are added on first write, see :func:`key_columns`)."""
    types = {
        "ttl": BooleanType(),
        "event_time": TimestamptzType(),
        "ingested_at": TimestamptzType(),
    }
    return Schema(
        *(
            NestedField(i + 1, name, types.get(name, StringType()), required=False)
            for i, (name, _) in enumerate(_FIXED)
        )
    )


def partition_spec(schema: Schema) -> PartitionSpec:
    """Partitioned by the day of the event time, so a late change rewrites nothing it need not."""
    field = schema.find_field("event_time")
    return PartitionSpec(PartitionField(field.field_id, 1000, DayTransform(), "event_day"))


def key_column(attr: str) -> str:
    """History column name of a key attribute (prefixed when it collides with a fixed column).

    One-to-one: a name that is already the prefixed form of a fixed column (``key_op``) is prefixed
    too, so that keys ``op`` and ``key_op`` get two columns (``key_op``, ``key_key_op``).
    """
    prefixed = attr in FIXED_NAMES or (attr.startswith("key_") and key_column(attr[4:]) != attr[4:])
    return f"key_{attr}" if prefixed else attr


def _dumps(value: object) -> str | None:
    return None if value is None else compact_json(value)


def _keys_json(change: Keyed) -> str:
    """The key's compact DynamoDB JSON, as received: the ``keys`` column.

    The canonical key string (``resolve.key_string``) is that very text when the attributes come
    in name order and none is a number (numbers are normalised in it): the usual key, so one JSON
    encoding per history row is saved.
    """
    keys = change.event.keys
    names = list(keys)
    if (len(names) == 1 or names[0] < names[1]) and all("N" not in v for v in keys.values()):
        return change.key
    return compact_json(keys)


def _key_text(value: dict[str, object]) -> object:
    # S and N keep their text (N exactly as received); B stays bytes after base64 decoding.
    ((tag, inner),) = value.items()
    if tag == "B":
        import base64

        return base64.b64decode(str(inner))
    return inner


def rows(
    changes: Sequence[Keyed],
    raw_files: Sequence[str],
    *,
    new_images: Sequence[str | None] | None = None,
    old_images: Sequence[str | None] | None = None,
) -> pa.Table:
    """Arrow rows for the history table, one per change (``raw_files[i]`` is change i's file).

    ``new_images[i]`` and ``old_images[i]``, when given, are change i's images already rendered as
    compact JSON text (apply renders each image once, keeps only the text, and uses it here and in
    the current state); otherwise they are rendered from the event.
    """
    events = [ch.event for ch in changes]
    cols: dict[str, list[Any]] = {
        "op": [ev.op for ev in events],
        "ttl": [ev.ttl for ev in events],
        "event_time": [ev.event_time_us for ev in events],
        "event_id": [ev.event_id for ev in events],
        "seq": [ev.sequence for ev in events],
        "source": [ev.source for ev in events],
        "ingested_at": [ev.ingested_us for ev in events],
        "keys": [_keys_json(ch) for ch in changes],
        "new_image": [_dumps(ev.new_image) for ev in events] if new_images is None else list(new_images),
        "old_image": [_dumps(ev.old_image) for ev in events] if old_images is None else list(old_images),
        "_ddb_key": [ch.key for ch in changes],
        "_ddb_version": [ch.version for ch in changes],
        "_ddb_raw_file": list(raw_files),
    }
    key_values: dict[str, list[object]] = {}
    key_types: dict[str, pa.DataType] = {}
    for i, ev in enumerate(events):
        for attr, value in ev.keys.items():
            col = key_column(attr)
            if col not in key_values:
                key_values[col] = [None] * i
                key_types[col] = pa.binary() if "B" in value else pa.string()
            key_values[col].append(_key_text(value))
        for values in key_values.values():
            if len(values) < i + 1:
                values.append(None)
    arrays = {name: pa.array(cols[name], type=typ) for name, typ in _FIXED}
    for col, values in key_values.items():
        arrays[col] = pa.array(values, type=key_types[col])
    return pa.table(arrays)
