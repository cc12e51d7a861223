"""Raw files that land in an hour apply has already folded (Firehose retries, event-time folders)."""

from __future__ import annotations

import os
import time
from typing import Any

from lake_helpers import TABLE, Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.changes.model import ChangeEvent
from ddblake.lake import maintain
from ddblake.lake.applied import records_prefix
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import open_catalog
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import TableStatus, table_status


def write_lines(lake: Lake, lines: list[bytes], clock_s: float) -> str:
    writer = RawLogWriter(
        lake.storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600, clock=lambda: clock_s
    )
    for line in lines:
        writer.add(line)
    written = writer.flush()
    assert written is not None
    return written.path


def write_at(lake: Lake, events: list[ChangeEvent], clock_s: float) -> str:
    return write_lines(lake, [ev.to_line() for ev in events], clock_s)


def hour_start_hours_ago(hours: int) -> float:
    """The first second of the hour ``hours`` before this one: files written up to 59 minutes after
    it share its folder (``time.time() - 10 * 3600`` + 60 s crossed into the next hour 1 run in 60)."""
    return float((int(time.time()) // 3600 - hours) * 3600)


def status(lake: Lake) -> TableStatus:
    return table_status(open_catalog(lake.config, lake.storage), "ddb", lake.storage, TABLE)


def days_folder(lake: Lake) -> str:
    """Where apply keeps the folded days' names files of the lake's namespace."""
    return f"{records_prefix(TABLE, lake.config.namespace)}days/"


def test_a_late_file_in_a_folded_hour_is_applied_once(lake: Lake) -> None:
    ten_hours_ago = hour_start_hours_ago(10)
    first = write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], ten_hours_ago)
    lake.apply()
    folded = status(lake).applied_before_hour
    hour = "/".join(first.split("/")[-5:-1])
    assert folded is not None and hour < folded  # the hour is folded
    assert status(lake).applied_files == 1  # counted though the record holds only the watermark

    late = write_at(lake, [event("INSERT", "b", 2, image={"v": {"N": "2"}})], ten_hours_ago + 60)
    assert late.split("/")[-5:-1] == first.split("/")[-5:-1]  # the same, folded, hour
    assert (status(lake).pending_files, status(lake).applied_files) == (1, 1)  # the late file only
    result = lake.apply()
    assert result.files == 1  # the day's other file, known by name, is not read again
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
    assert status(lake).pending_files == 0
    assert lake.apply().files == 0  # the day reopens and holds nothing new to read
    assert lake.dump() == before
    assert len(lake.history()) == 2
    assert lake.apply().files == 0


def test_a_bad_line_in_a_reopened_day_is_quarantined_once(lake: Lake) -> None:
    ten_hours_ago = hour_start_hours_ago(10)
    write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], ten_hours_ago)
    bad = write_lines(lake, [b"{not json", event("INSERT", "c", 3).to_line()], ten_hours_ago + 30)
    lake.apply()
    assert status(lake).quarantined == 1
    write_at(lake, [event("INSERT", "b", 2, image={"v": {"N": "2"}})], ten_hours_ago + 60)  # late
    assert lake.apply().files == 1
    assert sorted(lake.dump()) == ["a", "b", "c"]
    assert status(lake).quarantined == 1, f"{bad}'s bad line was quarantined again"


def test_a_day_whose_names_were_not_kept_is_read_again_without_duplicates(lake: Lake) -> None:
    """A record written before names were kept (or a names file lost): the day's files are read again."""
    ten_hours_ago = hour_start_hours_ago(10)
    write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], ten_hours_ago)
    lake.apply()
    kept = lake.storage.list_files(days_folder(lake))
    assert kept, "the folded day's names are kept"
    for path in kept:
        lake.storage.delete(path)
    write_at(lake, [event("INSERT", "b", 2, image={"v": {"N": "2"}})], ten_hours_ago + 60)
    assert lake.apply().files == 2  # the late file and the day's other one
    assert sorted(lake.dump()) == ["a", "b"]
    assert len(lake.history()) == 2  # nothing twice
    assert lake.apply().files == 0


