"""The shard tree of a DynamoDB stream, and the order in which its shards may be read.

DynamoDB splits and rolls shards; a change to one item can sit in a parent shard and the next change
to the same item in a child. Reading a child before its parent is finished would write the newer
change first, so a child is read only once its parent is closed *and read to its end* (or was trimmed
before ddblake ever knew it, which gap detection handles).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shard:
    """One shard as DescribeStream reports it.

    Attributes:
        shard_id: the shard's ID.
        parent_id: the parent shard's ID, None for a root.
        start_seq: the first sequence number it may hold (decimal string).
        end_seq: the last one, set once the shard is closed (no more records will arrive).
    """

    shard_id: str
    parent_id: str | None = None
    start_seq: str | None = None
    end_seq: str | None = None

    @property
    def closed(self) -> bool:
        """Whether DynamoDB closed the shard (it still may hold unread records)."""
        return self.end_seq is not None

    @classmethod
    def from_api(cls, shard: Mapping[str, Any]) -> Shard:
        """From one element of ``DescribeStream``'s ``Shards``."""
        seq_range = shard.get("SequenceNumberRange") or {}
        return cls(
            shard_id=str(shard["ShardId"]),
            parent_id=shard.get("ParentShardId") or None,
            start_seq=seq_range.get("StartingSequenceNumber"),
            end_seq=seq_range.get("EndingSequenceNumber"),
        )


def seq_key(seq: str | None) -> int:
    """Sequence numbers compare as integers (their widths differ between services)."""
    return int(seq) if seq and seq.isdigit() else -1


def order_parents_first(shards: Iterable[Shard]) -> list[Shard]:
    """Every shard once, each parent before its children.

    Shards are sorted by generation (distance from a root), then by starting sequence number and ID,
    so a parent always precedes its children and siblings keep DynamoDB's order. A shard whose parent
    is not in the list (trimmed, or never listed) is a root.
    """
    by_id = {s.shard_id: s for s in shards}
    return sorted(by_id.values(), key=lambda s: (_depth(s, by_id), seq_key(s.start_seq), s.shard_id))


def _depth(shard: Shard, by_id: Mapping[str, Shard]) -> int:
    depth, seen = 0, {shard.shard_id}
    while shard.parent_id and shard.parent_id in by_id and shard.parent_id not in seen:
        shard = by_id[shard.parent_id]
        seen.add(shard.shard_id)
        depth += 1
    return depth


def readable_shards(
    shards: Sequence[Shard], finished: Collection[str], known: Collection[str]
) -> list[Shard]:
    """The shards that may be read now, parents first.

    Args:
        shards: the stream's current shards.
        finished: IDs of shards read to their end (closed and drained).
        known: IDs of every shard the checkpoint knows, finished or not.

    Returns:
        Unfinished shards whose parent is None, finished, or neither in the stream nor known (it was
        trimmed before ddblake started on this stream: nothing to wait for).
    """
    in_stream = {s.shard_id for s in shards}
    ready = []
    for shard in order_parents_first(shards):
        if shard.shard_id in finished:
            continue
        parent = shard.parent_id
        if parent is None or parent in finished or (parent not in in_stream and parent not in known):
            ready.append(shard)
    return ready
