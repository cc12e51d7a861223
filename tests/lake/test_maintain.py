"""Table maintenance: snapshot expiry and history compaction change nothing the lake holds."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import TABLE, Lake, event
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation

from ddblake.errors import ConfigError, UsageError
from ddblake.lake import compact, maintain
from ddblake.lake.applied import PROPERTY
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.query import run_sql
from ddblake.lake.report import lake_status
from ddblake.lake.service import run_apply

HIST = "ddb.orders_table_changes"
CUR = "ddb.orders_table"
DAY = 86_400


def _s(v: str) -> dict[str, Any]:
    return {"S": v}


def _applier(lake: Lake, **knobs: Any) -> Applier:
    knobs.setdefault("keep_replaced_minutes", 0)  # these tests commit in a burst: expire at once
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=True, **knobs)
    return Applier(config, storage=lake.storage)


def _cycles(lake: Lake, count: int, *, days: int = 1) -> None:
    """``count`` apply cycles of one file each, spread over ``days`` event days."""
    for i in range(count):
        lake.write([event("MODIFY", f"k{i % 5}", (i % days) * DAY + i, image={"v": _s(str(i))})])
        lake.apply()


def _rows(table: Table) -> list[dict[str, Any]]:
    return sorted(table.scan().to_arrow().to_pylist(), key=repr)


def _data_files(table: Table) -> int:
    return len(list(table.scan().plan_files()))


def _plain_table(lake: Lake, commits: int) -> Table:
    catalog = lake.catalog()
    catalog.create_namespace_if_not_exists("ddb")
    table = catalog.create_table("ddb.plain", schema=pa.schema([("x", pa.int64())]))
    for i in range(commits):
        table.append(pa.table({"x": pa.array([i], pa.int64())}))
    return catalog.load_table("ddb.plain")


def _status(lake: Lake) -> tuple[Any, ...]:
    (s,) = lake_status(lake.catalog(), "ddb", lake.storage)
    return (s.rows, s.history_rows, s.applied_files, s.applied_before_hour, s.newest_event, s.quarantined)


def _age_files_and_make_the_sweep_due(lake: Lake) -> None:
    """Every file of the lake four days old, and both tables' daily sweep due."""
    old = time.time() - 4 * DAY
    for p in lake.root.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    for ident in (CUR, HIST):
        table = lake.catalog().load_table(ident)
        with table.transaction() as tx:
            tx.set_properties({maintain.SWEPT_PROPERTY: str(int((time.time() - 2 * DAY) * 1000))})


def _newest_first(table: Table) -> list[int]:
    snaps = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number), reverse=True)
    return [s.snapshot_id for s in snaps]


def test_expiry_keeps_the_newest_the_young_and_every_referenced_snapshot(lake: Lake) -> None:
    table = _plain_table(lake, 10)
    order = _newest_first(table)
    stamps = {s.snapshot_id: s.timestamp_ms for s in table.snapshots()}
    now = stamps[order[0]]

    def kept(gone: list[Any]) -> list[int]:
        return [i for i in order if i not in {s.snapshot_id for s in gone}]

    # All young: the count cap decides; all old: only the minimum stays.
    young = maintain.Policy(keep_replaced_ms=0, keep_ms=3_600_000, keep_snapshots=6, keep_min=2)
    assert kept(maintain.expirable(table, young, now)) == order[:6]
    old = maintain.Policy(keep_replaced_ms=0, keep_ms=1, keep_snapshots=6, keep_min=2)
    assert kept(maintain.expirable(table, old, now + 10_000)) == order[:2]
    # Under the cap the age decides: the four youngest stay (commits are milliseconds apart).
    mixed = maintain.Policy(
        keep_replaced_ms=0, keep_ms=now + 2 - stamps[order[3]], keep_snapshots=6, keep_min=1
    )
    assert kept(maintain.expirable(table, mixed, now + 1)) == order[:4]

    # A tag and a branch protect their snapshots; the current one is never expired.
    table.manage_snapshots().create_tag(order[7], "audit").create_branch(order[8], "side").commit()
    table = lake.catalog().load_table("ddb.plain")
    nothing_else = maintain.Policy(keep_replaced_ms=0, keep_ms=1, keep_snapshots=0, keep_min=0)
    gone = maintain.expire_snapshots(table, nothing_else, now_ms=now + 10_000, batch=1)
    assert {s.snapshot_id for s in gone} == set(order) - {order[0], order[7], order[8]}
    table = lake.catalog().load_table("ddb.plain")
    assert {s.snapshot_id for s in table.snapshots()} == {order[0], order[7], order[8]}
    assert table.current_snapshot().snapshot_id == order[0]
    assert table.scan().to_arrow().num_rows == 10
    assert int(table.properties[maintain.EXPIRED_PROPERTY]) == max(stamps[i] for i in order[1:7] + order[9:])
    assert table.properties["write.metadata.delete-after-commit.enabled"] == "true"


