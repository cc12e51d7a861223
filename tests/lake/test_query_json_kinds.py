"""``query --format json`` and the columns of text that is not an S value: number text prints as
JSON numbers (their own text, never through a float), JSON text (type conflicts, ``_ddb_item``, the
history's ``keys`` and images) as embedded JSON, also through a statement's expressions; the table
and CSV formats show the same text as before (docs/lake.md, query)."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
from lake_helpers import Lake, event
from lake_helpers import lake as lake  # noqa: F401  (fixture)

from ddblake.cli.main import main
from ddblake.errors import UsageError
from ddblake.lake.query import JsonText, format_rows, parse_time, run_sql

TINY, HUGE = "1E-130", "9.99E+125"
A = {
    "tiny": {"N": TINY},
    "mix": {"N": "4"},
    "m": {"M": {"k": {"N": "1"}, "s": {"S": "x"}, "f": {"N": "2"}, "t": {"N": TINY}}},
    "l": {"L": [{"N": "1"}, {"S": "two"}]},
    "nl": {"L": [{"N": TINY}, {"N": HUGE}]},
    "b": {"B": "AAEC/w=="},
    "lm": {"L": [{"M": {"k": {"N": "1"}}}, {"M": {"k": {"S": "x"}}}, {"NULL": True}]},
}
B = {
    "tiny": {"N": HUGE},
    "mix": {"S": "x"},
    "m": {"M": {"k": {"N": "3"}, "f": {"S": "two"}, "t": {"N": HUGE}}},
    "nl": {"L": [{"N": "5"}]},
}
C = {"tiny": {"N": "007.50"}, "mix": {"M": {"z": {"NULL": True}}}, "nl": {"L": [{"N": ".5"}, {"N": "5."}]}}


def _lake(lake: Lake) -> Lake:
    old = {"pk": {"S": "a"}, "tiny": {"N": "1"}}
    modify = dataclasses.replace(event("MODIFY", "a", 2, image=A), old_image=old)
    lake.write([event("INSERT", "a", 1, image={"tiny": {"N": "1"}}), modify])
    lake.write([event("INSERT", "b", 3, image=B), event("INSERT", "c", 4, image=C)])
    lake.apply()
    return lake


def _json(lake: Lake, capsys: Any, sql: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows ``query --format json`` prints, read with numbers as Decimals, and the lines."""
    assert main(["query", "--lake", str(lake.root), "--format", "json", sql]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line, parse_float=Decimal, parse_int=Decimal) for line in lines], lines


def _out(lake: Lake, capsys: Any, fmt: str, sql: str) -> str:
    assert main(["query", "--lake", str(lake.root), "--format", fmt, sql]) == 0
    return str(capsys.readouterr().out)


def test_number_text_prints_as_exact_numbers_and_json_text_as_json(lake: Lake, capsys: Any) -> None:
    _lake(lake)
    sql = "select pk, tiny, mix, m, l, nl, b, lm, _ddb_item from orders_table order by pk"
    (a, b, c), lines = _json(lake, capsys, sql)
    assert '"tiny":1E-130' in lines[0] and '"tiny":9.99E+125' in lines[1]  # its own text
    assert a["tiny"] == Decimal(TINY) and b["tiny"] == Decimal(HUGE)
    assert c["tiny"] == Decimal("7.50") and '"tiny":7.50' in lines[2]  # "007.50": no JSON number
    assert c["nl"] == [Decimal("0.5"), Decimal(5)]  # ".5" and "5." neither: the same values as ones
    assert a["mix"] == {"N": "4"} and b["mix"] == {"S": "x"} and c["mix"] == {"M": {"z": {"NULL": True}}}
    # a struct keeps its typed fields; a conflict inside it (f) is JSON, number text (t) a number
    assert a["m"] == {"f": {"N": "2"}, "k": 1, "s": "x", "t": Decimal(TINY)}
    assert b["m"] == {"f": {"S": "two"}, "k": 3, "s": None, "t": Decimal(HUGE)}
    assert c["m"] is None
    assert a["l"] == [{"N": "1"}, {"S": "two"}] and b["l"] is None  # mixed list elements: JSON each
    assert a["nl"] == [Decimal(TINY), Decimal(HUGE)] and b["nl"] == [Decimal(5)]
    assert a["b"] == "AAEC/w=="
    assert a["lm"] == [{"k": {"N": "1"}}, {"k": {"S": "x"}}, None]  # maps in a list: their fields too
    assert a["_ddb_item"] == json.loads(json.dumps({"pk": {"S": "a"}, **A}))
    assert b["_ddb_item"]["tiny"] == {"N": HUGE}  # DynamoDB JSON: numbers are strings there
    assert c["_ddb_item"]["tiny"] == {"N": "007.50"}  # the text as received


def test_kinds_carry_through_expressions(lake: Lake, capsys: Any) -> None:
    _lake(lake)
    sql = (
        "select tiny as t2, coalesce(mix, null) as x, m.f as f, m.t as mt, l[1] as first, nl[2] as n2, "
        "_ddb_item->'$.tiny' as ti, _ddb_item->>'$.tiny.N' as text, top "
        "from (select *, max(tiny) over () as top from orders_table) where pk = 'a'"
    )
    (row,), _ = _json(lake, capsys, sql)
    assert row == {
        "t2": Decimal(TINY),
        "x": {"N": "4"},
        "f": {"N": "2"},
        "mt": Decimal(TINY),
        "first": {"N": "1"},
        "n2": Decimal(HUGE),
        "ti": {"N": TINY},  # a JSON function's result is JSON too
        "text": TINY,  # ->> gives text: a string
        "top": Decimal(HUGE),  # number text compares as text, as before ('9' > '1' > '0')
    }
    (row,), _ = _json(
        lake, capsys, "select tiny || '' as s, cast(mix as varchar) as v from orders_table where pk = 'a'"
    )
    assert row == {"s": TINY, "v": '{"N":"4"}'}  # made text again: strings


