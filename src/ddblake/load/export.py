"""DynamoDB exports (ExportTableToPointInTime) read and checked (``ddblake.load.export_rows`` turns
their lines into load rows).

An export folder (``.../AWSDynamoDB/<export id>/``) holds ``manifest-summary.json`` (one JSON
object: export ARN and time, table ARN, output format, export type, total ``itemCount``),
``manifest-files.json`` (JSON Lines, one per data file: ``dataFileS3Key``, ``itemCount``,
``md5Checksum`` = base64 MD5 of the file's bytes, ``etag``) and the gzip data files under
``data/``. Full exports hold ``{"Item": {...}}`` lines; incremental exports hold
``{"Metadata": {"WriteTimestampMicros": {"N": ...}}, "Keys": ..., "NewImage": ..., "OldImage": ...}``
lines (no NewImage for a delete).

Nothing is written before the whole export is checked: every listed file present, its MD5 (and
single-part ETag) equal to the manifest's, its line count equal to its ``itemCount``, its first
line in the format the summary declares (``ddblake.load.export_format``), and the files' counts
adding up to the summary's. A corrupt or incomplete export is refused with an error
naming the file, and the lake is left as it was.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlparse

import pyarrow.fs as pafs

from ddblake.errors import ConfigError, NotFoundError, StoppedError, TerminalError
from ddblake.lake.storage import Storage, storage_error
from ddblake.load.export_format import FirstLine, format_problem
from ddblake.load.export_keys import IncrementalCheck, KeyCheck, line_check
from ddblake.load.rows import parse_export_time

SUMMARY: Final = "manifest-summary.json"
FILES: Final = "manifest-files.json"
CHUNK: Final = 1 << 20
SUPPORTED_FORMATS: Final = frozenset({"DYNAMODB_JSON", "ION"})


class CorruptExportError(TerminalError):
    """The export is incomplete or damaged; nothing was loaded from it."""


@dataclass(frozen=True)
class DataFile:
    """One data file listed in ``manifest-files.json``.

    Attributes:
        key: ``dataFileS3Key`` as listed.
        rel: its path relative to the export folder (``data/<name>.json.gz``).
        item_count: lines it must hold.
        md5: base64 MD5 of its bytes (``md5Checksum``), if listed.
        etag: its S3 ETag, if listed (checked when single-part: hex MD5).
    """

    key: str
    rel: str
    item_count: int
    md5: str | None
    etag: str | None


@dataclass(frozen=True)
class ExportManifest:
    """The manifests of one export folder.

    Attributes:
        uri: the folder.
        export_arn: ``exportArn`` (its last path segment is the export ID).
        export_id: the export's ID (in the rows' event IDs).
        table_arn: ``tableArn``.
        table_name: the table's name, from its ARN.
        incremental: an incremental export (``exportType`` ``INCREMENTAL_EXPORT``).
        export_time_us: ``exportTime`` (full exports; the point in time of the snapshot).
        output_format: ``DYNAMODB_JSON`` or ``ION``.
        output_view: ``NEW_AND_OLD_IMAGES`` or ``NEW_IMAGE`` (incremental exports).
        item_count: the summary's ``itemCount``.
        files: the data files.
        export_to_time_us: ``exportToTime`` (incremental exports: the end of the window they hold).
        export_from_time_us: ``exportFromTime`` (incremental exports: the start of that window).
    """

    uri: str
    export_arn: str
    export_id: str
    table_arn: str
    table_name: str
    incremental: bool
    export_time_us: int | None
    output_format: str
    output_view: str | None
    item_count: int
    files: tuple[DataFile, ...]
    export_to_time_us: int | None = None
    export_from_time_us: int | None = None


class ExportFolder:
    """An export folder on a local disk or in S3, read as bytes through pyarrow's file systems."""

    def __init__(self, uri: str) -> None:
        """Open ``uri`` (a directory, ``file://`` or ``s3://bucket/prefix``); nothing is read yet.

        Raises:
            NotFoundError: a local folder that does not exist.
            ConfigError: an unsupported scheme, or a local path that is a file (not the manifest).
        """
        uri = uri.rstrip("/")
        if uri.endswith(f"/{SUMMARY}") or uri == SUMMARY:  # the manifest itself: its folder is meant
            uri = uri[: -len(SUMMARY)].rstrip("/") or "."
        parsed = urlparse(uri)
        self.uri = uri
        if parsed.scheme in ("", "file"):
            path = Path(parsed.path if parsed.scheme == "file" else uri).expanduser().resolve()
            if path.is_file():  # not "does not exist": the user can see it does
                raise ConfigError(
                    f"export folder {uri} is a file, not a folder: pass the export's folder, the one "
                    f"holding {SUMMARY} (.../AWSDynamoDB/<export id>)"
                )
            if not path.is_dir():
                raise NotFoundError(f"export folder {uri} does not exist (give the folder holding {SUMMARY})")
            self.fs: pafs.FileSystem = pafs.LocalFileSystem()
            self.root = path.as_posix()
        elif parsed.scheme == "s3":
            if not parsed.netloc:
                raise ConfigError(f"export folder {uri!r} names no bucket; use s3://bucket/prefix")
            storage = Storage.from_uri(uri)
            self.fs, self.root = storage.fs, storage.root
        else:
            raise ConfigError(f"export folder {uri!r}: scheme {parsed.scheme!r} is not supported")

    def where(self, rel: str) -> str:
        """The URI of a file in the folder (for messages)."""
        return _join(self.uri, rel)

    def open(self, rel: str) -> IO[bytes] | None:
        """A binary stream of a file, or None when it does not exist.

        Raises:
            TerminalError: the file could not be opened and no retry helps (access denied, say):
                names the file and what to check (:func:`ddblake.lake.storage.storage_error`).
            TransientError: the file could not be opened this time (a network error, throttling).
        """
        try:
            stream: IO[bytes] = self.fs.open_input_stream(_join(self.root, rel), compression=None)
            return stream
        except FileNotFoundError:
            return None
        except OSError as e:
            if "not found" in str(e).lower() or "no such file" in str(e).lower():
                return None
            raise storage_error("read", self.where(rel), e) from e

    def read(self, rel: str) -> bytes | None:
        """A whole (small) file, or None.

        Raises:
            TerminalError, TransientError: as :meth:`open`, for opening or reading it.
        """
        stream = self.open(rel)
        if stream is None:
            return None
        with stream:
            try:
                return stream.read()
            except OSError as e:
                raise storage_error("read", self.where(rel), e) from e


