"""ddblake's full load as an AWS Glue (Spark) job, for tables too big for one machine.

It writes the *same* raw change log ``ddblake load`` writes — gzip JSON Lines of load rows under
``<lake>/raw/<table>/YYYY/MM/DD/HH/``, with the same version rule and deterministic event IDs (see
``ddblake.load.rows``) — so ``ddblake apply`` continues from it as from any load. Two sources:

* ``--SOURCE export-files`` (lossless; the default): an existing export folder
  (``--EXPORT_PATH s3://.../AWSDynamoDB/<export id>/``, e.g. made by ``ddblake load --export-to`` or
  by the table owner). Data files are found relative to that folder as ``ddblake load
  --from-export`` finds them (:func:`data_file_key`), so a copied export loads too. Every data file
  is checked against the manifests first (MD5, item counts) and each of its lines converted
  without being written (an item lacking a ``--KEYS`` attribute, a line without ``Metadata``): one
  problem and the job writes nothing. Then each Spark task converts one data file's lines.
* ``--SOURCE connector``: Glue's DynamoDB export connector (``dynamodb.export`` = ``ddb``) reads the
  table through the cross-account role ``--ROLE_ARN`` (``dynamodb.sts.roleArn``). Spark infers one
  struct type over all items, so absent type tags come back as nulls; :func:`rebuild_value` drops
  them and rebuilds an empty map whose tag Spark dropped (Spark keeps no empty structs) as
  ``{"M": {}}``. An attribute that holds an empty map in *every* item is dropped from the schema
  altogether and comes back absent: use ``export-files`` where that matters. Before any row is
  written, the rows are counted for a missing ``--KEYS`` attribute (one more pass over the frame).

This file is a Glue *script*: deployed on its own, it imports only the standard library at module
level (``pyspark``/``awsglue``/``boto3`` only inside :func:`main`), and its transformation logic is
plain functions that the unit tests run without Spark. Tests also check that its key, event-ID and
path rules equal the ones in the ``ddblake`` package.

Job arguments: ``--TABLE`` (DynamoDB table name), ``--LAKE`` (``s3://bucket/prefix``), ``--SOURCE``,
``--EXPORT_PATH`` (export-files), ``--TABLE_ARN`` / ``--ROLE_ARN`` / ``--EXPORT_BUCKET`` /
``--EXPORT_PREFIX`` / ``--EXPORT_BUCKET_OWNER`` (connector), ``--KEYS`` (hash[,range],
required by the connector and by full exports; only an incremental export does without),
``--LOAD_ID`` (connector only, default: the job run ID; export rows take the export's ID). Every
refusal is one line naming the table, the argument or S3 object and what to do
(:class:`LoadRefused`; a Spark task's failure: :class:`DataFileError`). Glue 4.0 runs Python 3.10,
so the script uses nothing newer.

A connector run records its load ID and start in ``<lake>/state/load/<table>/glue-connector.json``
and marks it finished at the end; a rerun after a failure goes on with them (:func:`connector_run`),
so the rows it writes again repeat the first run's event IDs and times and apply drops them. An
explicit ``--LOAD_ID`` equal to the finished record's is refused.

The job writes no load state ``ddblake sync`` or ``capture`` read: docs/load.md (*Glue job*) says
what the operator must do instead (start capture first).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


def raw_file_key(lake_prefix: str, table: str, written_us: int, unique: str | None = None) -> str:
    """The raw file path under the lake (``ddblake.lake.rawlog.raw_file_path``'s layout)."""
    when = dt.datetime.fromtimestamp(written_us / SECOND_US, tz=_UTC)
    stamp = f"{when.strftime('%Y-%m-%d-%H-%M-%S')}-{written_us % SECOND_US:06d}"
    name = f"{table}-{stamp}-{unique or uuid.uuid4().hex}.gz"
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


def _check_key_values(keys: Mapping[str, Any], where: str) -> None:
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
    _check_key_values(keys, f"--KEYS {','.join(key_names)}: key")
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
    _check_key_values(keys, "incremental export line's Keys:")
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


@dataclass(frozen=True)
class ManifestEntry:
    """One line of ``manifest-files.json``.

    Attributes:
        key: the S3 key the data file is read from (see :func:`locate_data_files`).
        item_count: the lines it must hold.
        md5: base64 MD5 of its bytes, if listed.
        etag: its S3 ETag, if listed.
        listed: the ``dataFileS3Key`` the manifest gives, when ``key`` was resolved from it.
    """

    key: str
    item_count: int
    md5: str | None
    etag: str | None
    listed: str | None = None


def parse_manifest_files(text: str) -> list[ManifestEntry]:
    """``manifest-files.json`` (JSON Lines) parsed.

    Raises:
        ValueError: a line is not a data file entry, or a data file is listed twice (loading it
            twice would double its items); names the line, never its content.
    """
    entries: list[ManifestEntry] = []
    keys: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            key, count = str(doc["dataFileS3Key"]), int(doc["itemCount"])
        except (ValueError, KeyError, TypeError) as e:
            problem = f"{type(e).__name__}: {e}"
            raise ValueError(f"manifest-files.json line {number} is not a data file entry ({problem})") from e
        if key in keys:
            raise ValueError(f"manifest-files.json lists data file {key} twice")
        keys.add(key)
        entries.append(ManifestEntry(key, count, doc.get("md5Checksum"), doc.get("etag")))
    return entries


SUMMARY = "manifest-summary.json"
FILES = "manifest-files.json"
_UP = "../"


def _in_folder(folder: str, name: str) -> str:
    """``folder/name`` as an S3 key (``folder`` empty: the bucket's root)."""
    return f"{folder}/{name}" if folder else name


def export_folder(export_path: str) -> tuple[str, str]:
    """``--EXPORT_PATH`` as (bucket, folder key); the path of ``manifest-summary.json`` means its folder.

    Raises:
        ValueError: not an ``s3://`` URI.
    """
    bucket, folder = split_s3(export_path)
    if folder == SUMMARY or folder.endswith(f"/{SUMMARY}"):
        folder = folder[: -len(SUMMARY)].rstrip("/")
    return bucket, folder


def data_file_key(folder: str, listed: str, manifest_key: str) -> str:
    """Where a listed data file is, relative to the export folder the job was given.

    ``ddblake load --from-export`` finds data files this way (``ddblake.load.export._relative`` and
    ``_join``; tests check both agree), so an export copied to another bucket or prefix loads the
    same in both. ``dataFileS3Key`` holds the key the export was *written* to: relative to the
    folder of ``manifestFilesS3Key`` it is ``data/<file>`` for a full export, or ``../data/<file>``
    for an incremental export's files in the ``AWSDynamoDB/data/`` folder shared by the exports of
    a prefix; a key under neither keeps its part from ``data/`` on.
    """
    base = manifest_key.rsplit("/", 1)[0] + "/" if "/" in manifest_key else ""
    parent = base.rstrip("/").rsplit("/", 1)[0] + "/" if base.rstrip("/").count("/") else ""
    if base and listed.startswith(base):
        rel = listed[len(base) :]
    elif base and listed.startswith(f"{parent}data/"):
        rel = _UP + listed[len(parent) :]
    else:
        marker = listed.find("/data/")
        rel = listed[marker + 1 :] if marker >= 0 else f"data/{listed.rsplit('/', 1)[-1]}"
    if rel.startswith(_UP):
        return _in_folder(folder.rsplit("/", 1)[0] if "/" in folder else "", rel[len(_UP) :])
    return _in_folder(folder, rel)


def locate_data_files(
    entries: Sequence[ManifestEntry], folder: str, manifest_key: str
) -> list[ManifestEntry]:
    """The entries with ``key`` resolved by :func:`data_file_key` (``listed`` keeps the manifest's)."""
    return [
        dataclasses.replace(e, key=data_file_key(folder, e.key, manifest_key), listed=e.key) for e in entries
    ]


_COPY_AGAIN = "; copy the export again in full, or export the table again"


def _lines(payload: bytes) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of a data file with their line numbers (from 1), without copying it."""
    for number, line in enumerate(io.BytesIO(payload), start=1):
        if line.strip():
            yield number, line


def check_data_file(data: bytes, entry: ManifestEntry, rules: Rules | None = None) -> str | None:
    """What is wrong with a data file against its manifest entry; None when it matches.

    With ``rules``, every line is also converted as the load will convert it (not written): a
    line the load would fail on (a full export's item without a ``--KEYS`` attribute, an
    incremental line without ``Metadata``, a line that is not JSON) is found here, before any
    raw file exists, instead of midway through the load with part of it written for good.
    """
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    if entry.md5 is not None and base64.b64encode(digest).decode() != entry.md5:
        return f"checksum mismatch in {entry.key}{_COPY_AGAIN}"
    etag = (entry.etag or "").strip('"') if entry.md5 is None else ""  # not the MD5 under SSE-KMS
    if etag and "-" not in etag and etag != digest.hex():
        return f"ETag mismatch in {entry.key}{_COPY_AGAIN}"
    try:
        payload = gzip.decompress(data)
    except (OSError, EOFError) as e:
        return f"{entry.key} is not valid gzip ({e}){_COPY_AGAIN}"
    count = payload.count(b"\n") + (1 if payload and not payload.endswith(b"\n") else 0)
    if count != entry.item_count:
        return f"{entry.key} holds {count} item(s), the manifest says {entry.item_count}{_COPY_AGAIN}"
    start, end = 0, payload.find(b"\n")
    while end >= 0 and not payload[start:end].strip():  # the first non-empty line tells the format
        start, end = end + 1, payload.find(b"\n", end + 1)
    first = payload[start:] if end < 0 else payload[start:end]
    if _ion_like(first):
        return (
            f"{entry.key} holds ION (its first line reads as ION), but manifest-summary.json declares "
            "outputFormat DYNAMODB_JSON: load it with ddblake load --from-export (which reads ION)"
        )
    if rules is not None:
        for number, line in _lines(payload):
            try:
                export_fields(line, rules)
            except ValueError as e:
                return f"{entry.key} line {number}: {e}"
    return None


_ION_STRUCT = re.compile(rb"\s*(\$ion_1_0|\{\s*[A-Za-z_$])")


def _ion_like(line: bytes) -> bool:
    """Whether a line is Ion text rather than DynamoDB JSON (``ddblake.load.export_format``): the
    version marker, a struct with unquoted field names, or JSON without ``{"<type>": ...}`` values."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return _ION_STRUCT.match(line) is not None
    return isinstance(obj, dict) and not all(
        image is None  # "OldImage": null reads as absent, as in ddblake load
        or (isinstance(image, dict) and all(isinstance(v, dict) and len(v) == 1 for v in image.values()))
        for image in obj.values()
    )


def check_export_summary(summary: Mapping[str, Any], table: str, export_path: str) -> None:
    """Refuse an export the job cannot load into ``table``, before any data file is read.

    Raises:
        SystemExit: the export is of another table (by its ``tableArn``), or not DYNAMODB_JSON
            (an ION export would fail in every Spark task); names the folder and both tables.
    """
    arn = str(summary.get("tableArn") or "")
    exported = arn.rsplit("/", 1)[-1] if "/" in arn else ""
    if exported and exported != table:
        raise SystemExit(
            f"export {export_path} refused, nothing loaded: it is of table {exported!r} ({arn}), not "
            f"--TABLE {table!r}; pass --TABLE {exported} or the --EXPORT_PATH of an export of {table}"
        )
    fmt = str(summary.get("outputFormat") or "DYNAMODB_JSON")
    if fmt != "DYNAMODB_JSON":
        raise SystemExit(
            f"export {export_path} (table {exported or '?'!r}, --TABLE {table!r}) refused, nothing loaded: "
            f"it is in format {fmt}; the Glue job reads DYNAMODB_JSON exports only (export again with "
            "--export-format DYNAMODB_JSON, or load this one with `ddblake load --from-export`)"
        )


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key without leading or trailing slash)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key.strip("/")


