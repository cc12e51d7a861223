"""The one transform: a change record in, one raw-log line out (docs/raw-log.md).

Two runners call it. In AWS, the Firehose transform Lambda (``ddblake.aws.firehose_transform``)
hands it the JSON of each Kinesis Data Streams record; locally, ``ddblake capture`` hands it the
records boto3's ``dynamodbstreams.get_records`` returns. Both get bytes in the same line format,
partitioned by the same rule, so the lake cannot tell which runner wrote a file.

For Firehose the cost per record matters (the Lambda runs for every change of the table), so Kinesis
JSON goes through a fast path first: one precompiled regular expression checks the whole record -
envelope and images, down to every attribute value - in C, captures the fields the line needs,
and the line is built by splicing the images' original text, never decoding or re-encoding them.
That is lossless by construction: the images are the very characters DynamoDB sent. The fast path
only *accepts* what it fully understands (compact JSON as DynamoDB writes it, maps and lists nested
up to :data:`FAST_DEPTH` levels, no duplicate fields). Anything else - whitespace, deeper nesting,
odd escapes, garbage - goes to the reference parser (``ddblake.changes.parse``), which either
accepts the record (and the line is rebuilt with ``ChangeEvent.to_line``) or raises
:class:`~ddblake.errors.BadRecordError`. Tests check that the fast path never accepts what the
reference parser rejects and that both give equal lines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final

from ddblake.changes.model import LINE_FORMAT_VERSION, ChangeEvent
from ddblake.changes.parse import MAX_EVENT_TIME_US, is_ttl_identity, loads_strict, parse_record
from ddblake.errors import BadRecordError

FAST_DEPTH: Final = 3
"""How deep maps and lists may nest for the fast path (deeper items take the reference parser).

