"""Turn every input shape into a :class:`ChangeEvent`.

Shapes (samples in shared/formats/ and tests/events/):

* DynamoDB Streams, Lambda event source: ``ApproximateCreationDateTime`` in epoch seconds,
  ``SequenceNumber`` present, the table named only by ``eventSourceARN``.
* DynamoDB Streams through boto3's ``get_records``: the same fields, but the time is a ``datetime``
  and binary values are ``bytes`` (botocore decoded the base64); they are re-encoded so the log
  holds DynamoDB JSON exactly as the wire carried it.
* Kinesis Data Streams for DynamoDB: ``tableName`` present, no ``SequenceNumber``, time in epoch
  milliseconds or microseconds (the table's ``ApproximateCreationDateTimePrecision``).
* Firehose transformation events, whose records wrap a Kinesis record's data in base64 beside
  Firehose's ``recordId`` and the Kinesis arrival time (:func:`parse_firehose_record`).

Times are normalised to microseconds from their magnitude: any real change time in seconds is below
1e11, in milliseconds below 1e14, in microseconds above.

This module is the *reference* parser: it checks every field and every attribute value, so anything
it accepts can be written to the raw log and read back by the codec. Whatever is wrong with a record
surfaces as :class:`~ddblake.errors.BadRecordError` and nothing else, and the error message never
quotes item data (it may end up in logs). ``ddblake.changes.transform`` has a faster path for the
Firehose Lambda that must accept nothing this module rejects (tests check the two against each other).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NoReturn, cast

from ddblake.changes.model import ChangeEvent, DynamoJson, Operation, Source
from ddblake.changes.sets import repeats_a_member
from ddblake.errors import BadRecordError
from ddblake.limits import range_problem

STREAM_EVENTS: Final[frozenset[str]] = frozenset({"INSERT", "MODIFY", "REMOVE"})
TTL_PRINCIPAL: Final = "dynamodb.amazonaws.com"
TTL_IDENTITY_TYPE: Final = "Service"
MAX_DEPTH: Final = 32
"""DynamoDB nests maps and lists at most 32 levels deep; deeper input cannot come from DynamoDB."""
MAX_EVENT_TIME_US: Final = 253_402_300_800_000_000
"""10000-01-01T00:00:00Z in µs: later times cannot be partitioned as YYYY and are not real changes."""
MAX_SEQUENCE_DIGITS: Final = 40
"""DynamoDB Streams sequence numbers have 21 to 40 digits; versions pad them to 40 (changes.resolve)."""
KEY_TYPES: Final[frozenset[str]] = frozenset({"S", "N", "B"})
_TYPES: Final[frozenset[str]] = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
_SET_TAGS: Final[frozenset[str]] = frozenset({"SS", "NS", "BS"})
# DynamoDB's number syntax (what it returns; Decimal reads all of it). [0-9], not \d: \d is Unicode.
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]++(?:\.[0-9]*+)?|\.[0-9]++)(?:[eE][+-]?[0-9]++)?")
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_DIGITS: Final = re.compile(r"[0-9]+")
_TABLE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_SAFE_WORD: Final = re.compile(r"[A-Za-z_]{1,20}")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# userIdentity's members: (Lambda and Kinesis, boto3's dynamodbstreams model)
_IDENTITY_SPELLINGS: Final = (("type", "principalId"), ("Type", "PrincipalId"))


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
"""Strict JSON: Python's json accepts NaN and Infinity, which no other JSON reader does."""


def to_micros(value: Any) -> int:
    """Normalise an ``ApproximateCreationDateTime`` (s, ms, µs or datetime) to epoch microseconds.

    Raises:
        BadRecordError: the value is not a time, is negative, or is past the year 9999.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta: dt.timedelta = value - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecordError(f"ApproximateCreationDateTime {type(value).__name__} is not a number")
    elif not math.isfinite(value):
        raise BadRecordError("ApproximateCreationDateTime is not a finite number")
    elif value < 1e11:  # seconds (Streams); may carry a fraction
        micros = round(value * 1_000_000)
    elif value < 1e14:  # milliseconds (Kinesis default)
        micros = round(value * 1_000)
    else:  # microseconds (Kinesis with MICROSECOND precision)
        micros = round(value)
    if not 0 <= micros < MAX_EVENT_TIME_US:
        raise BadRecordError("ApproximateCreationDateTime is before 1970 or after 9999")
    return micros


def _bad(what: str, problem: str) -> NoReturn:
    raise BadRecordError(f"{what}: {problem}")


def _is_utf8(text: str) -> bool:
    """False for strings holding lone surrogates (JSON escapes allow them; UTF-8 and DynamoDB do not)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_strings(values: Any, what: str, tag: str) -> None:
    if not isinstance(values, list):
        _bad(what, f"{tag} value is not a list")
    for text in values:
        if not isinstance(text, str) or not _is_utf8(text):
            _bad(what, f"{tag} member is not a UTF-8 string")