# --- errors: one line naming the table, the S3 object, the role and what to do ------------------------


class LoadRefused(SystemExit):
    """The job stops on the driver with one line: the table, the S3 object or argument, what to do.

    Raised before Spark writes anything (arguments, manifests, the check pass, the connector's key
    check), so the message says whether anything was written.
    """


class DataFileError(RuntimeError):
    """A Spark task failed on one data file or one S3 write: the message names the table and object."""


_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})


def s3_error_code(error: BaseException) -> str:
    """The error code of a botocore ``ClientError`` (``NoSuchKey``, ``AccessDenied``), or ``""``."""
    response = getattr(error, "response", None)
    detail = response.get("Error") if isinstance(response, Mapping) else None
    return str(detail.get("Code") or "") if isinstance(detail, Mapping) else ""


def caller_arn() -> str:
    """Who the job's S3 calls act as (its role's session ARN), or ``""`` when STS does not say.

    Only asked once a call has failed, for the message.
    """
    try:
        import boto3  # a Glue driver and executor have boto3

        return str(boto3.client("sts").get_caller_identity()["Arn"])
    except Exception:  # noqa: BLE001 - a message without the role is still a message
        return ""


def _who(principal: str) -> str:
    if not principal:
        return "the Glue job's role (STS did not say which)"
    parts = principal.split(":")
    return f"{principal} (account {parts[4]})" if len(parts) > 4 and parts[4] else principal


