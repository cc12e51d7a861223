"""The change event: the one shape every input becomes, and its raw change log line.

A raw change log line is one JSON object (docs/raw-log.md documents each field). Images stay in
DynamoDB JSON exactly as received, so the log is lossless whatever the codec later does with them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard, cast

from ddblake.errors import BadRecordError

Operation = Literal["INSERT", "MODIFY", "REMOVE", "LOAD"]
Source = Literal["streams", "kinesis", "scan", "export"]

OPERATIONS: Final[frozenset[str]] = frozenset({"INSERT", "MODIFY", "REMOVE", "LOAD"})
SOURCES: Final[frozenset[str]] = frozenset({"streams", "kinesis", "scan", "export"})
LINE_FORMAT_VERSION: Final = 1

DynamoJson = dict[str, Any]
"""An item or key in DynamoDB JSON: attribute name -> ``{"S": "..."}`` and friends."""


MAX_LINE_BYTES: Final = 16 * 1024 * 1024
"""Longest raw-log line read. A change holds at most two 400 KB DynamoDB items; even written as JSON
with every character escaped (six bytes each) that stays under 5 MiB, so a longer line is not a
change (a corrupt file, a runaway writer) and is quarantined rather than held in memory and applied."""
_MAX_TIME_US: Final = 253_402_300_800_000_000  # 10000-01-01T00:00:00Z, as ddblake.changes.parse
_MAX_SEQ_DIGITS: Final = 40
_SAFE_TOKEN: Final = re.compile(r"[A-Za-z0-9_]{1,20}")
_SURROGATE_BYTES: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_TEXT: Final = re.compile("[\ud800-\udfff]|\\\\u[dD][89a-fA-F]")

_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact_json(value: object) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` with one shared encoder.

    The text form of images everywhere: raw-log lines, the history, ``_ddb_item``.
    """
    return _COMPACT.encode(value)


_COMPACT_ASCII: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_line_values(
    op: str,
    table: str,
    keys: Any,
    images: tuple[Any, Any],
    seq: str | None,
    event_time: int,
    ingested: int,
    ttl: bool,
) -> None:
    """What a raw-log line's fields must hold beyond their JSON types, so that ``apply`` can rely on it.

    The same rules the transform applies to records (``ddblake.changes.parse``): a line that passes
    here can be versioned, keyed, partitioned and typed; one that does not is quarantined by the
    reader instead of stopping ``apply`` for the whole table.

    Raises:
        BadRecordError: what is wrong, without item data.
    """
    from ddblake.changes import parse  # parse imports this module; imported here, not at the top

    parse.check_table_name(table)
    if not 0 <= event_time < _MAX_TIME_US:
        raise BadRecordError("raw-log line field 'event_time_us' is outside years 1970 to 9999")
    if not 0 <= ingested < _MAX_TIME_US:  # the transform caps arrival times past 9999
        raise BadRecordError("raw-log line field 'ingested_us' is outside years 1970 to 9999")
    if seq is not None and not (0 < len(seq) <= _MAX_SEQ_DIGITS and seq.isascii() and seq.isdigit()):
        raise BadRecordError(f"raw-log line field 'seq' is not a string of 1 to {_MAX_SEQ_DIGITS} digits")
    if ttl and op != "REMOVE":
        raise BadRecordError(f"raw-log line is a TTL expiry but its op is {op}, not REMOVE")
    if len(keys) > 2:
        raise BadRecordError("raw-log line has more than two key attributes")
    parse.check_keys(keys)
    parse.check_image(images[0], "new")
    parse.check_image(images[1], "old")  # as the fast reader's grammar does (ddblake.changes.rawline)
    parse.check_sets(images[0], "new")  # a set holding a member twice is no change either
    parse.check_sets(images[1], "old")


def _shown(value: Any) -> str:
    """A field's value for an error message: short words and numbers as they are, anything else by
    its type, so that a damaged line cannot put item data into logs or quarantine reasons."""
    if isinstance(value, int | str) and not isinstance(value, bool) and _SAFE_TOKEN.fullmatch(str(value)):
        return repr(value)
    return f"<{type(value).__name__}>"


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
            newer = _is_int(obj.get("v")) and obj["v"] > LINE_FORMAT_VERSION
            raise BadRecordError(
                f"raw-log line has format version {_shown(obj.get('v'))}, expected 1"
                + (
                    "; a newer ddblake wrote it: upgrade the ddblake that applies (docs/upgrades.md)"
                    if newer
                    else ""
                )
            )
        op, source = obj.get("op"), obj.get("source")
        if not isinstance(op, str) or op not in OPERATIONS:
            raise BadRecordError(f"raw-log line has unknown op {_shown(op)}")
        if not isinstance(source, str) or source not in SOURCES:
            raise BadRecordError(f"raw-log line has unknown source {_shown(source)}")
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
        _check_line_values(op, table, keys, (new, old), seq, event_time, ingested, ttl)
        return cls(
            op=cast(Operation, op),
            table=table,
            keys=keys,
            new_image=new,
            old_image=old,
            event_id=event_id,
            event_time_us=event_time,
            sequence=seq,
            source=cast(Source, source),
            ttl=ttl,
            ingested_us=ingested,
        )

    @classmethod
    def from_line(cls, line: bytes | str) -> ChangeEvent:
        """Parse one raw-log line.

        Raises:
            BadRecordError: the line is not JSON or not a raw-log object.
        """
        if len(line) > MAX_LINE_BYTES:
            raise BadRecordError(
                f"raw-log line is {len(line):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit of a change"
            )
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise BadRecordError(f"raw-log line is not JSON: {e.__class__.__name__}") from e
        # UTF-8 bytes cannot hold a surrogate, but a \uD800-style escape can, anywhere (event ID,
        # old image...); Arrow and Iceberg cannot store one, so such a line is no change.
        maybe = _SURROGATE_BYTES.search(line) if isinstance(line, bytes) else _SURROGATE_TEXT.search(line)
        if maybe is not None:
            try:
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as e:
                raise BadRecordError("raw-log line holds a lone surrogate, which UTF-8 cannot carry") from e
        return cls.from_dict(obj)
