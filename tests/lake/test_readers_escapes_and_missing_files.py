"""Review 29 of the readers (``query``, ``dump``): control characters in ``--format table``, a NUL
in a top-level attribute name on the lazy path, an error line cut inside a value, and a data file
that is not there."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from lake_helpers import TABLE, Lake, insert

from ddblake.cli.main import main
from ddblake.errors import TerminalError
from ddblake.lake import reading
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.output import format_rows, shown
from ddblake.lake.query import _failed, duck_reason, run_sql
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.reading import duck, lazy_rows, register, row_source
from ddblake.lake.report import dump_items
from ddblake.redact import without_values


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- 1. --format table escapes control characters ---------------------------------------------------


def test_control_characters_are_escapes_in_the_table_format_only() -> None:
    rows = [
        ("a", "first\nb | fake-row"),
        ("c", "\x1b[2J\x1b]0;x\x07done"),
        ("d", "tab\there\rCR\x7f\x9b\x00"),
    ]
    table = format_rows(["pk", "note"], rows, "table")
    lines = table.splitlines()
    assert len(lines) == 2 + 3 + 1  # header, rule, a line per row, the count: no forged row
    assert "\x1b" not in table and "\t" not in table and "\r" not in table and "\x7f" not in table
    assert lines[2].rstrip() == "a  | first\\nb | fake-row"
    assert lines[3].rstrip() == "c  | \\x1b[2J\\x1b]0;x\\x07done"
    assert lines[4].rstrip() == "d  | tab\\there\\rCR\\x7f\\x9b\\x00"
    # The columns are as wide as the escaped text: every row's separator in one place.
    assert len({line.index("|") for line in lines[:1] + lines[2:5]}) == 1
    assert len(lines[0]) == len(lines[1]) == len(lines[3])  # the widest cell sets the width
    # JSON and CSV keep the values as they are.
    assert [json.loads(x)["note"] for x in format_rows(["pk", "note"], rows, "json").splitlines()] == [
        r[1] for r in rows
    ]
    assert '"first\nb | fake-row"' in format_rows(["pk", "note"], rows, "csv")


def test_a_column_name_with_a_line_break_is_an_escape_in_the_table_header() -> None:
    table = format_rows(["a\nb", "x"], [("1", "2")], "table")
    assert table.splitlines()[0] == "a\\nb | x"
    assert shown("é€\u2028") == "é€\u2028"  # only C0, DEL and C1 are escaped


def test_query_table_of_a_lake_shows_escapes(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.write(
        [insert("a", 1, {"note": {"S": "first\nb   | fake-row"}}), insert("c", 2, {"note": {"S": "\x1b[2J"}})]
    )
    lake.apply()
    code, out, err = run(
        capsys, "query", "--lake", str(lake.root), "select pk, note from orders_table order by pk"
    )
    assert code == 0, err
    assert out.splitlines()[2:5] == ["a  | first\\nb   | fake-row", "c  | \\x1b[2J              ", "(2 rows)"]


# -- 2. a NUL in a top-level attribute name, on the lazy path ----------------------------------------


def test_a_nul_in_top_level_names_is_warned_on_the_lazy_path(
    lake: Lake, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    lake.write([insert("a", 1, {"a\0b": {"S": "one"}, "a\0c": {"S": "two"}})])
    lake.apply()
    tbl = lake.catalog().load_table("ddb.orders_table")
    snap = tbl.current_snapshot()
    assert snap is not None and lazy_rows(tbl, snap.snapshot_id) is not None  # the fast path
    with caplog.at_level(logging.INFO, logger="ddblake"):
        code, out, err = run(
            capsys, "query", "--lake", str(lake.root), "--format", "json", "SELECT a, a_1 FROM orders_table"
        )
    assert code == 0, err
    assert json.loads(out) == {"a": "one", "a_1": "two"}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "'a\\x00b', 'a\\x00c'" in warned[0] and "_ddb_item" in warned[0]
    assert "a_x0b" not in warned[0]
    assert "read whole through pyiceberg" not in caplog.text


def test_a_table_read_through_pyiceberg_is_named_with_dots(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lake.write([insert("a", 1, {"n": {"N": "1"}})])
    lake.apply()
    monkeypatch.setattr(reading, "lazy_rows", lambda table, snapshot_id: None)
    with caplog.at_level(logging.INFO, logger="ddblake"):
        assert run_sql(lake.catalog(), "ddb", "select count(*) from orders_table")[1] == [(1,)]
    assert "table ddb.orders_table: read whole through pyiceberg" in caplog.text
    assert "('ddb'" not in caplog.text


# -- 3. the error line keeps the reason after a value holding a line break ---------------------------


def test_a_failed_cast_of_a_value_with_a_line_break_keeps_its_reason(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([insert("b", 1, {"s": {"S": 'héllo,"q"\nline\r\x1b[2J'}})])
    lake.apply()
    code, _, err = run(
        capsys, "query", "--lake", str(lake.root), "select s::int from orders_table\nwhere pk = 'b'"
    )
    assert code == 1
    assert err.endswith("\n") and len(err.splitlines()) == 1
    assert "'héllo,\"q\"\\nline\\r\\x1b[2J' to INT32" in err  # the value, then the reason
    assert "LINE " not in err and "\x1b" not in err


def test_the_reason_drops_duckdbs_context_and_masks_a_value_whole() -> None:
    con = duckdb.connect()
    with pytest.raises(duckdb.Error) as caught:
        con.execute("select 'alice@x\nsecret tail'::int")
    assert "\n\nLINE " in str(caught.value)
    reason = duck_reason(caught.value)
    assert reason == "Conversion Error: Could not convert string 'alice@x\\nsecret tail' to INT32"
    masked = without_values(reason)
    assert "alice" not in masked and "secret" not in masked  # the value masked whole, past its line break
    assert masked.endswith(" '…' to INT32")


def test_a_value_saying_interrupted_is_no_ctrl_c(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.write([insert("a", 1, {"n": {"N": "1"}})])
    lake.apply()
    code, _, err = run(
        capsys, "query", "--lake", str(lake.root), "select 'was interrupted'::int from orders_table"
    )
    assert code == 1 and "to INT32" in err
    error = _failed(duckdb.ConversionException("Could not convert string 'interrupted' to INT32"), [])
    assert isinstance(error, TerminalError)


# -- 4. a data file that is not there ---------------------------------------------------------------


def _gone(lake: Lake) -> Path:
    """Three items in three buckets applied; one data file of the current state deleted."""
    lake.write([insert(k, i, {"n": {"N": str(i)}}) for i, k in enumerate("abc", 1)])
    lake.apply()
    path = sorted((lake.root / "warehouse/ddb/orders_table/data").rglob("*.parquet"))[0]
    path.unlink()
    return path


def _said(err: str, path: str, folder: str) -> None:
    assert len(err.splitlines()) == 1, err
    assert f"table ddb.orders_table cannot be read: its data file {path} is not there" in err
    assert "catalog.drop_table('ddb.orders_table')" in err and f"delete its folder {folder}," in err
    assert "restore it (a backup" in err and "FileNotFoundError" not in err


@pytest.mark.parametrize("command", ["query", "dump"])
def test_a_missing_data_file_names_the_table_and_what_to_do(
    lake: Lake, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = _gone(lake)
    argv = (
        ["query", "select count(*) from orders_table"] if command == "query" else ["dump", "--table", TABLE]
    )
    code, _, err = run(capsys, argv[0], "--lake", str(lake.root), *argv[1:])
    assert code == 1
    _said(err, str(path), str(lake.root / "warehouse/ddb/orders_table"))


def test_a_missing_data_file_through_pyiceberg_is_said_alike(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _gone(lake)
    monkeypatch.setattr(reading, "lazy_rows", lambda table, snapshot_id: None)
    with pytest.raises(TerminalError) as caught:
        run_sql(lake.catalog(), "ddb", "select count(*) from orders_table")
    _said(str(caught.value), str(path), str(lake.root / "warehouse/ddb/orders_table"))


def test_a_data_file_deleted_while_duckdb_reads_is_said_alike(lake: Lake) -> None:
    lake.write([insert(k, i, {"n": {"N": str(i)}}) for i, k in enumerate("abc", 1)])
    lake.apply()
    tbl = lake.catalog().load_table("ddb.orders_table")
    snap = tbl.current_snapshot()
    assert snap is not None
    rows = row_source(tbl, snap.snapshot_id)  # footers read: planned
    path = sorted((lake.root / "warehouse/ddb/orders_table/data").rglob("*.parquet"))[0]
    path.unlink()
    with duck() as con:
        register(con, "orders_table", rows)
        with pytest.raises(duckdb.Error) as caught:
            con.execute("select * from orders_table").fetchall()
    said = reading.missing_file(caught.value, [tbl])
    assert said is not None
    _said(str(said), str(path), str(lake.root / "warehouse/ddb/orders_table"))
    assert (
        reading.missing_file(duckdb.ConversionException("Could not convert string 'x' to INT32"), [tbl])
        is None
    )


def test_a_damaged_data_file_in_dump_advises_restore_or_rebuild(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write([insert("p", 1, {"n": {"S": "hello world hello world"}})])
    lake.apply()
    (path,) = (lake.root / "warehouse/ddb/orders_table/data").rglob("*.parquet")
    data = bytearray(path.read_bytes())
    data[4:300] = b"\xff" * 296  # the pages; the footer stays readable
    path.write_bytes(bytes(data))
    code, _, err = run(capsys, "dump", "--table", TABLE, "--lake", str(lake.root))
    assert code == 1 and len(err.splitlines()) == 1
    # apply reads the table's files too: a re-bootstrap would fail on the same file.
    assert "--rebootstrap" not in err and "catalog.drop_table('ddb.orders_table')" in err
    assert "hello" not in err


def test_a_missing_data_file_on_s3_names_the_table(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    ns = f"r29_{moto_s3.bucket[-12:]}"
    boto3.client("glue", endpoint_url=moto_s3.endpoint).create_database(DatabaseInput={"Name": ns})
    uri = f"s3://{moto_s3.bucket}/lake"
    config = LakeConfig.build(lake=uri, catalog="glue", namespace=ns)
    storage = config.storage()
    writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
    for i, k in enumerate("abc", 1):
        writer.add(insert(k, i, {"n": {"N": str(i)}}).to_line())
    writer.flush()
    Applier(ApplyConfig.build(table=TABLE, lake=config, once=True), storage=storage).run_once()
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint)
    listed = s3.list_objects_v2(Bucket=moto_s3.bucket, Prefix=f"lake/warehouse/{ns}.db/orders_table/data/")
    key = sorted(o["Key"] for o in listed["Contents"] if o["Key"].endswith(".parquet"))[0]
    s3.delete_object(Bucket=moto_s3.bucket, Key=key)
    catalog = open_catalog(config, storage)
    for read in (
        lambda: run_sql(catalog, ns, "select count(*) from orders_table"),
        lambda: list(dump_items(catalog, ns, TABLE)),
    ):
        with pytest.raises(TerminalError) as caught:
            read()
        said = str(caught.value)
        assert (
            f"table {ns}.orders_table cannot be read: its data file s3://{moto_s3.bucket}/{key} is not there"
            in said
        )
        assert f"delete its folder {uri}/warehouse/{ns}.db/orders_table," in said