def s3_problem(
    error: BaseException, *, action: str, bucket: str, key: str, principal: str, missing: str, arg: str
) -> str:
    """One line for a failed S3 call: the object, the caller and its account, and what to do.

    Args:
        error: the client's error (its code decides the case).
        action: the IAM action of the call (``s3:GetObject``, ``s3:PutObject``).
        bucket: the bucket called.
        key: the key called.
        principal: who called (:func:`caller_arn`; empty when unknown).
        missing: what to do when the object does not exist.
        arg: the job argument the location came from (``--EXPORT_PATH``, ``--LAKE``).
    """
    code = s3_error_code(error)
    where = f"s3://{bucket}/{key}"
    if code in _MISSING:
        return f"{where} does not exist; {missing}"
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} of {where} does not exist; check {arg}"
    if code in _DENIED:
        listing = (
            " (S3 also answers AccessDenied for an object that does not exist when the role may not "
            f"s3:ListBucket on {bucket}; {missing})"
            if action == "s3:GetObject"
            else ""
        )
        return (
            f"access denied: {action} on {where} as {_who(principal)}; grant that role {action} on "
            f"arn:aws:s3:::{bucket}/* (and kms:Decrypt on the bucket's KMS key if it uses SSE-KMS); a "
            f"bucket of another account must allow the role in its bucket policy too{listing}"
        )
    text = str(error)
    return f"{action} on {where} failed ({code or type(error).__name__}): {text[:300]}"


