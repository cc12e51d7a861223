"""Stream records as raw-log lines, and the repairs and views capture needs of a record.

Kept apart from the consumer so the record-level rules (DynamoDB Local's empty maps, the
quarantine's JSON view of any boto3 value) are testable without a stream.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Final

from ddblake.changes.parse import to_micros
from ddblake.changes.transform import line_for_stream_record
from ddblake.errors import BadRecordError


def record_to_line(record: Any, *, table: str, ingested_us: int) -> bytes:
    """One boto3 Streams record as a raw-log line, by the transform Firehose's Lambda also uses."""
    return line_for_stream_record(repair_empty_maps(record), table, ingested_us)


def _repair_value(value: Any) -> Any:
    if isinstance(value, dict):
        if not value:
            return {"M": {}}
        if len(value) == 1 and isinstance(value.get("M"), dict):
            return {"M": {k: _repair_value(v) for k, v in value["M"].items()}}
        if len(value) == 1 and isinstance(value.get("L"), list):
            return {"L": [_repair_value(v) for v in value["L"]]}
    return value


def repair_empty_maps(record: Any) -> Any:
    """Restore empty maps that DynamoDB Local's stream writes as ``{}`` instead of ``{"M": {}}``.

    DynamoDB Local (3.x) drops the type tag of an empty map in stream records (GetItem returns it
    intact). ``{}`` is not DynamoDB JSON and AWS never sends it, so reading it as the empty map it
    stands for changes nothing for AWS streams and keeps such items out of quarantine locally.
    """
    if not isinstance(record, dict) or not isinstance(record.get("dynamodb"), dict):
        return record
    ddb = dict(record["dynamodb"])
    for name in ("NewImage", "OldImage"):
        image = ddb.get(name)
        if isinstance(image, dict):
            ddb[name] = {k: _repair_value(v) for k, v in image.items()}
    return {**record, "dynamodb": ddb}


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def quarantine_line(record: Any, reason: str, table: str, shard_id: str, ingested_us: int) -> bytes:
    """The errors/ line of a record the transform rejected: why, where from, and the record itself
    (JSON-safe), so it can be redriven; the reason names fields, never values."""
    quarantined = {
        "reason": reason,
        "source": "streams",
        "table": table,
        "shard_id": shard_id,
        "seq": seq_of(record),
        "ingested_us": ingested_us,
        "record": json_safe(record),
    }
    return json.dumps(quarantined, separators=(",", ":")).encode() + b"\n"


def seq_of(record: Any) -> str | None:
    ddb = record.get("dynamodb") if isinstance(record, dict) else None
    seq = ddb.get("SequenceNumber") if isinstance(ddb, dict) else None
    return seq if isinstance(seq, str) and seq.isdigit() else None


ONCE_CLOCK_SKEW_US: Final = 60_000_000
"""How much later than a ``--once`` run's start (this machine's clock) a change's stamp must be to
count as made after the run began: ``ApproximateCreationDateTime`` is AWS's clock, and a machine
behind it would otherwise stop the run at changes made before it started, leaving them to the next.
A minute, the allowance the project gives the same two clocks elsewhere
(:data:`ddblake.load.handoff.STREAM_LABEL_SKEW_US`); a machine further behind than that still stops
early (nothing is lost: the next run reads on from the checkpoint)."""


def written_after(records: Sequence[Any], since_us: int) -> bool:
    """Whether the last of ``records`` (a GetRecords page, oldest first) was stamped after
    ``since_us``: its ``ApproximateCreationDateTime`` (rounded down by the stream: to the second on
    AWS, to the minute by DynamoDB Local) is later, so the change was certainly made after then.
    """
    if not records or not isinstance(records[-1], dict):
        return False
    ddb = records[-1].get("dynamodb")
    stamp = ddb.get("ApproximateCreationDateTime") if isinstance(ddb, dict) else None
    try:
        return stamp is not None and to_micros(stamp) > since_us
    except BadRecordError:
        return False


def made_after_start(records: Sequence[Any], started_us: int) -> bool:
    """Whether the last of ``records`` was certainly made after a run that began at ``started_us``
    (this machine's clock): stamped later than that plus :data:`ONCE_CLOCK_SKEW_US`."""
    return written_after(records, started_us + ONCE_CLOCK_SKEW_US)
