"""A shard that closes while the table is idle is recorded at once, not only with the next file.

DynamoDB rolls an idle table's shards over every few hours, with no record to write. Were the
closure kept in memory only, a kill (OOM, SIGKILL) after a quiet day would leave the fully read
shard recorded as open; once the stream dropped it (24 h), the rerun would report a gap that is not
one and ask for a re-bootstrap. DynamoDB Local never closes a shard on demand, so the stream here is
a small scripted one behind the adapter's interface; the capture loop, raw log and checkpoint are
ddblake's own.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from ddblake.capture import consumer
from ddblake.capture.checkpoint import Checkpoint, load_checkpoint
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import StreamCapture
from ddblake.capture.shards import Shard
from ddblake.capture.streams import RecordBatch, TableStream
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.functional

TABLE = "idle-table"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2026-11-28T00:00:00.000"
PARENT, CHILD = "shardId-00001-parent", "shardId-00002-child"
MAX_POLLS = 500  # a bound on the loop's polls, so that the test ends (and fails) without the fix


def _record(n: int) -> dict[str, Any]:
    return {
        "eventID": f"ev-{n}",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "ApproximateCreationDateTime": dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
            "Keys": {"pk": {"S": f"k{n}"}},
            "NewImage": {"pk": {"S": f"k{n}"}},
            "SequenceNumber": f"{n:021d}",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


class RollingStream:
    """Two records in the parent; once they are in a raw file, the parent closes and a child opens."""

    where = "scripted stream"

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.records = [_record(1), _record(2)]
        self.closed = False  # the parent
        self.written = False  # a raw file holds the parent's records
        self.polls = 0

    def table_stream(self) -> TableStream:
        return TableStream(ARN, True, "NEW_AND_OLD_IMAGES")

    def shards(self, arn: str) -> list[Shard]:
        if not self.closed:
            return [Shard(PARENT, None, f"{1:021d}", None)]
        return [Shard(PARENT, None, f"{1:021d}", f"{2:021d}"), Shard(CHILD, PARENT, f"{3:021d}", None)]

    def shard_iterator(
        self, arn: str, shard_id: str, after_seq: str | None, *, at_seq: str | None = None
    ) -> str:
        return f"{shard_id}|{after_seq or ''}"

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        self.polls += 1
        if self.polls > MAX_POLLS:
            self.stop.set()
        shard_id, after = iterator.split("|")
        if shard_id == CHILD:
            return RecordBatch([], iterator)
        if self.written:
            self.closed = True  # the roll-over: no new record, and the parent ends
        new = [r for r in self.records if not after or int(r["dynamodb"]["SequenceNumber"]) > int(after)]
        last = new[-1]["dynamodb"]["SequenceNumber"] if new else after
        return RecordBatch(new, None if self.closed and not new else f"{PARENT}|{last}")


def test_a_shard_closed_while_idle_is_checkpointed_before_any_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage.from_uri(str(tmp_path))
    stop = threading.Event()
    stream = RollingStream(stop)
    saved: list[tuple[bool, bool]] = []  # (the parent closed in the saved checkpoint, stop already set)
    save = consumer.save_checkpoint

    def recording(storage: Storage, checkpoint: Checkpoint) -> None:
        save(storage, checkpoint)
        parent = checkpoint.shards.get(PARENT)
        saved.append((parent is not None and parent.closed, stop.is_set()))
        if parent is not None and parent.closed:
            stop.set()  # the closure is on disk: what a kill from now on leaves is enough

    monkeypatch.setattr(consumer, "save_checkpoint", recording)

    def on_file(path: str) -> None:
        stream.written = True

    fast = {"buffer_seconds": 0.01, "poll_seconds": 0.01, "refresh_seconds": 0.01}
    config = CaptureConfig(table=TABLE, lake=str(tmp_path), once=False, check_reach=False, **fast)
    StreamCapture(config, stream, storage, stop=stop, on_file=on_file).run()  # type: ignore[arg-type]
    assert stream.written and stream.closed
    assert (True, False) in saved, f"the closure was saved only when stopping: {saved}"
    on_disk = load_checkpoint(storage, TABLE)
    assert on_disk is not None and on_disk.shards[PARENT].closed