UP = "../"
"""How a data file in the shared ``AWSDynamoDB/data/`` folder starts, relative to an export folder."""


def _join(folder: str, rel: str) -> str:
    """``folder/rel``, where ``rel`` may start with one :data:`UP` (a sibling of the folder)."""
    if rel.startswith(UP):
        return f"{folder.rsplit('/', 1)[0]}/{rel[len(UP) :]}"
    return f"{folder}/{rel}"


def _refuse(folder: ExportFolder, problem: str) -> CorruptExportError:
    return CorruptExportError(
        f"export {folder.uri} refused, nothing loaded: {problem}; export the table again "
        "(ddblake load --export-to s3://...) or copy the export again in full"
    )


def _json_doc(folder: ExportFolder, rel: str) -> bytes:
    data = folder.read(rel)
    if data is None:
        if rel == SUMMARY:
            raise NotFoundError(
                f"no {SUMMARY} in {folder.uri}: give the export's own folder (AWSDynamoDB/<export id>/), "
                "not its parent or data/ folder"
            )
        raise _refuse(folder, f"{folder.where(rel)} is missing (the export is incomplete)")
    return data


def _relative(key: str, manifest_key: str) -> str:
    """A data file's path relative to the export folder, from its S3 key.

    A full export keeps its data files under its own folder (``AWSDynamoDB/<id>/data/``);
    incremental exports may write theirs to the shared ``AWSDynamoDB/data/`` beside the export
    folders, which is ``../data/`` from the folder (the manifest names which files are its own).
    """
    base = manifest_key.rsplit("/", 1)[0] + "/" if "/" in manifest_key else ""
    if base and key.startswith(base):
        return key[len(base) :]
    parent = base.rstrip("/").rsplit("/", 1)[0] + "/" if base.rstrip("/").count("/") else ""
    if base and key.startswith(f"{parent}data/"):
        return UP + key[len(parent) :]
    marker = key.find("/data/")
    return key[marker + 1 :] if marker >= 0 else f"data/{key.rsplit('/', 1)[-1]}"