def test_expiry_waits_for_a_batch_and_both_limits_off_keep_everything(lake: Lake) -> None:
    table = _plain_table(lake, 6)
    now = max(s.timestamp_ms for s in table.snapshots()) + 10_000
    policy = maintain.Policy(keep_replaced_ms=0, keep_ms=1, keep_snapshots=3, keep_min=1)
    assert len(maintain.expirable(table, policy, now)) == 5
    assert maintain.expire_snapshots(table, policy, now_ms=now, batch=6) == []
    assert len(lake.catalog().load_table("ddb.plain").snapshots()) == 6
    assert (
        maintain.expirable(
            table, maintain.Policy(keep_replaced_ms=0, keep_ms=0, keep_snapshots=0, keep_min=0), now
        )
        == []
    )


def test_compaction_rewrites_small_files_into_one_per_day_with_the_same_rows(lake: Lake) -> None:
    _cycles(lake, 12, days=2)
    hist = lake.catalog().load_table(HIST)
    before, pointer, status = _rows(hist), hist.properties[PROPERTY], _status(lake)
    assert _data_files(hist) == 12

    done = compact.compact_small_files(hist, 4)
    assert done == compact.Compaction(partitions=2, files_removed=12, files_added=2, rows=12)
    hist = lake.catalog().load_table(HIST)
    assert _data_files(hist) == 2
    assert _rows(hist) == before  # every column of every row, none lost or duplicated
    snap = hist.current_snapshot()
    assert snap is not None and snap.summary is not None and snap.summary.operation == Operation.REPLACE
    assert hist.properties[PROPERTY] == pointer  # the applied-file record is untouched
    assert _status(lake) == status  # rows, history rows, applied files, newest event
    assert compact.compact_small_files(hist, 4) is None  # nothing due any more


def test_compaction_leaves_partitions_under_the_threshold_and_large_files_alone(lake: Lake) -> None:
    _cycles(lake, 9, days=3)  # three files per day
    hist = lake.catalog().load_table(HIST)
    assert compact.compact_small_files(hist, 3) is None
    assert compact.compact_small_files(hist, 2, small_bytes=1) is None  # every file counts as large
    assert compact.compact_small_files(hist, 2) == compact.Compaction(3, 9, 3, 9)


