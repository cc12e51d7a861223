"""Attribute names DuckDB handles its own way (a leading NUL, case twins beside a suffixed name),
damaged files and consoles that cannot hold every character: query and dump stay exact, or say one
line."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from lake_helpers import Lake, event, insert

from ddblake.cli.main import main


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["\0", "\0a"])
def test_a_name_starting_with_nul_leaves_dump_and_query_working(lake: Lake, capsys: Any, name: str) -> None:
    """DuckDB cut such a name to nothing, and the view it was given failed (every command of the
    table, for good, since the column stays after the item is gone)."""
    lake.write([insert("p", 1, {name: {"S": "x"}}), insert("q", 1, {"ok": {"S": "y"}})])
    lake.apply()
    code, out, err = run(
        capsys,
        "query",
        "--lake",
        str(lake.root),
        "--format",
        "json",
        'SELECT pk, "_" FROM orders_table ORDER BY pk',
    )
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [{"pk": "p", "_": "x"}, {"pk": "q", "_": None}]
    lake.write([event("REMOVE", "p", 2)])
    lake.apply()
    code, out, err = run(capsys, "dump", "--table", "orders-table", "--lake", str(lake.root))
    assert code == 0, err
    assert [json.loads(line)["Item"] for line in out.splitlines()] == [{"pk": {"S": "q"}, "ok": {"S": "y"}}]
    code, out, err = run(capsys, "query", "--lake", str(lake.root), "SELECT count(*) AS n FROM orders_table")
    assert code == 0, err
    assert out.split()[-3:] == ["1", "(1", "row)"]


def test_case_twins_never_take_another_attributes_name(lake: Lake, capsys: Any, caplog: Any) -> None:
    """Attributes A, a and a_1: DuckDB itself names them A, a_1, a_1_1, so ``a_1`` answered a's
    value; the later twin is now read as a_2, the first name no column has."""
    image = {"A": {"S": "upper"}, "a": {"S": "lower"}, "a_1": {"S": "attr a_1"}, "created-at": {"S": "t"}}
    lake.write([insert("p", 1, image)])
    lake.apply()
    sql = 'SELECT "A", a_2, a_1, "created-at" FROM orders_table'
    for fmt in ("csv", "json"):
        with caplog.at_level(logging.WARNING):
            code, out, err = run(capsys, "query", "--lake", str(lake.root), "--format", fmt, sql)
        assert code == 0, err
        if fmt == "csv":
            assert out.splitlines()[1] == "upper,lower,attr a_1,t"
        else:
            assert json.loads(out) == {"A": "upper", "a_2": "lower", "a_1": "attr a_1", "created-at": "t"}
    assert "'a' is read as 'a_2'" in caplog.text
    code, out, err = run(capsys, "dump", "--table", "orders-table", "--lake", str(lake.root))
    assert code == 0, err
    assert json.loads(out)["Item"] == {"pk": {"S": "p"}, **image}


def test_dump_of_a_damaged_data_file_is_one_line(lake: Lake, capsys: Any) -> None:
    lake.write([insert("p", 1, {"n": {"S": "hello world hello world"}})])
    lake.apply()
    (path,) = (lake.root / "warehouse/ddb/orders_table/data").rglob("*.parquet")
    data = bytearray(path.read_bytes())
    data[4:300] = b"\xff" * 296  # the pages; the footer stays readable
    path.write_bytes(bytes(data))
    code, _, err = run(capsys, "dump", "--table", "orders-table", "--lake", str(lake.root))
    assert code == 1
    assert (
        err.startswith("ddblake: error: dump of table 'orders-table' failed:") and len(err.splitlines()) == 1
    )
    assert "drop_table" in err and "hello" not in err  # a re-bootstrap reads the damaged file too


def _latin1(monkeypatch: pytest.MonkeyPatch) -> io.BytesIO:
    raw = io.BytesIO()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(raw, encoding="latin-1", write_through=True))
    return raw


def test_data_goes_out_in_utf8_on_a_console_that_cannot_hold_it(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([insert("p", 1, {"n": {"S": "日本"}})])
    lake.apply()
    raw = _latin1(monkeypatch)
    assert main(["dump", "--table", "orders-table", "--lake", str(lake.root)]) == 0
    assert json.loads(raw.getvalue().decode("utf-8"))["Item"]["n"] == {"S": "日本"}
    raw = _latin1(monkeypatch)
    assert main(["query", "--lake", str(lake.root), "--format", "json", "SELECT n FROM orders_table"]) == 0
    assert json.loads(raw.getvalue().decode("utf-8")) == {"n": "日本"}
    raw = _latin1(monkeypatch)  # a table is for a person: the console's encoding, escapes where it cannot
    assert main(["query", "--lake", str(lake.root), "SELECT n FROM orders_table"]) == 0
    assert "\\u65e5\\u672c" in raw.getvalue().decode("latin-1")


def test_a_duckdb_error_no_command_expected_is_one_line(lake: Lake, capsys: Any, monkeypatch: Any) -> None:
    """The last net: DuckDB's errors outside the statement (making a table's view) are one line too."""
    import duckdb

    from ddblake.lake import query

    lake.write([insert("p", 1, {"n": {"S": "secret@example.com"}})])
    lake.apply()

    def broken(*_: Any, **__: Any) -> None:
        raise duckdb.BinderException("Referenced column 'secret@example.com' not found")

    monkeypatch.setattr(query, "register", broken)
    code, _, err = run(capsys, "query", "--lake", str(lake.root), "SELECT * FROM orders_table")
    assert code == 1 and len(err.splitlines()) == 1
    assert (
        err.startswith("ddblake: error: cannot read the lake's tables:") and "secret@example.com" not in err
    )
