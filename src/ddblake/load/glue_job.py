"""ddblake's full load as an AWS Glue (Spark) job, for tables too big for one machine.

It writes the *same* raw change log ``ddblake load`` writes — gzip JSON Lines of load rows under
``<lake>/raw/<table>/YYYY/MM/DD/HH/``, with the same version rule and deterministic event IDs (see
``ddblake.load.rows``) — so ``ddblake apply`` continues from it as from any load. Two sources:

* ``--SOURCE export-files`` (lossless; the default): an existing export folder
  (``--EXPORT_PATH s3://.../AWSDynamoDB/<export id>/``, e.g. made by ``ddblake load --export-to`` or
  by the table owner). Every data file is checked against the manifests first (MD5, item counts);
  one corrupt file and the job writes nothing. Then each Spark task converts one data file's lines.
* ``--SOURCE connector``: Glue's DynamoDB export connector (``dynamodb.export`` = ``ddb``) reads the
  table through the cross-account role ``--ROLE_ARN`` (``dynamodb.sts.roleArn``). Spark infers one
  struct type over all items, so absent type tags come back as nulls; :func:`strip_nulls` removes
  them to rebuild DynamoDB JSON. An attribute holding an empty map may come back as null (Spark keeps
  no empty structs): use ``export-files`` where that matters.

This file is a Glue *script*: deployed on its own, it imports only the standard library at module
level (``pyspark``/``awsglue``/``boto3`` only inside :func:`main`), and its transformation logic is
plain functions that the unit tests run without Spark. Tests also check that its key, event-ID and
path rules equal the ones in the ``ddblake`` package.

Job arguments: ``--TABLE`` (DynamoDB table name), ``--LAKE`` (``s3://bucket/prefix``), ``--SOURCE``,
``--EXPORT_PATH`` (export-files), ``--TABLE_ARN`` / ``--ROLE_ARN`` / ``--EXPORT_BUCKET`` /
``--EXPORT_PREFIX`` / ``--EXPORT_BUCKET_OWNER`` (connector), ``--KEYS`` (hash[,range],
required by the connector and by full exports; only an incremental export does without),
``--LOAD_ID`` (default: the job run ID). Glue 4.0 runs Python 3.10, so the script uses nothing newer.

A connector run records its load ID and start in ``<lake>/state/load/<table>/glue-connector.json``
and marks it finished at the end; a rerun after a failure goes on with them (:func:`connector_run`),
so the rows it writes again repeat the first run's event IDs and times and apply drops them.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import re
import sys
import time
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
    """Rebuild DynamoDB JSON from a Spark row dict, where a merged schema adds null type tags.

    ``{"S": "x", "N": None, "M": None}`` becomes ``{"S": "x"}``; maps and lists are walked. A real
    DynamoDB value is never JSON null (NULL is ``{"NULL": true}``), so dropping nulls loses nothing.
    Binary that Spark handed over as bytes becomes base64 text again.
    """
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [strip_nulls(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def item_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB JSON from a connector row (``{"Item": {...}}`` or the item itself)."""
    item = row.get("Item", row) if isinstance(row.get("Item"), dict) else row
    cleaned = strip_nulls(dict(item))
    if not isinstance(cleaned, dict) or not cleaned:
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


def keys_of(item: Mapping[str, Any], key_names: Sequence[str]) -> dict[str, Any]:
    """The key attributes of an item (raises ValueError naming a missing attribute, never a value).

    An empty ``key_names`` is refused: a row without keys is one apply cannot place.
    """
    if not key_names:
        raise ValueError("no key attribute names: pass --KEYS hash[,range]")
    missing = [n for n in key_names if n not in item]
    if missing:
        raise ValueError(f"item has no key attribute {missing[0]!r}")
    return {n: item[n] for n in key_names}


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


def row_line(item: Mapping[str, Any], rules: Rules, ingested_us: int) -> bytes:
    """A LOAD row for one item."""
    keys = keys_of(item, rules.key_names)
    return raw_line(
        op="LOAD",
        table=rules.table,
        keys=keys,
        new=item,
        old=None,
        eid=event_id(rules.load_id, keys, export=rules.export),
        event_time_us=rules.version_us,
        source="export" if rules.export else "scan",
        ingested_us=ingested_us,
        seq=rules.seq,
    )


