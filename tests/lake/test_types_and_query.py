"""Typed columns, schema evolution, type conflicts and the query command over the lake tables."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from lake_helpers import Lake, event

from ddblake.cli.main import main
from ddblake.lake.query import format_rows, run_sql

BIG = "12345678901234567890.123456789012345678"  # 38 significant digits


def _query(lake: Lake, sql: str, **kw: Any) -> list[dict[str, Any]]:
    cols, rows = run_sql(lake.catalog(), "ddb", sql, **kw)
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _column_types(lake: Lake) -> dict[str, str]:
    tbl = lake.catalog().load_table("ddb.orders_table")
    return {f.name: str(f.field_type) for f in tbl.schema().fields}


def test_every_type_is_typed_and_dumped_exactly(lake: Lake) -> None:
    image = {
        "s": {"S": ""},
        "i": {"N": "-42"},
        "d": {"N": BIG},
        "b": {"B": "AAEC/w=="},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["AQ=="]},
        "m": {"M": {"k": {"N": "1"}, "deep": {"L": [{"S": "a"}]}}},
        "l": {"L": [{"N": "1"}, {"S": "two"}]},
    }
    lake.write([event("INSERT", "a", 1, image=image)])
    lake.apply()
    assert lake.dump()["a"] == {"pk": {"S": "a"}, **image}
    types = _column_types(lake)
    assert types["i"] == "long"
    assert types["d"].startswith("decimal(38")
    assert types["b"] == "binary"
    assert types["t"] == "boolean"
    (row,) = _query(lake, "select i, d, b, ss, m from orders_table")
    assert row["i"] == -42
    assert row["d"] == Decimal(BIG)
    assert row["b"] == b"\x00\x01\x02\xff"
    assert row["ss"] == ["x", "y"]
    assert row["m"]["k"] == 1


def test_new_attributes_add_columns(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"x": {"S": "1"}})])
    lake.apply()
    lake.write([event("INSERT", "b", 2, image={"y": {"N": "2"}})])
    lake.apply()
    types = _column_types(lake)
    assert types["x"] == "string" and types["y"] == "long"
    rows = {r["pk"]: r for r in _query(lake, "select pk, x, y from orders_table")}
    assert rows["a"]["y"] is None and rows["b"]["y"] == 2


def test_a_column_widens_and_keeps_every_old_value(lake: Lake) -> None:
    lake.write([event("INSERT", f"k{i}", 1, image={"n": {"N": str(i)}}) for i in range(40)])
    lake.apply()
    assert _column_types(lake)["n"] == "long"
    lake.write([event("INSERT", "frac", 2, image={"n": {"N": "0.125"}})])
    lake.apply()
    assert _column_types(lake)["n"].startswith("decimal")
    values = {r["pk"]: r["n"] for r in _query(lake, "select pk, n from orders_table")}
    assert values["k39"] == Decimal(39) and values["frac"] == Decimal("0.125")
    # then a type conflict: the column becomes DynamoDB JSON text, still exact
    lake.write([event("INSERT", "str", 3, image={"n": {"S": "seven"}})])
    lake.apply()
    assert _column_types(lake)["n"] == "string"
    values = {r["pk"]: r["n"] for r in _query(lake, "select pk, n from orders_table")}
    assert json.loads(values["frac"]) == {"N": "0.125"}
    assert json.loads(values["str"]) == {"S": "seven"}
    dumped = lake.dump()
    assert dumped["frac"]["n"] == {"N": "0.125"} and dumped["k7"]["n"] == {"N": "7"}
    assert len(dumped) == 42


def test_a_column_widened_from_int64_is_typed_by_its_values_as_in_one_batch(lake: Lake) -> None:
    """An int64 column is 19 digits wide by its type alone; the same items in one batch give a
    decimal of the scale their values need (20 here, where 19 + 20 digits would have made number
    text), 38 digits wide like every decimal column of the lake (its scale rounded up to 2, 4, 9 or
    18 as far as its values leave room: 20 stays 20, 1 becomes 2)."""
    tiny = "0.00000000000000000001"
    lake.write([event("INSERT", "int", 1, image={"n": {"N": "5"}, "h": {"N": "7"}})])
    lake.apply()
    assert _column_types(lake)["n"] == "long"
    lake.write([event("INSERT", "tiny", 2, image={"n": {"N": tiny}, "h": {"N": "0.5"}})])
    lake.apply()
    types = _column_types(lake)
    assert (types["n"], types["h"]) == ("decimal(38, 20)", "decimal(38, 2)")
    values = {r["pk"]: (r["n"], r["h"]) for r in _query(lake, "select pk, n, h from orders_table")}
    assert values == {"int": (Decimal(5), Decimal(7)), "tiny": (Decimal(tiny), Decimal("0.5"))}


def test_query_as_of_reads_an_older_snapshot(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": {"S": "old"}})])
    lake.apply()
    first = lake.catalog().load_table("ddb.orders_table").current_snapshot()
    between = dt.datetime.fromtimestamp(first.timestamp_ms / 1000, tz=dt.UTC)
    lake.write([event("MODIFY", "a", 2, image={"v": {"S": "new"}})])
    lake.apply()
    assert _query(lake, "select v from orders_table") == [{"v": "new"}]
    assert _query(lake, "select v from orders_table", as_of=between) == [{"v": "old"}]
    assert _query(
        lake, "select count(*) as n from orders_table", as_of=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    ) == [{"n": 0}]


def test_json_format_keeps_numbers_exact_and_binary_base64(lake: Lake) -> None:
    lake.write(
        [event("INSERT", "a", 1, image={"d": {"N": BIG}, "b": {"B": "AAE="}, "m": {"M": {"k": {"S": "v"}}}})]
    )
    lake.apply()
    cols, rows = run_sql(lake.catalog(), "ddb", "select d, b, m from orders_table")
    line = format_rows(cols, rows, "json")
    assert f'"d":{BIG}' in line
    obj = json.loads(line, parse_float=Decimal)
    assert obj == {"d": Decimal(BIG), "b": "AAE=", "m": {"k": "v"}}


def test_cli_query_dump_status(lake: Lake, capsys: Any) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": {"S": "1"}})])
    assert main(["apply", "--table", "orders-table", "--lake", str(lake.root), "--once"]) == 0
    assert main(["query", "--lake", str(lake.root), "--format", "csv", "select pk, v from orders_table"]) == 0
    assert capsys.readouterr().out == "pk,v\na,1\n"
    assert main(["dump", "--table", "orders-table", "--lake", str(lake.root)]) == 0
    assert json.loads(capsys.readouterr().out) == {"Item": {"pk": {"S": "a"}, "v": {"S": "1"}}}
    assert main(["status", "--lake", str(lake.root), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["tables"][0]["rows"] == 1
    assert main(["query", "--lake", str(lake.root), "select * from nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["dump", "--table", "other", "--lake", str(lake.root)]) == 1
    assert "other" in capsys.readouterr().err


def test_query_output_of_intervals_uuids_non_finite_floats_and_binary() -> None:
    import datetime as dt
    import uuid

    cols = ["lag", "id", "f", "b", "empty"]
    rows = [(dt.timedelta(days=1, microseconds=250), uuid.UUID(int=1), float("nan"), b"\x00\xff\x10", b"")]
    line = format_rows(cols, rows, "json")
    assert json.loads(line) == {
        "lag": 86400.00025,
        "id": "00000000-0000-0000-0000-000000000001",
        "f": "nan",
        "b": "AP8Q",
        "empty": "",
    }
    assert '"lag":86400.00025' in line  # exact, not a float's rendering
    csv_text = format_rows(cols, rows, "csv")
    assert csv_text.splitlines()[1].endswith(',AP8Q,""')  # base64 as is; empty bytes are not NULL


def test_attributes_differing_only_in_case_keep_their_own_values_and_are_named(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB does not tell 'Ab' from 'ab': the later is read as ab_1, and a warning says so."""
    lake.write([event("INSERT", "a", 1, image={"Ab": {"N": "1"}, "ab": {"N": "2"}, "A-b": {"S": "x"}})])
    lake.apply()
    with caplog.at_level(logging.WARNING, logger="ddblake.lake.reading"):
        (row,) = _query(lake, "select * exclude (_ddb_item) from orders_table")
    assert (row["Ab"], row["ab_1"]) == (1, 2)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'Ab' and 'ab' differ only in case" in warned and "'ab_1'" in warned


