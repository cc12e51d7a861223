"""A scripted stream behind :class:`StreamsAdapter`'s interface, for what DynamoDB Local cannot show.

DynamoDB Local neither closes shards on demand nor trims after 24 hours, so the capture tests of
child shards, trimming and races use this: shards are ``id -> (parent, start, end | None, records)``
and an iterator is ``"<shard>|<index of the next record>"``. The capture loop, raw log and checkpoint
under test are ddblake's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ddblake.capture.shards import Shard
from ddblake.capture.streams import DataTrimmed, RecordBatch, TableStream

TABLE = "scripted-table"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2026-11-28T00:00:00.000"


def seq(n: int) -> str:
    """Sequence number ``n`` as the stream spells it."""
    return f"{n:021d}"


def record(n: int, when: dt.datetime | None = None) -> dict[str, Any]:
    """An INSERT with sequence number ``n``, stamped ``when`` (a fixed day by default)."""
    return {
        "eventID": f"ev-{n}",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "ApproximateCreationDateTime": when or dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
            "Keys": {"pk": {"S": f"k{n}"}},
            "NewImage": {"pk": {"S": f"k{n}"}},
            "SequenceNumber": seq(n),
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


class ScriptedStream:
    """Shards with a trim horizon: records numbered below ``trimmed_below`` are gone, as after 24 h.

    ``TRIM_HORIZON`` starts at the oldest record left; an older position is
    ``TrimmedDataAccessException`` (:class:`DataTrimmed`). ``opened`` records every
    GetShardIterator as ``(shard, after_seq, at_seq)``; both None is TRIM_HORIZON.
    """

    where = "scripted stream"

    def __init__(self, trimmed_below: int = 0) -> None:
        self.trimmed_below = trimmed_below
        self.shard_defs: dict[str, tuple[str | None, int, int | None, list[dict[str, Any]]]] = {}
        self.opened: list[tuple[str, str | None, str | None]] = []
        self.page = 1000

    def table_stream(self) -> TableStream:
        return TableStream(ARN, True, "NEW_AND_OLD_IMAGES")

    def shards(self, arn: str) -> list[Shard]:
        return [
            Shard(sid, parent, seq(start), None if end is None else seq(end))
            for sid, (parent, start, end, _) in self.shard_defs.items()
        ]

    def _numbers(self, shard_id: str) -> list[int]:
        return [int(r["dynamodb"]["SequenceNumber"]) for r in self.shard_defs[shard_id][3]]

    def shard_iterator(
        self, arn: str, shard_id: str, after_seq: str | None, *, at_seq: str | None = None
    ) -> str:
        self.opened.append((shard_id, after_seq, at_seq))
        numbers = self._numbers(shard_id)
        if after_seq is None and at_seq is None:  # TRIM_HORIZON: the oldest record left
            return f"{shard_id}|{sum(1 for n in numbers if n < self.trimmed_below)}"
        want = int(after_seq) + 1 if after_seq is not None else int(at_seq or 0)
        if want < self.trimmed_below and any(want <= n < self.trimmed_below for n in numbers):
            raise DataTrimmed(f"shard {shard_id}: trimmed")
        return f"{shard_id}|{sum(1 for n in numbers if n < want)}"

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        sid, at = iterator.split("|")
        pos = int(at)
        _, _, end, records = self.shard_defs[sid]
        page = records[pos : pos + min(limit, self.page)]
        pos += len(page)
        return RecordBatch(page, None if end is not None and pos >= len(records) else f"{sid}|{pos}")
