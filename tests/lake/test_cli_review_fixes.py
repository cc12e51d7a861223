"""Review fixes of the reading commands and settings: owner checks of status and dump, non-finite
and out-of-range settings, namespaces, ``--as-of`` before a table's first commit, table names."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import BASE_US, Lake

from ddblake.changes.model import ChangeEvent
from ddblake.cli.main import main
from ddblake.errors import TerminalError, UsageError
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import dump_items, lake_status


def _land(lake: Lake, table: str, pk: str) -> None:
    """One raw file of DynamoDB table ``table`` holding an INSERT of ``pk``."""
    ev = ChangeEvent(
        op="INSERT",
        table=table,
        keys={"pk": {"S": pk}},
        new_image={"pk": {"S": pk}},
        old_image=None,
        event_id=f"{table}-{pk}",
        event_time_us=BASE_US,
        sequence=None,
        source="streams",
        ttl=False,
        ingested_us=BASE_US,
    )
    writer = RawLogWriter(lake.storage, table, buffer_bytes=1 << 30, buffer_seconds=3600)
    writer.add(ev.to_line())
    assert writer.flush() is not None


def _apply(lake: Lake, table: str) -> None:
    Applier(ApplyConfig.build(table=table, lake=lake.config, once=True), storage=lake.storage).run_once()


# -- 1. two DynamoDB names, one identifier ------------------------------------------------------


@pytest.fixture
def collided(lake: Lake) -> Lake:
    """ab-c applied to ddb.ab_c; ab.c captured (its raw file) but refused by apply."""
    _land(lake, "ab-c", "from-ab-dash-c")
    _land(lake, "ab.c", "from-ab-dot-c")
    _apply(lake, "ab-c")
    with pytest.raises(TerminalError, match="belongs to DynamoDB table 'ab-c'"):
        _apply(lake, "ab.c")
    return lake


def test_dump_refuses_a_table_whose_identifier_another_dynamodb_table_holds(
    collided: Lake, capsys: Any
) -> None:
    assert main(["dump", "--table", "ab.c", "--lake", str(collided.root)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1
    assert "ddb.ab_c" in err and "'ab-c'" in err and "'ab.c'" in err and "--namespace" in err
    # the owner itself still dumps
    assert main(["dump", "--table", "ab-c", "--lake", str(collided.root)]) == 0
    assert "from-ab-dash-c" in capsys.readouterr().out


def test_status_shows_no_tables_for_the_table_whose_identifier_another_holds(
    collided: Lake, capsys: Any
) -> None:
    statuses = {s.table: s for s in lake_status(collided.catalog(), "ddb", collided.storage)}
    assert statuses["ab-c"].rows == 1 and statuses["ab-c"].note is None
    dot = statuses["ab.c"]
    assert (dot.rows, dot.history_rows, dot.last_commit, dot.newest_event) == (0, 0, None, None)
    assert (dot.applied_files, dot.pending_files) == (0, 1)  # its own raw file, not ab-c's record
    assert dot.note is not None and "'ab-c'" in dot.note and "ddb.ab_c" in dot.note
    assert main(["status", "--lake", str(collided.root), "--format", "json"]) == 0
    shown = {t["table"]: t for t in json.loads(capsys.readouterr().out)["tables"]}
    assert shown["ab.c"]["rows"] == 0 and "'ab-c'" in shown["ab.c"]["note"]
    assert main(["status", "--lake", str(collided.root)]) == 0
    text = capsys.readouterr().out
    assert text.count("note") == 1 and "holds DynamoDB table 'ab-c'" in text


def test_tables_without_the_source_property_count_as_the_tables_own(lake: Lake) -> None:
    """As apply takes them: a lake an older ddblake wrote has no ddblake.source-table."""
    _land(lake, "ab-c", "x")
    _apply(lake, "ab-c")
    catalog = lake.catalog()
    for name in ("ddb.ab_c", "ddb.ab_c_changes"):
        with catalog.load_table(name).transaction() as tx:
            tx.remove_properties("ddblake.source-table")
    assert [json.loads(line)["Item"]["pk"] for line in dump_items(catalog, "ddb", "ab.c")] == [{"S": "x"}]
    (status,) = [s for s in lake_status(catalog, "ddb", lake.storage) if s.table == "ab-c"]
    assert status.rows == 1 and status.note is None


# -- 2. non-finite and out-of-range numbers name their option or variable ------------------------


@pytest.mark.parametrize("text", ["nan", "inf"])
def test_apply_refuses_a_non_finite_poll_interval(lake: Lake, capsys: Any, text: str) -> None:
    argv = ["apply", "--table", "tb1", "--lake", str(lake.root), "--once", "--poll-seconds", text]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--poll-seconds (or DDBLAKE_POLL_SECONDS)" in err and "finite" in err


@pytest.mark.parametrize("text", ["nan", "inf"])
def test_a_non_finite_poll_interval_from_the_environment_is_refused(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    from ddblake.capture.config import CaptureConfig
    from ddblake.errors import ConfigError

    monkeypatch.setenv("DDBLAKE_POLL_SECONDS", text)
    with pytest.raises(ConfigError, match=r"DDBLAKE_POLL_SECONDS.* must be a finite positive number"):
        ApplyConfig.build(table="tb1", lake=lake.config)
    with pytest.raises(ConfigError, match=r"DDBLAKE_POLL_SECONDS.* must be a finite positive number"):
        CaptureConfig.build(table="tb1", lake=str(lake.root))
    monkeypatch.delenv("DDBLAKE_POLL_SECONDS")
    with pytest.raises(ConfigError, match=r"sync's --poll-seconds\) must be a finite positive number"):
        CaptureConfig.build(table="tb1", lake=str(lake.root), poll_seconds=float(text))


def test_capture_buffer_settings_out_of_range_name_the_flag_and_variable(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from ddblake.capture.config import CaptureConfig
    from ddblake.errors import ConfigError

    argv = ["capture", "--table", "tb1", "--lake", str(lake.root), "--buffer-bytes", "0"]
    assert main(argv) == 2
    assert "--buffer-bytes (or DDBLAKE_BUFFER_BYTES) must be positive, got 0" in capsys.readouterr().err
    monkeypatch.setenv("DDBLAKE_BUFFER_SECONDS", "-1")
    with pytest.raises(ConfigError, match=r"--buffer-seconds \(or DDBLAKE_BUFFER_SECONDS\) must be positive"):
        CaptureConfig.build(table="tb1", lake=str(lake.root))
    monkeypatch.setenv("DDBLAKE_BUFFER_SECONDS", "nan")
    with pytest.raises(ConfigError, match=r"DDBLAKE_BUFFER_SECONDS\) must be a finite positive number"):
        CaptureConfig.build(table="tb1", lake=str(lake.root))


# -- 3. namespaces ------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["A.B", "a.b", "Ddb", "my-ns", "x y", "n" * 256])
def test_a_namespace_outside_lower_case_letters_digits_and_underscore_is_a_usage_error(
    lake: Lake, capsys: Any, namespace: str
) -> None:
    _land(lake, "orders-table", "a")
    argv = ["apply", "--table", "orders-table", "--lake", str(lake.root), "--once", "--namespace", namespace]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--namespace" in err and "lower-case" in err
    assert not (lake.root / "catalog.db").exists()


def test_a_bad_namespace_from_the_environment_names_the_variable(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.errors import ConfigError
    from ddblake.lake.catalog import LakeConfig

    monkeypatch.setenv("DDBLAKE_NAMESPACE", "Sales.Eu")
    with pytest.raises(ConfigError, match=r"'Sales.Eu' \(from DDBLAKE_NAMESPACE\)"):
        LakeConfig.build(lake=str(lake.root))
    monkeypatch.setenv("DDBLAKE_NAMESPACE", "Sales")
    with pytest.raises(ConfigError, match=r"e\.g\. 'sales'"):
        LakeConfig.build(lake=str(lake.root))
    assert LakeConfig.build(lake=str(lake.root), namespace="sales_2").namespace == "sales_2"
    monkeypatch.delenv("DDBLAKE_NAMESPACE")
    assert LakeConfig.build(lake=str(lake.root)).namespace == "ddb"


# -- 4. --as-of before the table's first commit, once early snapshots were expired -----------------


def test_as_of_before_the_first_commit_is_empty_after_expiry_and_expired_times_still_refused(
    lake: Lake,
) -> None:
    import datetime as dt

    from ddblake.errors import UsageError
    from ddblake.lake import maintain
    from ddblake.lake.query import run_sql

    for i in range(6):
        _land(lake, "orders-table", f"k{i}")
        _apply(lake, "orders-table")
    catalog = lake.catalog()
    firsts = {}
    for name in ("ddb.orders_table", "ddb.orders_table_changes"):
        firsts[name] = min(s.timestamp_ms for s in catalog.load_table(name).snapshots())
    config = ApplyConfig.build(
        table="orders-table",
        lake=lake.config,
        once=True,
        keep_snapshots=2,
        keep_min_snapshots=0,
        keep_replaced_minutes=0,
    )
    maintain.maintain(Applier(config, storage=lake.storage), batch=1)
    catalog = lake.catalog()
    for name, first in firsts.items():
        tbl = catalog.load_table(name)
        assert len(tbl.snapshots()) == 2 and "ddblake.expired-through-ms" in tbl.properties
        assert tbl.properties["ddblake.first-commit-ms"] == str(first)
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    for name in ("orders_table", "orders_table_changes"):
        assert run_sql(catalog, "ddb", f"SELECT count(*) FROM {name}", as_of=long_ago)[1] == [(0,)]  # noqa: S608
        just_before = dt.datetime.fromtimestamp((firsts[f"ddb.{name}"] - 1) / 1000, tz=dt.UTC)
        assert run_sql(catalog, "ddb", f"SELECT count(*) FROM {name}", as_of=just_before)[1] == [(0,)]  # noqa: S608
        at_first = dt.datetime.fromtimestamp(firsts[f"ddb.{name}"] / 1000, tz=dt.UTC)
        with pytest.raises(UsageError, match="older than what table"):
            run_sql(catalog, "ddb", f"SELECT * FROM {name}", as_of=at_first)  # noqa: S608
    # a second expiry keeps the first commit's time
    for i in range(3):
        _land(lake, "orders-table", f"m{i}")
        _apply(lake, "orders-table")
    maintain.maintain(Applier(config, storage=lake.storage), batch=1)
    tbl = lake.catalog().load_table("ddb.orders_table")
    assert tbl.properties["ddblake.first-commit-ms"] == str(firsts["ddb.orders_table"])


def test_as_of_on_a_table_expired_before_the_first_commit_was_recorded_stays_refused(lake: Lake) -> None:
    """An older ddblake's expiry left no record of the first commit: no answer can be proven empty."""
    import datetime as dt

    from ddblake.errors import UsageError
    from ddblake.lake import maintain
    from ddblake.lake.query import run_sql

    for i in range(4):
        _land(lake, "orders-table", f"k{i}")
        _apply(lake, "orders-table")
    config = ApplyConfig.build(
        table="orders-table",
        lake=lake.config,
        once=True,
        keep_snapshots=2,
        keep_min_snapshots=0,
        keep_replaced_minutes=0,
    )
    maintain.maintain(Applier(config, storage=lake.storage), batch=1)
    with lake.catalog().load_table("ddb.orders_table").transaction() as tx:
        tx.remove_properties("ddblake.first-commit-ms")
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(UsageError, match="older than what table ddb.orders_table keeps"):
        run_sql(lake.catalog(), "ddb", "SELECT * FROM orders_table", as_of=long_ago)


