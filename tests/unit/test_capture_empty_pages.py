"""``capture --once`` reads past empty GetRecords pages.

GetRecords may answer with no records and a next iterator before a shard's records ("it might take
multiple calls to get to a portion of the shard that contains stream records", GetRecords reference).
A run that took one empty page for the end left a closed shard and its children unread on every
``--once`` run (the position reached through empty pages has no sequence number to checkpoint), until
the records were trimmed: a gap. The adapter here scripts what the service answers; everything else is
the real consumer, checkpoint and raw log.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import ONCE_CLOSED_EMPTY_PAGES, ONCE_OPEN_EMPTY_PAGES, StreamCapture
from ddblake.capture.shards import Shard
from ddblake.capture.streams import RecordBatch, TableStream
from ddblake.changes.model import ChangeEvent
from ddblake.lake.rawlog import iter_raw_files
from ddblake.lake.storage import Storage

TABLE = "empty-pages-table"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2024-01-01T00:00:00.000"


def record(n: int) -> dict[str, Any]:
    return {
        "eventID": f"e{n}",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            "Keys": {"pk": {"S": str(n)}},
            "NewImage": {"pk": {"S": str(n)}},
            "SequenceNumber": f"{n:021d}",
        },
    }


class Stream:
    """Closed parent P (``empties`` empty pages, then records 1 and 2, then its end) and open child
    C (``child_empties`` empty pages, then record 10, then empty pages for ever)."""

    where = "scripted stream"

    def __init__(self, empties: int, child_empties: int = 0) -> None:
        self.empties = empties
        self.child_empties = child_empties
        self.calls: list[str] = []

    def table_stream(self) -> TableStream:
        return TableStream(ARN, True, "NEW_AND_OLD_IMAGES")

    def shards(self, arn: str) -> list[Shard]:
        return [Shard("P", None, f"{1:021d}", f"{9:021d}"), Shard("C", "P", f"{10:021d}")]

    def shard_iterator(self, arn: str, shard_id: str, after: str | None, at_seq: str | None = None) -> str:
        return f"{shard_id}-0"

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        self.calls.append(iterator)
        shard, step = iterator.split("-")
        n = int(step)
        if shard == "P":
            if n < self.empties:
                return RecordBatch([], f"P-{n + 1}")
            return RecordBatch([record(1), record(2)], None)
        if n < self.child_empties:
            return RecordBatch([], f"C-{n + 1}")
        return RecordBatch([record(10)] if n == self.child_empties else [], f"C-{n + 1}")


def captured(lake: Path) -> list[str]:
    storage = Storage.from_uri(str(lake))
    return sorted(
        ChangeEvent.from_line(line).event_id for c in iter_raw_files(storage, TABLE) for line in c.lines
    )


def run_once(lake: Path, stream: Stream) -> None:
    config = CaptureConfig(table=TABLE, lake=str(lake), once=True, check_reach=False)
    StreamCapture(config, stream, Storage.from_uri(str(lake))).run()  # type: ignore[arg-type]


@pytest.mark.parametrize("empties", [1, 5, 40])
def test_a_closed_shard_is_read_past_empty_pages_to_its_end_then_its_child(
    tmp_path: Path, empties: int
) -> None:
    stream = Stream(empties, child_empties=ONCE_OPEN_EMPTY_PAGES - 1)
    run_once(tmp_path, stream)
    assert captured(tmp_path) == ["e1", "e10", "e2"]
    assert stream.calls.index("P-0") < stream.calls.index("C-0"), "the child after its parent's end"


def test_an_open_shard_counts_as_read_after_a_few_empty_pages_only(tmp_path: Path) -> None:
    stream = Stream(0, child_empties=0)
    run_once(tmp_path, stream)
    assert captured(tmp_path) == ["e1", "e10", "e2"]
    assert stream.calls.count("C-0") == 1
    assert len([c for c in stream.calls if c.startswith("C-")]) == 1 + ONCE_OPEN_EMPTY_PAGES


def test_a_closed_shard_that_never_ends_stops_the_run_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = Stream(10 * ONCE_CLOSED_EMPTY_PAGES)
    with caplog.at_level(logging.WARNING, logger="ddblake.capture"):
        run_once(tmp_path, stream)
    assert captured(tmp_path) == [] and len(stream.calls) == ONCE_CLOSED_EMPTY_PAGES
    assert "closed shard P gave 1000 empty pages without reaching its end" in caplog.text
