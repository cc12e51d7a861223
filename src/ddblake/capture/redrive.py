"""Firehose's ``processing-failed`` records, and capture's quarantine, back into the raw change log.

``ddblake redrive`` reads two kinds of error files: Firehose's (below), and the records ``ddblake
capture`` quarantined (:mod:`ddblake.capture.redrive_quarantine`); both go through the same steps
(one raw file each, written once; moved to ``redriven/`` when every record is back).

When the transform Lambda cannot answer a batch at all (throttled by the account's concurrency,
timed out, failing at import after a bad deploy), Firehose retries the invocation and then writes
every record of the batch under ``errors/<table>/processing-failed/``: valid changes, which
``apply`` never reads, next to the few records the transform itself refused. Redrive runs each of
those records through the very same transform again:

* a record it accepts becomes the raw-log line of the same change (event ID, version, images) in a
  raw file beside Firehose's; only ``ingested_us`` may differ, as the error record keeps Firehose's
  arrival time where the Lambda reads Kinesis'. ``apply`` drops any change it already holds by
  event ID, so redriving a record that also arrived the normal way (a retried batch that finally
  went through) changes nothing;
* a record it refuses again (not a DynamoDB change, another table's, or an ``arrivalTimestamp`` at
  or past year 10000, which has no hour folder) stays where it is, counted; Firehose's error object
  keeps it with the reason. One bad record costs that record, never the other objects: an object
  that still gives no raw file path is named in a warning and left, like one that is not error
  records.

Each error object gives at most one raw file, at a path derived from the object's key and the lines
it gives, so a rerun (after a crash, or on the next alarm) finds the files it wrote and writes
nothing twice. The hour
folder is that of the object's oldest record's arrival, like Firehose's own ``!{timestamp}``; an
old folder is fine for ``apply`` (docs/raw-log.md: late files reopen their day).

An object whose every record is back in the raw log then moves to ``errors/<table>/redriven/``
(same subpath), as a dead-letter queue's redrive takes its messages out: what stays under
``processing-failed/`` is what still needs a person, and ``status`` counts only that. The copy is
written before the original is deleted, and the raw file before either, so a crash between any two
steps leaves the object in one place or both, and the rerun finishes the move writing no change
twice. An object with a refused record stays whole, its accepted records redriven.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import json
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from ddblake.capture.redrive_quarantine import quarantine_files, quarantine_redriven_path, redrive_quarantined
from ddblake.changes.parse import MAX_EVENT_TIME_US
from ddblake.changes.transform import kinesis_line, other_table
from ddblake.errors import BadRecordError
from ddblake.lake.rawlog import ERRORS_ROOT, GZIP_LEVEL, REDRIVEN, raw_file_path, table_prefix
from ddblake.lake.storage import Storage

log = logging.getLogger(__name__)

PROCESSING_FAILED: Final = "processing-failed"
"""Firehose's ``!{firehose:error-output-type}`` for records the transform did not return ``Ok``."""
MAX_REASONS: Final = 5
"""Distinct refusal reasons kept for the summary (counts are always exact)."""


def failed_prefix(table: str) -> str:
    """``errors/<table>/processing-failed``: where the delivery stream's error prefix puts them."""
    return f"{table_prefix(table, ERRORS_ROOT)}/{PROCESSING_FAILED}"


def redriven_path(table: str, source: str) -> str:
    """Where the error object ``source`` (under :func:`failed_prefix`) goes once redriven."""
    return f"{table_prefix(table, ERRORS_ROOT)}/{REDRIVEN}/{source.removeprefix(failed_prefix(table) + '/')}"


@dataclass
class RedriveStats:
    """What one redrive did (logged and printed; counts and reasons only, never item data)."""

    objects: int = 0
    files: int = 0
    records: int = 0
    redriven: int = 0
    already: int = 0
    refused: int = 0
    moved: int = 0
    unreadable: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str) -> None:
        self.refused += 1
        if reason in self.reasons or len(self.reasons) < MAX_REASONS:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def summary(self, table: str) -> str:
        """One line for the operator."""
        text = (
            f"redrive {table}: {self.records} record(s) in {self.objects} error object(s): "
            f"{self.redriven} back in the raw log ({self.files} new file(s))"
        )
        if self.already:
            text += f", {self.already} redriven before"
        if self.moved:
            text += f"; {self.moved} object(s) done, moved to errors/{table}/{REDRIVEN}/"
        if self.refused:
            why = "; ".join(f"{reason} ({n})" for reason, n in self.reasons.items())
            text += f"; {self.refused} refused again, left under errors/ ({why})"
        if self.unreadable:
            text += f"; {len(self.unreadable)} object(s) not error records, left as they are"
        if self.redriven:
            text += "; run apply to take them in"
        return text


