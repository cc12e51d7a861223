"""The shape of apply's commits: a partitioned current state, one snapshot per rewrite, lake paths.

* The current-state table is created with its bucket partition spec in one commit, and a table an
  older apply left without one (stopped between its two commits) is given it, in one commit.
* Rewriting the whole current state (a type change Iceberg cannot promote) or whole files (a
  layout apply did not write) is one snapshot: ``query --as-of`` never finds an empty table
  between a delete and an append.
* A local lake whose path holds a space, ``#``, ``%`` or non-ASCII keeps its Iceberg warehouse
  inside the lake folder; a lake an older ddblake percent-encoded keeps working.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import TABLE, Lake, event, reads_during
from pyiceberg.conversions import from_bytes
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table
from pyiceberg.types import IntegerType

from ddblake.errors import ConfigError
from ddblake.lake import apply as apply_module
from ddblake.lake import commits, current
from ddblake.lake.applied import PROPERTY
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.cleanup import sweep_orphans
from ddblake.lake.query import run_sql
from ddblake.lake.storage import Storage, local_uri

CUR = "ddb.orders_table"


def _table(lake: Lake) -> Table:
    table: Table = lake.catalog().load_table(CUR)
    return table


def _operations(table: Table) -> list[str]:
    """The operation of each snapshot of main, oldest first."""
    out = []
    for entry in table.history():
        snap = table.snapshot_by_id(entry.snapshot_id)
        assert snap is not None and snap.summary is not None
        out.append(snap.summary.operation.value)
    return out


def _count_as_of(lake: Lake, ms: int) -> int:
    when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    _, rows = run_sql(lake.catalog(), "ddb", "select count(*) from orders_table", as_of=when)
    return int(rows[0][0])


def _counts_at_every_snapshot(lake: Lake) -> list[int]:
    """What ``query --as-of`` answers at the commit time of each snapshot of the current state."""
    return [_count_as_of(lake, entry.timestamp_ms) for entry in _table(lake).history()]


def _assert_bucket_files(table: Table) -> None:
    """Every live data file is in the table's bucket spec and holds rows of its bucket only."""
    spec = table.spec()
    assert [f.name for f in spec.fields] == ["_ddb_bucket"]
    field_id = table.schema().find_field("_ddb_bucket").field_id
    tasks = list(table.scan().plan_files())
    assert tasks
    for task in tasks:
        file = task.file
        assert file.spec_id == spec.spec_id and file.partition[0] is not None
        low = from_bytes(IntegerType(), file.lower_bounds[field_id])
        high = from_bytes(IntegerType(), file.upper_bounds[field_id])
        assert low == high == file.partition[0]


def _crash_creating(monkeypatch: pytest.MonkeyPatch) -> None:
    """An apply that creates the current state the way ddblake did before, and is killed between
    its two commits: the table exists, without its partition spec."""

    def two_step_stopped(self: Applier, arrow_schema: Any) -> Table:
        self.catalog.create_table_if_not_exists(
            self.current_id,
            schema=current.iceberg_compatible(arrow_schema),
            properties={**self._owner_properties(), current.BUCKETS_PROPERTY: str(self.config.buckets)},
        )
        raise KeyboardInterrupt("killed between create_table and update_spec")

    monkeypatch.setattr(Applier, "_create_current", two_step_stopped)


