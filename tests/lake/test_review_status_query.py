"""Review fixes of apply, query, status and the demo's lake: a table with no change yet gets both
lake tables; ``--as-of`` numbers too short for epoch times; status's lag, error files and table
names; cut table cells; the namespace-qualified names; the demo's own catalog."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import TABLE, Lake, MakeLake, current_rows, event, insert, new_lake
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.cli.main import main
from ddblake.errors import UsageError
from ddblake.lake.query import format_rows, parse_time, run_sql
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import lake_status, status_json, status_text

__all__ = ["new_lake"]  # the fixture


def _quiet(lake: Lake) -> None:
    """What capture leaves of a table with a stream and no change yet: its checkpoint, no raw file."""
    from ddblake.capture.checkpoint import checkpoint_path

    lake.storage.write_atomic(checkpoint_path(TABLE), b'{"v": 1}')


# -- 1. a captured table with no change yet ------------------------------------------------------


def test_apply_of_a_table_without_changes_creates_both_tables_and_every_reader_works(
    lake: Lake, capsys: Any
) -> None:
    _quiet(lake)
    assert lake.apply().files == 0
    names = sorted(ident[-1] for ident in lake.catalog().list_tables("ddb"))
    assert names == ["orders_table", "orders_table_changes"]
    root = str(lake.root)
    assert main(["dump", "--table", TABLE, "--lake", root]) == 0
    assert capsys.readouterr().out == ""
    assert main(["query", "--lake", root, "--format", "json", "select count(*) as n from orders_table"]) == 0
    assert capsys.readouterr().out == '{"n":0}\n'
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert (status.current_table, status.history_table) == ("ddb.orders_table", "ddb.orders_table_changes")
    assert (status.pending_files, status.rows, status.apply_lag_seconds) == (0, 0, 0.0)
    assert status.lag_seconds is None, "no event applied: no staleness to give"


def test_a_first_batch_after_an_empty_apply_gives_what_applying_it_directly_gives(
    new_lake: MakeLake,
) -> None:
    batch = [
        insert("a", 1, {"n": {"N": "1"}, "s": {"S": "x"}}),
        insert("b", 2, {"n": {"N": "2.5"}, "m": {"M": {"k": {"BOOL": True}}}}),
        event("MODIFY", "a", 3, image={"n": {"N": "3"}}),
        event("REMOVE", "b", 4),
        insert("c", 5, {"l": {"L": [{"S": "y"}]}}),
    ]
    direct, quiet = new_lake(), new_lake()
    direct.write(batch)
    direct.apply()
    _quiet(quiet)
    quiet.apply()
    quiet.write(batch)
    result = quiet.apply()
    assert (result.files, result.upserts, result.history_rows) == (1, 2, 5)
    assert quiet.dump() == direct.dump()
    assert current_rows(quiet) == current_rows(direct)
    columns = [
        t.schema().column_names
        for t in (
            quiet.catalog().load_table("ddb.orders_table"),
            direct.catalog().load_table("ddb.orders_table"),
        )
    ]
    assert columns[0] == columns[1], "one column order, whether the table was created empty or not"
    assert len(quiet.history()) == len(direct.history()) == 5
    again = quiet.apply()  # exactly once: the commits recorded the file
    assert (again.files, len(quiet.history())) == (0, 5)
    (status,) = lake_status(quiet.catalog(), "ddb", quiet.storage)
    assert (status.applied_files, status.pending_files, status.rows) == (1, 0, 2)


def test_a_crash_between_the_commits_of_the_first_batch_after_an_empty_apply_loses_nothing(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.lake import apply as apply_module

    _quiet(lake)
    lake.apply()
    lake.write([insert("a", 1, {"v": {"S": "1"}}), insert("b", 2, {"v": {"S": "2"}})])

    class Crash(Exception):
        pass

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    monkeypatch.setattr(apply_module.Applier, "_commit_current", crash)
    with pytest.raises(Crash):
        lake.apply()
    monkeypatch.undo()
    lake.apply()
    assert sorted(lake.dump()) == ["a", "b"]
    assert len(lake.history()) == 2


def test_status_names_no_lake_table_before_there_is_one(lake: Lake) -> None:
    lake.write([insert("a", 1, {"v": {"S": "1"}})])
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert (status.current_table, status.history_table) == (None, None)
    assert json.loads(status_json([status]))["tables"][0]["current_table"] is None


@pytest.mark.functional
def test_sync_of_a_new_table_with_no_writes_leaves_a_lake_every_command_reads(
    dynamodb_local_endpoint: str,
    table_name: str,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The review's repro: a new table with a stream, no writes, ``sync --once``."""
    from ddblake.aws.clients import build_dynamodb_clients
    from ddblake.names import table_identifier

    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)
    client = build_dynamodb_clients(dynamodb_local_endpoint).dynamodb
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    lake = str(tmp_path / "lake")
    argv = ["sync", "--table", table_name, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]
    assert main([*argv, "--once"]) == 0
    capsys.readouterr()
    assert main(["dump", "--table", table_name, "--lake", lake]) == 0
    assert capsys.readouterr().out == ""
    ident = table_identifier(table_name)
    sql = f"select count(*) as n from {ident}"  # noqa: S608
    assert main(["query", "--lake", lake, "--format", "json", sql]) == 0
    assert capsys.readouterr().out == '{"n":0}\n'
    assert main(["status", "--lake", lake, "--format", "json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["tables"]
    assert shown["current_table"] == f"ddb.{ident}" and shown["history_table"] == f"ddb.{ident}_changes"


# -- 2. --as-of numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["20261207", "2026", "0", "99999999.5"])
def test_as_of_numbers_too_short_for_epoch_times_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        parse_time(text)


def test_as_of_epoch_seconds_milliseconds_and_dates_still_parse(lake: Lake, capsys: Any) -> None:
    assert parse_time("1764316800").isoformat() == "2025-11-28T08:00:00+00:00"
    assert parse_time("1764316800500").isoformat() == "2025-11-28T08:00:00.500000+00:00"
    assert parse_time("100000000").year == 1973
    assert parse_time("2026-12-07").isoformat() == "2026-12-07T00:00:00+00:00"
    lake.write([insert("a", 1, {"v": {"S": "1"}})])
    lake.apply()
    sql = "select count(*) from orders_table"
    assert main(["query", "--lake", str(lake.root), "--as-of", "20261207", sql]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


# -- 4. and 5. status: error files and lag --------------------------------------------------------


def test_status_counts_capture_and_firehose_error_files_apart_from_apply_quarantine(
    lake: Lake, capsys: Any
) -> None:
    lake.write([insert("a", 1, {"v": {"S": "1"}})], lines=[b"not a raw line\n"])
    lake.apply()  # one record quarantined by apply, under errors/<table>/apply/
    lake.storage.write_atomic(f"errors/{TABLE}/2025/11/28/08/capture-1.gz", b"x")
    lake.storage.write_atomic(f"errors/{TABLE}/processing-failed/2025/11/28/08/fh-1.gz", b"x")
    lake.storage.write_atomic(f"errors/{TABLE}/processing-failed/2025/11/28/09/fh-2.gz", b"x")
    lake.storage.write_atomic("errors/other-table/2025/11/28/08/capture-1.gz", b"x")
    (status,) = [s for s in lake_status(lake.catalog(), "ddb", lake.storage) if s.table == TABLE]
    assert (status.quarantined, status.capture_error_files) == (1, 3)
    assert "capture_error_files  3" in status_text([status])
    assert main(["status", "--lake", str(lake.root), "--format", "json"]) == 0
    shown = {t["table"]: t for t in json.loads(capsys.readouterr().out)["tables"]}
    assert shown[TABLE]["capture_error_files"] == 3


def test_status_apply_lag_is_zero_when_caught_up_and_the_oldest_file_age_before_any_apply(lake: Lake) -> None:
    first = lake.write([insert("a", 1, {"v": {"S": "1"}})])
    lake.write([insert("b", 2, {"v": {"S": "1"}})])
    an_hour_ago = time.time() - 3600
    os.utime(lake.root / first, (an_hour_ago, an_hour_ago))
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)  # loaded, never applied
    assert status.pending_files == 2 and status.apply_lag_seconds is not None
    assert 3590 < status.apply_lag_seconds < 3700
    lake.apply()
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)  # caught up: not late
    assert (status.pending_files, status.apply_lag_seconds) == (0, 0.0)
    third = lake.write([insert("c", 3, {"v": {"S": "1"}})])
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)  # the first change in a long while
    assert status.pending_files == 1 and status.apply_lag_seconds is not None
    assert time.time() - dt_seconds(status.newest_event) > 86_400, "the newest applied event is old"
    assert status.lag_seconds is not None and status.lag_seconds > 86_400, "so the tables are stale"
    assert status.apply_lag_seconds < 60, "but the change waiting was written seconds ago"
    lake.write([insert("d", 4, {"v": {"S": "1"}})])
    ten_minutes_ago = time.time() - 600
    os.utime(lake.root / third, (ten_minutes_ago, ten_minutes_ago))
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)  # a backlog: its oldest file's age
    assert status.pending_files == 2 and status.apply_lag_seconds is not None
    assert 590 < status.apply_lag_seconds < 700
    # A file that lands now in yesterday's hour folder (a redrive) comes first in the listing, but
    # the backlog is still ten minutes old.
    writer = RawLogWriter(
        lake.storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600, clock=lambda: time.time() - 86_400
    )
    writer.add(insert("e", 5, {"v": {"S": "1"}}).to_line())
    late = writer.flush()
    assert late is not None
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert status.pending_files == 3 and status.apply_lag_seconds is not None
    assert 590 < status.apply_lag_seconds < 700, "the late file is first in path order, not the oldest"


