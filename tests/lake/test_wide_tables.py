"""Tables with thousands of attribute columns: each batch costs its width, not its width squared.

Attribute names that are data (``stat_<day>``) give a column each. Three steps of a batch searched
every column once per column: filling a batch's rows out to the table's columns (``conform``),
adding the new columns (pyiceberg's ``union_by_name``), and mapping each written file's columns to
field IDs (pyiceberg's name mapping, per file). At 500 items a batch with two new names each, the
fifth batch took 150 s; it now takes about 14 s (docs/types.md, "Attribute names").
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from lake_helpers import Lake, applied, insert
from lake_helpers import lake as lake  # noqa: F401 (fixture)
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from ddblake.lake import current
from ddblake.lake.query import run_sql


def _mixed() -> pa.Schema:
    """Column shapes apply adds: typed, text-marked (the codec's doc), nested, lists, decimals."""
    marked = {b"doc": b"ddblake:ddb-json"}
    return pa.schema(
        [
            pa.field("n", pa.int64()),
            pa.field("d", pa.decimal128(38, 4)),
            pa.field("s", pa.large_string()),
            pa.field("j", pa.large_string(), metadata=marked),
            pa.field("b", pa.binary()),
            pa.field("ok", pa.bool_()),
            pa.field("tags", pa.list_(pa.string())),
            pa.field(
                "m",
                pa.struct(
                    [
                        pa.field("x", pa.int64()),
                        pa.field("y", pa.string(), metadata=marked),
                        pa.field("z", pa.list_(pa.struct([pa.field("q", pa.binary())]))),
                    ]
                ),
            ),
            pa.field("at", pa.timestamp("us", tz="UTC")),
        ]
    )


def test_columns_are_added_as_union_by_name_adds_them(tmp_path: Path) -> None:
    catalog = SqlCatalog("c", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/w")
    catalog.create_namespace("ns")
    start = Schema(NestedField(1, "pk", StringType(), required=False))
    ours, theirs = (catalog.create_table(f"ns.{name}", start) for name in ("ours", "theirs"))
    with ours.transaction() as tx, tx.update_schema() as upd:
        current._add_columns(upd, _mixed())
    with theirs.transaction() as tx, tx.update_schema() as upd:
        upd.union_by_name(_mixed())
    a, b = ours.refresh().schema(), theirs.refresh().schema()
    assert a == b  # names, field IDs (nested ones too), types, docs, nullability
    assert a.find_field("j").doc == "ddblake:ddb-json" and a.find_field("m.y").doc == "ddblake:ddb-json"
    assert len(a.fields) == 10


def test_conform_fills_and_casts_by_name_whatever_the_order() -> None:
    rows = pa.table({"c": pa.array(["x"], pa.string()), "a": pa.array([1], pa.int32())})
    schema = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.large_string())])
    out = current.conform(rows, schema)
    assert out.schema == schema
    assert out.to_pylist() == [{"a": 1, "b": None, "c": "x"}]


def test_batches_that_each_add_hundreds_of_columns_keep_every_value(lake: Lake) -> None:
    batches = [
        [
            insert(f"k{b}-{i}", b * 100 + i, {f"stat_{b}_{i}": {"N": str(i)}, "name": {"S": "x"}})
            for i in range(150)
        ]
        for b in range(3)
    ]
    applied(lake, batches)
    names = lake.catalog().load_table("ddb.orders_table").schema().column_names
    assert {f"stat_{b}_{i}" for b in range(3) for i in range(150)} <= set(names)
    dump = lake.dump()
    assert len(dump) == 450
    assert dump["k2-149"] == {"pk": {"S": "k2-149"}, "stat_2_149": {"N": "149"}, "name": {"S": "x"}}
    _, rows = run_sql(
        lake.catalog(), "ddb", "select stat_1_7, stat_2_7, name from orders_table where pk = 'k1-7'"
    )
    assert [tuple(r) for r in rows] == [(7, None, "x")]