# -- 5. --table must be a DynamoDB table name ----------------------------------------------------


@pytest.mark.parametrize("command", ["apply", "dump", "capture", "load", "sync"])
@pytest.mark.parametrize("name", ["T1", "x y z", "a/b", "n" * 256])
def test_a_table_that_cannot_be_a_dynamodb_table_name_is_a_usage_error(
    lake: Lake, capsys: Any, command: str, name: str
) -> None:
    _land(lake, "orders-table", "a")  # a lake that exists, for dump
    once = ["--once"] if command in ("apply", "capture", "sync") else []
    assert main([command, "--table", name, "--lake", str(lake.root), *once]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a DynamoDB table name" in err and "(from --table)" in err
    assert not (lake.root / "catalog.db").exists()  # nothing quarantined, no empty tables
    assert not (lake.root / "errors").exists()


def test_a_bad_table_name_from_the_environment_names_the_variable(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ddblake.errors import ConfigError

    monkeypatch.setenv("DDBLAKE_TABLE", "x y z")
    with pytest.raises(ConfigError, match=r"'x y z' \(from DDBLAKE_TABLE\) is not a DynamoDB table name"):
        ApplyConfig.build(table=None, lake=lake.config)
    for good in ("ab.c", "A_b-9", "abc", "x" * 255):
        assert ApplyConfig.build(table=good, lake=lake.config).table == good


def test_as_of_is_refused_after_snapshots_were_expired_by_another_engine(tmp_path: Path) -> None:
    """pyiceberg's (or Spark's) own expiry records nothing of ddblake's: a time whose snapshot is
    gone must be refused, not read as the empty table before the first commit."""
    from lake_helpers import event

    from ddblake.lake.query import _snapshot_at

    lake = Lake(tmp_path / "lake")
    for i in range(3):
        lake.write([event("INSERT", f"k{i}", i, image={"v": {"S": "x"}})])
        lake.apply()
    table = lake.catalog().load_table("ddb.orders_table")
    snaps = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    between = dt.datetime.fromtimestamp((snaps[1].timestamp_ms + 0.5) / 1000, tz=dt.UTC)
    assert _snapshot_at(table, between) == snaps[1].snapshot_id
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in snaps[:-1]]).commit()
    table = lake.catalog().load_table("ddb.orders_table")
    with pytest.raises(UsageError, match="older than what table ddb.orders_table keeps"):
        _snapshot_at(table, between)
