"""An export's manifests and data files checked as ``ddblake load --from-export`` checks them."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ddblake.gluejob.errors import split_s3
from ddblake.gluejob.rules import Rules, export_fields


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


def in_folder(folder: str, name: str) -> str:
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
        return in_folder(folder.rsplit("/", 1)[0] if "/" in folder else "", rel[len(_UP) :])
    return in_folder(folder, rel)


def locate_data_files(
    entries: Sequence[ManifestEntry], folder: str, manifest_key: str
) -> list[ManifestEntry]:
    """The entries with ``key`` resolved by :func:`data_file_key` (``listed`` keeps the manifest's)."""
    return [
        dataclasses.replace(e, key=data_file_key(folder, e.key, manifest_key), listed=e.key) for e in entries
    ]


COPY_AGAIN = "; copy the export again in full, or export the table again"


def data_lines(payload: bytes) -> Iterator[tuple[int, bytes]]:
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
        return f"checksum mismatch in {entry.key}{COPY_AGAIN}"
    etag = (entry.etag or "").strip('"') if entry.md5 is None else ""  # not the MD5 under SSE-KMS
    if etag and "-" not in etag and etag != digest.hex():
        return f"ETag mismatch in {entry.key}{COPY_AGAIN}"
    try:
        payload = gzip.decompress(data)
    except (OSError, EOFError) as e:
        return f"{entry.key} is not valid gzip ({e}){COPY_AGAIN}"
    count = payload.count(b"\n") + (1 if payload and not payload.endswith(b"\n") else 0)
    if count != entry.item_count:
        return f"{entry.key} holds {count} item(s), the manifest says {entry.item_count}{COPY_AGAIN}"
    start, end = 0, payload.find(b"\n")
    while end >= 0 and not payload[start:end].strip():  # the first non-empty line tells the format
        start, end = end + 1, payload.find(b"\n", end + 1)
    first = payload[start:] if end < 0 else payload[start:end]
    if ion_like(first):
        return (
            f"{entry.key} holds ION (its first line reads as ION), but manifest-summary.json declares "
            "outputFormat DYNAMODB_JSON: load it with ddblake load --from-export (which reads ION)"
        )
    if rules is not None:
        for number, line in data_lines(payload):
            try:
                export_fields(line, rules)
            except ValueError as e:
                return f"{entry.key} line {number}: {e}"
    return None


_ION_STRUCT = re.compile(rb"\s*(\$ion_1_0|\{\s*[A-Za-z_$])")


_TAGS = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})


def _typed(value: Any) -> bool:
    """Whether a value is DynamoDB JSON's ``{"<type>": ...}`` (as ``ddblake.load.export_format``)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TAGS


def ion_like(line: bytes) -> bool:
    """Whether a line is Ion text rather than DynamoDB JSON (``ddblake.load.export_format``): the
    version marker, a struct with unquoted field names, or JSON without ``{"<type>": ...}`` values."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return _ION_STRUCT.match(line) is not None
    return isinstance(obj, dict) and not all(
        image is None  # "OldImage": null reads as absent, as in ddblake load
        or (isinstance(image, dict) and all(_typed(v) for v in image.values()))
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
            f"ddblake glue load of {table}: export {export_path} refused, nothing loaded: it is of table "
            f"{exported!r} ({arn}), not "
            f"--TABLE {table!r}; pass --TABLE {exported} or the --EXPORT_PATH of an export of {table}"
        )
    fmt = str(summary.get("outputFormat") or "DYNAMODB_JSON")
    if fmt != "DYNAMODB_JSON":
        raise SystemExit(
            f"ddblake glue load of {table}: export {export_path} (table {exported or '?'!r}, --TABLE "
            f"{table!r}) refused, "
            "nothing loaded: "
            f"it is in format {fmt}; the Glue job reads DYNAMODB_JSON exports only (export again with "
            "--export-format DYNAMODB_JSON, or load this one with `ddblake load --from-export`)"
        )