The pattern grows as 2**depth (maps and lists each embed the level below); at 3 it is about 22 KB
and compiles in about 50 ms, once per process (:func:`prepare`). Items nested deeper are rare.
"""
HOUR_US: Final = 3_600_000_000

# --- The fast path's grammar (compact JSON only; possessive quantifiers, so matching is linear) ---
_CHARS = r'[^"\\\x00-\x1f]*+'
# A string the reference parser accepts as UTF-8: escapes of surrogates (even valid pairs) are left
# to the reference parser, which decodes them and rejects lone ones.
_TEXT = rf'"{_CHARS}(?:\\(?:["\\/bfnrt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{{4}}){_CHARS})*+"'
# A string of text with valid surrogate pairs escaped too (\\ud83c\\udf89): the raw-log reader's fast
# path takes it; json decodes a pair to one character, as UTF-8 can carry it.
TEXT_WITH_PAIRS: Final = (
    rf'"{_CHARS}(?:\\(?:["\\/bfnrt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{{4}}'
    rf'|u[dD][89abAB][0-9a-fA-F]{{2}}\\u[dD][c-fC-F][0-9a-fA-F]{{2}}){_CHARS})*+"'
)
_ANY_TEXT = rf'"{_CHARS}(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{{4}}){_CHARS})*+"'
# Numbers surely within DynamoDB's range: in plain notation (as DynamoDB writes them) an integer of
# at most 38 significant digits and 126 in all, at most 38 digits with a point, or a fraction below
# 1 of at most 38 significant digits after at most 129 zeros; in scientific notation a mantissa of
# 1 to 9.99... (38 digits at most) and an exponent from -130 to 125. Anything else (more digits,
# other exponents) is left to the reference parser, which checks the range.
_NUMBER_TEXT = (
    r'"-?(?:[1-9][0-9]{0,37}+0{0,88}+|0|(?=(?:[0-9]\.?){1,38}")[0-9]++\.[0-9]*+'
    r"|0?\.0{0,129}+[1-9][0-9]{0,37}+"
    r'|[1-9](?:\.[0-9]{0,37}+)?[eE](?:\+?(?:1[01][0-9]|12[0-5]|[0-9]{1,2})|-(?:1[0-2][0-9]|130|[0-9]{1,2})))"'
)
# An attribute or map key name: DynamoDB refuses empty ones.
_NAMED = '(?!"")'
_BASE64_TEXT = r'"(?:[A-Za-z0-9+/]{4})*+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"'
# JSON numbers of bounded size (Python's int() refuses more than 4300 digits; the reference would fail).
_JSON_NUMBER = r"-?(?:0|[1-9][0-9]{0,99}+)(?:\.[0-9]{1,100}+)?(?:[eE][+-]?[0-9]{1,100}+)?"
_SCALAR = rf"(?:{_ANY_TEXT}|{_JSON_NUMBER}|true|false|null)"
_PLAIN_KEY = r'"[^"\\\x00-\x1f]*+"'


_QUOTE = '"'
_CLOSE_LIST = r"\]"
_CLOSE_MAP = r"\}"
_OPEN_MAP = r"\{"


def _items(element: str, first: str, close: str, sp: str = "") -> str:
    """``element`` repeated, comma-separated, then ``close``, with one copy of ``element``.

    After each element comes either a comma that must be followed by the next element's first
    character, or the closing bracket; so no trailing comma, and the pattern stays linear in size.
    ``sp`` is what may follow a separator (" ?" for JSON written with ", " and ": ").
    """
    return rf"(?:{element}(?:,{sp}(?={first})|(?={close})))*+{close}"


def _scalar_value(sp: str, text: str) -> str:
    tag = f'":{sp}'
    return "|".join(
        (
            rf"S{tag}{text}",
            rf"N{tag}{_NUMBER_TEXT}",
            rf"BOOL{tag}(?:true|false)",
            rf"NULL{tag}true",
            rf"B{tag}{_BASE64_TEXT}",
            # Sets hold at least one element: (?=") refuses [] (the reference parser does too).
            rf'SS{tag}\[(?=")' + _items(text, _QUOTE, _CLOSE_LIST, sp),
            rf'NS{tag}\[(?=")' + _items(_NUMBER_TEXT, _QUOTE, _CLOSE_LIST, sp),
            rf'BS{tag}\[(?=")' + _items(_BASE64_TEXT, _QUOTE, _CLOSE_LIST, sp),
        )
    )


def _attribute_value(depth: int, sp: str = "", text: str = _TEXT) -> str:
    body = _scalar_value(sp, text)
    if depth > 0:
        inner = _attribute_value(depth - 1, sp, text)
        body += rf'|M":{sp}\{{' + _items(f"{_NAMED}{text}:{sp}{inner}", _QUOTE, _CLOSE_MAP, sp)
        body += rf'|L":{sp}\[' + _items(inner, _OPEN_MAP, _CLOSE_LIST, sp)
    return rf'\{{"(?:{body})\}}'


def image_pattern(depth: int, sp: str = "", text: str = _TEXT) -> str:
    """The pattern of an item image in DynamoDB JSON, maps and lists nested up to ``depth``.

    Compact JSON only, unless ``sp`` (" ?") lets a space follow each separator, as in JSON written
    with Python's default ", " and ": " (the export files' style). Shared with the raw-log reader's
    fast path (``ddblake.changes.rawline``), which also passes :data:`TEXT_WITH_PAIRS` as ``text``.
    """
    return r"\{" + _items(f"{_NAMED}{text}:{sp}{_attribute_value(depth, sp, text)}", _QUOTE, _CLOSE_MAP, sp)


# One or two attributes (partition and sort key): after a second one only the closing brace fits.
KEYS_PATTERN: Final = (
    rf'\{{(?:{_NAMED}{_TEXT}:\{{"(?:S":{_TEXT}|N":{_NUMBER_TEXT}|B":{_BASE64_TEXT})\}}'
    rf'(?:,(?=")|(?=\}}))){{1,2}}+\}}'
)


def _member(key: str, group: str, value: str) -> str:
    # (?(@g)(?!)) fails when the group already matched: a duplicated field goes to the reference
    # parser, whose json keeps the last occurrence. Names become numbers in _compile_fast.
    return rf'"{key}":(?(@{group})(?!))(?P<{group}>{value})'


def _fast_pattern(depth: int) -> str:
    image = image_pattern(depth)
    ddb_known = ("ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber")
    ddb_member = "|".join(
        (
            _member("ApproximateCreationDateTime", "t", r"0|[1-9][0-9]{0,17}+"),
            _member("Keys", "keys", KEYS_PATTERN),
            _member("NewImage", "new", rf"null|{image}"),
            _member("OldImage", "old", rf"null|{image}"),
            r'"SequenceNumber":(?(@seq)(?!))"(?P<seq>[0-9]{1,40}+)"',
            rf'(?!"(?:{"|".join(ddb_known)})"){_PLAIN_KEY}:{_SCALAR}',
        )
    )
    top_known = ("eventName", "eventID", "tableName", "userIdentity", "dynamodb")
    identity = r"null|\{" + _items(f"{_PLAIN_KEY}:{_SCALAR}", _QUOTE, _CLOSE_MAP)
    top_member = "|".join(
        (
            r'"eventName":(?(@op)(?!))"(?P<op>INSERT|MODIFY|REMOVE)"',
            r'"eventID":(?(@id)(?!))"(?P<id>[^"\\\x00-\x1f]++)"',
            r'"tableName":(?(@table)(?!))"(?P<table>[A-Za-z0-9_.-]{3,255}+)"',
            _member("userIdentity", "uid", identity),
            _member("dynamodb", "ddb", r"\{" + _items(f"(?:{ddb_member})", _QUOTE, _CLOSE_MAP)),
            rf'(?!"(?:{"|".join(top_known)})"){_PLAIN_KEY}:{_SCALAR}',
        )
    )
    return r"\{" + _items(f"(?:{top_member})", _QUOTE, _CLOSE_MAP)


def _compile_fast(depth: int) -> re.Pattern[bytes]:
    pattern = _fast_pattern(depth)
    names = re.findall(r"\(\?P<(\w+)>", pattern)
    for number, name in enumerate(names, start=1):
        pattern = pattern.replace(f"(?(@{name})", f"(?({number})")
    # On bytes: no decoding into str and no encoding back; multi-byte UTF-8 sequences are bytes
    # >= 0x80, which the string patterns accept like any other character (fast_line checks UTF-8).
    compiled = re.compile(pattern.encode("ascii"))
    if tuple(compiled.groupindex) != _GROUPS or "(?(@" in pattern:  # only these groups may capture
        raise AssertionError("fast record pattern has unexpected groups")
    return compiled


_GROUPS: Final = ("op", "id", "table", "uid", "ddb", "t", "keys", "new", "old", "seq")
_fast: re.Pattern[bytes] | None = None
_tables: dict[bytes, str] = {}


def prepare() -> None:
    """Compile the fast path now (about 50 ms) rather than on the first record.

    Long-lived runners call it at start-up; importing this module stays cheap for those that never
    see Kinesis JSON.
    """
    global _fast
    if _fast is None:
        _fast = _compile_fast(FAST_DEPTH)


def fast_line(data: bytes, ingested_us: int) -> tuple[bytes, str, int] | None:
    """The raw-log line for a Kinesis-for-DynamoDB record's JSON, if the fast path accepts it.

    Args:
        data: the record's JSON bytes.
        ingested_us: the arrival time to record, microseconds (a non-negative int).

    Returns:
        ``(line, table, event_time_us)``, the line ending in its only newline; None when the
        record needs the reference parser (which may still accept it, or name what is wrong).
    """
    if _fast is None:
        prepare()
    m = _fast.fullmatch(data)  # type: ignore[union-attr]  # prepare() set it
    if m is None:
        return None
    op, event_id, table, identity, _ddb, raw_time, keys, new, old, seq = m.groups()
    if op is None or event_id is None or table is None or raw_time is None or keys is None:
        return None  # a required field is missing: let the reference parser say which
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    # to_micros for an int, inlined (the differential tests hold the two together)
    event_time_us = int(raw_time)
    if event_time_us < 100_000_000_000:
        event_time_us *= 1_000_000
    elif event_time_us < 100_000_000_000_000:
        event_time_us *= 1_000
    if event_time_us >= MAX_EVENT_TIME_US:
        return None
    ttl = b"false"
    if op == b"REMOVE" and identity is not None and identity != b"null":
        try:
            if is_ttl_identity(loads_strict(identity)):
                ttl = b"true"
        except BadRecordError:
            return None
    if seq is None:
        seq, source = b"null", b"kinesis"
    else:
        seq, source = b'"' + seq + b'"', b"streams"
    # Field for field what ChangeEvent.to_line() writes; event_id and table hold no character JSON
    # would escape (the pattern saw to it), so quoting them is enough.
    new, old = new or b"null", old or b"null"
    if ingested_us >= MAX_EVENT_TIME_US:  # an arrival time past 9999 (bad metadata): keep the change
        ingested_us = MAX_EVENT_TIME_US - 1
    line = _LINE % (op, table, keys, new, old, event_id, event_time_us, seq, source, ttl, ingested_us)
    name = _tables.get(table)
    if name is None:
        if len(_tables) >= 1024:
            _tables.clear()
        name = _tables[table] = table.decode("ascii")
    return line, name, event_time_us


_LINE: Final = (
    b'{"v":%d,"op":"%%s","table":"%%s","keys":%%s,"new":%%s,"old":%%s,"event_id":"%%s",'
    b'"event_time_us":%%d,"seq":%%s,"source":"%%s","ttl":%%s,"ingested_us":%%d}\n' % LINE_FORMAT_VERSION
)


def _check_ingested(ingested_us: Any) -> int:
    """The arrival time to record; one past year 9999 is bad metadata and is capped (as the fast path
    does), never a reason to drop the change: the raw-log reader and the history hold only real times.
    """
    if isinstance(ingested_us, bool) or not isinstance(ingested_us, int) or ingested_us < 0:
        raise TypeError("ingested_us must be a non-negative int (microseconds)")
    return min(ingested_us, MAX_EVENT_TIME_US - 1)


def kinesis_line(data: bytes, ingested_us: int) -> tuple[bytes, str, int]:
    """The raw-log line for the JSON bytes of one Kinesis-for-DynamoDB record.

    This is what the Firehose Lambda runs per record: no :class:`ChangeEvent` is built on the fast
    path, only the bytes, the table and the event time the partition keys need.

    Args:
        data: the Kinesis record's data (already base64-decoded).
        ingested_us: Kinesis' approximate arrival time in microseconds, so that a retried batch
            produces byte-identical lines.

    Returns:
        ``(line, table, event_time_us)``; ``line`` is UTF-8 and ends in its only newline.

    Raises:
        BadRecordError: not UTF-8, not JSON, or not a DynamoDB change record.
        TypeError: ``ingested_us`` is not a non-negative int.
    """
    if type(ingested_us) is not int or ingested_us < 0:
        _check_ingested(ingested_us)
    return fast_line(data, ingested_us) or reference_line(data, ingested_us)


def reference_line(data: bytes, ingested_us: int) -> tuple[bytes, str, int]:
    """:func:`kinesis_line` through the reference parser only (what the fast path falls back to).

    Raises:
        BadRecordError: not UTF-8, not JSON, or not a DynamoDB change record.
    """
    event = parse_record(loads_strict(data), ingested_us=_check_ingested(ingested_us))
    return event.to_line(), event.table, event.event_time_us


def transform_record(data: bytes, arrival_ms: int) -> tuple[bytes, ChangeEvent]:
    """Transform one Kinesis record's data into its raw-log line and the change event it holds.

    Args:
        data: the JSON bytes DynamoDB wrote to Kinesis (base64-decoded).
        arrival_ms: Kinesis' ``approximateArrivalTimestamp`` (epoch milliseconds); it becomes
            ``ingested_us`` so the same record always gives the same line.

    Returns:
        The line (UTF-8, ending in ``\\n``) and ``ChangeEvent.from_line(line)``.

    Raises:
        BadRecordError: the data is not a DynamoDB change record.
    """
    line, _, _ = kinesis_line(data, _check_ingested(arrival_ms) * 1000)
    return line, ChangeEvent.from_line(line)


def transform_stream_record(
    record: Mapping[str, Any], table: str, ingested_us: int
) -> tuple[bytes, ChangeEvent]:
    """Transform one DynamoDB Streams record (boto3 ``get_records`` or Lambda shape) for ``capture``.

    Args:
        record: one element of ``get_records()["Records"]`` (``datetime`` time and ``bytes`` binary
            are fine) or of a Lambda event's ``Records``.
        table: the table the stream belongs to (boto3's records do not name it).
        ingested_us: when capture read the record, microseconds since the epoch.

    Returns:
        The raw-log line (UTF-8, ending in its only ``\\n``) and its change event, whose
        ``event_time_us`` and ``table`` give the file's partition (:func:`raw_prefix`).

    Raises:
        BadRecordError: the record is not a change record; quarantine it, carry on with the rest.
    """
    event = parse_record(record, table=table, ingested_us=_check_ingested(ingested_us), source="streams")
    return event.to_line(), event


def line_for_stream_record(record: Mapping[str, Any], table: str, ingested_us: int) -> bytes:
    """The raw-log line for one DynamoDB Streams record; see :func:`transform_stream_record`.

    Raises:
        BadRecordError: the record is not a change record.
    """
    return transform_stream_record(record, table, ingested_us)[0]


_partitions: dict[tuple[str, int], dict[str, str]] = {}


def other_table(of_table: str, table: str) -> str:
    """Why a change of ``of_table`` is refused where only ``table``'s are delivered (the Firehose
    transform and ``ddblake redrive`` give the same reason; table names are not item data)."""
    return f"record is for table {of_table}, this stream delivers table {table}"


def partition_keys(table: str, event_time_us: int) -> dict[str, str]:
    """Firehose dynamic-partitioning keys for a change: the table and its event time's UTC hour.

    A fresh dict each call (callers may keep or change it); the date parts are cached per hour.

    Returns:
        ``{"table", "year", "month", "day", "hour"}``, the date parts zero-padded
        (``"2025"``, ``"01"``, ``"09"``, ``"00"``).
    """
    hour = event_time_us // HOUR_US
    keys = _partitions.get((table, hour))
    if keys is None:
        t = time.gmtime(hour * 3600)
        keys = {
            "table": table,
            "year": f"{t.tm_year:04d}",
            "month": f"{t.tm_mon:02d}",
            "day": f"{t.tm_mday:02d}",
            "hour": f"{t.tm_hour:02d}",
        }
        if len(_partitions) >= 4096:
            _partitions.clear()
        _partitions[(table, hour)] = keys
    return keys.copy()


def raw_prefix(table: str, event_time_us: int) -> str:
    """The raw log's folder for a change, relative to the lake: ``raw/<table>/YYYY/MM/DD/HH/``.

    The same rule Firehose applies through the partition keys (event time), offered to runners
    that want event-time folders. ``ddblake capture`` and the loads do not use it: they file by
    write time (``ddblake.lake.rawlog.raw_file_path``, docs/capture.md).
    """
    k = partition_keys(table, event_time_us)
    return f"raw/{k['table']}/{k['year']}/{k['month']}/{k['day']}/{k['hour']}/"