def export_line(line: bytes | str, rules: Rules, ingested_us: int) -> bytes:
    """One export data-file line as a raw-log line (full: LOAD; incremental: its change)."""
    obj = json.loads(line)
    if not rules.incremental:
        item = obj.get("Item") if isinstance(obj, dict) else None
        if not isinstance(item, dict) or not item:
            raise ValueError("full export line has no Item")
        return row_line(item, rules, ingested_us)
    write_us = int(obj["Metadata"]["WriteTimestampMicros"]["N"])
    keys, new, old = obj["Keys"], obj.get("NewImage"), obj.get("OldImage")
    if new is None:
        op = "REMOVE"
    elif old is not None:
        op = "MODIFY"
    else:
        op = "INSERT" if rules.view == "NEW_AND_OLD_IMAGES" else "LOAD"
    return raw_line(
        op=op,
        table=rules.table,
        keys=keys,
        new=new,
        old=old,
        eid=event_id(rules.load_id, keys, export=True, write_us=write_us),
        event_time_us=export_version_from_us(write_us),
        seq=str(write_us),
        source="export",
        ingested_us=ingested_us,
    )


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
    """One line of ``manifest-files.json``."""

    key: str
    item_count: int
    md5: str | None
    etag: str | None


def parse_manifest_files(text: str) -> list[ManifestEntry]:
    """``manifest-files.json`` (JSON Lines) parsed.

    Raises:
        ValueError: a data file is listed twice (loading it twice would double its items).
    """
    entries: list[ManifestEntry] = []
    keys: set[str] = set()
    for line in text.splitlines():
        if line.strip():
            doc = json.loads(line)
            if str(doc["dataFileS3Key"]) in keys:
                raise ValueError(f"manifest-files.json lists data file {doc['dataFileS3Key']} twice")
            keys.add(str(doc["dataFileS3Key"]))
            entries.append(
                ManifestEntry(
                    str(doc["dataFileS3Key"]), int(doc["itemCount"]), doc.get("md5Checksum"), doc.get("etag")
                )
            )
    return entries


def check_data_file(data: bytes, entry: ManifestEntry) -> str | None:
    """What is wrong with a data file against its manifest entry; None when it matches."""
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    if entry.md5 is not None and base64.b64encode(digest).decode() != entry.md5:
        return f"checksum mismatch in {entry.key}"
    etag = (entry.etag or "").strip('"') if entry.md5 is None else ""  # not the MD5 under SSE-KMS
    if etag and "-" not in etag and etag != digest.hex():
        return f"ETag mismatch in {entry.key}"
    try:
        payload = gzip.decompress(data)
    except (OSError, EOFError) as e:
        return f"{entry.key} is not valid gzip ({e})"
    count = payload.count(b"\n") + (1 if payload and not payload.endswith(b"\n") else 0)
    if count != entry.item_count:
        return f"{entry.key} holds {count} item(s), the manifest says {entry.item_count}"
    start, end = 0, payload.find(b"\n")
    while end >= 0 and not payload[start:end].strip():  # the first non-empty line tells the format
        start, end = end + 1, payload.find(b"\n", end + 1)
    first = payload[start:] if end < 0 else payload[start:end]
    if _ion_like(first):
        return (
            f"{entry.key} holds ION (its first line reads as ION), but manifest-summary.json declares "
            "outputFormat DYNAMODB_JSON: load it with ddblake load --from-export (which reads ION)"
        )
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


