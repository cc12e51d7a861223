"""Capture checkpoints, kept in the lake beside the data they describe.

Layout: one JSON document per table at ``<lake>/state/capture/<table>/checkpoint.json``::

    {
      "v": 1,
      "table": "example-ddb-table",
      "stream_arn": "arn:aws:dynamodb:...:table/example-ddb-table/stream/2024-...",
      "updated_us": 1732780800000000,
      "first_capture_us": 1732780800000000,
      "horizon_until_us": 1732784100000000,
      "last_file": "raw/example-ddb-table/2024/11/28/08/example-ddb-table-....gz",
      "shards": {
        "shardId-...": {"parent": null, "seq": "000000000000000000042", "closed": false}
      }
    }

``seq`` is the sequence number of the last record of that shard that is in a raw file already
written; ``first_capture_us`` is when the first capture on this checkpoint began (set once by it,
kept by every later write; absent from a checkpoint older than it, and read by
:func:`first_capture_us`); ``horizon_until_us`` (written only while it lasts) ends the first capture's window
(:mod:`ddblake.capture.horizon`), within which ``"horizon": true`` (written only when set) marks a
shard with ``seq`` null that is read from ``TRIM_HORIZON``, as what the stream trimmed of it was
never the lake's; ``"failing_since_us"`` (written only when set) is when reads of a shard began to
fail, if they fail still (``status`` shows it); ``closed`` means the shard is closed *and* every
record in it is in a raw file.
A ddblake from before these keys ignores them (the parser reads only keys it knows). Every shard
ddblake has seen is listed (``seq`` null until a record is read), which is what lets gap detection
tell "trimmed before we read it" from "never existed". Shards read to their end are pruned once they
leave the stream and no listed shard names them as parent.

One document (not one file per shard) so that a checkpoint moves all shards at once: it is rewritten
whole with :meth:`Storage.write_atomic` right after the raw file it covers is written, so the lake
never holds a checkpoint ahead of its data.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final

from ddblake.errors import TerminalError
from ddblake.lake.storage import Storage

CHECKPOINT_VERSION: Final = 1


def checkpoint_path(table: str) -> str:
    """``state/capture/<table>/checkpoint.json`` relative to the lake root."""
    return f"state/capture/{table}/checkpoint.json"


@dataclass
class ShardPosition:
    """How far one shard has been read and written.

    Attributes:
        parent: the parent shard ID (kept so ordering and pruning work after the parent is trimmed).
        seq: the last sequence number written to a raw file; None before the first record.
        closed: the shard is closed and read to its end.
        failing_since_us: when reads of the shard began to fail (this machine's clock, µs) and have
            failed since; None while it reads. Set by a continuous capture at a transient failure,
            cleared by the next read that answers (:mod:`ddblake.capture.reading`), shown by ``status``.
        horizon: within the first capture's window (``Checkpoint.horizon_until_us``), the shard,
            with no record read yet, is (re)opened at ``TRIM_HORIZON``, since what the stream trimmed
            of it was never the lake's, where a shard known from its start is opened there and a trim
            is a gap. Cleared by the first record read, by its end, and when the window ends.
    """

    parent: str | None = None
    seq: str | None = None
    closed: bool = False
    horizon: bool = False
    failing_since_us: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``horizon`` and ``failing_since_us`` only when set: older checkpoints read
        the same)."""
        doc: dict[str, Any] = {"parent": self.parent, "seq": self.seq, "closed": self.closed}
        if self.horizon:
            doc["horizon"] = True
        if self.failing_since_us is not None:
            doc["failing_since_us"] = self.failing_since_us
        return doc


@dataclass
class Checkpoint:
    """Capture progress of one table: its stream and a position per shard."""

    table: str
    stream_arn: str | None = None
    shards: dict[str, ShardPosition] = field(default_factory=dict)
    last_file: str | None = None
    updated_us: int = 0
    horizon_until_us: int | None = None
    """The end (this machine's clock, µs) of the first capture's window, or None once it passed or
    for a checkpoint from before it existed (:mod:`ddblake.capture.horizon`)."""
    first_capture_us: int | None = None
    """When the first capture on this checkpoint began (this machine's clock, µs), kept for good: what
    the stream trimmed before it is not in the lake, so a load is good only if recent enough for it
    (:func:`first_capture_us`). None for a checkpoint written before this field existed."""

    def copy(self) -> Checkpoint:
        """A deep copy (the consumer keeps the in-memory state and the persisted one apart)."""
        return Checkpoint(
            table=self.table,
            stream_arn=self.stream_arn,
            shards={
                k: ShardPosition(v.parent, v.seq, v.closed, v.horizon, v.failing_since_us)
                for k, v in self.shards.items()
            },
            last_file=self.last_file,
            updated_us=self.updated_us,
            horizon_until_us=self.horizon_until_us,
            first_capture_us=self.first_capture_us,
        )

    def to_json(self) -> bytes:
        """The document, shards sorted so that rewrites of the same state are byte-identical."""
        doc: dict[str, Any] = {
            "v": CHECKPOINT_VERSION,
            "table": self.table,
            "stream_arn": self.stream_arn,
            "updated_us": self.updated_us,
        }
        if self.first_capture_us is not None:  # for good, once a first capture set it
            doc["first_capture_us"] = self.first_capture_us
        if self.horizon_until_us is not None:  # only while it lasts: afterwards it reads as before
            doc["horizon_until_us"] = self.horizon_until_us
        doc["last_file"] = self.last_file
        doc["shards"] = {k: self.shards[k].to_dict() for k in sorted(self.shards)}
        return (json.dumps(doc, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, table: str, where: str) -> Checkpoint:
        """Parse a stored checkpoint.

        Raises:
            TerminalError: the document is not a checkpoint of this table (the message names the file
                and what to do).
        """
        fix = f"; if the file is damaged, delete {where} to capture again from the stream's oldest record"
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("v") != CHECKPOINT_VERSION:
                raise ValueError(f"not a version {CHECKPOINT_VERSION} checkpoint")
            if doc.get("table") != table:
                raise ValueError(f"it belongs to table {doc.get('table')!r}, not {table!r}")
            shards = {}
            for shard_id, pos in dict(doc.get("shards") or {}).items():
                seq, parent, closed = pos.get("seq"), pos.get("parent"), pos.get("closed", False)
                if seq is not None and not (isinstance(seq, str) and seq.isdigit()):
                    raise ValueError(f"shard {shard_id} has sequence number {seq!r}")
                if parent is not None and not isinstance(parent, str):
                    raise ValueError(f"shard {shard_id} has parent {parent!r}")
                if not isinstance(closed, bool):  # "false" would read as closed and skip the shard
                    raise ValueError(f"shard {shard_id} has closed {closed!r}, not true or false")
                horizon = pos.get("horizon", False)
                if not isinstance(horizon, bool) or (horizon and seq is not None):
                    raise ValueError(f"shard {shard_id} has horizon {horizon!r} with seq {seq!r}")
                failing = pos.get("failing_since_us")
                if failing is not None and (isinstance(failing, bool) or not isinstance(failing, int)):
                    raise ValueError(f"shard {shard_id} has failing_since_us {failing!r}, not microseconds")
                shards[str(shard_id)] = ShardPosition(parent, seq, closed, horizon, failing)
            arn, until = doc.get("stream_arn"), doc.get("horizon_until_us")
            first = doc.get("first_capture_us")
            for key, value in (("horizon_until_us", until), ("first_capture_us", first)):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"it has {key} {value!r}, not a time in microseconds")
            return cls(
                table=table,
                stream_arn=arn if isinstance(arn, str) else None,
                shards=shards,
                last_file=doc.get("last_file"),
                updated_us=int(doc.get("updated_us") or 0),
                horizon_until_us=until,
                first_capture_us=first,
            )
        except (ValueError, TypeError, AttributeError) as e:
            raise TerminalError(f"capture checkpoint {where} is unreadable: {e}{fix}") from e


def load_checkpoint(storage: Storage, table: str) -> Checkpoint | None:
    """The table's checkpoint, or None before the first capture.

    Raises:
        TerminalError: the checkpoint exists but cannot be understood.
        TransientError: the lake could not be read.
    """
    path = checkpoint_path(table)
    data = storage.read_rewritten(path)
    if data is None:
        return None
    return Checkpoint.from_json(data, table=table, where=storage.shown(path))


def first_capture_us(storage: Storage, table: str) -> int | None:
    """When the first capture of ``table``'s current checkpoint began (µs, the capturing machine's
    clock), or None: no checkpoint, or one written before ddblake recorded it.

    Read only: nothing is written or moved. The stream the lake follows reaches back to about that
    start minus 24 hours, never further, so a load older than that start minus 23 hours (the load
    check's bound) could miss changes the lake never captured; the load side refuses one.

    Raises:
        TerminalError: the checkpoint exists but cannot be understood.
        TransientError: the lake could not be read.
    """
    checkpoint = load_checkpoint(storage, table)
    return None if checkpoint is None else checkpoint.first_capture_us


def save_checkpoint(storage: Storage, checkpoint: Checkpoint) -> None:
    """Write the checkpoint atomically (readers see the old or the new document, never a part).

    Raises:
        TransientError: the lake could not be written.
    """
    storage.write_atomic(checkpoint_path(checkpoint.table), checkpoint.to_json())


def check_own_checkpoint(
    storage: Storage, table: str, previous_us: int | None, attempted: Collection[int] = ()
) -> None:
    """Before a capture saves its checkpoint: the stored one must still be the one it read or last
    wrote (``previous_us``: its ``updated_us``; None when there was none), or one of the writes it
    attempted since (``attempted``: their ``updated_us``). A write can land and still report failure
    (an S3 PUT whose answer is lost, a folder fsync failing after the rename): the retry then finds
    its own document, not another capture's.

    Two captures of one table on one lake (overlapping cron runs, a second ``sync``, a re-bootstrap
    beside a running capture) would each write every change, and overwrite each other's positions:
    the one that finds the checkpoint changed under it stops, and says why.

    Raises:
        TerminalError: the checkpoint changed (names it, the table and what to do).
        TransientError: the lake could not be read or written.
    """
    found = load_checkpoint(storage, table)
    found_us = None if found is None else found.updated_us
    if found_us != previous_us and found_us not in attempted:
        where = storage.shown(checkpoint_path(table))
        raise TerminalError(
            f"capture {table}: its checkpoint {where} changed under this capture (another capture or "
            f"sync of table {table!r} on this lake wrote it, or a re-bootstrap moved it); this one "
            "stopped (what it wrote is kept, and apply drops repeated changes): run one capture or sync "
            "per table and lake"
        )
