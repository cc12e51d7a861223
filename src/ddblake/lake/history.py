"""The change-history table: one row per distinct change, append-only, partitioned by event day.

Images stay DynamoDB JSON text (lossless; DuckDB, Athena and Spark read them with their JSON
functions); the key is there three ways — typed key columns for people, ``keys`` as DynamoDB
JSON, and the canonical ``_ddb_key`` that apply joins on.

A key attribute's column holds one kind of value: text (``S`` and ``N``, as received) or binary
(``B``), whichever its first value was. A DynamoDB table deleted and created again with that key
of the other kind (``B`` where it was ``S``) puts its values in a second column of their own
(:func:`other_kind_column`), so the history is never rewritten and no value is changed to fit.

Key column names are compared as DuckDB and Athena compare them, without regard to case (a key
``OP`` is ``key_OP``, never beside ``op``), and a new one stored like a column the table has
(``_1st`` beside ``1st``: Iceberg writers store both as ``_1st``) is another name,
``<name>%~2`` (:class:`ddblake.lake.columns.Level`, :class:`KeyColumns`).
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
from ddblake.lake import columns

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
TEXT, BINARY = "text", "binary"
"""The two kinds of key column: ``S`` and ``N`` values as their text, ``B`` values as bytes."""
_OTHER_KIND = tuple(f"_ddb_{kind}_" for kind in (BINARY, TEXT))  # other_kind_column's prefixes


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

    Names are compared without regard to case, as DuckDB and Athena compare columns: a key ``OP``
    or ``_DDB_KEY`` is ``key_OP``, ``key__DDB_KEY``. One-to-one: a name that is already the
    prefixed form of a fixed column (``key_op``) is prefixed too, so that keys ``op`` and ``key_op``
    get two columns (``key_op``, ``key_key_op``). Names that :func:`other_kind_column` gives
    (``_ddb_binary_…``, ``_ddb_text_…``), and names ending like an other name
    (:func:`ddblake.lake.columns.other_name`: ``x%~2``), are prefixed as well, so no key
    attribute's column is ever another one's second or other name.
    """
    low = attr.lower()
    prefixed = (
        low in FIXED_NAMES
        or low.startswith(_OTHER_KIND)
        or columns.ends_like_other_name(attr)
        or (low.startswith("key_") and key_column(attr[4:]) != attr[4:])
    )
    return f"key_{attr}" if prefixed else attr


def _case_sensitive_key_column(attr: str) -> str:
    """:func:`key_column` as ddblake named key columns before it compared names without regard to
    case (``OP`` was ``OP``): the name such a key has in a table written then."""
    prefixed = (
        attr in FIXED_NAMES
        or attr.startswith(_OTHER_KIND)
        or (attr.startswith("key_") and _case_sensitive_key_column(attr[4:]) != attr[4:])
    )
    return f"key_{attr}" if prefixed else attr


def other_kind_column(attr: str, kind: str) -> str:
    """The second column of a key attribute, for its values of ``kind`` (:data:`TEXT` or
    :data:`BINARY`) when its :func:`key_column` holds the other kind: ``_ddb_binary_<attr>`` or
    ``_ddb_text_<attr>`` (``_ddb_binary_key_<attr>`` for a name ending like an other name, ``x%~2``).
    No :func:`key_column` and no fixed column has such a name."""
    return f"_ddb_{kind}_key_{attr}" if columns.ends_like_other_name(attr) else f"_ddb_{kind}_{attr}"


def _any(_: str) -> bool:
    return True


class KeyColumns:
    """The names of a history table's key columns, as a batch writes them.

    A key's :func:`key_column` (or :func:`other_kind_column`) is its name unless Iceberg writers
    would store it like a column the table has or the batch added before it (``_1st`` beside
    ``1st``, both stored as ``_1st``; :class:`ddblake.lake.columns.Level`): it is then the first free
    ``<name>%~2``, ``<name>%~3``, …, and keeps that name. A key the table already has in a column
    named before names were compared without regard to case (``OP``) keeps that column.

    Args:
        schema: The history table's schema (None: a table without key columns yet).
    """

    def __init__(self, schema: pa.Schema | None) -> None:
        names = [n for n, _ in _FIXED] if schema is None else schema.names
        self.existing = set(names)
        # Key columns are only ever added, at the end: what is stored like ``X`` must come before
        # ``X%~n`` for it to be X's other name, so that a column an older ddblake named for a key
        # ``1st%~2`` stays that key's whatever keys come later (``_1st``, then ``1st``: ``1st%~3``).
        others = columns.other_names(names, _any, _any, ordered=True)
        self.level = columns.Level(names, lambda n: columns.own_name(n) if n in others else n)

    def key(self, attr: str) -> str:
        """The column of key attribute ``attr``."""
        own, before = key_column(attr), _case_sensitive_key_column(attr)
        if before != own and before in self.existing:
            return before
        return self.level.name(own, own)

    def other_kind(self, attr: str, kind: str) -> str:
        """The column of key attribute ``attr``'s values of ``kind`` (:func:`other_kind_column`)."""
        own = other_kind_column(attr, kind)
        return self.level.name(own, own)


def _kind_of(value: dict[str, object]) -> str:
    return BINARY if "B" in value else TEXT


def _column_kind(type_: pa.DataType) -> str:
    binary = pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_binary_view(type_)
    return BINARY if binary else TEXT


def key_kinds(schema: pa.Schema | None) -> dict[str, str]:
    """The kind of each key column of a history table's schema (its other columns left out)."""
    if schema is None:
        return {}
    return {f.name: _column_kind(f.type) for f in schema if f.name not in FIXED_NAMES}


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
    schema: pa.Schema | None = None,
) -> pa.Table:
    """Arrow rows for the history table, one per change (``raw_files[i]`` is change i's file).

    ``new_images[i]`` and ``old_images[i]``, when given, are change i's images already rendered as
    compact JSON text (apply renders each image once, keeps only the text, and uses it here and in
    the current state); otherwise they are rendered from the event.

    ``schema``: the history table's schema, whose key columns keep their kind. A key value goes to
    its attribute's :func:`key_column` when that column holds its kind (or is new: the first value
    in the batch decides), else to the attribute's :func:`other_kind_column` (named as
    :class:`KeyColumns` says).
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
    kinds = key_kinds(schema)
    names = KeyColumns(schema)
    for i, ev in enumerate(events):
        for attr, value in ev.keys.items():
            kind = _kind_of(value)
            col = names.key(attr)
            if kinds.setdefault(col, kind) != kind:
                col = names.other_kind(attr, kind)
                kinds[col] = kind
            if col not in key_values:
                key_values[col] = [None] * i
            key_values[col].append(_key_text(value))
        for values in key_values.values():
            if len(values) < i + 1:
                values.append(None)
    arrays = {name: pa.array(cols[name], type=typ) for name, typ in _FIXED}
    for col, values in key_values.items():
        arrays[col] = pa.array(values, type=pa.binary() if kinds[col] == BINARY else pa.string())
    return pa.table(arrays)
