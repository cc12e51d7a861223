"""The pure rules of load rows: their version time, their event IDs and their raw-log lines.

A load row must never overwrite a newer change, and a crashed load that is run again must produce
the very same rows, so ``apply`` drops the repeats:

* **Version time.** DynamoDB Streams stamps a change with an *approximate* time rounded down — to
  the second on AWS, to the minute on DynamoDB Local — taken from AWS's clock, not ours. A Scan
  load that starts at time S writes its rows at ``floor(S, 1 min) - 1 min - 1 µs``: any change
  made after the load started carries a stream time of at least ``floor(S, 1 min)`` (a minute of
  clock skew allowed), so it ranks above every load row, whatever the row read. Letting a change
  made shortly *before* S win as well is safe: every later change of that item is in the stream
  too, so the newest version is still the item's true state. An export's times come from AWS's
  clock, like the stream's, so its rows are versioned to the second (:func:`export_version_from_us`):
  ``floor(t, 1 s) - 1 µs``, t being a full export's ``exportTime`` or an incremental export row's
  ``WriteTimestampMicros``; a change made at or after t is stamped at least ``floor(t, 1 s)`` and
  still outranks the row, while a stream change of an earlier second no longer outranks an
  incremental row written after it (with the minute rule, one up to two minutes older did).
  Against DynamoDB Local, whose stream stamps to the minute, export rows keep the Scan rule
  (``versions="minute"``). A full export's rows carry ``exportTime`` in µs as their sequence number,
  an incremental export row its exact write µs, which orders rows of one item across exports of the
  same second.
* **Event ID.** ``load-<load id>-<sha1 of the canonical key>`` for a Scan load, ``export-<export
  id>-<sha1>`` for a full export and ``export-<export id>-<write µs>-<sha1>`` for an incremental
  export row: deterministic per (load, key), so a rerun repeats IDs instead of inventing new ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ddblake.changes.model import ChangeEvent, DynamoJson, Operation, Source
from ddblake.changes.resolve import key_string
from ddblake.errors import BadRecordError

SECOND_US: Final = 1_000_000
MINUTE_US: Final = 60 * SECOND_US
CLOCK_SKEW_US: Final = MINUTE_US


def version_time_us(start_seconds: float) -> int:
    """The event time of every row of a load that started at ``start_seconds`` (epoch, UTC).

    ``floor(start, 1 min) - 1 min - 1 µs``: strictly below the (rounded-down) stream time of any
    change made after the start, even with a minute of clock skew, so such a change always wins.
    """
    return version_time_from_us(int(start_seconds) * SECOND_US)


def version_time_from_us(start_us: int) -> int:
    """:func:`version_time_us` of a start time given in microseconds (exact integer arithmetic)."""
    return (start_us // MINUTE_US) * MINUTE_US - CLOCK_SKEW_US - 1


EXPORT_VERSIONS: Final = ("second", "minute")
"""How export rows are versioned: to the second (the stream is AWS's), or to the minute with a
minute's allowance like a Scan load (the stream is DynamoDB Local's, stamped to the minute)."""


def export_version_from_us(t_us: int, versions: str = "second") -> int:
    """The event time of an export row whose time (``exportTime``, or an incremental row's write
    time) is ``t_us``: ``floor(t, 1 s) - 1 µs``, or :func:`version_time_from_us` for ``"minute"``.

    Any stream change made at or after ``t`` is stamped (rounded down to the second, by the same AWS
    clock) at least ``floor(t, 1 s)``, so it still outranks the row.

    Raises:
        ValueError: ``versions`` is not one of :data:`EXPORT_VERSIONS`.
    """
    if versions == "second":
        return (t_us // SECOND_US) * SECOND_US - 1
    if versions == "minute":
        return version_time_from_us(t_us)
    raise ValueError(f"export versions {versions!r}: expected one of {', '.join(EXPORT_VERSIONS)}")


def incremental_sequence(write_us: int) -> str:
    """The sequence number of an incremental export row: its exact write time in µs."""
    return str(write_us)


def parse_export_time(text: str) -> int:
    """An export manifest time (``2026-11-28T08:00:00.000Z``) in epoch microseconds.

    Raises:
        ValueError: the text is not an ISO 8601 time.
    """
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


def key_digest(keys: Mapping[str, Any]) -> str:
    """SHA-1 (hex) of the canonical key string: short, fixed width, the same in every process."""
    return hashlib.sha1(key_string(keys).encode(), usedforsecurity=False).hexdigest()


def scan_event_id(load_id: str, keys: Mapping[str, Any]) -> str:
    """The event ID of a Scan load row: ``load-<load id>-<sha1 of key>``."""
    return f"load-{load_id}-{key_digest(keys)}"


def export_event_id(export_id: str, keys: Mapping[str, Any], write_us: int | None = None) -> str:
    """The event ID of an export row; incremental rows include their write time."""
    if write_us is None:
        return f"export-{export_id}-{key_digest(keys)}"
    return f"export-{export_id}-{write_us}-{key_digest(keys)}"


def key_of(item: Mapping[str, Any], key_names: Sequence[str]) -> DynamoJson:
    """The key attributes of an item, in KeySchema order.

    Raises:
        BadRecordError: a key attribute is missing (names the attribute, never a value).
    """
    try:
        return {name: item[name] for name in key_names}
    except KeyError as e:
        raise BadRecordError(f"item has no key attribute {e.args[0]!r}") from e


def load_event(
    *,
    table: str,
    item: DynamoJson,
    key_names: Sequence[str],
    make_id: Callable[[DynamoJson], str],
    event_time_us: int,
    ingested_us: int,
    source: Source,
) -> ChangeEvent:
    """A LOAD row: the item as read, no old image, no sequence number; ``make_id(keys)`` names it."""
    keys = key_of(item, key_names)
    return ChangeEvent(
        op="LOAD",
        table=table,
        keys=keys,
        new_image=item,
        old_image=None,
        event_id=make_id(keys),
        event_time_us=event_time_us,
        sequence=None,
        source=source,
        ttl=False,
        ingested_us=ingested_us,
    )


def incremental_op(new: DynamoJson | None, old: DynamoJson | None, view: str | None) -> Operation:
    """The op of an incremental export row.

    No NewImage is a delete (REMOVE). With an OldImage the row is a MODIFY; without one, an INSERT
    when the export carries old images (``NEW_AND_OLD_IMAGES``), else LOAD (the view cannot tell).
    """
    if new is None:
        return "REMOVE"
    if old is not None:
        return "MODIFY"
    return "INSERT" if view == "NEW_AND_OLD_IMAGES" else "LOAD"


def _wire_value(value: Any) -> Any:
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((tag, inner),) = value.items()
    if tag == "B" and isinstance(inner, bytes | bytearray):
        return {"B": base64.b64encode(inner).decode("ascii")}
    if tag == "BS" and isinstance(inner, list):
        return {
            "BS": [
                base64.b64encode(v).decode("ascii") if isinstance(v, bytes | bytearray) else v for v in inner
            ]
        }
    if tag == "M" and isinstance(inner, dict):
        return {"M": {k: _wire_value(v) for k, v in inner.items()}}
    if tag == "L" and isinstance(inner, list):
        return {"L": [_wire_value(v) for v in inner]}
    return value


def to_wire_item(item: Mapping[str, Any]) -> DynamoJson:
    """An item as botocore parses it (binary as ``bytes``) back in DynamoDB JSON (binary as base64).

    Only used when the raw response body is not available (a ``Stubber``, an older botocore): the
    fast path keeps DynamoDB's own JSON text and needs no conversion.
    """
    return {name: _wire_value(value) for name, value in item.items()}


def _call_value(value: Any) -> Any:
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((tag, inner),) = value.items()
    if tag == "B" and isinstance(inner, str):
        return {"B": base64.b64decode(inner, validate=True)}
    if tag == "BS" and isinstance(inner, list):
        return {"BS": [base64.b64decode(v, validate=True) if isinstance(v, str) else v for v in inner]}
    if tag == "M" and isinstance(inner, dict):
        return {"M": {k: _call_value(v) for k, v in inner.items()}}
    if tag == "L" and isinstance(inner, list):
        return {"L": [_call_value(v) for v in inner]}
    return value


def to_call_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item (or key) in DynamoDB JSON (binary as base64 text) as a botocore *parameter*.

    The inverse of :func:`to_wire_item`. botocore base64-encodes whatever it is given for a binary
    value, ``str`` included, so a key kept in wire form (a saved ``LastEvaluatedKey``) must be
    decoded to ``bytes`` before it goes back as ``ExclusiveStartKey``: passed as text it would be
    encoded twice, and DynamoDB would resume the Scan from a key that never existed.

    Raises:
        ValueError: a binary value is not valid base64.
    """
    return {name: _call_value(value) for name, value in item.items()}