def dt_seconds(iso: str | None) -> float:
    import datetime as dt

    assert iso is not None
    return dt.datetime.fromisoformat(iso).timestamp()


# -- 6. cut cells ---------------------------------------------------------------------------------


def test_table_cells_cut_at_the_column_width_end_in_a_mark_and_say_where_the_whole_value_is() -> None:
    from decimal import Decimal

    tiny = Decimal("1E-130")
    text = format_rows(["d", "s"], [(tiny, "short")], "table")
    cell = text.splitlines()[2].split(" | ")[0]
    assert len(cell) == 60 and cell.endswith("…") and cell.startswith("0.000")
    assert "--format json" in text.splitlines()[-1]
    plain = format_rows(["s"], [("short",)], "table")
    assert "…" not in plain and plain.splitlines()[-1] == "(1 row)"


# -- 8. names qualified by the namespace ------------------------------------------------------------


def test_a_table_answers_to_its_name_qualified_by_the_namespace(lake: Lake) -> None:
    lake.write([insert("a", 1, {"v": {"S": "1"}}), insert("b", 2, {"v": {"S": "2"}})])
    lake.apply()
    sql = 'select count(*) from ddb.orders_table join "ddb"."orders_table_changes" using (_ddb_key)'
    assert run_sql(lake.catalog(), "ddb", sql)[1] == [(2,)]
    assert run_sql(lake.catalog(), "ddb", "select count(*) from orders_table")[1] == [(2,)]


