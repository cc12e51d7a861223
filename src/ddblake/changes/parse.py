"""Turn every input shape into a :class:`ChangeEvent`.

Shapes (samples in shared/formats/ and tests/events/):

* DynamoDB Streams, Lambda event source: ``ApproximateCreationDateTime`` in epoch seconds,
  ``SequenceNumber`` present, the table named only by ``eventSourceARN``.
* DynamoDB Streams through boto3's ``get_records``: the same fields, but the time is a ``datetime``
  and binary values are ``bytes`` (botocore decoded the base64); they are re-encoded so the log
  holds DynamoDB JSON exactly as the wire carried it.
* Kinesis Data Streams for DynamoDB: ``tableName`` present, no ``SequenceNumber``, time in epoch
  milliseconds or microseconds (the table's ``ApproximateCreationDateTimePrecision``).

Times are normalised to microseconds from their magnitude: any real change time in seconds is below
1e11, in milliseconds below 1e14, in microseconds above.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Final

from ddblake.changes.model import ChangeEvent, DynamoJson, Source
from ddblake.errors import BadRecordError

STREAM_EVENTS: Final[frozenset[str]] = frozenset({"INSERT", "MODIFY", "REMOVE"})
TTL_PRINCIPAL: Final = "dynamodb.amazonaws.com"
_TYPES: Final[frozenset[str]] = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})


def to_micros(value: Any) -> int:
    """Normalise an ``ApproximateCreationDateTime`` (s, ms, µs or datetime) to epoch microseconds.

    Raises:
        BadRecordError: the value is not a time.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta: dt.timedelta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecordError(f"ApproximateCreationDateTime {type(value).__name__} is not a number")
    if value < 0:
        raise BadRecordError("ApproximateCreationDateTime is negative")
    if value < 1e11:  # seconds (Streams); may carry a fraction
        return round(value * 1_000_000)
    if value < 1e14:  # milliseconds (Kinesis default)
        return round(value * 1_000)
    return round(value)  # microseconds (Kinesis with MICROSECOND precision)


def _check_image(image: Any, what: str) -> DynamoJson | None:
    if image is None:
        return None
    if not isinstance(image, dict):
        raise BadRecordError(f"{what} is {type(image).__name__}, not an object of attributes")
    for name, value in image.items():
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _TYPES:
            raise BadRecordError(f"{what} attribute is not DynamoDB JSON (one type tag of {sorted(_TYPES)})")
        del name
    return image


def _b64(value: Any) -> Any:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes | bytearray) else value


def _rebase64(value: Any) -> Any:
    """Re-encode the ``bytes`` botocore decoded, so boto3 records match the wire format."""
    if isinstance(value, dict):
        if len(value) == 1:
            tag, inner = next(iter(value.items()))
            if tag == "B" and isinstance(inner, bytes | bytearray):
                return {"B": _b64(inner)}
            if tag == "BS" and isinstance(inner, list):
                return {"BS": [_b64(b) for b in inner]}
        return {k: _rebase64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase64(v) for v in value]
    return value


def _is_ttl(record: Mapping[str, Any]) -> bool:
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping):
        return False
    return identity.get("principalId") == TTL_PRINCIPAL and identity.get("type", "Service") == "Service"


def _table_from_arn(arn: Any) -> str | None:
    # arn:aws:dynamodb:region:account:table/<name>/stream/<label>
    if not isinstance(arn, str) or ":table/" not in arn:
        return None
    return arn.split(":table/", 1)[1].split("/", 1)[0] or None


def parse_record(
    record: Any,
    *,
    table: str | None = None,
    ingested_us: int,
    source: Source | None = None,
) -> ChangeEvent:
    """Parse a DynamoDB Streams or Kinesis-for-DynamoDB record into a change event.

    Args:
        record: the decoded record (a mapping).
        table: the table name, when the record does not carry it (boto3's ``get_records``).
        ingested_us: when the record reached us; Firehose passes Kinesis' arrival time.
        source: force the source kind; by default Kinesis when ``tableName`` is present and there
            is no ``SequenceNumber``, else Streams.

    Raises:
        BadRecordError: the record is not a change record; the message never contains item data.
    """
    if not isinstance(record, Mapping):
        raise BadRecordError(f"record is {type(record).__name__}, not a JSON object")
    op = record.get("eventName")
    if op not in STREAM_EVENTS:
        raise BadRecordError(f"unknown eventName {str(op)[:40]!r}; expected INSERT, MODIFY or REMOVE")
    ddb = record.get("dynamodb")
    if not isinstance(ddb, Mapping):
        raise BadRecordError("record has no 'dynamodb' object")
    event_id = record.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        raise BadRecordError("record has no eventID")
    seq = ddb.get("SequenceNumber")
    if seq is not None and not (isinstance(seq, str) and seq.isdigit()):
        raise BadRecordError("SequenceNumber is not a decimal string")
    name = table or record.get("tableName") or _table_from_arn(record.get("eventSourceARN"))
    if not isinstance(name, str) or not name:
        raise BadRecordError("record names no table (no tableName, no eventSourceARN)")
    if source is None:
        source = "kinesis" if seq is None and "tableName" in record else "streams"
    raw_time = ddb.get("ApproximateCreationDateTime")
    needs_rebase = isinstance(raw_time, dt.datetime)
    keys, new, old = ddb.get("Keys"), ddb.get("NewImage"), ddb.get("OldImage")
    if needs_rebase:
        keys, new, old = _rebase64(keys), _rebase64(new), _rebase64(old)
    checked_keys = _check_image(keys, "Keys")
    if not checked_keys:
        raise BadRecordError("record has no Keys")
    return ChangeEvent(
        op=op,
        table=name,
        keys=checked_keys,
        new_image=_check_image(new, "NewImage"),
        old_image=_check_image(old, "OldImage"),
        event_id=event_id,
        event_time_us=to_micros(raw_time),
        sequence=seq,
        source=source,
        ttl=op == "REMOVE" and _is_ttl(record),
        ingested_us=ingested_us,
    )


def parse_json_record(data: bytes | str, *, ingested_us: int, table: str | None = None) -> ChangeEvent:
    """Parse the JSON bytes of one record (what a Kinesis record's data holds).

    Raises:
        BadRecordError: not UTF-8 JSON, or not a change record.
    """
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRecordError(f"record is not JSON ({e.__class__.__name__})") from e
    return parse_record(obj, ingested_us=ingested_us, table=table)