def _missing_data_file(entry: ManifestEntry) -> str:
    listed = f" (listed as {entry.listed})" if entry.listed and entry.listed != entry.key else ""
    return (
        f"manifest-files.json lists it{listed}, found relative to --EXPORT_PATH as `ddblake load "
        "--from-export` finds it: copy the whole export folder (an incremental export's data files are in "
        "the AWSDynamoDB/data/ folder beside it), or export the table again"
    )


# --- export-files: the manifests, the check pass, the conversion --------------------------------------


GetObject = Callable[[str, str], bytes]
"""``(bucket, key) -> bytes``: an S3 read that raises the client's error (the tests pass fakes)."""


@dataclass(frozen=True)
class ExportPlan:
    """An export folder read and checked as far as its manifests go.

    Attributes:
        bucket: the export's bucket.
        folder: the export folder's key (``--EXPORT_PATH``'s).
        rules: how its lines become rows.
        entries: its data files, ``key`` resolved relative to ``folder``.
    """

    bucket: str
    folder: str
    rules: Rules
    entries: tuple[ManifestEntry, ...]


def read_export(
    get: GetObject,
    table: str,
    export_path: str,
    key_names: tuple[str, ...],
    principal: Callable[[], str] = caller_arn,
) -> ExportPlan:
    """Read and check an export's manifests, before Spark reads any data file.

    Raises:
        LoadRefused: ``manifest-summary.json`` is not in the folder (a parent or ``data/`` folder
            was given), a manifest is missing, damaged or denied, the export is of another table or
            not DYNAMODB_JSON, its counts do not add up, or a full export comes without ``--KEYS``.
    """
    bucket, folder = export_folder(export_path)
    head = f"ddblake glue load of {table}: export {export_path} refused, nothing loaded"

    def read(name: str, missing: str) -> bytes:
        key = _in_folder(folder, name)
        try:
            return bytes(get(bucket, key))
        except Exception as e:
            if not s3_error_code(e):
                raise
            problem = s3_problem(
                e,
                action="s3:GetObject",
                bucket=bucket,
                key=key,
                principal=principal(),
                missing=missing,
                arg="--EXPORT_PATH",
            )
            raise LoadRefused(f"{head}: {problem}") from e

    data = read(
        SUMMARY,
        "--EXPORT_PATH must be the export's own folder, s3://<bucket>/<prefix>/AWSDynamoDB/<export id>/ "
        f"(the one holding {SUMMARY}), not its parent or its data/ folder",
    )
    try:
        summary = json.loads(data)
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise LoadRefused(f"{head}: {SUMMARY} is not valid JSON ({e}){_COPY_AGAIN}") from e
    check_export_summary(summary, table, export_path)
    incomplete = f"the export is incomplete{_COPY_AGAIN}"
    try:
        entries = parse_manifest_files(read(FILES, incomplete).decode("utf-8"))
        listed = sum(e.item_count for e in entries)
        total = int(summary["itemCount"])
        incremental = summary.get("exportType") == "INCREMENTAL_EXPORT" or "exportFromTime" in summary
        export_us = None if incremental else parse_time_us(str(summary["exportTime"]))
    except (ValueError, KeyError, TypeError) as e:
        problem = f"{type(e).__name__}: {e}"
        raise LoadRefused(
            f"{head}: its manifests are not what DynamoDB writes ({problem}){_COPY_AGAIN}"
        ) from e
    if listed != total:
        raise LoadRefused(
            f"{head}: {SUMMARY} says {total} item(s) but {FILES} lists {listed} in its data "
            f"files{_COPY_AGAIN}"
        )
    if not incremental and not key_names:
        raise LoadRefused(
            f"{head}: it is a full export, whose items carry no key schema: pass --KEYS hash[,range] (the "
            f"table's key attributes, hash first)"
        )
    export_arn = str(summary.get("exportArn") or folder)
    rules = Rules(
        table=table,
        load_id=export_arn.rsplit("/", 1)[-1],
        key_names=key_names,
        version_us=0 if export_us is None else export_version_from_us(export_us),
        incremental=incremental,
        view=summary.get("outputView"),
        seq=None if export_us is None else str(export_us),
    )
    manifest_key = str(summary.get("manifestFilesS3Key") or FILES)
    return ExportPlan(bucket, folder, rules, tuple(locate_data_files(entries, folder, manifest_key)))


