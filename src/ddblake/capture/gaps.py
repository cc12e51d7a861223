"""Stream gaps: the changes a rerun cannot repair, found before capture writes past them.

Kept apart from the consumer's loop so the rules that decide "gap" (and the one message that says
what to do about one) sit in one place. The checks here need only the shard list and the checkpoint;
the consumer raises the same error when the stream itself refuses a position
(``TrimmedDataAccessException``) or a shard being read is gone, after the first capture's window;
within it a shard that left the stream is dropped instead (:func:`drop_vanished`).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable, Mapping, Sequence

from ddblake.capture.checkpoint import Checkpoint, ShardPosition, checkpoint_path
from ddblake.capture.horizon import in_horizon_window
from ddblake.capture.shards import Shard
from ddblake.errors import StreamGapError
from ddblake.lake.storage import Storage

log = logging.getLogger(__name__)


def gap_error(storage: Storage, table: str, what: str) -> StreamGapError:
    """The gap error for ``what`` (the shard or stream and the missing range), with both ways out:
    re-bootstrap, or delete the checkpoint to accept the gap."""
    where = storage.shown(checkpoint_path(table))
    lake = shlex.quote(storage.shown())
    return StreamGapError(
        f"stream gap for table {table!r}: {what}; the lake would miss those changes. Re-bootstrap "
        f"the table from a full load: ddblake sync --table {table} --lake {lake} "
        "--rebootstrap; to accept the gap and capture from the stream's oldest record instead, "
        f"delete {where}"
    )


def trimmed_gap(shard: Shard, pos: ShardPosition) -> str:
    """What a ``TrimmedDataAccessException`` lost, for :func:`gap_error`."""
    where = f"after sequence number {pos.seq}" if pos.seq else f"from its start ({shard.start_seq})"
    return (
        f"records of shard {shard.shard_id} {where} are past the stream's 24-hour retention "
        "(TrimmedDataAccessException)"
    )


def gone_gap(sid: str, checkpoint: Checkpoint) -> str:
    """What a shard found gone while read (``ResourceNotFoundException``) lost, for :func:`gap_error`."""
    return (
        f"shard {sid} of stream {checkpoint.stream_arn} is gone (ResourceNotFoundException: trimmed, or "
        "the stream removed 24 hours after its table was deleted) before it was read to its end (read up to "
        f"{checkpoint.shards[sid].seq or 'nothing'})"
    )


def find_gap(shards: Sequence[Shard], arn: str, known: Mapping[str, ShardPosition]) -> str | None:
    """What the shard list shows lost against the checkpoint's shards ``known``, or None.

    A shard known and not read to its end that left the stream (after the first capture's window:
    within it, :func:`drop_vanished_shards` has dropped it) was trimmed with records unread; a
    new shard whose parent is neither listed nor known, on a stream read before, had a whole
    generation of shards come and go unread. On first sight of a stream (nothing known) shards
    whose parents were trimmed are simply roots.
    """
    in_stream = {s.shard_id for s in shards}
    for sid, pos in sorted(known.items()):
        if not pos.closed and sid not in in_stream:
            read = f"read up to sequence number {pos.seq}" if pos.seq else "never read"
            return (
                f"shard {sid} of stream {arn} ({read}) is no longer in the stream (trimmed after 24 h); "
                f"its records after {pos.seq or 'its start'} are lost"
            )
    if not known:
        return None
    for shard in shards:
        parent = shard.parent_id
        if shard.shard_id not in known and parent and parent not in in_stream and parent not in known:
            return (
                f"shard {parent} of stream {arn}, parent of shard {shard.shard_id}, was trimmed before "
                "ddblake read it; all of its records are lost"
            )
    return None


def drop_vanished(checkpoint: Checkpoint, shard_ids: Iterable[str], now_us: int) -> bool:
    """Within the first capture's window, take shards that left the stream as finished; True if so.

    What a shard held when it left was trimmed, and a trim within the window drops only records older
    than the lake's load (:mod:`ddblake.capture.horizon`): none of it is owed, so reporting a gap
    would stop capture (and sync) for nothing, as when a first capture retried minutes later finds an
    old shard it never read gone. The shard is marked closed rather than deleted, so that its ID stays
    a known, finished parent: its children are read from their start (or ``TRIM_HORIZON``, within
    the window, if that is trimmed too), and it is pruned like any finished shard once no listed shard
    names it. After the window, False: the caller reports the gap.
    """
    if not in_horizon_window(checkpoint, now_us):
        return False
    for sid in shard_ids:
        pos = checkpoint.shards[sid]
        pos.closed, pos.horizon = True, False
        log.info(
            "capture %s: shard %s left the stream (read up to %s) within the first capture's window: "
            "what it held predates the lake's load; dropped",
            checkpoint.table,
            sid,
            pos.seq or "nothing",
        )
    return True


def drop_vanished_shards(checkpoint: Checkpoint, shards: Sequence[Shard], now_us: int) -> bool:
    """:func:`drop_vanished` for every shard the checkpoint knows, unfinished, not in ``shards``.

    Run before :func:`find_gap`, so that within the window its first case finds nothing.
    """
    in_stream = {s.shard_id for s in shards}
    gone = [sid for sid, pos in checkpoint.shards.items() if not pos.closed and sid not in in_stream]
    return bool(gone) and drop_vanished(checkpoint, gone, now_us)