def _unpartitioned_lake(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lake hit by the crash before the repair existed: batches applied to an unpartitioned table."""
    lake.write([event("INSERT", k, 1, image={"v": {"N": str(i)}}) for i, k in enumerate("abcdefgh")])
    with monkeypatch.context() as m:
        _crash_creating(m)
        with pytest.raises(KeyboardInterrupt):
            lake.apply()
    with monkeypatch.context() as m:
        m.setattr(apply_module, "partitioned", lambda table: table)  # the older apply: no repair
        lake.apply()
        lake.write([event("MODIFY", "a", 2, image={"v": {"N": "10"}}), event("INSERT", "i", 2)])
        result = lake.apply()
    assert result.upserts == 2
    table = _table(lake)
    assert table.spec().is_unpartitioned()
    # Even here (the whole-file fallback of rewrite_buckets) each batch is one snapshot.
    assert _operations(table) == ["append", "overwrite"]
    assert _counts_at_every_snapshot(lake) == [8, 9]


# -- 1. the partition spec ---------------------------------------------------------------------


def test_the_current_state_is_created_partitioned_in_its_first_metadata_file(lake: Lake) -> None:
    lake.write([event("INSERT", k, 1, image={"v": {"N": "1"}}) for k in "abc"])
    lake.apply()
    table = _table(lake)
    first = table.metadata.metadata_log[0].metadata_file if table.metadata.metadata_log else None
    assert first is not None
    created = FromInputFile.table_metadata(table.io.new_input(first))
    assert [f.name for f in created.spec().fields] == ["_ddb_bucket"]
    assert created.snapshots == []  # the create commit itself: the table never existed without it
    _assert_bucket_files(table)


def test_the_table_comes_with_its_spec_even_when_the_first_batch_only_deletes(lake: Lake) -> None:
    lake.write([event("REMOVE", "a", 1)])
    lake.apply()
    table = _table(lake)
    assert [f.name for f in table.spec().fields] == ["_ddb_bucket"]
    snap = table.current_snapshot()  # the record-only commit's empty append (datafiles.record_only)
    assert snap is not None and snap.summary is not None
    assert snap.summary["total-data-files"] == "0" and table.scan().to_arrow().num_rows == 0


def test_a_table_left_without_its_spec_by_a_crash_is_given_it_and_stays_bucketed(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([event("INSERT", k, 1, image={"v": {"N": "1"}}) for k in "abcdef"])
    with monkeypatch.context() as m:
        _crash_creating(m)
        with pytest.raises(KeyboardInterrupt):
            lake.apply()
    assert _table(lake).spec().is_unpartitioned()

    assert lake.apply().upserts == 6
    table = _table(lake)
    assert [f.name for f in table.spec().fields] == ["_ddb_bucket"]
    _assert_bucket_files(table)
    for t in (10, 11):
        lake.write([event("MODIFY", "a", t, image={"v": {"N": str(t)}})])
        result = lake.apply()
        assert result.upserts == 1 and result.files_rewritten == 1 and result.buckets_rewritten == 1
    table = _table(lake)
    assert _operations(table) == ["append", "overwrite", "overwrite"]  # no delete snapshots
    assert _counts_at_every_snapshot(lake) == [6, 6, 6]
    assert sorted(lake.dump()) == list("abcdef") and lake.dump()["a"]["v"] == {"N": "11"}


def test_an_unpartitioned_table_with_rows_is_repaired_in_one_replace_snapshot(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _unpartitioned_lake(lake, monkeypatch)
    before = lake.dump()
    lake.write([event("MODIFY", "b", 3, image={"v": {"N": "20"}})])
    with caplog.at_level(logging.WARNING):
        result = lake.apply()
    assert "has no partition spec" in caplog.text
    assert result.upserts == 1
    table = _table(lake)
    _assert_bucket_files(table)
    # The repair is one replace snapshot (same rows, no applied-file record), then the batch's.
    assert _operations(table) == ["append", "overwrite", "replace", "overwrite"]
    snaps = [table.snapshot_by_id(e.snapshot_id) for e in table.history()]
    repair = snaps[2]
    assert repair is not None and repair.summary is not None
    assert repair.summary["ddblake.maintenance"] == "partition" and repair.summary[PROPERTY] is None
    assert _counts_at_every_snapshot(lake) == [8, 9, 9, 9]
    assert lake.dump() == {**before, "b": {"pk": {"S": "b"}, "v": {"N": "20"}}}

    # From now on a batch rewrites only the file holding its key.
    lake.write([event("MODIFY", "c", 4, image={"v": {"N": "30"}})])
    result = lake.apply()
    assert result.files_rewritten == 1 and result.buckets_rewritten == 1
    assert _operations(_table(lake))[-1] == "overwrite"


def test_the_repair_reads_the_table_one_data_file_at_a_time(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It read the whole table into memory (scan().to_arrow()): a table grown for months through
    # the whole-file fallback might not fit.

    from ddblake.lake import layout

    _unpartitioned_lake(lake, monkeypatch)
    table = _table(lake)
    rows = table.scan().to_arrow()
    table.overwrite(rows.slice(0, 3))  # the same rows in three data files
    table.append(rows.slice(3, 3))
    table.append(rows.slice(6))
    assert len(list(_table(lake).scan().plan_files())) == 3
    before = lake.dump()
    reads, repairing = reads_during(monkeypatch, layout, "rebucket_table")
    monkeypatch.setattr(Table, "scan", _no_whole_reads(Table.scan, repairing))
    lake.write([event("MODIFY", "b", 3, image={"v": {"N": "20"}})])
    lake.apply()
    assert reads == [1, 1, 1]
    _assert_bucket_files(_table(lake))
    assert lake.dump() == {**before, "b": {"pk": {"S": "b"}, "v": {"N": "20"}}}


def _no_whole_reads(scan: Any, now: list[bool]) -> Any:
    """``Table.scan`` whose scans refuse ``to_arrow`` (reading the whole table) while ``now[0]``."""

    def wrapped(self: Table, *args: Any, **kwargs: Any) -> Any:
        made = scan(self, *args, **kwargs)
        if now[0]:

            def refuse() -> Any:
                raise AssertionError("the whole table was read")

            made.to_arrow = refuse
        return made

    return wrapped


def test_a_crash_during_the_repair_leaves_the_table_as_it_was_and_the_rerun_repairs_it(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unpartitioned_lake(lake, monkeypatch)
    before = lake.dump()
    snapshot = _table(lake).current_snapshot()
    lake.write([event("MODIFY", "b", 3, image={"v": {"N": "20"}})])

    def killed(*_args: Any, **_kwargs: Any) -> None:
        raise KeyboardInterrupt("killed while repairing")

    with monkeypatch.context() as m:
        m.setattr(commits, "commit_replace", killed)  # the repair's files are written, not committed
        with pytest.raises(KeyboardInterrupt):
            lake.apply()
    table = _table(lake)
    assert table.spec().is_unpartitioned() and table.current_snapshot() == snapshot
    assert lake.dump() == before

    assert lake.apply().upserts == 1
    _assert_bucket_files(_table(lake))
    assert lake.dump() == {**before, "b": {"pk": {"S": "b"}, "v": {"N": "20"}}}


# -- 2. one snapshot per rewrite ---------------------------------------------------------------


def test_a_type_change_rewrites_the_current_state_in_one_snapshot(lake: Lake) -> None:
    lake.write([event("INSERT", k, 1, image={"v": {"N": str(i)}}) for i, k in enumerate("abcdefgh")])
    lake.apply()
    lake.write([event("INSERT", "z", 2, image={"v": {"S": "text"}})])  # a number column meets text
    result = lake.apply()
    assert result.upserts == 1 and result.buckets_rewritten == 16
    table = _table(lake)
    assert _operations(table) == ["append", "overwrite"]
    snap = table.current_snapshot()
    assert snap is not None and snap.summary is not None
    assert snap.summary[PROPERTY] == table.properties[PROPERTY]  # the applied-file record, as before
    assert snap.summary["total-records"] == "9" and snap.summary["deleted-records"] == "8"
    # --as-of at either commit, and a millisecond after the first, never answers an empty table.
    first, second = (e.timestamp_ms for e in table.history())
    assert [_count_as_of(lake, first), _count_as_of(lake, first + 1), _count_as_of(lake, second)] == [8, 8, 9]
    _assert_bucket_files(table)
    assert lake.dump()["z"] == {"pk": {"S": "z"}, "v": {"S": "text"}}
    assert lake.dump()["a"] == {"pk": {"S": "a"}, "v": {"N": "0"}}


# -- 3. local lake paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["my lake", "lake#1", "100% lake", "a%20b", "lac été", "what?", "semi;colon"]
)
def test_a_local_lake_path_keeps_everything_inside_the_lake_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    for var in [v for v in os.environ if v.startswith("DDBLAKE_")]:
        monkeypatch.delenv(var)
    lake = Lake(tmp_path / name)
    lake.write([event("INSERT", "a", 1, image={"v": {"N": "1"}})])
    lake.apply()
    lake.write([event("INSERT", "b", 2, image={"v": {"N": "2"}})])
    lake.apply()
    assert sorted(lake.dump()) == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing beside the lake folder
    root = lake.root.resolve()
    assert {p.name for p in root.iterdir()} >= {"catalog.db", "raw", "state", "warehouse"}
    for ident in (CUR, "ddb.orders_table_changes"):
        table = lake.catalog().load_table(ident)
        assert table.location() == lake.storage.uri(f"warehouse/ddb/{table.name()[-1]}")
        for task in table.scan().plan_files():
            assert Path(task.file.file_path.removeprefix("file://")).is_relative_to(root / "warehouse")
            assert Path(task.file.file_path.removeprefix("file://")).exists()
    assert Storage.from_uri(lake.storage.uri()).root == root.as_posix()  # --lake <what ddblake prints>
    # The orphan sweep lists the table's folder and matches what it lists with what the table names.
    table = _table(lake)
    orphan = root / "warehouse" / "ddb" / "orders_table" / "data" / "orphan.parquet"
    orphan.write_bytes(b"left by a killed apply")
    live = {t.file.file_path for t in table.scan().plan_files()}
    swept = sweep_orphans(table, lake.storage, now_ms=int(time.time() * 1000), min_age_ms=0)
    assert swept.files == 1 and not orphan.exists()
    assert {t.file.file_path for t in _table(lake).scan().plan_files()} == live
    assert sorted(lake.dump()) == ["a", "b"]
    _, rows = run_sql(lake.catalog(), "ddb", "select count(*) from orders_table_changes")
    assert rows == [(2,)]


def test_the_lake_uri_is_file_and_the_path_as_it_is_unless_a_uri_cannot_carry_it() -> None:
    assert local_uri("/data/lake") == "file:///data/lake"
    assert local_uri("/data/my lake") == "file:///data/my lake"
    assert local_uri("/data/100%") == "file:///data/100%"
    assert local_uri("/data/lac été") == "file:///data/lac été"
    assert local_uri("/data/lake#1") == "/data/lake#1"
    assert local_uri("/data/what?") == "/data/what?"


@pytest.mark.usefixtures("lake")  # no DDBLAKE_* settings
def test_a_lake_an_older_ddblake_percent_encoded_keeps_working_and_says_where_its_files_are(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "old lake"
    old = Lake(root)
    # What ddblake before the fix did: the lake's URI percent-encoded (Path.as_uri), which
    # pyiceberg took literally.
    encoded = Storage(old.storage.fs, old.storage.root, root.resolve().as_uri(), True)
    config = ApplyConfig.build(table=TABLE, lake=old.config, once=True)
    old.write([event("INSERT", "a", 1, image={"v": {"N": "1"}})])
    Applier(config, storage=encoded, catalog=open_catalog(old.config, encoded)).run_once()
    legacy = root.parent / "old%20lake" / "warehouse"
    assert legacy.is_dir()

    old.write([event("INSERT", "b", 2, image={"v": {"N": "2"}})])
    with caplog.at_level(logging.WARNING):
        result = old.apply()  # today's ddblake, same lake
    assert result.upserts == 1
    assert f"are in {legacy.parent}/warehouse/ddb/orders_table, a folder beside the lake's" in caplog.text
    assert sorted(old.dump()) == ["a", "b"]
    assert _table(old).location() == encoded.uri("warehouse/ddb/orders_table")  # still where it was


@pytest.mark.usefixtures("lake")
def test_a_catalog_an_older_ddblake_put_outside_the_lake_is_named_not_replaced(tmp_path: Path) -> None:
    root = tmp_path / "a%20b"
    root.mkdir()
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "catalog.db").write_bytes(b"")  # where SQLAlchemy decoded the path to
    config = LakeConfig.build(lake=str(root), catalog="sql")
    with pytest.raises(ConfigError, match="move it"):
        open_catalog(config, config.storage())