def resolve_args(argv: Sequence[str]) -> dict[str, str]:
    """``--NAME value`` pairs as Glue passes job arguments (a stand-in for getResolvedOptions)."""
    out: dict[str, str] = {}
    it = iter(argv)
    for token in it:
        if token.startswith("--"):
            value = next(it, "")
            out[token[2:]] = value
    return out


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
    """
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
        s3.put_object(Bucket=bucket, Key=key, Body=gzip_lines(batch))
        yield len(batch)


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - needs Glue
    """Run the job (Glue calls the script; arguments come from the job's parameters)."""
    args = resolve_args(sys.argv[1:] if argv is None else argv)
    table, lake = args["TABLE"], args["LAKE"].rstrip("/")
    source = args.get("SOURCE", "export-files")
    try:
        key_names = key_names_arg(args, source)
    except ValueError as e:  # before Spark starts: nothing read, nothing written
        raise SystemExit(f"ddblake glue load of {table}: {e}") from e

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
        try:
            previous = json.loads(state_s3.get_object(Bucket=lake_bucket, Key=state_key)["Body"].read())
        except state_s3.exceptions.NoSuchKey:
            previous = None
        except ValueError:  # damaged: a new load (its rows may repeat a failed run's, never lose any)
            where = f"s3://{lake_bucket}/{state_key}"
            print(f"ddblake glue load of {table}: {where} is damaged; starting a new load")
            previous = None
        run = connector_run(previous, args.get("LOAD_ID"), args.get("JOB_RUN_ID"), time.time_ns() // 1000)
        if previous is not None and run["load_id"] == previous.get("load_id"):
            print(f"ddblake glue load of {table}: going on with unfinished load {run['load_id']}")
        state_s3.put_object(Bucket=lake_bucket, Key=state_key, Body=json.dumps(run).encode())
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

        def convert(rows: Iterable[Any]) -> Iterator[int]:
            ingested = time.time_ns() // 1000
            lines = (row_line(item_from_row(r.asDict(recursive=True)), rules, ingested) for r in rows)
            return _put_files(lines, lake, table)

        written = frame.toDF().rdd.mapPartitions(convert).sum()
    else:
        bucket, folder = split_s3(args["EXPORT_PATH"])
        s3 = boto3.client("s3")
        summary = json.loads(
            s3.get_object(Bucket=bucket, Key=f"{folder}/manifest-summary.json")["Body"].read()
        )
        check_export_summary(summary, table, args["EXPORT_PATH"])
        files_key = f"{folder}/manifest-files.json"
        entries = parse_manifest_files(s3.get_object(Bucket=bucket, Key=files_key)["Body"].read().decode())
        if sum(e.item_count for e in entries) != int(summary["itemCount"]):
            raise SystemExit(f"export {args['EXPORT_PATH']} refused: manifest item counts do not add up")
        incremental = summary.get("exportType") == "INCREMENTAL_EXPORT" or "exportFromTime" in summary
        export_arn = str(summary.get("exportArn") or folder)
        rules = Rules(
            table=table,
            load_id=export_arn.rsplit("/", 1)[-1],
            key_names=key_names,
            version_us=0 if incremental else export_version_from_us(parse_time_us(summary["exportTime"])),
            incremental=incremental,
            view=summary.get("outputView"),
            seq=None if incremental else str(parse_time_us(summary["exportTime"])),
        )
        if not incremental and not key_names:
            raise SystemExit(
                f"export {args['EXPORT_PATH']} is a full export: it needs --KEYS hash[,range] "
                "(the table's key attributes, hash first); nothing loaded"
            )

        def fetch(entry: ManifestEntry) -> bytes:
            import boto3 as b3

            return bytes(b3.client("s3").get_object(Bucket=bucket, Key=entry.key)["Body"].read())

        rdd = sc.parallelize(entries, max(1, len(entries)))
        problems = rdd.map(lambda e: check_data_file(fetch(e), e)).filter(lambda p: p is not None).collect()
        if problems:  # nothing written yet: refuse the whole export
            raise SystemExit(f"export {args['EXPORT_PATH']} refused, nothing loaded: {problems[0]}")

        def convert_file(entry: ManifestEntry) -> int:
            ingested = time.time_ns() // 1000
            payload = gzip.decompress(fetch(entry))
            lines = (export_line(line, rules, ingested) for line in payload.splitlines() if line.strip())
            return sum(_put_files(lines, lake, table))

        written = rdd.map(convert_file).sum()
    if run:  # the connector's load is whole: a later job starts a new one
        run["finished_us"] = time.time_ns() // 1000
        state_s3.put_object(Bucket=lake_bucket, Key=state_key, Body=json.dumps(run).encode())
    print(f"ddblake glue load of {table}: {written} row(s) written to {lake}/raw/{table}/")
    job.commit()


if __name__ == "__main__":  # pragma: no cover
    main()