def _check_number(text: Any, what: str, tag: str) -> None:
    if not isinstance(text, str) or _NUMBER.fullmatch(text) is None:
        _bad(what, f"{tag} value is not a number string")
    try:
        problem = range_problem(Decimal(text))
    except InvalidOperation:  # an exponent past what Decimal holds, so past DynamoDB's range too
        problem = "is out of DynamoDB's range"
    if problem is not None:  # DynamoDB refuses it on write, so it cannot have come from a table
        _bad(what, f"{tag} number {problem}")


def _sets_once(value: Any, what: str) -> None:
    ((tag, inner),) = value.items()
    if tag == "M":
        for member in inner.values():
            _sets_once(member, what)
    elif tag == "L":
        for member in inner:
            _sets_once(member, what)
    elif tag in _SET_TAGS and repeats_a_member(tag, inner):
        _bad(what, f"{tag} value holds a member more than once (no DynamoDB set does)")


def check_sets(image: DynamoJson | None, what: str) -> None:
    """Check that no set in an image :func:`check_image` accepted holds a member twice.

    DynamoDB keeps each member of a set once, so such an image cannot have come from a table. The
    raw-log reader holds lines to this (``ChangeEvent.from_line``, and its fast path through
    :func:`ddblake.changes.sets.text_repeats_a_member`), so that apply quarantines such a change
    instead of typing the set into the tables. The transform and capture leave it to apply: finding
    it in the Kinesis record's text would cost the Firehose transform a good part of its time on
    records with many sets.

    Raises:
        BadRecordError: which image holds such a set (never the value).
    """
    if image is not None:
        for value in image.values():
            _sets_once(value, what)


def _check_value(value: Any, what: str, depth: int) -> None:
    """Check one attribute value in DynamoDB JSON, all the way down."""
    if not isinstance(value, dict) or len(value) != 1:
        _bad(what, "attribute value is not an object with exactly one type tag")
    ((tag, inner),) = value.items()
    if tag == "S":
        if not isinstance(inner, str) or not _is_utf8(inner):
            _bad(what, "S value is not a UTF-8 string")
    elif tag == "N":
        _check_number(inner, what, tag)
    elif tag == "B":
        if not isinstance(inner, str) or _BASE64.fullmatch(inner) is None:
            _bad(what, "B value is not base64")
    elif tag == "BOOL":
        if not isinstance(inner, bool):
            _bad(what, "BOOL value is not true or false")
    elif tag == "NULL":
        if inner is not True:
            _bad(what, "NULL value is not true")
    elif tag == "M":
        if depth >= MAX_DEPTH:
            _bad(what, f"nested deeper than DynamoDB's {MAX_DEPTH} levels")
        _check_attributes(inner, what, depth + 1)
    elif tag == "L":
        if depth >= MAX_DEPTH:
            _bad(what, f"nested deeper than DynamoDB's {MAX_DEPTH} levels")
        if not isinstance(inner, list):
            _bad(what, "L value is not a list")
        for item in inner:
            _check_value(item, what, depth + 1)
    elif tag == "SS":
        _check_strings(inner, what, tag)
        if not inner:
            _bad(what, "SS value is empty (DynamoDB sets hold at least one element)")
    elif tag == "NS":
        if not isinstance(inner, list):
            _bad(what, "NS value is not a list of number strings")
        for number in inner:
            _check_number(number, what, "NS member")
        if not inner:
            _bad(what, "NS value is empty (DynamoDB sets hold at least one element)")
    elif tag == "BS":
        if not isinstance(inner, list) or not all(isinstance(b, str) and _BASE64.fullmatch(b) for b in inner):
            _bad(what, "BS value is not a list of base64 strings")
        if not inner:
            _bad(what, "BS value is empty (DynamoDB sets hold at least one element)")
    else:
        _bad(what, f"unknown type tag; expected one of {sorted(_TYPES)}")


