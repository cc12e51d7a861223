"""Numbers that grow digits cost the rows a batch touches, not the table (docs/types.md, Decimal
columns in the lake).

A decimal column of the current state is ``decimal(38, S)`` from the start, so a value with more
digits before the point fits it: the batch rewrites only the files holding its keys. A scale is
rounded up to 2, 4, 9 or 18, so a value with more digits after the point rarely changes it; when
it does (Iceberg cannot change a decimal's scale) every file is rewritten, once per step.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import Lake, MakeLake, event, insert, same_whatever_the_batching
from lake_helpers import new_lake as new_lake  # noqa: F401  (fixture)

from ddblake.changes.resolve import bucket_of
from ddblake.codec import arrow, items_to_table, jsonl_to_table
from ddblake.lake.query import run_sql

CUR = "ddb.orders_table"
ROWS = 3000
BUCKETS = 16


def _n(text: str) -> dict[str, str]:
    return {"N": text}


def _image(i: int) -> dict[str, Any]:
    """An item's attributes: a price with one digit after the point, a map and a number set."""
    return {
        "x": _n(f"{i % 1000}.5"),
        "m": {"M": {"p": _n(f"{i % 97}.5"), "s": {"S": f"s{i}"}}},
        "ns": {"NS": [f"{i % 10}.5", "1"]},
    }


def _files(lake: Lake) -> dict[str, int]:
    """The current state's data files: path → bucket (its ``_ddb_bucket`` partition value)."""
    table = lake.catalog().load_table(CUR)
    return {t.file.file_path: int(t.file.partition[0]) for t in table.scan().plan_files()}


def _types(lake: Lake) -> dict[str, str]:
    return {f.name: str(f.field_type) for f in lake.catalog().load_table(CUR).schema().fields}


def _key(pk: str) -> str:
    return '{"pk":{"S":"' + pk + '"}}'


def _loaded(lake: Lake) -> dict[str, dict[str, Any]]:
    """A table of ROWS items over every bucket; returns the items by key."""
    items = {f"k{i:05d}": {"pk": {"S": f"k{i:05d}"}, **_image(i)} for i in range(ROWS)}
    lake.write([event("INSERT", pk, 1, image=_image(i)) for i, pk in enumerate(items)])
    lake.apply()
    assert set(_files(lake).values()) == set(range(BUCKETS))
    return items


def _change(lake: Lake, items: dict[str, dict[str, Any]], pk: str, t: int, image: dict[str, Any]) -> set[str]:
    """Apply a MODIFY of ``pk``; returns the data files it replaced (and checks the dump)."""
    before = _files(lake)
    lake.write([event("MODIFY", pk, t, image=image)])
    result = lake.apply()
    after = _files(lake)
    items[pk] = {"pk": {"S": pk}, **image}
    assert lake.dump() == items
    replaced = set(before) - set(after)
    assert result.files_rewritten == len(replaced)
    return replaced


def _only_the_bucket_of(replaced: set[str], before: dict[str, int], pk: str) -> None:
    """The files replaced are one: the one of ``pk``'s bucket (one file per bucket here)."""
    assert len(replaced) == 1
    assert {before[p] for p in replaced} == {bucket_of(_key(pk), BUCKETS)}


def test_more_digits_before_the_point_rewrite_only_the_touched_bucket(lake: Lake) -> None:
    items = _loaded(lake)
    types = _types(lake)
    assert types["x"] == "decimal(38, 2)"  # 38 digits from the start, the scale rounded up to 2
    assert "p: optional decimal(38, 2)" in types["m"] and "decimal(38, 2)" in types["ns"]

    wide = {
        "x": _n("123456789.5"),  # decimal(5,1) → decimal(10,1) by the values alone
        "m": {"M": {"p": _n("98765432109876.5"), "s": {"S": "s7"}}},
        "ns": {"NS": ["1", "123456789012345678901234567890.5"]},
    }
    before = _files(lake)
    replaced = _change(lake, items, "k00007", 2, wide)
    _only_the_bucket_of(replaced, before, "k00007")
    assert _types(lake) == types

    widest = {"x": _n("123456789012345678901234567890123456")}  # 36 digits: the column's room
    before = _files(lake)
    _only_the_bucket_of(_change(lake, items, "k00042", 3, widest), before, "k00042")
    assert _types(lake) == types

    rows = dict(
        run_sql(lake.catalog(), "ddb", "select pk, x from orders_table where pk in ('k00007', 'k00042')")[1]
    )
    assert rows == {
        "k00007": Decimal("123456789.5"),
        "k00042": Decimal("123456789012345678901234567890123456"),
    }


def test_a_scale_within_the_columns_step_rewrites_only_the_touched_bucket(lake: Lake) -> None:
    items = _loaded(lake)
    before = _files(lake)
    _only_the_bucket_of(_change(lake, items, "k00003", 2, {"x": _n("1.25")}), before, "k00003")
    assert _types(lake)["x"] == "decimal(38, 2)"

    # Three digits after the point: the scale steps up to 4, which Iceberg cannot do in place:
    # every file is rewritten, once.
    before = _files(lake)
    replaced = _change(lake, items, "k00004", 3, {"x": _n("1.125")})
    assert replaced == set(before)
    assert _types(lake)["x"] == "decimal(38, 4)"

    # Then four digits after the point, and 30 before it, fit: the touched bucket alone again.
    for t, (pk, value) in enumerate(
        [("k00005", "1.0625"), ("k00006", "123456789012345678901234567890.5")], 4
    ):
        before = _files(lake)
        _only_the_bucket_of(_change(lake, items, pk, t, {"x": _n(value)}), before, pk)
    assert _types(lake)["x"] == "decimal(38, 4)"
    values = dict(run_sql(lake.catalog(), "ddb", "select pk, x from orders_table")[1])
    assert values["k00004"] == Decimal("1.125") and values["k00999"] == Decimal("999.5")


