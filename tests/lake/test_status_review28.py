"""Review 28 of ``status``: one table's applied-file record missing or damaged, another lake's
unreadable table in a shared Glue database, a lost ``catalog.db``, a console that is not UTF-8."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.cli.main import main
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.rawlog import RawLogWriter

OTHER = "other-table"


def _write(storage: Any, table: str) -> None:
    w = RawLogWriter(storage, table, buffer_bytes=1 << 30, buffer_seconds=3600)
    w.add(event("INSERT", "a", 1, image={"v": {"S": "1"}}).to_line().replace(TABLE.encode(), table.encode()))
    w.flush()


def _two_tables(lake: Lake) -> None:
    lake.write([event("INSERT", "k1", 1)])
    lake.apply()
    _write(lake.storage, OTHER)
    Applier(ApplyConfig.build(table=OTHER, lake=lake.config, once=True), storage=lake.storage).run_once()


def _status(lake: str, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    code = main(["status", "--lake", lake, "--format", "json", *more])
    out, err = capsys.readouterr()
    return code, {t["table"]: t for t in json.loads(out)["tables"]}, err


# -- 3. one table's applied-file record missing or damaged -------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "damaged"])
def test_one_tables_unreadable_applied_log_is_its_error_and_the_others_show(
    damage: str, lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_tables(lake)
    logs = sorted((lake.root / "state" / "apply" / OTHER / "ns" / "ddb").glob("history-*.json.gz"))
    assert logs
    for path in logs:
        if damage == "missing":
            path.unlink()
        else:
            path.write_bytes(b"garbage")
    code, tables, err = _status(str(lake.root), capsys)
    assert code == 1
    assert sorted(tables) == sorted([OTHER, TABLE])
    assert tables[TABLE]["error"] is None and tables[TABLE]["pending_files"] == 0
    assert "applied-file log" in tables[OTHER]["error"] and damage in tables[OTHER]["error"]
    assert tables[OTHER]["history_table"] == "ddb.other_table_changes"
    assert err.strip().splitlines()[-1].startswith("ddblake: error: a lake table of other-table")


# -- 4. another lake's unreadable table in a shared Glue database ------------------------------------


def _apply_s3(lake: str, ns: str, table: str) -> None:
    config = LakeConfig.build(lake=lake, catalog="glue", namespace=ns)
    storage = config.storage()
    _write(storage, table)
    Applier(ApplyConfig.build(table=table, lake=config, once=True), storage=storage).run_once()


def test_another_lakes_unreadable_table_in_a_shared_glue_database_is_not_this_lakes_error(
    moto_s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint)
    other = f"{moto_s3.bucket}-other"
    s3.create_bucket(Bucket=other)
    ns = f"shared_{moto_s3.bucket[-12:]}"
    boto3.client("glue", endpoint_url=moto_s3.endpoint).create_database(DatabaseInput={"Name": ns})
    mine, theirs = f"s3://{moto_s3.bucket}/lake", f"s3://{other}/lake"
    _apply_s3(mine, ns, "my-table")
    _apply_s3(theirs, ns, "their-table")
    # The other lake's files become unreadable to this process (here: gone).
    for o in s3.list_objects_v2(Bucket=other)["Contents"]:
        s3.delete_object(Bucket=other, Key=o["Key"])
    code, tables, _ = _status(mine, capsys, "--namespace", ns)
    assert (code, sorted(tables)) == (0, ["my-table"])
    assert tables["my-table"]["error"] is None
    # This lake's own unreadable table is still said.
    for o in s3.list_objects_v2(Bucket=moto_s3.bucket, Prefix="lake/warehouse/")["Contents"]:
        if o["Key"].endswith(".metadata.json") and "/my_table_changes/" in o["Key"]:
            s3.delete_object(Bucket=moto_s3.bucket, Key=o["Key"])
    code, tables, _ = _status(mine, capsys, "--namespace", ns)
    assert code == 1 and sorted(tables) == ["my-table"]
    assert "my_table_changes" in tables["my-table"]["error"]


# -- 5. a lost catalog.db: the tables' folders are still there ----------------------------------------


def test_status_of_a_lake_that_lost_its_catalog_says_what_apply_says(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([event("INSERT", "k1", 1)])
    lake.apply()
    (lake.root / "catalog.db").unlink()
    code, tables, err = _status(str(lake.root), capsys)
    assert code == 1
    error = tables[TABLE]["error"]
    assert "not in the catalog" in error and "the lake's catalog.db" in error
    assert "catalog.register_table('ddb.orders_table_changes'" in error
    assert "catalog.register_table('ddb.orders_table'" in error
    assert not (lake.root / "catalog.db").exists(), "status reads: it creates no catalog"
    assert "cannot be read" in err


def test_a_table_dropped_from_the_catalog_by_hand_is_an_error_too(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([event("INSERT", "k1", 1)])
    lake.apply()
    lake.catalog().drop_table("ddb.orders_table")  # the entry only: its files stay
    code, tables, _ = _status(str(lake.root), capsys)
    assert code == 1
    assert tables[TABLE]["history_table"] == "ddb.orders_table_changes"
    assert "catalog.register_table('ddb.orders_table'" in tables[TABLE]["error"]


def test_a_table_captured_but_never_applied_is_no_error(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([event("INSERT", "k1", 1)])
    code, tables, _ = _status(str(lake.root), capsys)
    assert code == 0 and tables[TABLE]["error"] is None and tables[TABLE]["pending_files"] == 1


# -- 8. a console that is not UTF-8 -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_status_on_a_latin1_console_names_any_path(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("DDBLAKE_")]:
        monkeypatch.delenv(name)
    original = Lake(tmp_path / "lake-日本")
    original.write([event("INSERT", "k1", 1)])
    original.apply()
    copy = tmp_path / "lakeJ"
    shutil.copytree(original.root, copy)  # its tables still name the original lake: a note says so
    console = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    monkeypatch.setattr(sys, "stdout", console)
    assert main(["status", "--lake", str(copy), "--format", fmt]) == 0
    console.flush()
    assert isinstance(console.buffer, io.BytesIO)
    shown = console.buffer.getvalue()
    assert b"belongs to lake" in shown
    assert "Traceback" not in capsys.readouterr().err


def test_status_meeting_a_table_an_apply_creates_meanwhile_reports_no_error(lake: Lake) -> None:
    """status asked for the table just before an apply created it, then found the folder holding
    the apply's first commit: a healthy table reported as dropped from the catalog."""
    from pyiceberg.exceptions import NoSuchTableError

    from ddblake.lake.report import table_status

    lake.write([event("INSERT", "k", 1, image={"a": {"S": "v"}})])
    lake.apply()
    catalog = lake.catalog()
    real, asked = catalog.load_table, []

    def load_table(ident: Any) -> Any:
        asked.append(ident)
        if len(asked) == 1:  # the instant before the apply's create landed
            raise NoSuchTableError(ident)
        return real(ident)

    catalog.load_table = load_table
    status = table_status(catalog, "ddb", lake.storage, TABLE)
    assert status.error is None and status.rows == 1