def _check_attributes(attributes: Any, what: str, depth: int) -> None:
    if not isinstance(attributes, dict):
        _bad(what, f"{type(attributes).__name__}, not an object of attributes")
    for name, value in attributes.items():
        if not isinstance(name, str) or not _is_utf8(name):
            _bad(what, "attribute name is not a UTF-8 string")
        if not name:
            _bad(what, "empty attribute name (DynamoDB refuses them, in maps too)")
        _check_value(value, what, depth)


def check_image(image: Any, what: str) -> DynamoJson | None:
    """Check an item image is DynamoDB JSON all the way down, and return it unchanged.

    The raw log keeps images verbatim, so a malformed value caught here goes to the error prefix
    instead of breaking ``apply`` later for the whole table.

    Args:
        image: ``NewImage`` or ``OldImage`` as decoded from JSON (None when the view lacks it).
        what: the field's name, for the error message.

    Raises:
        BadRecordError: not an object of attribute values, a value of the wrong type, a number
            that is not a number, binary that is not base64, nesting deeper than DynamoDB allows.
    """
    if image is None:
        return None
    _check_attributes(image, what, 1)
    checked: DynamoJson = image
    return checked


def check_keys(keys: Any) -> DynamoJson:
    """Check a primary key: the partition key and at most a sort key, each of type S, N or B.

    Raises:
        BadRecordError: no key, more than two attributes, or a key attribute DynamoDB could not
            have produced (the raw-log reader, ``ChangeEvent.from_dict``, holds lines to the same).
    """
    if not isinstance(keys, dict) or not keys:
        raise BadRecordError("record has no Keys")
    if len(keys) > 2:
        raise BadRecordError("Keys: more than two key attributes (a partition key and a sort key)")
    _check_attributes(keys, "Keys", 1)
    for value in keys.values():
        if next(iter(value)) not in KEY_TYPES:
            raise BadRecordError("Keys: key attribute is not of type S, N or B")
    return keys


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


def is_ttl_identity(identity: Any) -> bool:
    """Whether a ``userIdentity`` names DynamoDB's TTL process (only meaningful on a REMOVE).

    Lambda events and Kinesis records spell its members ``type`` and ``principalId``; boto3's
    ``dynamodbstreams.get_records`` returns them under the API model's names, ``Type`` and
    ``PrincipalId`` (botocore drops the lowercase ones). Either spelling counts, one pair at a time.

    Raises:
        BadRecordError: ``userIdentity`` is neither null nor an object.
    """
    if identity is None:
        return False
    if not isinstance(identity, Mapping):
        raise BadRecordError(f"userIdentity is {type(identity).__name__}, not an object or null")
    return any(
        identity.get(kind) == TTL_IDENTITY_TYPE and identity.get(principal) == TTL_PRINCIPAL
        for kind, principal in _IDENTITY_SPELLINGS
    )


def _table_from_arn(arn: Any) -> str | None:
    # arn:aws:dynamodb:region:account:table/<name>/stream/<label>
    if not isinstance(arn, str) or ":table/" not in arn:
        return None
    return arn.split(":table/", 1)[1].split("/", 1)[0] or None


