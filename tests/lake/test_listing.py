"""Continuous apply lists recent hour folders between full listings of the raw log, and skips an
idle poll's checks: its cost per poll stops growing with the log, and no file is ever left out."""

from __future__ import annotations

import shutil
import time

from lake_helpers import TABLE, Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.listing import RawListing, hour_folder
from ddblake.lake.rawlog import RawLogWriter, list_raw_files

DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _write_at(lake: Lake, epoch_s: float, pk: str, t: int) -> str:
    """One raw file in the hour folder of ``epoch_s`` (a writer whose clock says so)."""
    writer = RawLogWriter(
        lake.storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600, clock=lambda: epoch_s
    )
    writer.add(event("INSERT", pk, t).to_line())
    written = writer.flush()
    assert written is not None
    return written.path


def test_between_full_listings_recent_files_are_seen_at_once_and_late_ones_at_the_next(lake: Lake) -> None:
    now = time.time()
    old = [_write_at(lake, now - 2 * DAY + i, f"old{i}", i) for i in range(3)]
    clock = Clock()
    listing = RawListing(lake.storage, TABLE, full_every=300, incremental_from=1, clock=clock)
    assert listing.files() == old and listing.full_listings == 1

    recent = _write_at(lake, now, "new", 10)  # the current hour: listed at the next poll
    late = _write_at(lake, now - DAY, "late", 11)  # an older hour folder (a redrive, say)
    clock.now += 10
    assert listing.files() == [*old, recent], "recent hours listed, the late file not yet"
    assert listing.full_listings == 1

    clock.now += 300
    assert listing.files() == list_raw_files(lake.storage, TABLE) == sorted([*old, recent, late])
    assert listing.full_listings == 2


def test_a_small_log_is_listed_whole_every_time(lake: Lake) -> None:
    now = time.time()
    _write_at(lake, now - DAY, "a", 1)
    listing = RawListing(lake.storage, TABLE, clock=Clock())  # 5,000 files before it lists by hour
    listing.files()
    late = _write_at(lake, now - 2 * DAY, "late", 2)
    assert late in listing.files() and listing.full_listings == 2


def test_hour_folders_are_the_writers_layout(lake: Lake) -> None:
    when = 1_764_979_200.0 + 3 * 3600 + 59  # 2025-12-06 03:00:59 UTC
    path = _write_at(lake, when, "a", 1)
    assert hour_folder(TABLE, when) == f"raw/{TABLE}/2025/12/06/03"
    assert path.startswith(hour_folder(TABLE, when) + "/")


def test_continuous_apply_applies_recent_files_at_once_and_late_ones_after_the_full_listing(
    lake: Lake,
) -> None:
    now = time.time()
    for i in range(3):
        _write_at(lake, now - 2 * DAY + i, f"old{i}", i)
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=False)
    applier = Applier(config, storage=lake.storage)
    clock = Clock()
    applier.listing = RawListing(lake.storage, TABLE, incremental_from=1, clock=clock)
    assert applier.run_once().events == 3
    assert applier.run_once().events == 0, "an idle poll"

    _write_at(lake, now, "new", 10)
    _write_at(lake, now - DAY, "late", 11)
    clock.now += 1
    assert applier.run_once().events == 1
    assert sorted(lake.dump()) == ["new", "old0", "old1", "old2"]
    clock.now += 300
    assert applier.run_once().events == 1, "the late file, at the next full listing"
    assert sorted(lake.dump()) == ["late", "new", "old0", "old1", "old2"]
    assert applier.listing.full_listings == 2


def test_an_idle_poll_still_sees_another_applier_commit_and_new_files(lake: Lake) -> None:
    """The skip holds only while the listing and both tables' applied-file records are unchanged."""
    lake.write([event("INSERT", "a", 1)])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=False)
    mine = Applier(config, storage=lake.storage)
    assert mine.run_once().events == 1
    assert mine.run_once().events == 0

    lake.write([event("INSERT", "b", 2)])
    assert lake.apply().events == 1, "another apply took it"
    assert mine.run_once().events == 0, "and this one finds it done, not to do again"
    lake.write([event("INSERT", "c", 3)])
    assert mine.run_once().events == 1
    assert sorted(lake.dump()) == ["a", "b", "c"]
    assert len(lake.history()) == 3


def test_an_idle_poll_sees_tables_rebuilt_under_the_same_listing(lake: Lake) -> None:
    """Dropped tables (a rebuild from the raw log) have no applied-file record: all is pending again."""
    lake.write([event("INSERT", "a", 1)])
    lake.write([event("INSERT", "b", 2)])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=False)
    mine = Applier(config, storage=lake.storage)
    assert mine.run_once().events == 2
    assert mine.run_once().events == 0  # idle: the next poll may skip its checks
    catalog = lake.catalog()
    for name in ("orders_table", "orders_table_changes"):  # as docs/lake.md says to rebuild one
        catalog.drop_table(f"ddb.{name}")
        shutil.rmtree(lake.root / "warehouse" / "ddb" / name)
    assert mine.run_once().events == 2, "the same listing, other records: applied again"
    assert sorted(lake.dump()) == ["a", "b"]
