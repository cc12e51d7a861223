"""The rules the Glue job shares with ddblake (tests check they agree) and its row conversions.

Keys, event IDs, versions, raw file paths and raw lines as ``ddblake.changes`` and
``ddblake.load.rows`` make them, re-stated with the standard library only (Glue 4.0 runs
Python 3.10 and has no ddblake installed); and how a connector row or an export line becomes a
raw-log line.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

_UTC = dt.timezone.utc  # noqa: UP017 - not dt.UTC: Glue 4.0 runs Python 3.10 (dt.UTC is 3.11+)
SECOND_US = 1_000_000
SOURCES = ("export-files", "connector")
MAX_FILE_BYTES = 64 * 1024 * 1024
"""Uncompressed bytes per raw file the job writes (Firehose-sized files are too small at this scale)."""

# --- the rules shared with ddblake (tests check they agree) ---------------------------------------


_PLAIN_INT = re.compile(r"-?[1-9][0-9]{0,99}")


def _canonical_number(text: str) -> str:
    if _PLAIN_INT.fullmatch(text):  # the usual key number: already canonical
        return text
    try:
        number = Decimal(text)
    except InvalidOperation as e:
        raise ValueError("key attribute of type N is not a number") from e
    if not number.is_finite():
        raise ValueError("key attribute of type N is not finite")
    if number == 0:
        return "0"
    # Exact: the default context (28 digits) would round 38-digit keys together. A context as wide
    # as the text never rounds. Beyond DynamoDB's range (|exponent| <= 130) the plain form could be
    # a gigabyte of zeros ("1E+999999999"): such numbers keep scientific form, still one per value.
    normal = number.normalize(Context(prec=len(text), Emax=MAX_EMAX, Emin=MIN_EMIN))
    return format(normal, "f" if -200 <= normal.adjusted() <= 200 else "E")


def key_string(keys: Mapping[str, Any]) -> str:
    """The canonical key string (``ddblake.changes.resolve.key_string``): numbers normalised."""
    canonical = {}
    for name in sorted(keys):
        ((tag, inner),) = keys[name].items()
        canonical[name] = {"N": _canonical_number(str(inner))} if tag == "N" else {tag: inner}
    return json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)


def event_id(
    load_id: str, keys: Mapping[str, Any], *, export: bool = False, write_us: int | None = None
) -> str:
    """``load-<id>-<sha1>`` (Scan/connector), ``export-<id>-<sha1>`` or ``export-<id>-<µs>-<sha1>``."""
    digest = hashlib.sha1(key_string(keys).encode(), usedforsecurity=False).hexdigest()
    if not export:
        return f"load-{load_id}-{digest}"
    return f"export-{load_id}-{digest}" if write_us is None else f"export-{load_id}-{write_us}-{digest}"


def version_time_from_us(start_us: int) -> int:
    """``floor(start, 1 min) - 1 min - 1 µs``: below any stream change made after the start."""
    minute = 60 * SECOND_US
    return (start_us // minute) * minute - minute - 1


def export_version_from_us(t_us: int) -> int:
    """``floor(t, 1 s) - 1 µs`` (``ddblake.load.rows.export_version_from_us``): an export's times come
    from AWS's clock, as the stream's second-rounded ones do, so a change made at or after ``t``
    still outranks the row."""
    return (t_us // SECOND_US) * SECOND_US - 1


_FRACTION = re.compile(r"(\.\d+)(?=[+-]\d\d:\d\d$|$)")


def parse_time_us(text: str) -> int:
    """An ISO 8601 time (``2026-11-28T08:00:00.000Z``) in epoch microseconds.

    Python 3.10's ``fromisoformat`` takes only 3 or 6 fraction digits and no ``Z``: both are
    normalised first (the fraction to 6 digits, truncated like the package's parser).
    """
    text = text.strip().replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: (m.group(1) + "000000")[:7], text, count=1)
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_UTC)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=_UTC)
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


_NAME_TABLE_CHARS = 120


def _name_label(table: str) -> str:
    """``ddblake.lake.rawlog.name_label``: a long table name cut, with a hash, in a file's name."""
    if len(table) <= _NAME_TABLE_CHARS:
        return table
    digest = hashlib.sha256(table.encode()).hexdigest()[:16]
    return f"{table[: _NAME_TABLE_CHARS - len(digest) - 1]}-{digest}"


def raw_file_key(lake_prefix: str, table: str, written_us: int, unique: str | None = None) -> str:
    """The raw file path under the lake (``ddblake.lake.rawlog.raw_file_path``'s layout)."""
    when = dt.datetime.fromtimestamp(written_us / SECOND_US, tz=_UTC)
    stamp = f"{when.strftime('%Y-%m-%d-%H-%M-%S')}-{written_us % SECOND_US:06d}"
    name = f"{_name_label(table)}-{stamp}-{unique or uuid.uuid4().hex}.gz"
    path = f"raw/{table}/{when.strftime('%Y/%m/%d/%H')}/{name}"
    return f"{lake_prefix.strip('/')}/{path}" if lake_prefix.strip("/") else path


def raw_line(
    *,
    op: str,
    table: str,
    keys: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    eid: str,
    event_time_us: int,
    source: str,
    ingested_us: int,
    seq: str | None = None,
) -> bytes:
    """One raw-log line (``ddblake.changes.model.ChangeEvent.to_line``'s format, version 1)."""
    obj = {
        "v": 1,
        "op": op,
        "table": table,
        "keys": keys,
        "new": new,
        "old": old,
        "event_id": eid,
        "event_time_us": event_time_us,
        "seq": seq,
        "source": source,
        "ttl": False,
        "ingested_us": ingested_us,
    }
    try:
        return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(obj, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")


# --- transformations --------------------------------------------------------------------------------


def strip_nulls(value: Any) -> Any:
    """Drop the null members a merged Spark schema adds, walking dicts and lists.

    ``{"S": "x", "N": None, "M": None}`` becomes ``{"S": "x"}``. A real DynamoDB value is never
    JSON null (NULL is ``{"NULL": true}``), so dropping nulls loses nothing. Binary that Spark
    handed over as bytes becomes base64 text again. This walk does not know where a value sits:
    :func:`rebuild_value` uses it for a tag's payload only, and rebuilds the values themselves.
    """
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [strip_nulls(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def rebuild_value(value: Any) -> Any:
    """One attribute value of a connector row (a struct of type tags) as DynamoDB JSON.

    Spark infers one struct over all items and keeps no empty structs (SPARK-8093), so the tag of
    an empty map ``{"M": {}}`` is dropped from the merged schema. Where the same attribute (or
    list, or map member) holds another type elsewhere, the empty map's struct survives with every
    tag null; stripped blindly it would be ``{}``, which is not DynamoDB JSON, and apply would
    quarantine the whole item. No other value can come out that way: ``{"S": ""}``, ``{"B": ""}``,
    ``{"L": []}``, ``{"BOOL": false}`` and ``{"NULL": true}`` keep a non-null tag, and DynamoDB
    never stores an empty set. So a non-null struct without a non-null tag is rebuilt as
    ``{"M": {}}``, at any depth (attribute values, list elements, map members). A member absent
    from a map (its struct null) stays absent. An attribute that holds an empty map in *every*
    item loses its struct altogether and cannot be rebuilt (the module docstring says so).
    """
    if not isinstance(value, dict):
        return strip_nulls(value)
    tags = {tag: inner for tag, inner in value.items() if inner is not None}
    if not tags:
        return {"M": {}}  # the only value whose tag Spark drops: an empty map
    out: dict[str, Any] = {}
    for tag, inner in tags.items():
        if tag == "M" and isinstance(inner, dict):
            out[tag] = {name: rebuild_value(v) for name, v in inner.items() if v is not None}
        elif tag == "L" and isinstance(inner, list | tuple):
            out[tag] = [rebuild_value(v) for v in inner]
        else:
            out[tag] = strip_nulls(inner)
    return out


def item_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB JSON from a connector row (``{"Item": {...}}`` or the item itself).

    Attributes the item lacks (null in the merged schema) are dropped; each value is rebuilt by
    :func:`rebuild_value` (null tags dropped, an empty map's tagless struct made ``{"M": {}}``).

    Raises:
        ValueError: the row holds no attribute at all.
    """
    item = row.get("Item", row) if isinstance(row.get("Item"), dict) else row
    cleaned = {name: rebuild_value(v) for name, v in dict(item).items() if v is not None}
    if not cleaned:
        raise ValueError("row holds no item")
    return cleaned


def parse_keys(text: str) -> tuple[str, ...]:
    """``--KEYS hash[,range]`` as attribute names (raises ValueError unless one or two names)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not 1 <= len(names) <= 2:
        raise ValueError(f"--KEYS {text!r}: expected the table's key attributes, hash[,range]")
    return names


def key_names_arg(args: Mapping[str, str], source: str) -> tuple[str, ...]:
    """The ``--KEYS`` a job of ``source`` needs, checked before anything is read or written.

    Every LOAD row needs the item's key: the connector's rows and a full export's items carry no
    key schema, so both sources need ``--KEYS``. Only an incremental export (whose lines hold their
    ``Keys``) can do without; ``export-files`` therefore accepts an empty ``--KEYS`` here and
    refuses a *full* export without it once the manifest says which kind it is.

    Raises:
        ValueError: an unknown ``--SOURCE``, a malformed ``--KEYS``, or the connector without ``--KEYS``.
    """
    if source not in SOURCES:
        raise ValueError(f"--SOURCE {source!r}: expected one of {', '.join(SOURCES)}")
    text = args.get("KEYS", "")
    if not text.strip():
        if source == "connector":
            raise ValueError(
                "--SOURCE connector needs --KEYS hash[,range] (the table's key attributes, hash first): "
                "without them rows have no keys and apply rejects them"
            )
        return ()
    return parse_keys(text)


def check_key_values(keys: Mapping[str, Any], where: str) -> None:
    """Refuse key attributes that are not one S, N or B value (a key attribute never is another type)."""
    for name, value in keys.items():
        if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("S", "N", "B")):
            raise ValueError(f"{where} attribute {name!r} is not one value of type S, N or B")


def keys_of(item: Mapping[str, Any], key_names: Sequence[str]) -> dict[str, Any]:
    """The key attributes of an item (raises ValueError naming a missing attribute, never a value).

    An empty ``key_names`` is refused: a row without keys is one apply cannot place. So is a
    named attribute that is not of type S, N or B: it cannot be a key attribute, so ``--KEYS``
    is wrong.
    """
    if not key_names:
        raise ValueError("no key attribute names: pass --KEYS hash[,range]")
    missing = [n for n in key_names if n not in item]
    if missing:
        raise ValueError(
            f"item has no key attribute {missing[0]!r} (--KEYS {','.join(key_names)}); every item holds "
            "the table's key, so --KEYS must name the table's key attributes, hash first"
        )
    keys = {n: item[n] for n in key_names}
    check_key_values(keys, f"--KEYS {','.join(key_names)}: key")
    return keys


@dataclass(frozen=True)
class Rules:
    """How one job turns items into rows.

    Attributes:
        table: the DynamoDB table name.
        load_id: the export ID (export files) or the load ID (connector).
        key_names: the table's key attributes, hash first (not needed for incremental exports).
        version_us: the event time of full-load rows (export files: :func:`export_version_from_us`
            of the export's time; connector: :func:`version_time_from_us` of the run's start).
        export: rows come from export files (source ``export``) rather than the connector (``scan``).
        incremental: an incremental export.
        view: the incremental export's ``outputView``.
    """

    table: str
    load_id: str
    key_names: tuple[str, ...]
    version_us: int
    export: bool = True
    incremental: bool = False
    view: str | None = None
    seq: str | None = None  # a full export's rows: its time in µs (ddblake.load.export_rows.RowMaker)


def _row_fields(item: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    keys = keys_of(item, rules.key_names)
    return {
        "op": "LOAD",
        "table": rules.table,
        "keys": keys,
        "new": item,
        "old": None,
        "eid": event_id(rules.load_id, keys, export=rules.export),
        "event_time_us": rules.version_us,
        "source": "export" if rules.export else "scan",
        "seq": rules.seq,
    }


def row_line(item: Mapping[str, Any], rules: Rules, ingested_us: int) -> bytes:
    """A LOAD row for one item (raises ValueError as :func:`keys_of`)."""
    return raw_line(**_row_fields(item, rules), ingested_us=ingested_us)


def export_fields(line: bytes | str, rules: Rules) -> dict[str, Any]:
    """One export data-file line's raw-log fields but the ingestion time (full: LOAD; incremental:
    its change): everything :func:`export_line` computes but the JSON text, so the check pass can
    find every line the load would fail on at the cost of parsing it.

    Raises:
        ValueError: the line is not an export line of this kind, or (full export) its item lacks
            a ``--KEYS`` attribute; the message names attributes, never values.
    """
    try:
        obj = json.loads(line)
    except ValueError as e:  # the decoder's message gives a position, never the text
        raise ValueError(f"line is not JSON ({e})") from e
    if not isinstance(obj, dict):
        raise ValueError("line is not a JSON object")
    if not rules.incremental:
        item = obj.get("Item")
        if not isinstance(item, dict) or not item:
            raise ValueError("full export line has no Item")
        return _row_fields(item, rules)
    try:
        write_us = int(obj["Metadata"]["WriteTimestampMicros"]["N"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("incremental export line has no Metadata.WriteTimestampMicros") from e
    keys, new, old = obj.get("Keys"), obj.get("NewImage"), obj.get("OldImage")
    if not isinstance(keys, dict) or not keys:
        raise ValueError("incremental export line has no Keys")
    check_key_values(keys, "incremental export line's Keys:")
    if not all(image is None or isinstance(image, dict) for image in (new, old)):
        raise ValueError("incremental export line's NewImage or OldImage is not an object")
    if new is None:
        op = "REMOVE"
    elif old is not None:
        op = "MODIFY"
    else:
        op = "INSERT" if rules.view == "NEW_AND_OLD_IMAGES" else "LOAD"
    return {
        "op": op,
        "table": rules.table,
        "keys": keys,
        "new": new,
        "old": old,
        "eid": event_id(rules.load_id, keys, export=True, write_us=write_us),
        "event_time_us": export_version_from_us(write_us),
        "seq": str(write_us),
        "source": "export",
    }


def export_line(line: bytes | str, rules: Rules, ingested_us: int) -> bytes:
    """One export data-file line as a raw-log line (raises ValueError as :func:`export_fields`)."""
    return raw_line(**export_fields(line, rules), ingested_us=ingested_us)


def chunks(lines: Iterable[bytes], max_bytes: int = MAX_FILE_BYTES) -> Iterator[list[bytes]]:
    """Group lines into raw files of at most ``max_bytes`` (uncompressed; one line may exceed it)."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if batch and size + len(line) > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield batch


def gzip_lines(lines: Sequence[bytes]) -> bytes:
    """A raw file's bytes (gzip level 3, as ddblake.lake.rawlog; no timestamp: equal input, equal file)."""
    return gzip.compress(b"".join(lines), compresslevel=3, mtime=0)