def read_manifest(folder: ExportFolder) -> ExportManifest:
    """Parse both manifests.

    Raises:
        NotFoundError: the folder has no ``manifest-summary.json``.
        CorruptExportError: a manifest is missing or not what DynamoDB writes.
        TerminalError, TransientError: a manifest could not be read (names it and what to check).
    """
    try:
        summary = json.loads(_json_doc(folder, SUMMARY))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise _refuse(folder, f"{folder.where(SUMMARY)} is not valid JSON ({e})") from e
    manifest_key = str(summary.get("manifestFilesS3Key") or FILES)
    files: list[DataFile] = []
    listed: dict[str, int] = {}
    for number, line in enumerate(_json_doc(folder, FILES).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            key = str(entry["dataFileS3Key"])
            count = int(entry["itemCount"])
        except (ValueError, KeyError, TypeError) as e:
            raise _refuse(
                folder, f"{folder.where(FILES)} line {number} is not a data file entry ({e})"
            ) from e
        if key in listed:  # loading it twice would double its items; DynamoDB lists each file once
            raise _refuse(
                folder,
                f"{folder.where(FILES)} lists data file {key} twice (lines {listed[key]} and {number}): "
                "the manifest is not what DynamoDB wrote; export the table again",
            )
        listed[key] = number
        files.append(
            DataFile(key, _relative(key, manifest_key), count, entry.get("md5Checksum"), entry.get("etag"))
        )
    export_arn = str(summary.get("exportArn") or "")
    export_id = export_arn.rsplit("/", 1)[-1] if export_arn else folder.uri.rsplit("/", 1)[-1]
    table_arn = str(summary.get("tableArn") or "")
    incremental = summary.get("exportType") == "INCREMENTAL_EXPORT" or "exportFromTime" in summary
    export_time: int | None = None
    export_to_time: int | None = None
    export_from_time: int | None = None
    if incremental:  # only the stream checks use the window: unknown is handled there
        export_to_time = _window_time(summary, "exportToTime")
        export_from_time = _window_time(summary, "exportFromTime")
    if not incremental:
        try:
            export_time = parse_export_time(str(summary["exportTime"]))
        except (KeyError, ValueError) as e:
            raise _refuse(folder, f"{folder.where(SUMMARY)} has no valid exportTime ({e})") from e
    try:
        item_count = int(summary["itemCount"])
    except (KeyError, TypeError, ValueError) as e:
        raise _refuse(folder, f"{folder.where(SUMMARY)} has no itemCount") from e
    return ExportManifest(
        uri=folder.uri,
        export_arn=export_arn,
        export_id=export_id,
        table_arn=table_arn,
        table_name=table_arn.rsplit("/", 1)[-1] if "/" in table_arn else "",
        incremental=incremental,
        export_time_us=export_time,
        output_format=str(summary.get("outputFormat") or "DYNAMODB_JSON"),
        output_view=summary.get("outputView"),
        item_count=item_count,
        files=tuple(files),
        export_to_time_us=export_to_time,
        export_from_time_us=export_from_time,
    )


def _window_time(summary: dict[str, Any], name: str) -> int | None:
    """An incremental export's window bound from its summary (None: missing or not a time)."""
    if not summary.get(name):
        return None
    try:
        return parse_export_time(str(summary[name]))
    except ValueError:
        return None


def _read_chunk(folder: ExportFolder, entry: DataFile, stream: IO[bytes]) -> bytes:
    """The next chunk of a data file; a read error is a ddblake error naming the file."""
    try:
        return stream.read(CHUNK)
    except OSError as e:
        raise storage_error("read", folder.where(entry.rel), e) from e


def _check_file(
    folder: ExportFolder,
    entry: DataFile,
    stop: threading.Event | None = None,
    declared: str | None = None,
    keys: KeyCheck | IncrementalCheck | None = None,
) -> None:
    lines_of = _KeyedLines(folder, entry, keys) if keys is not None else None
    stream = folder.open(entry.rel)
    if stream is None:
        raise _refuse(folder, f"data file {folder.where(entry.rel)} listed in {FILES} is missing")
    md5 = hashlib.md5(usedforsecurity=False)
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    lines = 0
    last = b"\n"
    gzip_error: str | None = None
    in_member = False  # a gzip member begun and not ended: at the end of the file, a cut-short file
    first = FirstLine()  # the format the data is really in (ddblake.load.export_format)
    with stream:
        while chunk := _read_chunk(folder, entry, stream):
            if stop is not None and stop.is_set():  # Ctrl-C: a big file takes minutes to read
                raise StoppedError(f"stopped while checking export {folder.uri}; nothing was loaded")
            md5.update(chunk)
            data = chunk if gzip_error is None else b""
            while data:  # the checksum covers the whole file even past a gzip error: it is reported first
                try:
                    out = inflate.decompress(data)
                except zlib.error as e:
                    gzip_error = str(e)
                    break
                in_member = True
                if not first.done:
                    first.feed(out)
                if lines_of is not None:
                    lines_of.feed(out)
                lines += out.count(b"\n")
                last = out[-1:] or last
                if inflate.eof:  # a multi-member gzip: start the next member
                    data = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    in_member = False
                else:
                    data = b""
    digest = md5.digest()
    if entry.md5 is not None and base64.b64encode(digest).decode() != entry.md5:
        raise _refuse(
            folder,
            f"checksum mismatch in {folder.where(entry.rel)}: its MD5 is "
            f"{base64.b64encode(digest).decode()}, {FILES} says {entry.md5}",
        )
    # An ETag is the MD5 only for a single-part upload without SSE-KMS, which DynamoDB uses for
    # exports to KMS buckets: it is checked only where the manifest gives no md5Checksum.
    etag = (entry.etag or "").strip('"') if entry.md5 is None else ""
    if etag and "-" not in etag and etag != digest.hex():
        raise _refuse(
            folder, f"checksum mismatch in {folder.where(entry.rel)}: its MD5 is {digest.hex()}, ETag {etag}"
        )
    if gzip_error is not None or in_member:
        problem = gzip_error or "the gzip stream is cut short"
        raise _refuse(folder, f"data file {folder.where(entry.rel)} is not valid gzip ({problem})")
    if last != b"\n":
        lines += 1  # a last line without newline
    if lines != entry.item_count:
        raise _refuse(
            folder, f"{folder.where(entry.rel)} holds {lines} item(s) but {FILES} says {entry.item_count}"
        )
    first.finish()
    if declared is not None and (mismatch := format_problem(folder.where(entry.rel), declared, first)):
        raise _refuse(folder, mismatch)
    if lines_of is not None:
        lines_of.finish()


class _KeyedLines:
    """The lines of one data file, as they are decompressed, put to a :class:`KeyCheck`. The first
    problem is kept and raised by :meth:`finish`, after the file's checksum, gzip, count and format
    checks passed: a damaged file is said to be damaged, not to lack a key."""

    def __init__(self, folder: ExportFolder, entry: DataFile, check: KeyCheck | IncrementalCheck) -> None:
        self.folder, self.entry, self.check = folder, entry, check
        self.tail = b""
        self.number = 0
        self.problem: tuple[int, str, bool] | None = None

    def feed(self, data: bytes) -> None:
        if self.problem is not None:
            return
        *whole, self.tail = (self.tail + data).split(b"\n")
        for line in whole:
            self._line(line)

    def _line(self, line: bytes) -> None:
        self.number += 1
        if self.problem is None and line.strip() and (found := self.check(line)) is not None:
            self.problem = (self.number, *found)

    def finish(self) -> None:
        """Raise the first problem found (CorruptExportError or ConfigError, naming file and line)."""
        if self.problem is None and self.tail:
            self._line(self.tail)
        if self.problem is None:
            return
        number, problem, of_keys = self.problem
        where = f"{self.folder.where(self.entry.rel)} line {number}"
        if not of_keys:
            raise _refuse(self.folder, f"{where}: {problem}")
        keys = ",".join(self.check.keys)
        raise ConfigError(
            f"export {self.folder.uri} refused, nothing loaded: {where}: {problem}, but --keys {keys} "
            "names the table's key attributes, which every item holds as S, N or B; pass the table's "
            "own key attributes (--keys hash[,range]), or leave --keys out to let DescribeTable find them"
        )


def verify_export(
    folder: ExportFolder,
    manifest: ExportManifest,
    *,
    table: str | None = None,
    stop: threading.Event | None = None,
    keys: tuple[str, ...] | None = None,
) -> None:
    """Check the whole export before anything is loaded from it (``stop`` set: stop at once).

    ``keys``: the key attributes a user named for a full export (``--keys``): every line is then
    read and checked to hold them (:mod:`ddblake.load.export_keys`), since a load finding one
    without them would have written the rows before it under the wrong keys. An incremental
    export's lines are always read and checked.

    Raises:
        CorruptExportError: a data file is missing, its checksum or item count differs from the
            manifest, its first line is in another format than the manifest's, or the counts do
            not add up (names the file); with ``keys``, a line is not a full export line.
        ConfigError: the export is of another table than ``table``, or in an unsupported format;
            an item lacks one of ``keys`` or holds it with a type no key has (names file and line).
        StoppedError: ``stop`` was set (nothing was loaded; the same command starts again).
        TerminalError, TransientError: a data file could not be read (names it and what to check).
    """
    if manifest.output_format not in SUPPORTED_FORMATS:
        raise ConfigError(
            f"export {manifest.uri} is in format {manifest.output_format}; "
            "ddblake reads DYNAMODB_JSON and ION"
        )
    if table and manifest.table_name and manifest.table_name != table:
        raise ConfigError(
            f"export {manifest.uri} is of table {manifest.table_name!r} ({manifest.table_arn}), "
            f"not {table!r}; "
            f"pass --table {manifest.table_name} or the right export folder"
        )
    listed = sum(f.item_count for f in manifest.files)
    if listed != manifest.item_count:
        raise _refuse(
            folder,
            f"{SUMMARY} says {manifest.item_count} item(s) but {FILES} lists {listed} in its data files",
        )
    seen: set[str] = set()
    for entry in manifest.files:
        if entry.rel in seen:
            raise _refuse(folder, f"{FILES} lists {entry.key} twice")
        seen.add(entry.rel)
        check = line_check(manifest.incremental, keys, manifest.output_format)
        _check_file(folder, entry, stop, manifest.output_format, check)


def iter_lines(folder: ExportFolder, entry: DataFile) -> Iterator[bytes]:
    """The lines of one data file (decompressed, newline kept).

    Raises:
        CorruptExportError: the file vanished, or is no longer valid gzip, since it was checked.
        TerminalError, TransientError: it could not be read (names it; see :meth:`ExportFolder.open`).
    """
    stream = folder.open(entry.rel)
    if stream is None:
        raise _refuse(folder, f"data file {folder.where(entry.rel)} disappeared while loading")
    with stream, gzip.GzipFile(fileobj=stream, mode="rb") as lines:
        try:
            yield from lines
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # BadGzipFile is an OSError: first
            raise _refuse(
                folder,
                f"data file {folder.where(entry.rel)} changed since it was checked: not valid gzip ({e})",
            ) from e
        except OSError as e:
            raise storage_error("read", folder.where(entry.rel), e) from e
