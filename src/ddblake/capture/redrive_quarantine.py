"""Records ``ddblake capture`` quarantined, back into the raw change log (``ddblake redrive``).

Capture sets a stream record the transform refuses aside under ``errors/<table>/YYYY/MM/DD/HH/``
(its write hour), one JSON line per record: ``{"reason", "source", "table", "shard_id", "seq",
"ingested_us", "record"}`` (:func:`ddblake.capture.records.quarantine_line`), the record as boto3
gave it made JSON-safe (binary as base64, as on the wire; the time as epoch seconds). Its sequence
number still moved the checkpoint on, so the stream will not give it again: this is its way back.

Redrive runs each record through the path capture itself takes (:func:`record_to_line`: DynamoDB
Local's empty maps repaired, then the transform's ``line_for_stream_record``) with the
``ingested_us`` capture stamped it with. A record accepted now (a ddblake that knows what the
older one refused) becomes the very line capture would have written; one refused again stays, with
its reason counted. The rest — one raw file per error file at a path fixed by the file's key and its
lines, the file moved to ``errors/<table>/redriven/`` (same subpath) once every record is back, the
order of those writes — is :func:`ddblake.capture.redrive.redrive`'s, shared with Firehose's error
objects.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ddblake.capture.records import record_to_line
from ddblake.changes.parse import MAX_EVENT_TIME_US
from ddblake.errors import BadRecordError
from ddblake.lake.rawlog import ERRORS_ROOT, REDRIVEN, table_prefix
from ddblake.lake.storage import Storage

_YEAR: Final = re.compile(r"\d{4}")


def quarantine_files(storage: Storage, table: str) -> list[str]:
    """Capture's error files of ``table``: those under ``errors/<table>/<year>/`` (Firehose's,
    apply's and the redriven ones sit under named folders beside them)."""
    root = table_prefix(table, ERRORS_ROOT)
    return [
        path
        for folder in storage.list_dirs(root)
        if _YEAR.fullmatch(folder)
        for path in storage.list_files(f"{root}/{folder}")
    ]


def quarantine_redriven_path(table: str, source: str) -> str:
    """Where capture's error file ``source`` goes once every record of it is back in the raw log."""
    root = table_prefix(table, ERRORS_ROOT)
    return f"{root}/{REDRIVEN}/{source.removeprefix(root + '/')}"


def redrive_quarantined(entry: dict[str, Any], table: str) -> tuple[bytes, int]:
    """One line of capture's quarantine as ``(raw-log line, ingested µs)``, by capture's own path.

    Raises:
        BadRecordError: the transform refuses the record again, or the line is not capture's
            quarantine (no record, no ingestion time, another table's).
    """
    of_table = entry.get("table")
    if of_table != table:
        raise BadRecordError(
            "not capture's quarantine (no table)"
            if not isinstance(of_table, str)
            else f"quarantined by a capture of table {of_table}, not {table}"
        )
    ingested_us = entry.get("ingested_us")
    if type(ingested_us) is not int or not 0 <= ingested_us < MAX_EVENT_TIME_US:
        raise BadRecordError("no ingested_us (microseconds before year 10000)")
    record = entry.get("record")
    if not isinstance(record, dict):
        raise BadRecordError("no record")
    return record_to_line(record, table=table, ingested_us=ingested_us), ingested_us