def check_entry(
    get: GetObject, bucket: str, entry: ManifestEntry, rules: Rules, principal: Callable[[], str] = caller_arn
) -> str | None:
    """What is wrong with one data file (read, checked, every line converted but not written);
    None when nothing is. Runs in a Spark task: it returns the problem instead of raising, so the
    driver refuses the export with one line."""
    try:
        data = bytes(get(bucket, entry.key))
    except Exception as e:
        if not s3_error_code(e):
            raise
        return s3_problem(
            e,
            action="s3:GetObject",
            bucket=bucket,
            key=entry.key,
            principal=principal(),
            missing=_missing_data_file(entry),
            arg="--EXPORT_PATH",
        )
    return check_data_file(data, entry, rules)


def refusal(table: str, export_path: str, problems: Sequence[str]) -> str:
    """The check pass's one line: the first problem, and how many more there are."""
    more = f" (and {len(problems) - 1} more problem(s) in other data files)" if len(problems) > 1 else ""
    return f"ddblake glue load of {table}: export {export_path} refused, nothing loaded: {problems[0]}{more}"


def file_rows(data: bytes, where: str, rules: Rules, ingested_us: int) -> Iterator[bytes]:
    """The raw-log lines of one (checked) data file; a line that fails names the table, file and line.

    Raises:
        DataFileError: a line cannot be converted (the check pass makes this one a file changed
            since it was checked).
    """
    for number, line in _lines(gzip.decompress(data)):
        try:
            yield export_line(line, rules, ingested_us)
        except ValueError as e:
            raise DataFileError(f"ddblake glue load of {rules.table}: {where} line {number}: {e}") from e


# --- connector: the key check before any row is written ---------------------------------------------


def keyless_filter(
    columns: Sequence[str], item_fields: Sequence[str] | None, key_names: Sequence[str]
) -> str:
    """The Spark SQL condition that holds for a connector row missing a ``--KEYS`` attribute.

    ``columns`` are the DataFrame's; ``item_fields`` the fields of its ``Item`` struct, if it has
    one (:func:`item_from_row` reads the item from there). The merged schema tells at no cost
    whether any item holds each name; the count of rows matching the condition, whether all do.

    Raises:
        ValueError: no item of the table holds a named attribute (not in the merged schema).
    """
    prefix, fields = (
        ("Item.", item_fields) if "Item" in columns and item_fields is not None else ("", columns)
    )
    absent = [n for n in key_names if n not in fields]
    if absent:
        raise ValueError(
            f"no item holds attribute {absent[0]!r} named in --KEYS {','.join(key_names)}: --KEYS must name "
            "the table's key attributes, hash first"
        )
    return " OR ".join(f"{prefix}`{n.replace('`', '``')}` IS NULL" for n in key_names)


