"""Stream gaps: the changes a rerun cannot repair, found before capture writes past them.

Kept apart from the consumer's loop so the rules that decide "gap" (and the one message that says
what to do about one) sit in one place. The checks here need only the shard list and the checkpoint;
the consumer raises the same error when the stream itself refuses a position
(``TrimmedDataAccessException``) or a shard being read is gone.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from ddblake.capture.checkpoint import ShardPosition, checkpoint_path
from ddblake.capture.shards import Shard
from ddblake.errors import StreamGapError
from ddblake.lake.storage import Storage


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


def find_gap(shards: Sequence[Shard], arn: str, known: Mapping[str, ShardPosition]) -> str | None:
    """What the shard list shows lost against the checkpoint's shards ``known``, or None.

    A shard known and not read to its end that left the stream was trimmed with records unread; a
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
