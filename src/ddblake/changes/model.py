"""The change event: the one shape every input becomes, and its raw change log line.

A raw change log line is one JSON object (docs/raw-log.md documents each field). Images stay in
DynamoDB JSON exactly as received, so the log is lossless whatever the codec later does with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard

from ddblake.errors import BadRecordError

Operation = Literal["INSERT", "MODIFY", "REMOVE", "LOAD"]
Source = Literal["streams", "kinesis", "scan", "export"]

OPERATIONS: Final[frozenset[str]] = frozenset({"INSERT", "MODIFY", "REMOVE", "LOAD"})
SOURCES: Final[frozenset[str]] = frozenset({"streams", "kinesis", "scan", "export"})
LINE_FORMAT_VERSION: Final = 1

DynamoJson = dict[str, Any]
"""An item or key in DynamoDB JSON: attribute name -> ``{"S": "..."}`` and friends."""


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_COMPACT_ASCII: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One change to one item, whatever runner or source produced it.

    Attributes:
        op: INSERT, MODIFY, REMOVE, or LOAD for a row read by a full load.
        table: the DynamoDB table name.
        keys: the primary key in DynamoDB JSON.
        new_image: the item after the change (DynamoDB JSON), None for REMOVE or KEYS_ONLY streams.
        old_image: the item before the change, when the stream view carries it.
        event_id: the source's event ID; the deterministic tie-breaker of versions.
        event_time_us: the change's time in microseconds since the epoch.
        sequence: DynamoDB Streams sequence number (decimal string); None for Kinesis and loads.
        source: streams, kinesis, scan or export.
        ttl: True when a REMOVE was DynamoDB's TTL expiry rather than a user delete.
        ingested_us: when ddblake (or Kinesis, for Firehose) received the record, microseconds.
    """

    op: Operation
    table: str
    keys: DynamoJson
    new_image: DynamoJson | None
    old_image: DynamoJson | None
    event_id: str
    event_time_us: int
    sequence: str | None
    source: Source
    ttl: bool
    ingested_us: int

    def to_dict(self) -> dict[str, Any]:
        """The raw-log object; field names are part of the lake format (docs/raw-log.md)."""
        return {
            "v": LINE_FORMAT_VERSION,
            "op": self.op,
            "table": self.table,
            "keys": self.keys,
            "new": self.new_image,
            "old": self.old_image,
            "event_id": self.event_id,
            "event_time_us": self.event_time_us,
            "seq": self.sequence,
            "source": self.source,
            "ttl": self.ttl,
            "ingested_us": self.ingested_us,
        }

    def to_line(self) -> bytes:
        """One raw-log line, UTF-8, ending in a newline.

        Compact JSON with non-ASCII text kept as UTF-8, the smallest lossless form. JSON escapes
        every control character, so the only newline is the last byte. A string holding a lone
        surrogate (which UTF-8 cannot carry; the parsers reject it) is written ``\\uXXXX``-escaped
        rather than failing.
        """
        obj = self.to_dict()
        try:
            return (_COMPACT.encode(obj) + "\n").encode("utf-8")
        except UnicodeEncodeError:
            return (_COMPACT_ASCII.encode(obj) + "\n").encode("ascii")

    @classmethod
    def from_dict(cls, obj: Any) -> ChangeEvent:
        """Rebuild an event from a raw-log object, checking every field's shape.

        Raises:
            BadRecordError: the object is not a raw-log line of a known version.
        """
        if not isinstance(obj, dict):
            raise BadRecordError(f"raw-log line is {type(obj).__name__}, not a JSON object")
        if not _is_int(obj.get("v")) or obj["v"] != LINE_FORMAT_VERSION:
            raise BadRecordError(f"raw-log line has format version {obj.get('v')!r}, expected 1")
        op, source = obj.get("op"), obj.get("source")
        if op not in OPERATIONS:
            raise BadRecordError(f"raw-log line has unknown op {op!r}")
        if source not in SOURCES:
            raise BadRecordError(f"raw-log line has unknown source {source!r}")
        table, keys, event_id = obj.get("table"), obj.get("keys"), obj.get("event_id")
        if not isinstance(table, str) or not table:
            raise BadRecordError("raw-log line has no table name")
        if not isinstance(keys, dict) or not keys:
            raise BadRecordError("raw-log line has no keys")
        if not isinstance(event_id, str) or not event_id:
            raise BadRecordError("raw-log line has no event_id")
        new, old, seq = obj.get("new"), obj.get("old"), obj.get("seq")
        for name, image in (("new", new), ("old", old)):
            if image is not None and not isinstance(image, dict):
                raise BadRecordError(f"raw-log line field {name!r} is not an object")
        if seq is not None and not isinstance(seq, str):
            raise BadRecordError("raw-log line field 'seq' is not a string")
        event_time, ingested = obj.get("event_time_us"), obj.get("ingested_us")
        if not (_is_int(event_time) and _is_int(ingested)):
            raise BadRecordError("raw-log line times are not integers (microseconds)")
        ttl = obj.get("ttl", False)
        if not isinstance(ttl, bool):
            raise BadRecordError("raw-log line field 'ttl' is not a boolean")
        return cls(
            op=op,
            table=table,
            keys=keys,
            new_image=new,
            old_image=old,
            event_id=event_id,
            event_time_us=event_time,
            sequence=seq,
            source=source,
            ttl=ttl,
            ingested_us=ingested,
        )

    @classmethod
    def from_line(cls, line: bytes | str) -> ChangeEvent:
        """Parse one raw-log line.

        Raises:
            BadRecordError: the line is not JSON or not a raw-log object.
        """
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise BadRecordError(f"raw-log line is not JSON: {e.__class__.__name__}") from e
        return cls.from_dict(obj)