def test_compaction_merges_a_buckets_small_current_state_files_sorted_by_hash(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.lake import commits, files

    with monkeypatch.context() as m:  # no open file and no merge: each insert batch makes a file
        m.setattr(files, "open_file_bytes", lambda: 1)
        m.setattr(commits, "overlap_limit", lambda base: 1 << 60)
        for n in range(5):
            lake.write([event("INSERT", f"k{n}-{i}", n + 1, image={"v": _s(str(i))}) for i in range(20)])
            lake.apply(buckets=1, compact_files=0)
    cur = lake.catalog().load_table(CUR)
    before, dump, pointer = _rows(cur), lake.dump(), cur.properties[PROPERTY]
    assert _data_files(cur) == 5

    report = maintain.maintain(_applier(lake, buckets=1, compact_files=3))
    assert report.failures == []
    assert report.compaction_current == compact.Compaction(1, 5, 1, 100)
    cur = lake.catalog().load_table(CUR)
    assert _data_files(cur) == 1 and _rows(cur) == before and lake.dump() == dump
    assert cur.properties[PROPERTY] == pointer
    hashes = cur.scan(selected_fields=("_ddb_hash",)).to_arrow().column(0).to_pylist()
    assert hashes == sorted(hashes)

    # Apply goes on from the compacted file: an update and a delete land on the right rows.
    lake.write([event("MODIFY", "k2-7", 9, image={"v": _s("new")}), event("REMOVE", "k4-0", 9)])
    lake.apply(buckets=1)
    dump["k2-7"] = {"pk": _s("k2-7"), "v": _s("new")}
    del dump["k4-0"]
    assert lake.dump() == dump


def test_apply_after_compaction_and_expiry_still_applies_exactly_once(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cycles(lake, 10)
    redelivered = [event("INSERT", "late", 3, image={"v": _s("late")})]
    lake.write(redelivered)
    lake.apply()
    # A crash between the two commits: the history has the batch, the current state does not.
    lake.write([event("REMOVE", "k1", 50), event("INSERT", "n", 51, image={"v": _s("n")})])

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(Applier, "_commit_current", crash)
    with pytest.raises(RuntimeError):
        lake.apply()
    monkeypatch.undo()

    report = maintain.maintain(
        _applier(lake, keep_snapshots=2, keep_min_snapshots=1, compact_files=4), batch=1
    )
    assert report.failures == [] and report.compaction is not None
    assert report.expired[HIST] >= 9 and report.expired[CUR] >= 9

    lake.write(redelivered + [event("MODIFY", "n", 52, image={"v": _s("n2")})])  # a repeat and a new one
    lake.apply()
    ids = [r["event_id"] for r in lake.history()]
    assert len(ids) == 10 + 1 + 2 + 1 == len(set(ids))
    dump = lake.dump()
    assert "k1" not in dump and dump["n"]["v"] == _s("n2") and dump["late"]["v"] == _s("late")

    tables = [lake.catalog().load_table(n) for n in (HIST, CUR)]
    before = [(t.current_snapshot().snapshot_id, _rows(t)) for t in tables]
    assert lake.apply().files == 0  # the rerun finds everything applied
    tables = [lake.catalog().load_table(n) for n in (HIST, CUR)]
    assert [(t.current_snapshot().snapshot_id, _rows(t)) for t in tables] == before


def test_a_commit_during_compaction_wins_and_nothing_is_lost(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cycles(lake, 6)
    real = compact.replace_files

    def racing(*args: Any, **kwargs: Any) -> Any:
        # Another apply commits after compaction read its files, before compaction commits.
        lake.write([event("INSERT", "racer", 99, image={"v": _s("r")})])
        other = _applier(lake)
        other.run_once()
        return real(*args, **kwargs)

    monkeypatch.setattr(compact, "replace_files", racing)
    hist = lake.catalog().load_table(HIST)
    with pytest.raises(CommitFailedException):
        compact.compact_small_files(hist, 3)
    report = maintain.maintain(_applier(lake, compact_files=3))  # a pass logs it and goes on
    monkeypatch.undo()
    assert report.failures == [f"{HIST}: CommitFailedException"]

    hist = lake.catalog().load_table(HIST)
    ids = sorted(r["event_id"] for r in _rows(hist))
    assert len(ids) == 8 == len(set(ids))  # six cycles and two racers, each once
    assert compact.compact_small_files(hist, 3) is not None  # the next pass does it
    assert sorted(r["event_id"] for r in _rows(lake.catalog().load_table(HIST))) == ids


def _reachable(table: Table, snap: Any) -> set[str]:
    paths = {snap.manifest_list}
    for manifest in snap.manifests(table.io):
        paths.add(manifest.manifest_path)
        paths.update(e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io))
    return paths


def _on_disk(path: str) -> bool:
    return Path(path.removeprefix("file://")).exists()


def test_expiry_deletes_the_files_only_expired_snapshots_reach_and_keeps_the_rest(lake: Lake) -> None:
    _cycles(lake, 8)  # every cycle rewrites a bucket of the current state: a dead copy each time
    before = {ident: lake.catalog().load_table(ident) for ident in (CUR, HIST)}
    reach = {ident: {s.snapshot_id: _reachable(t, s) for s in t.snapshots()} for ident, t in before.items()}
    contents = {ident: {sid: _rows_at(t, sid) for sid in reach[ident]} for ident, t in before.items()}
    assert all(_on_disk(p) for r in reach.values() for paths in r.values() for p in paths)

    report = maintain.maintain(
        _applier(lake, keep_snapshots=3, keep_min_snapshots=0, compact_files=0), batch=1
    )

    expected_gone = 0
    for ident in (CUR, HIST):
        table = lake.catalog().load_table(ident)
        kept = {s.snapshot_id for s in table.snapshots()}
        assert len(kept) == 3 and report.expired[ident] == len(reach[ident]) - 3
        # The applied-file records the expired commits named are gone; the kept ones stay.
        pointers = {s.snapshot_id: s.summary[PROPERTY] for s in before[ident].snapshots()}
        named_by_kept = {pointers[sid] for sid in kept} | {table.properties[PROPERTY]}
        dead_pointers = {p for sid, p in pointers.items() if sid not in kept and p} - named_by_kept
        assert dead_pointers and not any((lake.root / p).exists() for p in dead_pointers)
        assert all((lake.root / p).exists() for p in named_by_kept if p)
        expected_gone += len(dead_pointers)
        live = set().union(*(reach[ident][sid] for sid in kept))
        dead = set().union(*(p for sid, p in reach[ident].items() if sid not in kept)) - live
        assert dead and not any(_on_disk(p) for p in dead)
        assert all(_on_disk(p) for p in live)
        for sid in kept:  # every kept snapshot still reads, with the rows it had
            assert _rows_at(table, sid) == contents[ident][sid]
        expected_gone += len(dead)
        # Nothing else is left behind: the table's data folder holds exactly the live data files.
        data_dir = Path(table.location().removeprefix("file://")) / "data"
        on_disk = {str(p) for p in data_dir.rglob("*.parquet")}
        assert on_disk == {p.removeprefix("file://") for p in live if p.endswith(".parquet")}
    assert report.cleanup.files == expected_gone and report.cleanup.failed == 0
    assert report.cleanup.data_bytes > 0
    # The tables go on: another cycle applies exactly once on top of the cleaned tables.
    lake.write([event("MODIFY", "k9", 99, image={"v": _s("last")})])
    lake.apply()
    assert {"pk": "k9", "v": "last"} in [
        {"pk": r["pk"], "v": r["v"]} for r in _rows(lake.catalog().load_table(CUR))
    ]


def test_the_daily_sweep_deletes_what_a_crashed_apply_left_and_nothing_referenced(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.lake import commits

    for i in range(3):
        lake.write([event("MODIFY", f"k{i}", i, image={"v": _s(str(i))})])
        lake.apply()
    lake.write([event("MODIFY", "k0", 10, image={"v": _s("after the crash")})])

    class Crash(Exception):
        pass

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash  # the bucket files and the applied-file record are written: the commit never is

    monkeypatch.setattr(commits, "replace_files", crash)
    files_before_crash = {p for p in lake.root.rglob("*") if p.is_file()}
    with pytest.raises(Crash):
        lake.apply()
    monkeypatch.undo()
    written_by_crash = {p for p in lake.root.rglob("*") if p.is_file()} - files_before_crash
    lake.apply()  # the rerun writes its own files; the crashed run's stay behind, unreferenced
    expected = lake.dump()
    # The history commit landed before the crash; the current state's files and record are orphans.
    left_by_crash = {p for p in written_by_crash if str(p) not in _referenced(lake)}
    assert any(p.suffix == ".parquet" for p in left_by_crash)
    assert any("state/apply" in str(p) for p in left_by_crash)

    # Files younger than the age limit are never swept (a commit may be on its way) ...
    report = maintain.maintain(_applier(lake, keep_snapshots=0, keep_hours=0), batch=1)
    assert report.swept.files == 0 and all(p.exists() for p in left_by_crash)
    # ... and a day later, once they are old enough, they are.
    _age_files_and_make_the_sweep_due(lake)
    report = maintain.maintain(_applier(lake, keep_snapshots=0, keep_hours=0), batch=1)
    assert report.failures == []
    assert report.swept.files >= len(left_by_crash) and not any(p.exists() for p in left_by_crash)
    assert all(Path(p).exists() for p in _referenced(lake))
    assert lake.dump() == expected
    lake.write([event("MODIFY", "k1", 20, image={"v": _s("on")})])
    lake.apply()
    assert lake.dump()["k1"]["v"] == _s("on")


def test_a_file_that_cannot_be_deleted_is_counted_and_expiry_still_lands(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(4):  # one key: each cycle replaces the file holding it
        lake.write([event("MODIFY", "k0", i, image={"v": _s(str(i))})])
        lake.apply()
    from pyiceberg.io.pyarrow import PyArrowFileIO

    real = PyArrowFileIO.delete
    refused: list[str] = []

    def delete(self: Any, location: Any) -> None:
        if str(location).endswith(".parquet") and not refused:
            refused.append(str(location))
            raise PermissionError("access denied")
        real(self, location)

    monkeypatch.setattr(PyArrowFileIO, "delete", delete)
    with caplog.at_level(logging.WARNING):
        report = maintain.maintain(_applier(lake, keep_snapshots=1, keep_min_snapshots=0), batch=1)
    assert report.failures == [] and report.cleanup.failed == 1 and report.cleanup.files > 0
    assert len(lake.catalog().load_table(CUR).snapshots()) == 1
    assert _on_disk(refused[0]) and "left for an orphan-file sweep" in caplog.text


def _referenced(lake: Lake) -> set[str]:
    """Every file the two tables use, as local paths: what no sweep may ever delete."""
    out: set[str] = set()
    for ident in (CUR, HIST):
        table = lake.catalog().load_table(ident)
        for snap in table.snapshots():
            out |= _reachable(table, snap)
            if snap.summary[PROPERTY]:
                out.add(str(lake.root / snap.summary[PROPERTY]))
        out.add(table.metadata_location)
        out.update(e.metadata_file for e in table.metadata.metadata_log)
        out.add(str(lake.root / table.properties[PROPERTY]))
    return {p.removeprefix("file://") for p in out}


def _rows_at(table: Table, snapshot_id: int) -> list[dict[str, Any]]:
    return sorted(table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist(), key=repr)


def test_query_as_of_reads_kept_snapshots_and_refuses_expired_ones(lake: Lake) -> None:
    _cycles(lake, 6)
    cur = lake.catalog().load_table(CUR)
    snaps = sorted(cur.snapshots(), key=lambda s: s.timestamp_ms)
    at = dt.datetime.fromtimestamp(snaps[-2].timestamp_ms / 1000, tz=dt.UTC)
    expected = run_sql(lake.catalog(), "ddb", "SELECT pk, v FROM orders_table ORDER BY pk", as_of=at)
    maintain.maintain(_applier(lake, keep_snapshots=2, keep_min_snapshots=0), batch=1)
    assert len(lake.catalog().load_table(CUR).snapshots()) == 2
    assert run_sql(lake.catalog(), "ddb", "SELECT pk, v FROM orders_table ORDER BY pk", as_of=at) == expected
    before = dt.datetime.fromtimestamp(snaps[0].timestamp_ms / 1000, tz=dt.UTC)
    with pytest.raises(UsageError, match="older than what table ddb.orders_table keeps"):
        run_sql(lake.catalog(), "ddb", "SELECT * FROM orders_table", as_of=before)


def test_run_apply_maintains_at_the_end_of_once_and_survives_failures(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(maintain, "EXPIRE_BATCH", 1)
    config = ApplyConfig.build(
        table=TABLE,
        lake=lake.config,
        once=True,
        keep_snapshots=3,
        keep_min_snapshots=1,
        compact_files=4,
        keep_replaced_minutes=0,
    )
    for i in range(6):
        lake.write([event("INSERT", f"k{i}", i, image={"v": _s("x")})])
        run_apply(config)
    hist = lake.catalog().load_table(HIST)
    assert len(hist.snapshots()) <= 3 and len(lake.catalog().load_table(CUR).snapshots()) <= 3
    assert _data_files(hist) <= 4

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise CommitFailedException("someone else committed")

    def quoting(*args: Any, **kwargs: Any) -> Any:  # pyarrow quotes the value it failed on
        raise pa.ArrowInvalid("Could not convert 'alice@example.com' with type str")

    monkeypatch.setattr(maintain, "compact_small_files", quoting)
    monkeypatch.setattr(maintain, "expire_snapshots", broken)
    lake.write([event("INSERT", "z", 9, image={"v": _s("z")})])
    with caplog.at_level(logging.WARNING, logger="ddblake.lake.maintain"):
        result = run_apply(config)
    assert result.files == 1 and "z" in lake.dump()
    assert f"table {HIST}: maintenance skipped" in caplog.text
    assert f"table {CUR}: maintenance skipped" in caplog.text
    assert "ArrowInvalid: Could not convert '…'" in caplog.text and "alice" not in caplog.text


def test_the_polling_loop_maintains_every_so_many_commits_or_seconds(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[int] = []
    monkeypatch.setattr(maintain, "maintain", lambda applier: passes.append(1) or maintain.Report())
    now = [0.0]
    m = maintain.Maintainer(_applier(lake), every_commits=3, every_seconds=60, clock=lambda: now[0])
    assert [m.after_cycle(c) is not None for c in (True, False, True, True)] == [False, False, False, True]
    now[0] = 100.0
    assert m.after_cycle(False) is None  # nothing committed since: nothing to do however long
    assert m.after_cycle(True) is not None  # one commit, but the time is up
    assert len(passes) == 2

    def fail(applier: Any) -> Any:
        raise OSError("catalog unreachable")

    monkeypatch.setattr(maintain, "maintain", fail)
    assert m.run() is None  # logged, never raised


def test_run_apply_polling_maintains_and_a_failing_pass_does_not_stop_it(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    calls: list[str] = []

    def failing(applier: Applier) -> Any:
        calls.append(applier.config.table)
        stop.set()  # the loop ends after this cycle, whatever maintenance did
        raise OSError("storage unreachable")

    monkeypatch.setattr(maintain, "maintain", failing)
    monkeypatch.setattr(maintain, "Maintainer", functools.partial(maintain.Maintainer, every_commits=1))
    lake.write([event("INSERT", "a", 1, image={"v": _s("1")})])
    config = ApplyConfig.build(table=TABLE, lake=lake.config, once=False, poll_seconds=0.01)
    failsafe = threading.Timer(60, stop.set)  # only if the loop never maintained: the test then fails
    failsafe.start()
    try:
        result = run_apply(config, stop=stop)
    finally:
        failsafe.cancel()
    assert calls == [TABLE]
    assert result.files == 1 and lake.dump() == {"a": {"pk": _s("a"), "v": _s("1")}}


def test_settings_come_from_argument_then_environment_then_table_then_default(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cycles(lake, 1)
    hist = lake.catalog().load_table(HIST)
    with hist.transaction() as tx:
        tx.set_properties({maintain.MAX_PROPERTY: "77", maintain.AGE_PROPERTY: "5000"})
    hist = lake.catalog().load_table(HIST)
    monkeypatch.setenv("DDBLAKE_KEEP_SNAPSHOTS", "40")
    monkeypatch.setenv("DDBLAKE_COMPACT_FILES", "0")
    policy = maintain.Policy.for_table(
        hist, ApplyConfig.build(table=TABLE, lake=lake.config, keep_min_snapshots=3)
    )
    assert policy == maintain.Policy(keep_ms=5000, keep_snapshots=40, keep_min=3, compact_files=0)
    config = ApplyConfig.build(table=TABLE, lake=lake.config, keep_snapshots=9)
    assert maintain.Policy.for_table(hist, config).keep_snapshots == 9
    monkeypatch.delenv("DDBLAKE_KEEP_SNAPSHOTS")
    assert (
        maintain.Policy.for_table(hist, ApplyConfig.build(table=TABLE, lake=lake.config)).keep_snapshots == 77
    )
    assert maintain.Policy.for_table(lake.catalog().load_table(CUR), config) == maintain.Policy(
        keep_snapshots=9, compact_files=0
    )
    monkeypatch.setenv("DDBLAKE_KEEP_HOURS", "soon")
    with pytest.raises(ConfigError, match="DDBLAKE_KEEP_HOURS"):
        ApplyConfig.build(table=TABLE, lake=lake.config)
    for bad in ("nan", "inf", "-1"):  # nan and inf passed, then failed every maintenance pass
        monkeypatch.setenv("DDBLAKE_KEEP_HOURS", bad)
        with pytest.raises(ConfigError, match=f"DDBLAKE_KEEP_HOURS must be zero .*, got {bad}"):
            ApplyConfig.build(table=TABLE, lake=lake.config)
    monkeypatch.setenv("DDBLAKE_KEEP_HOURS", "1e-9")  # a limit, however short: not 0 (off)
    assert maintain.Policy.for_table(hist, ApplyConfig.build(table=TABLE, lake=lake.config)).keep_ms == 1


def test_the_sweep_of_one_namespace_leaves_another_namespaces_records_alone(lake: Lake) -> None:
    """The same DynamoDB table applied under two namespaces of one lake: each keeps its own
    applied-file records, which the other's daily sweep must not take (its apply would stop)."""
    from ddblake.lake.catalog import LakeConfig

    other = LakeConfig.build(lake=str(lake.root), namespace="ns2")

    def apply_other() -> Any:
        return Applier(ApplyConfig.build(table=TABLE, lake=other, once=True), storage=lake.storage).run_once()

    for i in range(3):
        lake.write([event("INSERT", f"k{i}", i, image={"v": _s(str(i))})])
        lake.apply()
        apply_other()
    _age_files_and_make_the_sweep_due(lake)
    report = maintain.maintain(_applier(lake), batch=1)  # the sweep is due: every file is old
    assert report.failures == []
    lake.write([event("MODIFY", "k1", 9, image={"v": _s("y")})])
    assert apply_other().files == 1
    rows = run_sql(lake.catalog(), "ns2", "select pk, v from orders_table order by pk")[1]
    assert rows == [("k0", "0"), ("k1", "y"), ("k2", "2")]


def test_a_snapshot_replaced_minutes_ago_keeps_its_files_for_readers_that_planned_them(lake: Lake) -> None:
    """Expiry goes by count, and a busy sync makes 100 commits in under a minute: a reader (query,
    an outside engine, a concurrent apply) that planned the files of the snapshot current when it
    started must still find them, so a snapshot replaced less than the grace ago is kept."""
    _cycles(lake, 6)
    table = lake.catalog().load_table(HIST)
    reader = [
        task.file.file_path for task in table.scan(snapshot_id=table.snapshots()[1].snapshot_id).plan_files()
    ]
    now = int(time.time() * 1000)
    burst = maintain.Policy(keep_ms=1, keep_snapshots=1, keep_min=1)  # the default grace: 5 minutes
    assert maintain.expirable(table, burst, now) == []
    assert (
        maintain.maintain(
            _applier(lake, keep_snapshots=1, keep_min_snapshots=0, keep_replaced_minutes=5), batch=1
        ).failures
        == []
    )
    assert all(Path(path.removeprefix("file://")).exists() for path in reader)
    later = now + 6 * 60_000  # once the grace has passed, the count rules alone decide
    assert len(maintain.expirable(table, burst, later)) == len(table.snapshots()) - 1


def test_expiry_removes_the_schemas_only_expired_snapshots_read_with(lake: Lake) -> None:
    """A table whose batches add columns gains a schema per batch, kept in every metadata file;
    once the snapshots that read with one expire, it goes too, and the kept ones still read."""
    for i in range(6):  # each batch a new attribute: a schema each
        lake.write([event("INSERT", f"k{i}", i, image={f"attr_{i}": _s(str(i))})])
        lake.apply()
    cur = lake.catalog().load_table(CUR)
    assert len(cur.metadata.schemas) >= 6
    snaps = sorted(cur.snapshots(), key=lambda s: s.timestamp_ms)
    at = dt.datetime.fromtimestamp(snaps[-2].timestamp_ms / 1000, tz=dt.UTC)
    sql = "SELECT * FROM orders_table ORDER BY pk"
    expected_then, expected_now = (run_sql(lake.catalog(), "ddb", sql, as_of=t) for t in (at, None))
    maintain.maintain(_applier(lake, keep_snapshots=2, keep_min_snapshots=0), batch=1)
    cur = lake.catalog().load_table(CUR)
    kept = {s.schema_id for s in cur.snapshots()} | {cur.metadata.current_schema_id}
    assert {s.schema_id for s in cur.metadata.schemas} == kept
    assert len(cur.metadata.schemas) <= 2
    assert run_sql(lake.catalog(), "ddb", sql, as_of=at) == expected_then  # a kept snapshot, its own schema
    assert run_sql(lake.catalog(), "ddb", sql) == expected_now
    # Apply goes on: a new column gets a schema ID no snapshot used, and every item is there.
    lake.write([event("INSERT", "k9", 9, image={"attr_9": _s("9")})])
    lake.apply()
    cur = lake.catalog().load_table(CUR)
    assert "attr_9" in cur.schema().column_names
    assert sorted(lake.dump()) == ["k0", "k1", "k2", "k3", "k4", "k5", "k9"]
    assert lake.dump()["k3"] == {"pk": {"S": "k3"}, "attr_3": _s("3")}


def test_no_schema_goes_while_a_kept_snapshot_does_not_say_which_it_reads_with(lake: Lake) -> None:
    for i in range(3):
        lake.write([event("INSERT", f"k{i}", i, image={f"attr_{i}": _s(str(i))})])
        lake.apply()
    cur = lake.catalog().load_table(CUR)
    newest = cur.current_snapshot()
    assert newest is not None
    assert maintain.unused_schemas(cur, {s.snapshot_id for s in cur.snapshots()} - {newest.snapshot_id})
    blind = newest.model_copy(update={"schema_id": None})
    metadata = cur.metadata.model_copy(
        update={
            "snapshots": [blind if s.snapshot_id == newest.snapshot_id else s for s in cur.metadata.snapshots]
        }
    )
    unknown = Table(cur.name(), metadata, cur.metadata_location, cur.io, cur.catalog)
    assert (
        maintain.unused_schemas(unknown, {s.snapshot_id for s in cur.snapshots()} - {newest.snapshot_id})
        == []
    )


def test_a_compaction_that_fails_every_pass_leaves_expiry_running(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Compaction picks the same files each pass, so a failure of its own (a file pyarrow cannot
    convert) comes back every time; it stopped expiry and the daily sweep with it, for good, and
    every later commit slowed as the snapshots piled up."""
    _cycles(lake, 12)

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise pa.ArrowInvalid("Could not convert 'alice@example.com' with type str")

    monkeypatch.setattr(maintain, "compact_small_files", failing)
    with caplog.at_level(logging.WARNING, logger="ddblake.lake.maintain"):
        report = maintain.maintain(_applier(lake, keep_snapshots=3, keep_min_snapshots=1), batch=1)
    assert report.failures == [f"{HIST}: ArrowInvalid", f"{CUR}: ArrowInvalid"]
    assert f"table {HIST}: compaction skipped, tried again later: ArrowInvalid" in caplog.text
    assert "alice" not in caplog.text
    assert report.expired[HIST] > 0 and report.expired[CUR] > 0
    assert len(lake.catalog().load_table(HIST).snapshots()) == 3
    assert len(lake.catalog().load_table(CUR).snapshots()) == 3


def test_the_daily_sweep_deletes_the_temp_files_of_killed_writes(lake: Lake) -> None:
    """A local write killed between its temp file and the rename (SIGKILL, a power cut) left the
    temp file for good: listings skip it, so nothing else removed it (up to a raw file's size)."""
    _cycles(lake, 2)
    hour = next(p for p in (lake.root / "raw" / TABLE).rglob("*.gz")).parent
    killed = [
        hour / f".tmp-{'a' * 32}",
        lake.root / "state" / "capture" / TABLE / f".tmp-{'b' * 32}",
    ]
    (lake.root / "state" / "capture" / TABLE).mkdir(parents=True)
    for path in killed:
        path.write_bytes(b"part of a raw file")
    _age_files_and_make_the_sweep_due(lake)
    live = hour / f".tmp-{'c' * 32}"  # a write under way now
    live.write_bytes(b"being written")
    alike = hour / ".tmp-orders-20240101T000000Z-x.gz"  # a table named .tmp-orders: not a temp file
    alike.write_bytes(b"")
    os.utime(alike, (time.time() - 4 * DAY,) * 2)
    rows_before = lake.dump()

    maintain.maintain(_applier(lake))
    assert not any(path.exists() for path in killed)
    assert live.exists() and alike.exists()
    assert lake.dump() == rows_before