def test_the_daily_sweep_deletes_dead_names_files_and_keeps_the_live_ones(lake: Lake) -> None:
    ten_hours_ago = hour_start_hours_ago(10)
    write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], ten_hours_ago)
    lake.apply()
    (first,) = lake.storage.list_files(days_folder(lake))
    write_at(lake, [event("INSERT", "b", 2, image={"v": {"N": "2"}})], ten_hours_ago + 60)
    lake.apply()  # the day is folded again under a new digest: the first names file is dead
    names = lake.storage.list_files(days_folder(lake))
    assert first in names and len(names) == 2

    def sweep() -> None:
        applier = Applier(ApplyConfig.build(table=TABLE, lake=lake.config, once=True), storage=lake.storage)
        for ident in (applier.history_id, applier.current_id):
            table = applier.catalog.load_table(ident)
            with table.transaction() as tx:  # the last sweep was two days ago: one is due
                tx.set_properties({maintain.SWEPT_PROPERTY: str(int((time.time() - 2 * 86_400) * 1000))})
        assert maintain.maintain(applier).failures == []

    sweep()
    assert lake.storage.list_files(days_folder(lake)) == names  # younger than 6 hours: kept
    old = time.time() - 7 * 3600
    for path in names:
        os.utime(lake.root / path, (old, old))
    sweep()
    assert lake.storage.list_files(days_folder(lake)) == [p for p in names if p != first]
    write_at(lake, [event("INSERT", "c", 3, image={"v": {"N": "3"}})], ten_hours_ago + 120)
    assert lake.apply().files == 1  # the live names file still spares the day's other files
    assert sorted(lake.dump()) == ["a", "b", "c"]


def test_a_backlog_into_a_day_folded_empty_is_applied_over_several_batches(lake: Lake) -> None:
    """A quiet day folded with no file, then late files more than one batch takes."""
    write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], hour_start_hours_ago(75))
    lake.apply()
    for i, name in enumerate("bcd"):  # a backlog delivered into a day folded empty 50 hours ago
        write_at(
            lake, [event("INSERT", name, 2 + i, image={"v": {"N": "1"}})], hour_start_hours_ago(50) + 60 * i
        )
    assert status(lake).pending_files == 3
    result = lake.apply(max_files=1)  # one file a batch: the day stays open between batches
    assert result.files == 3
    assert sorted(lake.dump()) == ["a", "b", "c", "d"]
    assert status(lake).pending_files == 0 and lake.apply().files == 0
    assert len(lake.history()) == 4


def test_the_sweep_of_one_namespace_keeps_the_names_files_another_namespace_needs(lake: Lake) -> None:
    """The same DynamoDB table applied in two namespaces of one lake: a day folded under a digest
    only the other namespace still holds keeps its names file through this namespace's sweep."""
    from ddblake.lake.catalog import LakeConfig

    other = LakeConfig.build(lake=str(lake.root), namespace="ns2")

    def apply_other() -> Any:
        return Applier(ApplyConfig.build(table=TABLE, lake=other, once=True), storage=lake.storage).run_once()

    ten_hours_ago = hour_start_hours_ago(10)
    write_at(lake, [event("INSERT", "a", 1, image={"v": {"N": "1"}})], ten_hours_ago)
    lake.apply()
    assert apply_other().files == 1
    write_at(lake, [event("INSERT", "b", 2, image={"v": {"N": "2"}})], ten_hours_ago + 60)
    lake.apply()  # this namespace folds the day again; ns2 still holds it under the first digest
    old = time.time() - 7 * 3600
    for path in lake.storage.list_files("state/"):
        os.utime(lake.root / path, (old, old))
    applier = Applier(ApplyConfig.build(table=TABLE, lake=lake.config, once=True), storage=lake.storage)
    for ident in (applier.history_id, applier.current_id):
        with applier.catalog.load_table(ident).transaction() as tx:  # the last sweep two days ago
            tx.set_properties({maintain.SWEPT_PROPERTY: str(int((time.time() - 2 * 86_400) * 1000))})
    assert maintain.maintain(applier).failures == []
    assert len(lake.storage.list_files(days_folder(lake))) == 1  # this namespace's dead one is gone
    (kept,) = lake.storage.list_files(f"{records_prefix(TABLE, 'ns2')}days/")
    write_at(lake, [event("INSERT", "c", 3, image={"v": {"N": "3"}})], ten_hours_ago + 120)
    assert apply_other().files == 2  # b and c only: the day's names spare a
    assert kept in lake.storage.list_files("state/")