# -- 3. the demo's own catalog ----------------------------------------------------------------------


def test_the_demo_keeps_its_catalog_in_the_lake_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from ddblake.cli.demo import TABLE as DEMO_TABLE
    from ddblake.cli.demo import _show_tables, demo_lake_config
    from ddblake.lake.rawlog import RawLogWriter

    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("DDBLAKE_CATALOG", "glue")
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", f"sqlite:///{elsewhere}")
    monkeypatch.setenv("DDBLAKE_NAMESPACE", "not_the_demos")
    root = tmp_path / "demo lake"
    config = demo_lake_config(str(root))
    assert (config.catalog, config.catalog_uri, config.namespace) == ("sql", None, "ddb")

    lake = Lake(root)
    writer = RawLogWriter(lake.storage, DEMO_TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
    keys = {"id": {"S": "864732"}, "name": {"S": "Adam"}}
    image = {**keys, "Designation": {"S": "Architect"}}
    ev = dataclasses.replace(insert("x", 1, {}), table=DEMO_TABLE, keys=keys, new_image=image)
    writer.add(ev.to_line())
    writer.flush()
    _show_tables(str(root), io.StringIO())
    assert (root / "catalog.db").exists() and not elsewhere.exists()
    monkeypatch.delenv("DDBLAKE_CATALOG")
    monkeypatch.delenv("DDBLAKE_CATALOG_URI")
    monkeypatch.delenv("DDBLAKE_NAMESPACE")
    assert sorted(ident[-1] for ident in Lake(root).catalog().list_tables("ddb")) == [
        "example_ddb_table",
        "example_ddb_table_changes",
    ]


def test_the_demo_refuses_a_lake_that_is_not_a_local_directory() -> None:
    from ddblake.cli.demo import run_demo

    with pytest.raises(UsageError, match="not a local directory"):
        run_demo("s3://bucket/prefix")


def test_status_shows_capture_positions_and_the_newest_load_without_failing_on_a_damaged_one(
    lake: Lake, capsys: Any
) -> None:
    from ddblake.capture.checkpoint import Checkpoint, checkpoint_path, save_checkpoint
    from ddblake.load.state import LoadState, state_path, write_state

    lake.write([insert("a", 1, {"v": {"S": "1"}})])
    lake.apply()
    (before,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert (before.last_load, before.load_finished, before.capture_checkpoint) == (None, None, None)

    save_checkpoint(lake.storage, Checkpoint(table=TABLE, updated_us=1_764_979_200_000_000))
    write_state(
        lake.storage,
        LoadState(TABLE, "scan", "scan", "L1", 1_764_979_200_000_000, 1_764_979_200_000_000, 4),
    )
    (running,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert running.capture_checkpoint == "2025-12-06T00:00:00+00:00"
    assert running.load_finished is False and running.last_load is not None
    assert running.last_load.startswith("scan L1 unfinished: 0 of 4 segment(s) done, 0 item(s) so far")
    assert main(["status", "--lake", str(lake.root)]) == 0
    assert "load_finished        no" in capsys.readouterr().out

    # what a re-bootstrap stopped before its own load leaves: the unfinished Scan, set aside
    lake.storage.delete(state_path(TABLE, "scan"))
    write_state(
        lake.storage,
        LoadState(TABLE, "scan-L1", "scan", "L1", 1_764_979_200_000_000, 1_764_979_200_000_000, 4),
    )
    (aside,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert aside.load_finished is False and aside.last_load is not None
    assert aside.last_load.startswith("scan L1 set aside unfinished by a re-bootstrap")
    assert aside.last_load.endswith(
        f"'ddblake sync --table {TABLE} --lake {lake.storage.root} --rebootstrap' to finish the re-bootstrap"
    )

    lake.storage.write_atomic(checkpoint_path(TABLE), b"{damaged")
    lake.storage.write_atomic(state_path(TABLE, "scan"), b"{damaged")
    (damaged,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert damaged.rows == 1, "the rest of the status is still there"
    assert damaged.capture_checkpoint is not None and damaged.capture_checkpoint.startswith("unreadable: ")
    assert damaged.last_load is not None and damaged.last_load.startswith("unreadable: ")


def test_lag_of_a_long_backlog_lists_a_few_hour_folders_not_all(lake: Lake) -> None:
    """A stuck apply with two days of files waiting: the earliest one is found in the first folders."""
    from ddblake.lake.report import apply_lag

    start = (time.time() // 3600 - 48) * 3600
    pending = []
    for hour in range(48):
        writer = RawLogWriter(
            lake.storage,
            TABLE,
            buffer_bytes=1 << 30,
            buffer_seconds=3600,
            clock=lambda h=hour: start + h * 3600,
        )
        writer.add(insert(f"k{hour}", hour, {"v": {"S": "1"}}).to_line())
        written = writer.flush()
        assert written is not None
        landed = start + hour * 3600 + 600  # each landed ten minutes into its hour
        os.utime(lake.root / written.path, (landed, landed))
        pending.append(written.path)

    listed: list[str] = []

    class Counting(type(lake.storage)):  # type: ignore[misc]
        def list_with_times(self, prefix: str) -> list[tuple[str, float]]:
            listed.append(prefix)
            return super().list_with_times(prefix)

    counting = Counting.from_uri(str(lake.root))
    now = time.time()
    assert apply_lag(counting, pending, now) == round(now - (start + 600), 3)
    assert 1 <= len(listed) <= 3, listed