def test_history_images_and_keys_are_json(lake: Lake, capsys: Any) -> None:
    _lake(lake)
    sql = "select op, pk, keys, new_image, old_image, _ddb_key from orders_table_changes order by event_time"
    rows, _ = _json(lake, capsys, sql)
    assert [r["op"] for r in rows] == ["INSERT", "MODIFY", "INSERT", "INSERT"]
    insert, modify = rows[0], rows[1]
    assert insert["keys"] == {"pk": {"S": "a"}} and insert["old_image"] is None
    assert insert["new_image"] == {"pk": {"S": "a"}, "tiny": {"N": "1"}}
    assert modify["old_image"] == {"pk": {"S": "a"}, "tiny": {"N": "1"}}
    assert modify["new_image"]["tiny"] == {"N": TINY} and modify["new_image"]["b"] == {"B": "AAEC/w=="}
    assert isinstance(modify["_ddb_key"], str)  # apply's canonical key stays text
    (row,), _ = _json(
        lake, capsys, "select new_image->'$.mix' as mix from ddb.orders_table_changes where op = 'MODIFY'"
    )
    assert row == {"mix": {"N": "4"}}


def test_table_and_csv_show_the_text_as_before(lake: Lake, capsys: Any) -> None:
    _lake(lake)
    sql = "select pk, tiny, mix, l from orders_table where pk in ('a', 'b') order by pk"
    assert _out(lake, capsys, "csv", sql) == (
        'pk,tiny,mix,l\na,1E-130,"{""N"":""4""}","[""{\\""N\\"":\\""1\\""}"",""{\\""S\\"":\\""two\\""}""]"\n'
        'b,9.99E+125,"{""S"":""x""}",\n'
    )
    table = _out(lake, capsys, "table", sql)
    assert '| {"N":"4"} |' in table and '["{\\"N\\":\\"1\\"}","{\\"S\\":\\"two\\"}"]' in table
    cols, rows = run_sql(lake.catalog(), "ddb", sql)
    assert rows[0][2] == '{"N":"4"}' and not isinstance(rows[0][2], JsonText)  # text, as SQL sees it
    assert format_rows(cols, rows, "csv") == _out(lake, capsys, "csv", sql)


def test_json_values_that_are_not_strict_json_print_as_text(lake: Lake, capsys: Any) -> None:
    _lake(lake)
    sql = (
        "select '[1,]'::JSON as comma, 'NaN'::JSON as nan, "
        "'{\"a\":\n 1}'::JSON as broken_line, '12345678901234567890.5e-400'::JSON as n "
        "from orders_table limit 1"
    )
    (row,), lines = _json(lake, capsys, sql)
    assert len(lines) == 1  # a line break between tokens does not break the JSON Lines
    assert row == {
        "comma": "[1,]",
        "nan": "NaN",
        "broken_line": {"a": 1},
        "n": Decimal("12345678901234567890.5e-400"),
    }


def test_a_table_of_another_writer_gets_no_json_by_name(lake: Lake, capsys: Any) -> None:
    """``_ddb_item`` is JSON by name only in a table ddblake wrote (its ddblake.source-table)."""
    _lake(lake)
    tbl = lake.catalog().load_table("ddb.orders_table")
    with tbl.transaction() as tx:
        tx.remove_properties("ddblake.source-table")
    (row,), _ = _json(lake, capsys, "select _ddb_item, mix from orders_table where pk = 'a'")
    assert isinstance(row["_ddb_item"], str) and row["mix"] == {"N": "4"}  # the doc mark still holds


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "12:00"])
def test_as_of_error_names_every_accepted_form(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_time(text)
    message = str(e.value)
    assert "ISO 8601" in message and "epoch seconds or milliseconds" in message
    assert "epoch ms" not in message


@pytest.mark.parametrize("fmt", ["json", "table", "csv"])
def test_sql_sees_these_columns_as_text_as_before(lake: Lake, capsys: Any, fmt: str) -> None:
    """Statements that compare, mix or union these columns with text run as they always did (typing
    the columns JSON in SQL made each of these a "Malformed JSON" error), in every format."""
    _lake(lake)
    for sql, expected in (
        ("select count(*) as n from orders_table where mix = 'x'", [{"n": 0}]),
        ("select count(*) as n from orders_table where mix <> 'x'", [{"n": 3}]),
        ("select pk, tiny in ('5', 'abc') as hit from orders_table order by pk", None),
        ("select case when pk = 'a' then tiny else 'none' end as t from orders_table order by pk", None),
        ("select mix as v from orders_table union all select pk from orders_table", None),
        ("select greatest(tiny, pk) as g from orders_table", None),
    ):
        assert main(["query", "--lake", str(lake.root), "--format", fmt, sql]) == 0, sql
        out = capsys.readouterr().out
        if fmt == "json" and expected is not None:
            assert [json.loads(line) for line in out.splitlines()] == expected
    if fmt == "json":  # and what json prints of them is still JSON where it was bound as such
        (row,), _ = _json(
            lake,
            capsys,
            "select case when pk = 'a' then tiny else 'none' end as t from orders_table where pk = 'a'",
        )
        assert row == {"t": Decimal(TINY)}