def check_table_name(name: Any) -> str:
    """Return ``name`` if it is a valid DynamoDB table name; it becomes an S3 prefix and a partition key.

    Raises:
        BadRecordError: not 3-255 characters of ``[A-Za-z0-9_.-]`` (so never ``/`` or ``..`` alone).
    """
    if not isinstance(name, str) or _TABLE_NAME.fullmatch(name) is None:
        raise BadRecordError("table name is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
    return name


def _operation(op: Any) -> Operation:
    if isinstance(op, str) and op in STREAM_EVENTS:
        return cast(Operation, op)
    if op is None:
        raise BadRecordError("record has no eventName; expected INSERT, MODIFY or REMOVE")
    shown = op if isinstance(op, str) and _SAFE_WORD.fullmatch(op) else f"<{type(op).__name__}>"
    raise BadRecordError(f"unknown eventName {shown}; expected INSERT, MODIFY or REMOVE")


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
    op = _operation(record.get("eventName"))
    ddb = record.get("dynamodb")
    if not isinstance(ddb, Mapping):
        raise BadRecordError("record has no 'dynamodb' object")
    event_id = record.get("eventID")
    if not isinstance(event_id, str) or not event_id or not _is_utf8(event_id):
        raise BadRecordError("record has no eventID (a non-empty UTF-8 string)")
    seq = ddb.get("SequenceNumber")
    if seq is not None and not (
        isinstance(seq, str) and len(seq) <= MAX_SEQUENCE_DIGITS and _DIGITS.fullmatch(seq)
    ):
        raise BadRecordError(
            f"SequenceNumber is not a decimal string of at most {MAX_SEQUENCE_DIGITS} digits"
        )
    name = check_table_name(table or record.get("tableName") or _table_from_arn(record.get("eventSourceARN")))
    if source is None:
        source = "kinesis" if seq is None and "tableName" in record else "streams"
    ttl = is_ttl_identity(record.get("userIdentity")) and op == "REMOVE"
    if isinstance(ingested_us, bool) or not isinstance(ingested_us, int):
        raise TypeError("ingested_us must be an int (microseconds)")
    raw_time = ddb.get("ApproximateCreationDateTime")
    event_time_us = to_micros(raw_time)
    keys, new, old = ddb.get("Keys"), ddb.get("NewImage"), ddb.get("OldImage")
    if isinstance(raw_time, dt.datetime):  # boto3's get_records: binary came back as bytes
        keys, new, old = _rebase64(keys), _rebase64(new), _rebase64(old)
    return ChangeEvent(
        op=op,
        table=name,
        keys=check_keys(keys),
        new_image=check_image(new, "NewImage"),
        old_image=check_image(old, "OldImage"),
        event_id=event_id,
        event_time_us=event_time_us,
        sequence=seq,
        source=source,
        ttl=ttl,
        ingested_us=ingested_us,
    )


def loads_strict(data: bytes | str) -> Any:
    """Decode strict JSON from UTF-8 bytes or text.

    Raises:
        BadRecordError: not UTF-8, not JSON (``NaN`` and ``Infinity`` included), or nested so deep
            the decoder gives up.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadRecordError(f"record is not UTF-8 JSON ({e.__class__.__name__})") from e


def parse_json_record(data: bytes | str, *, ingested_us: int, table: str | None = None) -> ChangeEvent:
    """Parse the JSON bytes of one record (what a Kinesis record's data holds).

    Raises:
        BadRecordError: not UTF-8 JSON, or not a change record.
    """
    return parse_record(loads_strict(data), ingested_us=ingested_us, table=table)


def firehose_arrival_us(record: Mapping[str, Any]) -> int | None:
    """When the record reached Kinesis, in µs: ``kinesisRecordMetadata.approximateArrivalTimestamp``
    (ms), else the record's own ``approximateArrivalTimestamp``; None when neither is a time.

    The ingestion time of a change delivered through Firehose (its ``ingested_us``): the same for
    every retry of the record, so a redelivery gives the same raw line. The transform Lambda's hot
    loop applies this rule inline (``ddblake.aws.firehose_transform.transform_batch``).
    """
    meta = record.get("kinesisRecordMetadata")
    arrival = meta.get("approximateArrivalTimestamp") if isinstance(meta, dict) else None
    if type(arrival) is not int:
        arrival = record.get("approximateArrivalTimestamp")
    return arrival * 1000 if type(arrival) is int and arrival >= 0 else None


def parse_firehose_record(
    record: Mapping[str, Any], *, table: str | None = None, now_us: int | None = None
) -> ChangeEvent:
    """Parse one record of a Firehose transformation event (an element of its ``records``).

    ``now_us``: the ingestion time when the record carries no arrival time (this process's clock
    by default).

    Raises:
        BadRecordError: no base64 ``data``, or what it holds is not a change record.
    """
    try:
        raw = binascii.a2b_base64(record.get("data"), strict_mode=True)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:  # binascii.Error is a ValueError; TypeError: not a string
        raise BadRecordError("a Firehose record's data is not base64") from e
    ingested_us = firehose_arrival_us(record)
    if ingested_us is None:
        ingested_us = now_us if now_us is not None else time.time_ns() // 1000
    return parse_json_record(raw, ingested_us=ingested_us, table=table)
