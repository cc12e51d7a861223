"""``status`` shows a table captured but not applied yet; ``apply`` of a table with no raw files
creates nothing (a mistyped name must not leave empty tables behind)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.lake.report import lake_status


def test_status_lists_a_table_whose_raw_files_wait_for_apply(lake: Lake) -> None:
    lake.write([event("INSERT", "k1", 1, image={"v": {"N": "1"}})])
    lake.write([event("INSERT", "k2", 2, image={"v": {"N": "2"}})])
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert (status.table, status.pending_files, status.rows, status.last_commit) == (TABLE, 2, 0, None)
    assert (status.current_table, status.history_table) == (None, None)  # no such tables yet
    lake.apply()
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert (status.pending_files, status.rows, status.history_rows) == (0, 2, 2)


def test_apply_of_a_table_never_captured_creates_no_tables(
    lake: Lake, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """--once (a scheduled job, a mistyped name) fails; continuous apply warns once and waits."""
    import threading

    from ddblake.cli.main import main
    from ddblake.errors import UnknownTableError
    from ddblake.lake.apply import Applier, ApplyConfig

    lake.root.mkdir()  # a lake that is there (storage makes its folder at the first write only)
    config = ApplyConfig.build(table="never-captured", lake=lake.config, once=True)
    with pytest.raises(UnknownTableError, match="table never-captured: no raw files under .* table name"):
        Applier(config, storage=lake.storage).run_once()
    assert main(["apply", "--table", "never-captured", "--lake", str(lake.root), "--once"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ddblake: error: table never-captured: no raw files under ") and "\n" not in err

    continuous = ApplyConfig.build(table="never-captured", lake=lake.config, once=False)
    applier = Applier(continuous, storage=lake.storage)
    with caplog.at_level(logging.WARNING, logger="ddblake"):
        assert applier.run_once(stop=threading.Event()).files == 0
        assert applier.run_once(stop=threading.Event()).files == 0
    warned = [r.getMessage() for r in caplog.records if "never-captured" in r.getMessage()]
    assert len(warned) == 1 and "no raw files under" in warned[0] and "table name" in warned[0]
    assert lake.catalog().list_tables("ddb") == []
    assert lake_status(lake.catalog(), "ddb", lake.storage) == []


def test_csv_and_table_cells_spell_booleans_as_sql_does() -> None:
    from ddblake.lake.query import format_rows

    assert format_rows(["b", "n"], [(True, 1), (False, None)], "csv") == "b,n\ntrue,1\nfalse,\n"
    assert "true" in format_rows(["b"], [(True,)], "table") and "True" not in format_rows(
        ["b"], [(True,)], "table"
    )


def test_apply_of_a_captured_table_without_changes_creates_both_tables(lake: Lake) -> None:
    # Capture has run (its checkpoint is there) but the table has had no change yet: not a typo.
    from ddblake.capture.checkpoint import checkpoint_path
    from ddblake.lake.apply import Applier, ApplyConfig

    lake.storage.write_atomic(checkpoint_path("quiet-table"), b'{"v": 1}')
    config = ApplyConfig.build(table="quiet-table", lake=lake.config, once=True)
    Applier(config, storage=lake.storage).run_once()
    tables = sorted(ident[-1] for ident in lake.catalog().list_tables("ddb"))
    assert tables == ["quiet_table", "quiet_table_changes"]  # dump, query and status read both
    (status,) = lake_status(lake.catalog(), "ddb", lake.storage)
    assert (status.table, status.pending_files) == ("quiet-table", 0)
    assert status.current_table == "ddb.quiet_table"


def test_status_leaves_out_another_lakes_tables_in_a_shared_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.rawlog import RawLogWriter

    monkeypatch.setenv("DDBLAKE_CATALOG_URI", f"sqlite:///{tmp_path}/shared.db")  # one database, two lakes
    first, second = Lake(tmp_path / "lake-a"), Lake(tmp_path / "lake-b")
    first.write([event("INSERT", "a", 1)])
    first.apply()
    writer = RawLogWriter(second.storage, "other-table", buffer_bytes=1 << 30, buffer_seconds=3600)
    writer.add(dataclasses.replace(event("INSERT", "b", 1), table="other-table").to_line())
    writer.flush()
    Applier(
        ApplyConfig.build(table="other-table", lake=second.config, once=True), storage=second.storage
    ).run_once()
    assert len(first.catalog().list_tables("ddb")) == 4, "both lakes' tables in the one database"
    assert [s.table for s in lake_status(first.catalog(), "ddb", first.storage)] == [TABLE]
    assert [s.table for s in lake_status(second.catalog(), "ddb", second.storage)] == ["other-table"]