def test_integers_becoming_decimals_rewrite_every_file_once_then_growth_is_cheap(lake: Lake) -> None:
    lake.write([event("INSERT", f"k{i:05d}", 1, image={"q": _n(str(i))}) for i in range(ROWS)])
    lake.apply()
    items = {f"k{i:05d}": {"pk": {"S": f"k{i:05d}"}, "q": _n(str(i))} for i in range(ROWS)}
    assert _types(lake)["q"] == "long"
    before = _files(lake)
    assert _change(lake, items, "k00001", 2, {"q": _n("0.5")}) == set(before)  # int64 → decimal
    assert _types(lake)["q"] == "decimal(38, 2)"
    before = _files(lake)
    _only_the_bucket_of(
        _change(lake, items, "k00002", 3, {"q": _n("99999999999999999999.25")}), before, "k00002"
    )


def test_a_lake_with_narrow_decimals_is_widened_once_and_then_costs_the_touched_rows(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older ddblake typed decimals as narrow as their values (decimal(4,1) here)."""
    with monkeypatch.context() as older:
        older.setattr(arrow, "widen", lambda t, _precision: t)
        items = _loaded(lake)
    assert _types(lake)["x"] == "decimal(4, 1)"
    before = _files(lake)  # values that fit keep the narrow column
    _only_the_bucket_of(_change(lake, items, "k00010", 2, {"x": _n("12.5")}), before, "k00010")
    assert _types(lake)["x"] == "decimal(4, 1)"
    before = _files(lake)  # one that does not widens it to 38 digits: every file, once
    assert _change(lake, items, "k00011", 3, {"x": _n("123456789.5")}) == set(before)
    assert _types(lake)["x"] == "decimal(38, 2)"
    before = _files(lake)
    _only_the_bucket_of(_change(lake, items, "k00012", 4, {"x": _n("1234567890123.25")}), before, "k00012")
    assert run_sql(lake.catalog(), "ddb", "select x from orders_table where pk = 'k00012'")[1] == [
        (Decimal("1234567890123.25"),)
    ]


def test_wide_decimal_columns_are_the_same_whatever_the_batching(new_lake: MakeLake) -> None:
    a = insert("a", 1, {"x": _n("1.5"), "m": {"M": {"p": _n("0.5")}}})
    b = insert("b", 2, {"x": _n("123456789.25"), "m": {"M": {"p": _n("12345.5")}}})
    c = insert("c", 3, {"x": _n("7"), "m": {"M": {"p": _n("0.0001")}}})
    lake = same_whatever_the_batching(new_lake, [[a, b, c]], [[a], [b], [c]], [[c], [a, b]])
    types = _types(lake)
    assert types["x"] == "decimal(38, 2)" and "p: optional decimal(38, 4)" in types["m"]


def test_the_codec_gives_decimals_38_digits_and_a_rounded_scale_and_keeps_columns_that_fit() -> None:
    def typed(values: list[str], schema: pa.Schema | None = None) -> pa.Table:
        items = [{"x": _n(v), "m": {"M": {"p": _n(v)}}, "l": {"NS": [v]}} for v in values]
        table = items_to_table(items, schema, evolve=True, max_decimal_precision=38, wide_decimals=True)
        lines = "\n".join(json.dumps(item) for item in items).encode()
        fast = jsonl_to_table(lines, schema, evolve=True, max_decimal_precision=38, wide_decimals=True)
        assert fast.equals(table, check_metadata=True)
        if not pa.types.is_string(table.schema.field("x").type):
            assert table.column("x").to_pylist() == [Decimal(v) for v in values]  # exactly
        return table

    def scale(values: list[str]) -> pa.DataType:
        t = typed(values).schema
        assert t.field("m").type.field("p").type == t.field("x").type == t.field("l").type.value_type
        return t.field("x").type

    assert scale(["1.5", "2"]) == pa.decimal128(38, 2)
    assert scale(["1.125"]) == pa.decimal128(38, 4)
    assert scale(["0.1234567"]) == pa.decimal128(38, 9)
    assert scale(["0.30000000000000004"]) == pa.decimal128(38, 18)
    assert scale(["0.0000000000000000001"]) == pa.decimal128(38, 19)  # past 18: the scale itself
    assert scale(["123456789012345678901"]) == pa.decimal128(38, 0)  # beyond int64
    assert scale(["1234567890123456789012345678901234567.5"]) == pa.decimal128(38, 1)  # no room for 2
    assert typed(["7", "-3"]).schema.field("x").type == pa.int64()

    # An existing column the values fit stays as it is (a narrow one too); one they do not fit widens.
    narrow = pa.schema([pa.field("x", pa.decimal128(5, 1))])
    assert typed(["12.5", "7"], narrow).schema.field("x").type == pa.decimal128(5, 1)
    assert typed(["123456789.5"], narrow).schema.field("x").type == pa.decimal128(38, 2)
    wide = pa.schema([pa.field("x", pa.decimal128(38, 2))])
    assert typed(["12345678901234567890123456789012.25", "3"], wide).schema.field("x").type == pa.decimal128(
        38, 2
    )
    assert typed(["1.125"], wide).schema.field("x").type == pa.string()  # by types alone: the lake retypes
    # Without the option, decimals stay as narrow as their values.
    assert items_to_table([{"x": _n("1.5")}]).schema.field("x").type == pa.decimal128(2, 1)