def resolve_args(argv: Sequence[str]) -> dict[str, str]:
    """``--NAME value`` pairs as Glue passes job arguments (a stand-in for getResolvedOptions)."""
    out: dict[str, str] = {}
    it = iter(argv)
    for token in it:
        if token.startswith("--"):
            value = next(it, "")
            out[token[2:]] = value
    return out


_REQUIRED = {"export-files": ("EXPORT_PATH",), "connector": ("TABLE_ARN", "EXPORT_BUCKET")}
_HINTS = {
    "TABLE": "<the DynamoDB table's name>",
    "LAKE": "s3://<lake bucket>[/<prefix>] (the lake)",
    "EXPORT_PATH": "s3://<bucket>/<prefix>/AWSDynamoDB/<export id>/ (the export's own folder, the one "
    "holding manifest-summary.json)",
    "TABLE_ARN": "arn:aws:dynamodb:<region>:<account>:table/<name> (the table to export)",
    "EXPORT_BUCKET": "<bucket> (where the connector exports the table)",
}


def job_settings(args: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """The job's source and ``--KEYS``, every argument its source needs checked before Spark starts.

    Raises:
        ValueError: an unknown ``--SOURCE``, a missing or malformed ``--KEYS`` (see
            :func:`key_names_arg`), a missing argument, or a location that is not ``s3://``; the
            message names the argument and the form it takes.
    """
    source = args.get("SOURCE", "export-files")
    key_names = key_names_arg(args, source)
    for name in ("TABLE", "LAKE", *_REQUIRED[source]):
        if not args.get(name, "").strip():
            raise ValueError(
                f"--{name} is missing: --SOURCE {source} needs --{name} {_HINTS[name]}; nothing read or "
                "written"
            )
    for name in ("LAKE", "EXPORT_PATH"):
        if name in ("LAKE", *_REQUIRED[source]) and not args[name].startswith("s3://"):
            raise ValueError(
                f"--{name} {args[name]!r} is not an s3:// location: pass --{name} {_HINTS[name]}; nothing "
                "read or written"
            )
    return source, key_names


def connector_state_key(lake_prefix: str, table: str) -> str:
    """The S3 key of the connector source's run record: ``<lake>/state/load/<table>/glue-connector.json``."""
    return "/".join(p for p in (lake_prefix.strip("/"), "state", "load", table, "glue-connector.json") if p)


def connector_run(
    previous: Mapping[str, Any] | None, load_id: str | None, run_id: str | None, now_us: int
) -> dict[str, Any]:
    """The load ID and start time of a connector run: those of an unfinished earlier run, if any.

    A job that failed midway left raw files whose rows carry its load ID (in their event IDs) and a
    version from its start. A rerun that took a new ID and start would write every item again
    under new event IDs, and one that kept the ID but took a new start would write the same event
    IDs at new times, which the history's duplicate screen (it looks at the new events' times)
    cannot match: either way the history would hold the load twice. Going on with the earlier
    run's ID and start gives every row the same event ID and event time, so apply drops the repeats.
    A finished record, or an explicit ``--LOAD_ID`` naming another load, starts a new load.

    An explicit ``--LOAD_ID`` equal to the *finished* record's ID is refused: its rows would repeat
    that load's event IDs at a new version, which the duplicate screen does not match either, so
    the history would hold both loads. (Only the last run's record is kept: an ID used before it
    is not caught.)

    Raises:
        ValueError: ``load_id`` is the ID of the finished load ``previous`` records.
    """
    if (
        isinstance(previous, Mapping)
        and previous.get("finished_us")
        and load_id
        and load_id == previous.get("load_id")
    ):
        raise ValueError(
            f"--LOAD_ID {load_id!r} is the ID of the connector load that already finished (its record "
            "says so); loading again under it would put a second copy of every item in the history "
            "under the same event IDs at a new version. Pass a new --LOAD_ID, or none (the job run ID is "
            "used); nothing was read or written"
        )
    if (
        isinstance(previous, Mapping)
        and not previous.get("finished_us")
        and isinstance(previous.get("load_id"), str)
        and isinstance(previous.get("started_us"), int)
        and (not load_id or load_id == previous["load_id"])
    ):
        return {"load_id": previous["load_id"], "started_us": previous["started_us"], "finished_us": None}
    return {"load_id": load_id or run_id or uuid.uuid4().hex, "started_us": now_us, "finished_us": None}


# --- Glue entry point (runs only inside a Glue job) -----------------------------------------------


def _put_files(lines: Iterable[bytes], lake: str, table: str) -> Iterator[int]:
    import boto3  # a Glue executor has boto3

    s3 = boto3.client("s3")
    bucket, prefix = split_s3(lake)
    for batch in chunks(lines):
        key = raw_file_key(prefix, table, time.time_ns() // 1000)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=gzip_lines(batch))
        except Exception as e:
            if not s3_error_code(e):
                raise
            problem = s3_problem(
                e,
                action="s3:PutObject",
                bucket=bucket,
                key=key,
                principal=caller_arn(),
                missing="",
                arg="--LAKE",
            )
            raise DataFileError(f"ddblake glue load of {table}: writing the raw log: {problem}") from e
        yield len(batch)


def _get_object(bucket: str, key: str) -> bytes:
    import boto3  # a Glue executor has boto3

    return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _lake_object(table: str, action: str, call: Callable[[], Any], bucket: str, key: str) -> Any:
    """``call()`` on the lake's run record; an S3 refusal becomes a :class:`LoadRefused` line."""
    try:
        return call()
    except Exception as e:
        if not s3_error_code(e) or s3_error_code(e) in _MISSING:
            raise
        problem = s3_problem(
            e, action=action, bucket=bucket, key=key, principal=caller_arn(), missing="", arg="--LAKE"
        )
        raise LoadRefused(f"ddblake glue load of {table}: {problem}; nothing written") from e


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - needs Glue
    """Run the job (Glue calls the script; arguments come from the job's parameters)."""
    args = resolve_args(sys.argv[1:] if argv is None else argv)
    table = args.get("TABLE", "").strip()
    try:
        source, key_names = job_settings(args)
    except ValueError as e:  # before Spark starts: nothing read, nothing written
        raise LoadRefused(f"ddblake glue load of {table or '(no --TABLE)'}: {e}") from e
    lake = args["LAKE"].rstrip("/")

    import boto3
    from awsglue.context import GlueContext  # type: ignore[import-not-found]
    from awsglue.job import Job  # type: ignore[import-not-found]
    from pyspark.context import SparkContext  # type: ignore[import-not-found]

    sc = SparkContext.getOrCreate()
    glue = GlueContext(sc)
    job = Job(glue)
    job.init(args.get("JOB_NAME", "ddblake-load"), args)
    state_s3 = boto3.client("s3")
    lake_bucket, lake_prefix = split_s3(lake)
    state_key = connector_state_key(lake_prefix, table)
    run: dict[str, Any] = {}
    if source == "connector":
        where = f"s3://{lake_bucket}/{state_key}"
        try:
            previous = json.loads(
                _lake_object(
                    table,
                    "s3:GetObject",
                    lambda: state_s3.get_object(Bucket=lake_bucket, Key=state_key)["Body"].read(),
                    lake_bucket,
                    state_key,
                )
            )
        except ValueError:  # damaged: a new load (its rows may repeat a failed run's, never lose any)
            print(f"ddblake glue load of {table}: {where} is damaged; starting a new load")
            previous = None
        except Exception as e:
            if s3_error_code(e) not in _MISSING:
                raise
            previous = None
        try:
            run = connector_run(previous, args.get("LOAD_ID"), args.get("JOB_RUN_ID"), time.time_ns() // 1000)
        except ValueError as e:
            raise LoadRefused(f"ddblake glue load of {table}: {e} (run record {where})") from e
        if previous is not None and run["load_id"] == previous.get("load_id"):
            print(f"ddblake glue load of {table}: going on with unfinished load {run['load_id']}")
        body = json.dumps(run).encode()
        _lake_object(
            table,
            "s3:PutObject",
            lambda: state_s3.put_object(Bucket=lake_bucket, Key=state_key, Body=body),
            lake_bucket,
            state_key,
        )
        rules = Rules(
            table=table,
            load_id=run["load_id"],
            key_names=key_names,
            version_us=version_time_from_us(run["started_us"]),
            export=False,
        )
        options = {
            "dynamodb.export": "ddb",
            "dynamodb.tableArn": args["TABLE_ARN"],
            "dynamodb.s3.bucket": args["EXPORT_BUCKET"],
            "dynamodb.s3.prefix": args.get("EXPORT_PREFIX", "ddblake-glue-export/"),
            "dynamodb.unnestDDBJson": False,
        }
        if args.get("ROLE_ARN"):
            options["dynamodb.sts.roleArn"] = args["ROLE_ARN"]
        if args.get("EXPORT_BUCKET_OWNER"):
            options["dynamodb.s3.bucketOwner"] = args["EXPORT_BUCKET_OWNER"]
        frame = glue.create_dynamic_frame.from_options(connection_type="dynamodb", connection_options=options)
        df = frame.toDF()
        item_type: Any = df.schema["Item"].dataType if "Item" in df.columns else None
        item_fields = list(item_type.fieldNames()) if hasattr(item_type, "fieldNames") else None
        try:  # before any raw file: rows written with wrong keys would stay in the lake for good
            keyless = df.where(keyless_filter(df.columns, item_fields, key_names)).count()
        except ValueError as e:
            raise LoadRefused(f"ddblake glue load of {table}: {e}; nothing written") from e
        if keyless:
            raise LoadRefused(
                f"ddblake glue load of {table}: {keyless} item(s) lack an attribute of --KEYS "
                f"{','.join(key_names)}, which every item of the table holds: --KEYS must name the table's "
                "key attributes, hash first; nothing written"
            )

        def convert(rows: Iterable[Any]) -> Iterator[int]:
            ingested = time.time_ns() // 1000

            def lines() -> Iterator[bytes]:
                for r in rows:
                    try:
                        yield row_line(item_from_row(r.asDict(recursive=True)), rules, ingested)
                    except ValueError as e:
                        raise DataFileError(f"ddblake glue load of {table}: a connector row: {e}") from e

            return _put_files(lines(), lake, table)

        written = df.rdd.mapPartitions(convert).sum()
    else:
        export_path = args["EXPORT_PATH"]
        if args.get("LOAD_ID"):
            print(f"ddblake glue load of {table}: --LOAD_ID ignored: export rows take the export's ID")
        s3 = boto3.client("s3")
        plan = read_export(
            lambda b, k: bytes(s3.get_object(Bucket=b, Key=k)["Body"].read()), table, export_path, key_names
        )
        bucket, rules = plan.bucket, plan.rules
        rdd = sc.parallelize(list(plan.entries), max(1, len(plan.entries)))
        problems = rdd.map(lambda e: check_entry(_get_object, bucket, e, rules)).filter(lambda p: p).collect()
        if problems:  # nothing written yet: refuse the whole export
            raise LoadRefused(refusal(table, export_path, problems))

        def convert_file(entry: ManifestEntry) -> int:
            where = f"s3://{bucket}/{entry.key}"
            try:
                data = _get_object(bucket, entry.key)
            except Exception as e:
                if not s3_error_code(e):
                    raise
                problem = s3_problem(
                    e,
                    action="s3:GetObject",
                    bucket=bucket,
                    key=entry.key,
                    principal=caller_arn(),
                    missing=_missing_data_file(entry),
                    arg="--EXPORT_PATH",
                )
                raise DataFileError(f"ddblake glue load of {table}: {problem}") from e
            return sum(_put_files(file_rows(data, where, rules, time.time_ns() // 1000), lake, table))

        written = rdd.map(convert_file).sum()
    if run:  # the connector's load is whole: a later job starts a new one
        run["finished_us"] = time.time_ns() // 1000
        body = json.dumps(run).encode()
        _lake_object(
            table,
            "s3:PutObject",
            lambda: state_s3.put_object(Bucket=lake_bucket, Key=state_key, Body=body),
            lake_bucket,
            state_key,
        )
    print(f"ddblake glue load of {table}: {written} row(s) written to {lake}/raw/{table}/")
    job.commit()


if __name__ == "__main__":  # pragma: no cover
    main()
