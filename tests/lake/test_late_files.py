"""Raw files that land in an hour apply has already folded (Firehose retries, event-time folders)."""

from __future__ import annotations

import time

from lake_helpers import TABLE, Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.changes.model import ChangeEvent
from ddblake.lake.catalog import open_catalog
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import TableStatus, table_status


def write_at(lake: Lake, events: list[ChangeEvent], clock_s: float) -> str:
    writer = RawLogWriter(
        lake.storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600, clock=lambda: clock_s
    )
    for ev in events:
        writer.add(ev.to_line())
    written = writer.flush()
    assert written is not None
    return written.path


def hour_start_hours_ago(hours: int) -> float:
    """The first second of the hour ``hours`` before this one: files written up to 59 minutes after
    it share its folder (``time.time() - 10 * 3600`` + 60 s crossed into the next hour 1 run in 60)."""
    return float((int(time.time()) // 3600 - hours) * 3600)


def status(lake: Lake) -> TableStatus:
    return table_status(open_catalog(lake.config, lake.storage), "ddb", lake.storage, TABLE)


def test_a_late_file_in_a_folded_hour_is_applied_once(lake: Lake) -> None:
    ten_hours_ago = hour_start_hours_ago(10)
    first = write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], ten_hours_ago)
    lake.apply()
    folded = status(lake).applied_before_hour
    hour = "/".join(first.split("/")[-5:-1])
    assert folded is not None and hour < folded  # the hour is folded

    late = write_at(lake, [event("INSERT", "b", 2, image={"v": {"N": "2"}})], ten_hours_ago + 60)
    assert late.split("/")[-5:-1] == first.split("/")[-5:-1]  # the same, folded, hour
    assert status(lake).pending_files == 2  # the late file, and its day's other one to read again
    result = lake.apply()
    assert result.files == 2  # the late file, and the day's other file read again
    assert sorted(lake.dump()) == ["a", "b"]
    assert len(lake.history()) == 2  # nothing twice
    assert status(lake).pending_files == 0
    assert lake.apply().files == 0  # folded again under the new digest


def test_a_file_deleted_from_a_folded_day_changes_nothing(lake: Lake) -> None:
    ten_hours_ago = hour_start_hours_ago(10)
    first = write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], ten_hours_ago)
    write_at(lake, [event("MODIFY", "a", 2, image={"v": {"N": "2"}})], ten_hours_ago + 60)
    lake.apply()
    before = lake.dump()
    lake.storage.delete(first)  # a lifecycle rule expiring the raw log
    lake.apply()
    assert lake.dump() == before
    assert len(lake.history()) == 2
    assert lake.apply().files == 0