def test_json_keeps_repeated_column_names_apart_and_csv_keeps_empty_strings_apart_from_null(
    lake: Lake,
) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": {"S": ""}})])
    lake.write([event("INSERT", "b", 2, image={"w": {"S": "1"}})])
    lake.apply()
    cols, rows = run_sql(lake.catalog(), "ddb", "select pk, v, 1 as pk from orders_table order by 1")
    assert [json.loads(line) for line in format_rows(cols, rows, "json").splitlines()] == [
        {"pk": "a", "v": "", "pk_1": 1},
        {"pk": "b", "v": None, "pk_1": 1},
    ]
    assert format_rows(cols, rows, "csv") == 'pk,v,pk\na,"",1\nb,,1\n'


@pytest.mark.parametrize(
    "error", [RuntimeError("Query interrupted"), duckdb.InterruptException("INTERRUPT Error: Interrupted!")]
)
def test_a_ctrl_c_duckdb_caught_is_a_keyboard_interrupt(error: Exception) -> None:
    from ddblake.lake.query import _failed

    with pytest.raises(KeyboardInterrupt):
        _failed(error, [])


def test_reading_commands_leave_a_directory_without_a_catalog_as_it_is(tmp_path: Path, capsys: Any) -> None:
    """An empty directory (a wrong --lake, or a lake nothing was applied to) answers as an empty
    lake, without an empty catalog.db left behind."""
    assert main(["status", "--lake", str(tmp_path)]) == 0
    assert "no tables yet" in capsys.readouterr().out
    assert main(["query", "--lake", str(tmp_path), "--format=csv", "select 42 as x"]) == 0
    assert capsys.readouterr().out == "x\n42\n"
    assert main(["query", "--lake", str(tmp_path), "select * from orders_table"]) == 1
    assert "none yet" in capsys.readouterr().err
    assert main(["dump", "--table", "orders-table", "--lake", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_table_file_is_one_line_naming_it(lake: Lake, capsys: Any) -> None:
    lake.write([event("INSERT", "a", 1, image={"v": {"S": "1"}})])
    lake.apply()
    for parquet in lake.root.rglob("*.parquet"):
        parquet.write_bytes(b"")
    assert main(["query", "--lake", str(lake.root), "select count(*) from orders_table"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ddblake: error: ") and len(err.splitlines()) == 1 and "Traceback" not in err


def test_output_into_a_closed_pipe_ends_quietly(lake: Lake) -> None:
    """`ddblake query ... | head -1`: the reader leaving is not an error."""
    lake.write([event("INSERT", "a", 1, image={"v": {"S": "1"}})])
    lake.apply()
    sql = "select * from range(3000000)"
    argv = [
        sys.executable,
        "-m",
        "ddblake.cli.main",
        "query",
        "--lake",
        str(lake.root),
        "--format",
        "csv",
        sql,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"range\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""
