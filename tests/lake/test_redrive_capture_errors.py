"""``ddblake redrive`` brings back what ``ddblake capture`` quarantined, as capture would have written it.

Capture's quarantine files (``errors/<table>/YYYY/MM/DD/HH/…gz``, JSON lines of ``{"reason",
"source", "table", "shard_id", "seq", "ingested_us", "record"}``) are written here by capture itself
(a real :class:`StreamCapture` on a small stream whose transform refuses a record, as an older
ddblake would) or by the function capture writes them with; redrive, apply and status then run as
an operator would run them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import pytest
from lake_helpers import TABLE, Lake

from ddblake.capture import consumer
from ddblake.capture.config import CaptureConfig
from ddblake.capture.consumer import StreamCapture
from ddblake.capture.records import quarantine_line, record_to_line
from ddblake.capture.redrive import redrive
from ddblake.capture.shards import Shard
from ddblake.capture.streams import RecordBatch, TableStream
from ddblake.cli.main import main
from ddblake.errors import BadRecordError
from ddblake.lake.rawlog import ERRORS_ROOT, RawLogWriter
from ddblake.lake.report import capture_error_files
from ddblake.lake.storage import Storage

pytestmark = pytest.mark.e2e

ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2025-11-28T00:00:00.000"
SHARD = "shardId-00001"
INGESTED_US = 1_764_316_805_000_000  # 2025-11-28T08:00:05Z


def change(n: int, pk: str, image: dict[str, Any], *, name: str = "INSERT") -> dict[str, Any]:
    """A record as boto3's ``get_records`` gives it: a datetime, binary as bytes."""
    return {
        "eventID": f"ev-{n}",
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "ApproximateCreationDateTime": dt.datetime(2025, 11, 28, 8, 0, n, 123_456, tzinfo=dt.UTC),
            "Keys": {"pk": {"S": pk}},
            "NewImage": {"pk": {"S": pk}, **image},
            "SequenceNumber": f"{n:021d}",
            "SizeBytes": 40,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


EXACT = {
    "n": {"N": "12345678901234567890.123456789"},
    "bin": {"B": b"\x00\x01\xff"},
    "bs": {"BS": [b"\x00", b"\x01"]},
    "ss": {"SS": ["x", "y"]},
    "empty": {"M": {}},
}


def quarantine_file(
    lake: Lake, records: list[dict[str, Any]], reason: str = "unknown to this version"
) -> str:
    """A quarantine file as capture writes it (its writer, its line function)."""
    writer = RawLogWriter(lake.storage, TABLE, root=ERRORS_ROOT)
    for record in records:
        writer.add(quarantine_line(record, reason, TABLE, SHARD, INGESTED_US))
    written = writer.flush()
    assert written is not None
    return written.path


def test_quarantined_records_come_back_as_the_lines_capture_would_have_written(lake: Lake) -> None:
    records = [change(1, "a", EXACT), change(2, "b", {"n": {"N": "-0.5"}})]
    source = quarantine_file(lake, records)
    assert capture_error_files(lake.storage, TABLE) == 1

    stats = redrive(lake.storage, TABLE)

    assert (stats.objects, stats.records, stats.redriven, stats.files, stats.refused, stats.moved) == (
        1, 2, 2, 1, 0, 1,
    )  # fmt: skip
    (raw,) = lake.storage.list_files(f"raw/{TABLE}")
    lines = gzip.decompress(lake.storage.read(raw) or b"").splitlines(keepends=True)
    assert lines == [record_to_line(r, table=TABLE, ingested_us=INGESTED_US) for r in records]
    assert lake.storage.list_files(f"errors/{TABLE}") == [
        f"errors/{TABLE}/redriven/{source.split('/', 2)[2]}"
    ]
    assert capture_error_files(lake.storage, TABLE) == 0, "status no longer counts it"
    assert lake.apply().events == 2
    assert lake.dump()["a"] == {
        "pk": {"S": "a"},
        "n": {"N": "12345678901234567890.123456789"},
        "bin": {"B": "AAH/"},
        "bs": {"BS": ["AA==", "AQ=="]},
        "ss": {"SS": ["x", "y"]},
        "empty": {"M": {}},
    }


def test_records_refused_again_stay_counted_and_a_rerun_writes_nothing_twice(lake: Lake) -> None:
    bogus = change(3, "c", {}, name="BOGUS")
    source = quarantine_file(lake, [change(1, "a", EXACT), bogus], reason="unknown eventName BOGUS")
    other = json.loads(quarantine_line(change(4, "d", {}), "r", "someone-elses-table", SHARD, INGESTED_US))
    foreign = f"errors/{TABLE}/2025/11/28/08/foreign.gz"
    lake.storage.write_atomic(foreign, gzip.compress(json.dumps(other).encode() + b"\n"))

    stats = redrive(lake.storage, TABLE)

    assert (stats.records, stats.redriven, stats.refused, stats.moved) == (3, 1, 2, 0)
    assert "unknown eventName BOGUS; expected INSERT, MODIFY or REMOVE" in stats.reasons
    assert f"quarantined by a capture of table someone-elses-table, not {TABLE}" in stats.reasons
    assert sorted(lake.storage.list_files(f"errors/{TABLE}")) == sorted([source, foreign]), "left as they are"
    assert capture_error_files(lake.storage, TABLE) == 2
    assert lake.apply().events == 1

    again = redrive(lake.storage, TABLE)
    assert (again.files, again.redriven, again.already, again.refused) == (0, 0, 1, 2)
    assert lake.apply().events == 0


class OneShard:
    """A stream of one open shard, behind the adapter's interface."""

    where = "scripted stream"

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def table_stream(self) -> TableStream:
        return TableStream(ARN, True, "NEW_AND_OLD_IMAGES")

    def shards(self, arn: str) -> list[Shard]:
        return [Shard(SHARD, None, f"{1:021d}", None)]

    def shard_iterator(
        self, arn: str, shard_id: str, after_seq: str | None, *, at_seq: str | None = None
    ) -> str:
        return "0" if after_seq is None else str(int(after_seq))

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        page = self.records[int(iterator) :]
        return RecordBatch(page, str(len(self.records)))


def test_what_an_older_capture_quarantined_reaches_the_tables_through_the_command(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole way: capture sets a record aside (this "older" transform refuses sets), the
    operator upgrades and runs ``ddblake redrive``, then apply."""
    stream = OneShard([change(1, "a", {"n": {"N": "1"}}), change(2, "b", EXACT)])
    real = consumer.record_to_line

    def older(record: Any, *, table: str, ingested_us: int) -> bytes:
        if "ss" in record["dynamodb"]["NewImage"]:
            raise BadRecordError("NewImage: SS is not supported")
        return real(record, table=table, ingested_us=ingested_us)

    monkeypatch.setattr(consumer, "record_to_line", older)
    config = CaptureConfig(table=TABLE, lake=str(lake.root), once=True, check_reach=False)
    assert StreamCapture(config, stream, lake.storage).run().quarantined == 1  # type: ignore[arg-type]
    monkeypatch.setattr(consumer, "record_to_line", real)
    assert lake.apply().events == 1
    assert capture_error_files(lake.storage, TABLE) == 1

    assert main(["redrive", "--table", TABLE, "--lake", str(lake.root)]) == 0

    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"redrive {TABLE}: 1 record(s) in 1 error object(s): 1 back in the raw log (1 new file(s)); "
        f"1 object(s) done, moved to errors/{TABLE}/redriven/; run apply to take them in"
    )
    assert capture_error_files(lake.storage, TABLE) == 0
    assert lake.apply().events == 1
    assert sorted(lake.dump()) == ["a", "b"]
    assert lake.dump()["b"]["bin"] == {"B": "AAH/"}


class Crash(BaseException):
    """A kill at one instant (not an error redrive could catch)."""


@pytest.mark.parametrize("at", ["copy", "delete"])
def test_a_crash_between_the_raw_write_and_the_move_then_a_rerun_writes_nothing_twice_and_moves_the_file(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    records = [change(1, "a", EXACT), change(2, "b", {"n": {"N": "2"}})]
    source = quarantine_file(lake, records)
    moved_to = f"errors/{TABLE}/redriven/{source.split('/', 2)[2]}"
    storage = lake.storage
    real_write, real_delete = Storage.write_atomic, Storage.delete

    def write_atomic(self: Storage, rel: str, data: bytes) -> None:
        if at == "copy" and rel == moved_to:
            raise Crash
        real_write(self, rel, data)

    def delete(self: Storage, rel: str) -> None:
        if at == "delete" and rel == source:
            raise Crash
        real_delete(self, rel)

    monkeypatch.setattr(Storage, "write_atomic", write_atomic)  # a frozen dataclass: on the class
    monkeypatch.setattr(Storage, "delete", delete)
    with pytest.raises(Crash):
        redrive(storage, TABLE)
    monkeypatch.undo()
    (raw,) = storage.list_files(f"raw/{TABLE}")  # the raw file was written before the crash
    assert source in storage.list_files(f"errors/{TABLE}"), "not moved yet"

    again = redrive(storage, TABLE)

    assert (again.files, again.redriven, again.already, again.refused, again.moved) == (0, 0, 2, 0, 1)
    assert storage.list_files(f"raw/{TABLE}") == [raw], "nothing written twice"
    assert storage.list_files(f"errors/{TABLE}") == [moved_to]
    assert capture_error_files(storage, TABLE) == 0
    assert lake.apply().events == 2
    assert sorted(lake.dump()) == ["a", "b"]
    assert redrive(storage, TABLE).records == 0, "a third run finds nothing left"


def test_the_capture_path_leaves_apply_unreadable_firehose_and_redriven_files_as_they_are(lake: Lake) -> None:
    """Each holds lines capture's quarantine path would take back if it read them; only the file
    under a year folder is capture's."""
    line = quarantine_line(change(5, "elsewhere", {}), "r", TABLE, SHARD, INGESTED_US)
    others = {
        f"errors/{TABLE}/apply/2025/11/28/08/apply.gz": gzip.compress(line),
        f"errors/{TABLE}/unreadable/2025/11/28/08/unreadable.gz": gzip.compress(line),
        f"errors/{TABLE}/processing-failed/2025/11/28/08/firehose.gz": gzip.compress(line),
        f"errors/{TABLE}/redriven/2025/11/28/08/done.gz": gzip.compress(line),
    }
    for path, data in others.items():
        lake.storage.write_atomic(path, data)
    source = quarantine_file(lake, [change(1, "a", {})])

    stats = redrive(lake.storage, TABLE)

    assert (stats.redriven, stats.moved) == (1, 1), "capture's own file is taken back and moved"
    assert stats.refused == 1, "Firehose's path reads its file: the line is no error record of it"
    for path, data in others.items():
        assert lake.storage.read(path) == data, f"{path} left as it was"
    assert sorted(lake.storage.list_files(f"errors/{TABLE}")) == sorted(
        [*others, f"errors/{TABLE}/redriven/{source.split('/', 2)[2]}"]
    )
    assert lake.apply().events == 1
    assert sorted(lake.dump()) == ["a"], "no record of the other files reached the tables"