def error_records(data: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects of one Firehose error object (gzip or not; one per line, or concatenated).

    Raises:
        BadRecordError: not gzip-compressed JSON objects.
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise BadRecordError(f"damaged gzip ({e})") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRecordError("not UTF-8 text") from e
    decoder = json.JSONDecoder()
    at, end = 0, len(text)
    while True:
        while at < end and text[at] in " \t\r\n":
            at += 1
        if at == end:
            return
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as e:
            raise BadRecordError(f"not JSON at character {e.pos}") from e
        if not isinstance(value, dict):
            raise BadRecordError("a record is not a JSON object")
        yield value


def redrive_record(record: dict[str, Any], table: str) -> tuple[bytes, int]:
    """One Firehose error record as ``(raw-log line, ingested µs)``, by the Lambda's own transform.

    Raises:
        BadRecordError: the transform refuses it again, or it is not a Firehose error record.
    """
    raw_data = record.get("rawData")
    if not isinstance(raw_data, str):
        raise BadRecordError("no rawData")
    try:
        raw = binascii.a2b_base64(raw_data, strict_mode=True)
    except (ValueError, TypeError) as e:
        raise BadRecordError("rawData is not base64") from e
    arrival = record.get("arrivalTimestamp")
    if type(arrival) is not int or arrival < 0:
        raise BadRecordError("no arrivalTimestamp")
    ingested_us = arrival * 1000
    if ingested_us >= MAX_EVENT_TIME_US:  # the object's hour folder is this time: it must be a real one
        raise BadRecordError("arrivalTimestamp past year 9999")
    line, of_table, _ = kinesis_line(raw, ingested_us)
    if of_table != table:
        raise BadRecordError(other_table(of_table, table))
    return line, ingested_us


Convert = Callable[[dict[str, Any], str], tuple[bytes, int]]
"""One error record of a kind as ``(raw-log line, ingested µs)``; raises BadRecordError to refuse it."""


def redrive_object(
    data: bytes, table: str, stats: RedriveStats, convert: Convert | None = None
) -> tuple[list[bytes], int | None]:
    """The lines one error object gives back, and its oldest record's ingestion (µs), if any.

    ``convert`` is the kind's (:func:`redrive_record`, Firehose's, by default).
    """
    lines: list[bytes] = []
    oldest: int | None = None
    for record in error_records(data):
        stats.records += 1
        try:
            line, ingested_us = (convert or redrive_record)(record, table)
        except BadRecordError as e:
            stats.refuse(str(e))
            continue
        except Exception as e:  # as the Lambda does: a bug costs this record, not the other objects
            stats.refuse(f"internal error {type(e).__name__}")
            continue
        lines.append(line)
        oldest = ingested_us if oldest is None else min(oldest, ingested_us)
    return lines, oldest


def target_path(table: str, source: str, lines: list[bytes], oldest_us: int) -> str:
    """The raw file one error object becomes, fixed by its key and the lines it gives.

    A rerun finds the file it wrote; a rerun whose transform accepts more of the object's records
    (an upgrade) writes a new file, whose repeated changes apply drops by event ID.
    """
    digest = hashlib.sha256(source.encode() + b"\0" + b"".join(lines)).hexdigest()[:32]
    return raw_file_path(table, oldest_us, unique=f"redrive-{digest}")


class _Source(NamedTuple):
    """One error file to redrive: its kind (for messages), how its records convert, where it goes."""

    path: str
    kind: str
    convert: Convert
    redriven: str


def _sources(storage: Storage, table: str) -> Iterator[_Source]:
    for path in storage.list_files(failed_prefix(table)):
        yield _Source(path, "Firehose error records", redrive_record, redriven_path(table, path))
    for path in quarantine_files(storage, table):
        yield _Source(
            path, "capture's quarantine", redrive_quarantined, quarantine_redriven_path(table, path)
        )


def redrive(
    storage: Storage, table: str, *, on_object: Callable[[RedriveStats], None] | None = None
) -> RedriveStats:
    """Every record of ``table``'s error files the transform accepts now, into the raw log:
    Firehose's ``processing-failed`` objects, then capture's quarantine files.

    Args:
        storage: the lake.
        table: the DynamoDB table name (the delivery stream's).
        on_object: called after each error object (progress).

    Raises:
        TransientError: the lake could not be listed, read or written; rerun.
    """
    stats = RedriveStats()
    folders: dict[str, set[str]] = {}  # hour folder -> the files in it (one listing each)
    for source, kind, convert, moved_to in _sources(storage, table):
        stats.objects += 1
        data = storage.read(source)
        if data is None:  # deleted since the listing (its lifecycle rule, or a redrive beside this one)
            continue
        refused = stats.refused
        try:
            lines, oldest = redrive_object(data, table, stats, convert)
        except BadRecordError as e:
            stats.unreadable.append(source)
            log.warning("redrive %s: %s is not %s (%s); left as it is", table, source, kind, e)
            continue
        if oldest is not None:
            try:
                path = target_path(table, source, lines, oldest)
            except (ValueError, OverflowError) as e:  # no hour folder for it: costs this object only
                stats.unreadable.append(source)
                log.warning(
                    "redrive %s: %s gives no raw file path (%s); left as it is",
                    table,
                    source,
                    type(e).__name__,
                )
                continue
            folder = path.rsplit("/", 1)[0]
            if folder not in folders:
                folders[folder] = set(storage.list_files(folder))
            if path in folders[folder]:  # written by an earlier run
                stats.already += len(lines)
            else:
                storage.write_atomic(path, gzip.compress(b"".join(lines), compresslevel=GZIP_LEVEL, mtime=0))
                folders[folder].add(path)
                stats.files += 1
                stats.redriven += len(lines)
                log.info("redrive %s: %d record(s) of %s into %s", table, len(lines), source, path)
        if stats.refused == refused:  # every record is in the raw log: nothing left to look at
            storage.write_atomic(moved_to, data)
            storage.delete(source)
            stats.moved += 1
        if on_object is not None:
            on_object(stats)
    return stats