_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ENCODE_ASCII: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


fast_key_digest = key_digest
"""The former fast path of :func:`key_digest`; ``key_string`` has the fast path now."""


def spliced_line(
    *,
    op: Operation,
    table: str,
    keys: Mapping[str, Any],
    new_text: str | None,
    old_text: str | None = None,
    event_id: str,
    event_time_us: int,
    source: Source,
    ingested_us: int,
    sequence: str | None = None,
) -> bytes:
    """A raw-log line around images given as JSON *text*, exactly as DynamoDB sent it.

    The same object as ``ChangeEvent.to_line`` (field for field, in the same order), without decoding
    and re-encoding the images: faster, and the image bytes are literally the ones read. The texts
    must be single JSON objects (callers take them from a successful parse of the input). A key or
    name holding a lone surrogate (which UTF-8 cannot carry) is written ``\\uXXXX``-escaped.
    """
    for encode in (_ENCODE, _ENCODE_ASCII):
        try:
            return (
                f'{{"v":1,"op":"{op}","table":{encode(table)},"keys":{encode(keys)},'
                f'"new":{new_text if new_text is not None else "null"},'
                f'"old":{old_text if old_text is not None else "null"},'
                f'"event_id":{encode(event_id)},"event_time_us":{event_time_us},'
                f'"seq":{encode(sequence) if sequence is not None else "null"},'
                f'"source":"{source}","ttl":false,"ingested_us":{ingested_us}}}\n'
            ).encode()
        except UnicodeEncodeError:
            continue
    raise BadRecordError("image text cannot be written as UTF-8")


def now_us() -> int:
    """The current time in epoch microseconds: load starts, ingestion times, state stamps."""
    return time.time_ns() // 1000
